//! What plughost trusts: sockets of other users (reliability checklist 23,
//! 24) and compiled artifacts it did not write (18), each reproduced as an
//! attack against real processes and files.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::ComponentError;
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::pluggable::GrpcOptions;

use crate::support::grpc::{ComponentProcess, Program, quick_options, short_tempdir, socket_host};

/// The unprivileged user the foreign servers run as.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    plughost::pluggable::trust::own_uid() == 0
}

/// A Unix socket server run by another user (`nobody`): it accepts
/// connections and, when each one closes, appends the number of bytes it
/// received to a log. It binds in a folder of its own; the test then moves
/// the socket wherever the attack needs it (a bound socket stays reachable
/// under its new name).
struct Foreign {
    child: Child,
    home: tempfile::TempDir,
}

const FOREIGN_SERVER: &str = r#"
import socket, sys, threading
path, log = sys.argv[1], sys.argv[2]
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(16)
open(log + ".ready", "w").close()
def serve(conn):
    total = 0
    while True:
        data = conn.recv(65536)
        if not data:
            break
        total += len(data)
    with open(log, "a") as f:
        f.write(f"{total}\n")
while True:
    conn, _ = server.accept()
    threading.Thread(target=serve, args=(conn,), daemon=True).start()
"#;

impl Foreign {
    fn start() -> Self {
        let home = tempfile::Builder::new().prefix("ph-foreign-").tempdir_in("/tmp").unwrap();
        std::fs::write(home.path().join("server.py"), FOREIGN_SERVER).unwrap();
        std::os::unix::fs::chown(home.path(), Some(NOBODY), Some(NOBODY)).unwrap();
        std::fs::set_permissions(home.path().join("server.py"), std::fs::Permissions::from_mode(0o644)).unwrap();
        // A Python that `nobody` can run (pyenv shims under /root are not).
        let python = if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
        let child = Command::new(python)
            .arg(home.path().join("server.py"))
            .arg(home.path().join("foreign.sock"))
            .arg(home.path().join("received.log"))
            .uid(NOBODY)
            .gid(NOBODY)
            .stdout(Stdio::null())
            .spawn()
            .expect("starting the foreign server as nobody");
        let foreign = Self { child, home };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !foreign.home.path().join("received.log.ready").exists() {
            assert!(Instant::now() < deadline, "the foreign server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        foreign
    }

    /// Moves the foreign socket to `path`.
    fn plant(&self, path: &Path) {
        std::fs::rename(self.home.path().join("foreign.sock"), path).unwrap();
    }

    /// Bytes received per closed connection so far.
    fn received(&self) -> Vec<usize> {
        let log = std::fs::read_to_string(self.home.path().join("received.log")).unwrap_or_default();
        log.lines().map(|l| l.parse().unwrap()).collect()
    }

    /// Waits until at least one connection was made and closed.
    async fn wait_for_a_connection(&self) -> Vec<usize> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let received = self.received();
            if !received.is_empty() {
                return received;
            }
            assert!(Instant::now() < deadline, "plughost never connected to the planted socket");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Foreign {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

async fn start(program: Program, socket: PathBuf, data: PathBuf) -> ComponentProcess {
    tokio::task::spawn_blocking(move || ComponentProcess::start(program, socket, data)).await.unwrap()
}

/// Checklist 23: a socket served by another uid in the socket folder is not
/// used as a component, and is told nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_served_by_another_user_is_refused_by_discovery() {
    if !is_root() {
        eprintln!("skipped: running a server as another user needs root");
        return;
    }
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    let _good = start(Program::Rust("state"), sockets.join("good.sock"), dir.path().join("cdata")).await;
    let foreign = Foreign::start();
    foreign.plant(&sockets.join("evil.sock"));

    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("store", "state.good"))
        .build()
        .await
        .unwrap();
    host.state("store").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    let report = host.sockets().unwrap();
    assert_eq!(report.components, [(sockets.join("good.sock"), vec!["state.good".to_owned()])]);
    let (_, reason) = report.skipped.iter().find(|(p, _)| p.ends_with("evil.sock")).expect("evil.sock is reported");
    assert!(reason.contains("uid 65534") && reason.contains("--trust-socket-uid"), "{reason}");
    let received = foreign.wait_for_a_connection().await;
    assert!(received.iter().all(|n| *n == 0), "the foreign server was sent something: {received:?}");
}

/// Checklist 23, on reconnection: the component dies, another user binds
/// its path first; plughost must not replay `Init` (with its resolved
/// secrets) to it, and reconnects once the real component is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_component_whose_path_another_user_took_gets_no_init() {
    if !is_root() {
        eprintln!("skipped: running a server as another user needs root");
        return;
    }
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    let socket = sockets.join("orders.sock");
    let mut component = start(Program::Rust("state"), socket.clone(), dir.path().join("cdata")).await;
    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("orders", "state.orders").with("secret", "s3cret"))
        .build()
        .await
        .unwrap();
    let store = host.state("orders").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();

