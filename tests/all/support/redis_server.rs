//! A real `redis-server` on a free loopback port: one shared by every test
//! of the process ([`shared`]; tests keep apart by key and topic names), or
//! one of a test's own ([`RedisServer::start`]) when the test stops and
//! restarts it. `scripts/test.sh` installs redis-server when missing.
//!
//! The server runs under a small `sh` guard that kills it when the test
//! process's end of a pipe closes, so no server outlives the tests, even a
//! test process that is killed.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A redis-server process and its data directory.
pub struct RedisServer {
    pub port: u16,
    dir: TempDir,
    append_only: bool,
    process: Option<Guarded>,
}

struct Guarded {
    guard: Child,
    /// Closing it makes the guard kill the server.
    _stdin: ChildStdin,
}

/// The server every test of this process shares (never restarted).
pub fn shared() -> &'static RedisServer {
    static SERVER: OnceLock<RedisServer> = OnceLock::new();
    SERVER.get_or_init(|| RedisServer::start(false))
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl RedisServer {
    /// Starts a server; with `append_only`, writes go to the append-only
    /// file (fsynced every second, and on shutdown), so a restarted server
    /// has what it acknowledged before [`Self::stop`].
    pub fn start(append_only: bool) -> Self {
        let mut server = Self { port: free_port(), dir: tempfile::tempdir().unwrap(), append_only, process: None };
        server.restart();
        server
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server (again, on the same port and data).
    pub fn restart(&mut self) {
        assert!(self.process.is_none(), "already running");
        let which = Command::new("sh").args(["-c", "command -v redis-server"]).output().unwrap();
        assert!(
            which.status.success(),
            "redis-server is not installed: run ./scripts/test.sh, or apt-get install redis-server"
        );
        let port = self.port.to_string();
        let append_only = if self.append_only { "yes" } else { "no" };
        let mut guard = Command::new("sh")
            .args(["-c", r#"redis-server "$@" & echo started; cat >/dev/null; kill -9 $! 2>/dev/null; wait"#, "sh"])
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
            .args(["--appendonly", append_only, "--loglevel", "warning"])
            .arg("--dir")
            .arg(self.dir.path())
            .arg("--logfile")
            .arg(self.dir.path().join("redis.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting redis-server");
        let mut line = String::new();
        BufReader::new(guard.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let stdin = guard.stdin.take().unwrap();
        self.process = Some(Guarded { guard, _stdin: stdin });
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let client = redis::Client::open(format!("redis://{}/", self.address())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pong = client
                .get_connection_with_timeout(Duration::from_secs(1))
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c));
            match pong {
                Ok(_) => return,
                Err(e) if Instant::now() > deadline => {
                    let log = std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default();
                    panic!("redis-server on {} not ready: {e}\n{log}", self.address())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// Stops the server the way an operator restarts it (`SHUTDOWN`: with
    /// the append-only file on, everything it acknowledged is on disk), and
    /// waits for it to be gone.
    pub fn stop(&mut self) {
        if self.process.is_some() {
            let _ = redis::cmd("SHUTDOWN").query::<()>(&mut self.connection());
        }
        self.reap();
    }

    /// Kills the server if it runs (SIGKILL from the guard) and reaps it.
    fn reap(&mut self) {
        if let Some(mut process) = self.process.take() {
            drop(process._stdin);
            process.guard.wait().ok();
        }
    }

    /// A plain synchronous connection, for tests that look at the raw data.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(format!("redis://{}/", self.address())).unwrap().get_connection().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.reap();
    }
}
