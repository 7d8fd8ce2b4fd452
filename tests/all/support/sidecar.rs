//! `plughost run` as a process, on free ports, for the sidecar API tests,
//! and the component sets the tests run it over (one per mode).

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tempfile::TempDir;

/// The component names a scenario runs against.
#[derive(Debug, Clone)]
pub struct Names {
    pub store: String,
    pub pubsub: String,
    pub binding: String,
    pub secret_store: String,
}

/// What `plughost run` is started over: a components directory, optionally
/// a WASM directory, and whatever else keeps the components alive.
pub struct Components {
    /// Kept alive with the components (component processes); dropped first.
    pub _keep: Vec<Box<dyn std::any::Any>>,
    pub dir: TempDir,
    pub wasm_dir: Option<TempDir>,
    pub names: Names,
    /// Extra `plughost run` arguments (a socket folder).
    pub args: Vec<OsString>,
}

/// The secret every component set's secret store holds.
pub const SECRET: (&str, &str) = ("api-key", "s3cret");

fn component(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n"
    );
    for (key, value) in metadata {
        yaml.push_str(&format!("    - name: \"{key}\"\n      value: \"{value}\"\n"));
    }
    if metadata.is_empty() {
        yaml.push_str("    []\n");
    }
    yaml
}

fn write_components(dir: &Path, documents: &[String]) {
    std::fs::write(dir.join("components.yaml"), documents.join("---\n")).expect("writing components.yaml");
}

fn names(store: &str, pubsub: &str, binding: &str, secret_store: &str) -> Names {
    Names { store: store.into(), pubsub: pubsub.into(), binding: binding.into(), secret_store: secret_store.into() }
}