    // The component dies; someone else's server takes its path.
    component.kill();
    std::fs::remove_file(&socket).unwrap();
    let foreign = Foreign::start();
    foreign.plant(&socket);

    let received = foreign.wait_for_a_connection().await;
    assert!(received.iter().all(|n| *n == 0), "Init (or anything) was sent to the foreign server: {received:?}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.get(GetRequest::new("k")).await {
            Err(ComponentError::Unavailable { reason, .. }) if reason.contains("uid 65534") => break,
            other => assert!(Instant::now() < deadline, "expected a refusal naming uid 65534, got {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The real component comes back on the same path: served again.
    std::fs::remove_file(&socket).unwrap();
    let _component = tokio::task::spawn_blocking(move || {
        component.restart();
        component
    })
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.set(SetRequest::new("k", "again")).await.is_err() {
        assert!(Instant::now() < deadline, "never reconnected to the real component");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"again");
    assert!(foreign.received().iter().all(|n| *n == 0), "{:?}", foreign.received());
}

/// Checklist 24: a socket folder anyone can write to is refused, with the
/// reason in the error of a component waiting for its socket; allowed
/// explicitly, it is used (with a loud warning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_folder_others_can_write_is_refused() {
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    std::fs::set_permissions(&sockets, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let _good = start(Program::Rust("state"), sockets.join("good.sock"), dir.path().join("cdata")).await;

    let spec =
        || ComponentSpec { init_timeout: Duration::from_millis(500), ..ComponentSpec::new("store", "state.good") };
    let err = socket_host(dir.path(), &sockets, quick_options())
        .component(spec())
        .build()
        .await
        .err()
        .expect("no component from a world-writable folder");
    let err = err.to_string();
    assert!(err.contains("state.good") && err.contains("writable by everyone"), "{err}");

    let shared = GrpcOptions { allow_shared_socket_dir: true, ..quick_options() };
    let host = socket_host(dir.path(), &sockets, shared).component(spec()).build().await.unwrap();
    host.state("store").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
}

/// Runs `plughost components list` over `wasm_dir` and `components`;
/// returns success, stdout and stderr.
fn list(wasm_dir: &Path, components: &Path, data: &Path) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .env("RUST_LOG", "info")
        .args(["components", "list", "--offline", "--wasm-dir"])
        .arg(wasm_dir)
        .arg("--components")
        .arg(components)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

fn yaml(name: &str, type_name: &str, metadata: &[(&str, &str)]) -> String {
    let mut text = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  \
         version: v1\n  metadata:{}\n",
        if metadata.is_empty() { " []" } else { "" }
    );
    for (key, value) in metadata {
        text.push_str(&format!("    - name: {key}\n      value: \"{value}\"\n"));
    }
    text
}

fn artifacts(cache: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(cache)
        .map(|entries| {
            entries.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "cwasm")).collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Checklist 18: an artifact copied over another component's, or
/// corrupted, is never deserialized: it fails its integrity check and the
/// component is compiled again from its `.wasm`. (Separate processes: the
/// in-memory cache would hide the disk cache within one.)
#[test]
fn a_swapped_or_corrupted_artifact_is_compiled_again_not_loaded() {
    use crate::support::wasm;
    let dir = wasm::wasm_dir(&[("store.wasm", wasm::guest("wasm-state")), ("other.wasm", wasm::guest("wasm-pubsub"))]);
    let work = tempfile::tempdir().unwrap();
    let components = work.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(components.join("store.yaml"), yaml("store", "state.store", &[])).unwrap();
    std::fs::write(components.join("other.yaml"), yaml("other", "pubsub.other", &[])).unwrap();
    let data = work.path().join("data");
    let cache = data.join("wasm-cache");
    let ready = |stdout: &str, name: &str| stdout.lines().any(|l| l.starts_with(name) && l.ends_with("ready"));

    let (ok, stdout, stderr) = list(dir.path(), &components, &data);
    assert!(ok && ready(&stdout, "store") && ready(&stdout, "other"), "{stdout}\n{stderr}");
    let cached = artifacts(&cache);
    assert_eq!(cached.len(), 2, "{cached:?}");
    for file in cached.iter().chain([&cache.join("cache.key")]) {
        assert_eq!(mode(file), 0o600, "{} is private", file.display());
    }
    assert_eq!(mode(&cache), 0o700);

    // Which artifact is whose: the one whose removal makes `store` compile.
    let store_artifact = cached
        .iter()
        .find(|a| {
            let saved = std::fs::read(a).unwrap();
            std::fs::remove_file(a).unwrap();
            let (_, _, stderr) = list(dir.path(), &components, &data);
            std::fs::write(a, saved).unwrap();
            stderr.lines().any(|l| l.contains("compiled component") && l.contains("store.wasm"))
        })
        .unwrap()
        .clone();
    let other_artifact = cached.iter().find(|a| **a != store_artifact).unwrap().clone();

    // The attack: the other component's artifact under the store's name.
    std::fs::copy(&other_artifact, &store_artifact).unwrap();
    let (ok, stdout, stderr) = list(dir.path(), &components, &data);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("fails its integrity check"), "{stderr}");
    assert!(ready(&stdout, "store") && stdout.contains("state.store"), "still the state store:\n{stdout}\n{stderr}");
    assert!(stderr.lines().any(|l| l.contains("compiled component") && l.contains("store.wasm")), "{stderr}");

    // A corrupted artifact (bytes flipped in the middle): compiled again,
    // never a crash.
    let mut bytes = std::fs::read(&store_artifact).unwrap();
    let middle = bytes.len() / 2;
    for b in &mut bytes[middle..middle + 64] {
        *b ^= 0xff;
    }
    std::fs::write(&store_artifact, bytes).unwrap();
    let (ok, stdout, stderr) = list(dir.path(), &components, &data);
    assert!(ok && ready(&stdout, "store"), "{stdout}\n{stderr}");
    assert!(stderr.contains("fails its integrity check"), "{stderr}");

    // And the repaired cache loads without compiling.
    let (ok, stdout, stderr) = list(dir.path(), &components, &data);
    assert!(ok && ready(&stdout, "store") && ready(&stdout, "other"), "{stdout}\n{stderr}");
    assert!(!stderr.contains("compiling component"), "{stderr}");
}

/// A component of `functions` empty functions that exports nothing useful:
/// cheap to write, slow to compile.
fn many_functions(functions: usize) -> Vec<u8> {
    wat::parse_str(format!("(component (core module {}))", "(func)".repeat(functions))).unwrap()
}

/// Checklist 16 (and 15, 17): a pathological or unusable `.wasm` is
/// refused before compiling, within a size cap, and leaves no artifact;
/// the good component loads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pathological_wasm_is_refused_before_compiling_and_never_cached() {
    use crate::support::wasm;
    let dir = wasm::wasm_dir(&[
        ("good.wasm", wasm::guest("wasm-state")),
        ("wrong-world.wasm", wasm::guest("wasm-wrong-world")),
        ("bad-import.wasm", wasm::guest("wasm-bad-import")),
    ]);
    std::fs::write(dir.path().join("functions.wasm"), many_functions(300_000)).unwrap();
    let huge = std::fs::File::create(dir.path().join("huge.wasm")).unwrap();
    huge.set_len((50 << 20) + 1).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(ComponentSpec::new("store", "state.good"))
        .build()
        .await
        .unwrap();
    host.state("store").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    let reason = |file: &str| {
        let found = host.skipped_wasm().iter().find(|(p, _)| p.ends_with(file)).map(|(_, r)| r.clone());
        found.unwrap_or_else(|| panic!("{file} is not reported: {:?}", host.skipped_wasm()))
    };
    assert!(reason("functions.wasm").contains("rejected before compiling"), "{}", reason("functions.wasm"));
    assert!(reason("huge.wasm").contains("the limit is 50 MiB"), "{}", reason("huge.wasm"));
    assert!(reason("wrong-world.wasm").contains("exports none of plughost's interfaces"));
    assert!(reason("bad-import.wasm").contains("example:missing"));
    // Only the accepted component may have an artifact (none if another
    // test of this process compiled it first: the in-memory cache).
    let engine = &plughost::wasm::runtime().unwrap().engine;
    let good = plughost::wasm::cache::key(engine, &std::fs::read(dir.path().join("good.wasm")).unwrap());
    let cached = artifacts(&data.path().join("wasm-cache"));
    assert!(cached.iter().all(|a| a.file_stem().unwrap() == good.as_str()), "rejected files were cached: {cached:?}");
}

