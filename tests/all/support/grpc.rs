//! gRPC fixtures: the external components of `components/` as real
//! processes, each serving one socket in a short temporary folder (Unix
//! socket paths are limited to 108 bytes), killed when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use plughost::pluggable::GrpcOptions;
use plughost::{Host, HostBuilder};

/// The `grpc-components` binary, built once per test process (release, into
/// [`super::wasm::target_dir`]).
pub fn grpc_components_binary() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["build", "--locked", "--release", "-p", "grpc-components", "--manifest-path"])
            .arg(root.join("components/Cargo.toml"))
            .arg("--target-dir")
            .arg(super::wasm::target_dir())
            .status()
            .expect("running cargo for components/");
        assert!(status.success(), "building components/grpc-components failed");
        super::wasm::target_dir().join("release/grpc-components")
    })
}

/// gRPC options that notice changes quickly: a ping every 200 ms, probes
/// that give up after 800 ms, the socket folder watched every 100 ms.
pub fn quick_options() -> GrpcOptions {
    GrpcOptions {
        ping_interval: Duration::from_millis(200),
        probe_timeout: Duration::from_millis(800),
        watch_interval: Duration::from_millis(100),
        ..GrpcOptions::default()
    }
}

/// A host on the one socket folder `sockets`, with `options`, keeping its
/// data in `<dir>/data`; the caller adds its components.
pub fn socket_host(dir: &Path, sockets: &Path, options: GrpcOptions) -> HostBuilder {
    Host::builder().data_dir(dir.join("data")).socket_dir(sockets).grpc_options(options)
}

/// A folder under `/tmp` with a short path, for sockets.
pub fn short_tempdir() -> tempfile::TempDir {
    tempfile::Builder::new().prefix("ph-").tempdir_in("/tmp").expect("tempdir in /tmp")
}

/// What runs a component: a kind of `grpc-components`, or the Python state
/// store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// `grpc-components <kind>`.
    Rust(&'static str),
    /// `components/python-state/store.py`: the Python SDK example's `serve`.
    PythonState,
    /// An example built with the Rust SDK (`components/<name>`), see
    /// [`super::sdk`].
    Sdk(&'static str),
}

/// One component process on one socket; restartable; killed on drop.
pub struct ComponentProcess {
    program: Program,
    socket: PathBuf,
    data_dir: PathBuf,
    child: Option<Child>,
}

impl ComponentProcess {
    /// Starts `program` on `socket` and waits until it accepts connections.
    pub fn start(program: Program, socket: PathBuf, data_dir: PathBuf) -> Self {
        let mut process = Self { program, socket, data_dir, child: None };
        process.spawn();
        process
    }

    fn spawn(&mut self) {
        let mut command = match self.program {
            Program::Rust(kind) => {
                let mut command = Command::new(grpc_components_binary());
                command
                    .arg(kind)
                    .arg("--socket")
                    .arg(&self.socket)
                    .arg("--data-dir")
                    .arg(&self.data_dir)
                    .arg("--exit-on-stdin-eof");
                command
            }
            Program::Sdk(name) => {
                let mut command = Command::new(super::sdk::binary(name));
                command.arg("--socket").arg(&self.socket).arg("--exit-on-stdin-eof");
                command
            }
            Program::PythonState => {
                let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("components/python-state/store.py");
                let mut command = super::wasm::python();
                command.arg(store).arg(&self.socket);
                command
            }
        };
        let logs = std::env::var_os("PLUGHOST_TEST_COMPONENT_LOGS").is_some();
        let child = command
            .stdin(Stdio::piped())
            .stdout(if logs { Stdio::inherit() } else { Stdio::null() })
            .stderr(if logs { Stdio::inherit() } else { Stdio::null() })
            .spawn()
            .unwrap_or_else(|e| panic!("starting {:?}: {e}", self.program));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if let Some(exit) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{:?} exited before serving {}: {exit}", self.program, self.socket.display());
            }
            assert!(Instant::now() < deadline, "{:?} did not serve {} in time", self.program, self.socket.display());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: no clean-up, the socket file stays behind (stale).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Starts the program again on the same socket and data folder.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }
}

impl Drop for ComponentProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
