//! A real `redis-server` on a free loopback port: one shared by every test
//! of the process ([`shared`]; tests keep apart by key and topic names), or
//! one of a test's own ([`RedisServer::start`]) when the test stops and
//! restarts it. `scripts/test.sh` installs redis-server when missing.
//!
//! The server runs under a small `sh` guard that kills it when the test
//! process's end of a pipe closes, so no server outlives the tests, even a
//! test process that is killed.
//!
//! [`RedisServer::start_tls`] starts one that speaks only TLS, with
//! certificates of a test authority made here ([`TestCerts`]).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// A redis-server process and its data directory.
pub struct RedisServer {
    pub port: u16,
    dir: TempDir,
    append_only: bool,
    /// TLS only: the certificate files and whether clients must show one.
    tls: Option<(PathBuf, bool)>,
    /// How the test connects to it (TLS checked against the test authority).
    client: redis::Client,
    process: Option<Guarded>,
}

/// A test certificate authority, a server certificate it signed for
/// `127.0.0.1` and `localhost`, and a client certificate, as PEM files in a
/// folder (`ca.pem`, `server.pem`, `server.key`, `client.pem`, `client.key`).
pub struct TestCerts {
    pub dir: TempDir,
}

impl TestCerts {
    pub fn generate() -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, pem: String| std::fs::write(dir.path().join(name), pem).unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name.push(DnType::CommonName, "plughost test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        write("ca.pem", ca.pem());
        for (name, purpose) in
            [("server", ExtendedKeyUsagePurpose::ServerAuth), ("client", ExtendedKeyUsagePurpose::ClientAuth)]
        {
            let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
            params.distinguished_name.push(DnType::CommonName, format!("plughost test {name}"));
            params.extended_key_usages = vec![purpose];
            let key = KeyPair::generate().unwrap();
            write(&format!("{name}.pem"), params.signed_by(&key, &ca).unwrap().pem());
            write(&format!("{name}.key"), key.serialize_pem());
        }
        Self { dir }
    }

    /// The path of one of the files.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The text of one of the files.
    pub fn pem(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap()
    }
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
        let port = free_port();
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self { port, dir, append_only, tls: None, client, process: None };
        server.restart();
        server
    }

    /// Starts a server that speaks only TLS (`--port 0 --tls-port`), with
    /// the server certificate of `certs`; with `require_client_cert` a client
    /// without a certificate of the test authority is refused, otherwise one
    /// is checked only when shown.
    pub fn start_tls(certs: &TestCerts, require_client_cert: bool) -> Self {
        let port = free_port();
        let addr = redis::ConnectionAddr::TcpTls { host: "127.0.0.1".into(), port, insecure: false, tls_params: None };
        let client_tls = redis::ClientTlsConfig {
            client_cert: certs.pem("client.pem").into_bytes(),
            client_key: certs.pem("client.key").into_bytes(),
        };
        let certificates =
            redis::TlsCertificates { client_tls: Some(client_tls), root_cert: Some(certs.pem("ca.pem").into_bytes()) };
        let client = redis::Client::build_with_tls(addr, certificates).unwrap();
        let tls = Some((certs.dir.path().to_owned(), require_client_cert));
        let mut server =
            Self { port, dir: tempfile::tempdir().unwrap(), append_only: false, tls, client, process: None };
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
        let mut command = Command::new("sh");
        command.args(["-c", r#"redis-server "$@" & echo started; cat >/dev/null; kill -9 $! 2>/dev/null; wait"#, "sh"]);
        match &self.tls {
            None => command.args(["--port", &port]),
            Some((certs, require_client_cert)) => command
                .args(["--port", "0", "--tls-port", &port, "--tls-cert-file"])
                .arg(certs.join("server.pem"))
                .arg("--tls-key-file")
                .arg(certs.join("server.key"))
                .arg("--tls-ca-cert-file")
                .arg(certs.join("ca.pem"))
                .args(["--tls-auth-clients", if *require_client_cert { "yes" } else { "optional" }]),
        };
        let mut guard = command
            .args(["--bind", "127.0.0.1", "--save", "", "--daemonize", "no"])
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
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let pong = self
                .client
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
        self.client.get_connection().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.reap();
    }
}