/// Checklist 11: the pool holds what it advertises. 512 instances (8
/// components x 64) fit (wasmtime's default core-instance limit stopped
/// plughost near 330); more than 1000 are refused at load time with a
/// message naming the component and the pool.
#[test]
fn the_instance_pool_holds_what_it_advertises_and_says_when_it_is_full() {
    use crate::support::wasm;
    let dir = wasm::wasm_dir(&[("guest.wasm", wasm::guest("wasm-state"))]);
    let work = tempfile::tempdir().unwrap();
    let pooled = [("wasm.stateless", "true"), ("wasm.instances", "64")];
    let components = |count: usize| {
        let folder = work.path().join(format!("components-{count}"));
        std::fs::create_dir(&folder).unwrap();
        for i in 0..count {
            std::fs::write(folder.join(format!("c{i:02}.yaml")), yaml(&format!("c{i:02}"), "state.guest", &pooled))
                .unwrap();
        }
        folder
    };
    let data = work.path().join("data");
    let (ok, stdout, stderr) = list(dir.path(), &components(8), &data);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with('c') && l.ends_with("ready")).count(), 8, "{stdout}");

    let (ok, _, stderr) = list(dir.path(), &components(16), &data);
    assert!(!ok, "1024 instances cannot fit a pool of 1000");
    assert!(stderr.contains("c15") && stderr.contains("the WASM instance pool has 40 of 1000 left"), "{stderr}");
}