/// Built-in components: `state.sqlite`, `pubsub.in-memory`,
/// `bindings.localstorage`, `secretstores.local.file`.
pub fn builtin() -> Components {
    let dir = tempfile::tempdir().expect("tempdir");
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, format!(r#"{{"{}": "{}"}}"#, SECRET.0, SECRET.1)).unwrap();
    let files = dir.path().join("files");
    write_components(
        dir.path(),
        &[
            component("store", "state.sqlite", &[]),
            component("broker", "pubsub.in-memory", &[]),
            component("files", "bindings.localstorage", &[("rootPath", files.to_str().unwrap())]),
            component("vault", "secretstores.local.file", &[("secretsFile", secrets.to_str().unwrap())]),
        ],
    );
    Components {
        dir,
        wasm_dir: None,
        names: names("store", "broker", "files", "vault"),
        args: Vec::new(),
        _keep: Vec::new(),
    }
}

/// WASM guests for every kind: `kv.wasm` (wasm-state) → `state.kv`,
/// `queue.wasm` → `pubsub.queue`, `blobs.wasm` → `bindings.blobs`,
/// `keys.wasm` → `secretstores.keys` (secrets from `secret.<NAME>`).
pub fn wasm() -> Components {
    use super::wasm::{guest, wasm_dir};
    let wasm = wasm_dir(&[
        ("kv.wasm", guest("wasm-state")),
        ("queue.wasm", guest("wasm-pubsub")),
        ("blobs.wasm", guest("wasm-output-binding")),
        ("keys.wasm", guest("wasm-secret-store")),
    ]);
    let dir = tempfile::tempdir().expect("tempdir");
    let secret = format!("secret.{}", SECRET.0);
    write_components(
        dir.path(),
        &[
            component("store", "state.kv", &[]),
            component("broker", "pubsub.queue", &[]),
            component("files", "bindings.blobs", &[]),
            component("vault", "secretstores.keys", &[(&secret, SECRET.1)]),
        ],
    );
    Components {
        dir,
        wasm_dir: Some(wasm),
        names: names("store", "broker", "files", "vault"),
        args: Vec::new(),
        _keep: Vec::new(),
    }
}

/// gRPC mode: the Rust pluggable components of `components/grpc-components`,
/// one process per kind on Unix sockets (`kv.sock` → `state.kv`,
/// `queue.sock` → `pubsub.queue`, `blobs.sock` → `bindings.blobs`,
/// `keys.sock` → `secretstores.keys`), found through `--sockets-dir`.
pub fn grpc() -> Components {
    use super::grpc::{ComponentProcess, Program, short_tempdir};
    let dir = short_tempdir();
    let sockets = dir.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    for (kind, socket) in [("state", "kv"), ("pubsub", "queue"), ("output-binding", "blobs"), ("secret-store", "keys")]
    {
        let socket = sockets.join(format!("{socket}.sock"));
        keep.push(Box::new(ComponentProcess::start(Program::Rust(kind), socket, dir.path().join("cdata"))));
    }
    let secret = format!("secret.{}", SECRET.0);
    let files = dir.path().join("files");
    write_components(
        dir.path(),
        &[
            component("store", "state.kv", &[]),
            component("broker", "pubsub.queue", &[]),
            component("files", "bindings.blobs", &[("rootPath", files.to_str().unwrap())]),
            component("vault", "secretstores.keys", &[(&secret, SECRET.1)]),
        ],
    );
    Components {
        _keep: keep,
        args: vec!["--sockets-dir".into(), sockets.into()],
        dir,
        wasm_dir: None,
        names: names("store", "broker", "files", "vault"),
    }
}

/// `plughost run`, killed when dropped.
pub struct RunningSidecar {
    child: Child,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    /// Every stderr line so far is sent here.
    lines: mpsc::Receiver<String>,
    pub log: Vec<String>,
}

impl RunningSidecar {
    /// Starts `plughost run` over `components` on free ports, with `extra`
    /// arguments, and waits until it reports its ports.
    pub fn start(components: &Components, extra: &[&str]) -> Self {
        let data = components.dir.path().join("data");
        let mut command = Command::new(env!("CARGO_BIN_EXE_plughost"));
        command
            .env("RUST_LOG", "info")
            .env_remove("DAPR_API_TOKEN")
            // Hermetic: not whatever sockets the machine has in /tmp.
            .env("DAPR_COMPONENTS_SOCKETS_FOLDER", "/nonexistent/plughost-test-sockets")
            .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", "0", "--metrics-port", "0", "--components"])
            .arg(components.dir.path())
            .arg("--data-dir")
            .arg(&data)
            .args(&components.args);
        if let Some(wasm) = &components.wasm_dir {
            command.arg("--wasm-dir").arg(wasm.path());
        }
        // Last: `extra` may end with `-- <app command>`.
        command.args(extra);
        let mut child = command.stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("spawning plughost");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut sidecar =
            Self { child, grpc: ([0, 0, 0, 0], 0).into(), http: ([0, 0, 0, 0], 0).into(), lines, log: Vec::new() };
        let line = sidecar.wait_for("plughost running", Duration::from_secs(120));
        sidecar.grpc = field(&line, "grpc=");
        sidecar.http = field(&line, "http=");
        sidecar
    }

    /// Reads stderr until a line contains `marker`; returns that line.
    pub fn wait_for(&mut self, marker: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            match self.lines.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    self.log.push(line.clone());
                    if line.contains(marker) {
                        return line;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        self.child.kill().ok();
        panic!("plughost never logged {marker:?}; its log:\n{}", self.log.join("\n"));
    }

    /// Collects the log lines that arrived so far into [`Self::log`].
    pub fn drain_log(&mut self) {
        std::thread::sleep(Duration::from_millis(200));
        while let Ok(line) = self.lines.try_recv() {
            self.log.push(line);
        }
    }

    /// Waits (bounded) for the process to exit; returns whether it exited 0.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("plughost still running after {limit:?}");
    }

    /// The process id of `plughost run`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (bounded) for the process to exit; returns its exit code.
    pub fn wait_code(&mut self, limit: Duration) -> Option<i32> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("plughost still running after {limit:?}");
    }

    /// The environment a Dapr SDK needs to reach this sidecar.
    pub fn sdk_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("DAPR_GRPC_PORT", self.grpc.port().to_string()),
            ("DAPR_HTTP_PORT", self.http.port().to_string()),
            ("DAPR_RUNTIME_HOST", "127.0.0.1".to_owned()),
            ("DAPR_HEALTH_TIMEOUT", "30".to_owned()),
        ]
    }
}

impl Drop for RunningSidecar {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            self.child.kill().ok();
            self.child.wait().ok();
        }
    }
}

/// The address in `name=ADDR` of a log line.
fn field(line: &str, name: &str) -> SocketAddr {
    let start = line.find(name).unwrap_or_else(|| panic!("no {name} in {line:?}")) + name.len();
    let value = line[start..].split_whitespace().next().unwrap_or_default();
    value.parse().unwrap_or_else(|e| panic!("{name}{value}: {e}"))
}

/// `tests/sdk/<file>`.
pub fn sdk_script(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk").join(file)
}
