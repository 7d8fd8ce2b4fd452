//! Supervised component processes (`plughost.io/command`): the reliability
//! guide's section D (rows 34–43) with real processes: the project's
//! `grpc-components` binary, shell one-liners that misbehave, a Python
//! server speaking another protocol version, and `plughost run` itself,
//! SIGKILLed.

use std::path::Path;
use std::time::{Duration, Instant};

use plughost::component::Status;
use plughost::config::ComponentSpec;
use plughost::kinds::ComponentError;
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::pluggable::GrpcOptions;
use plughost::supervisor::{ProcessInfo, ProcessState};
use plughost::{Host, HostBuilder};
use sha2::Digest as _;

use crate::support::grpc::{grpc_components_binary, short_tempdir, socket_host};
use crate::support::sidecar::{Components, Names, RunningSidecar};

/// Generous bound for anything that involves starting a process.
const PATIENCE: Duration = Duration::from_secs(60);

/// A component of type `state.<socket>` served by `command args`.
fn supervised(name: &str, socket: &str, command: &Path, args: &[&str]) -> ComponentSpec {
    let args = serde_json::to_string(args).unwrap();
    ComponentSpec::new(name, format!("state.{socket}"))
        .annotate("plughost.io/command", command.to_str().unwrap())
        .annotate("plughost.io/args", args)
}

/// The project's Rust state component on `{socket}`.
fn state_component(name: &str, socket: &str) -> ComponentSpec {
    supervised(name, socket, grpc_components_binary(), &["state", "--socket", "{socket}"])
}

/// A shell one-liner (with plughost's PATH, which is otherwise not passed).
fn shell(name: &str, socket: &str, script: &str) -> ComponentSpec {
    supervised(name, socket, Path::new("/bin/sh"), &["-c", script]).annotate("plughost.io/inheritEnv", "PATH")
}

/// A host whose processes serve sockets in `dir` (data in `<dir>/data`).
fn host(dir: &Path) -> HostBuilder {
    socket_host(dir, dir, GrpcOptions::default())
}

async fn wait_for(host: &Host, component: &str, what: &str, condition: impl Fn(&ProcessInfo) -> bool) -> ProcessInfo {
    let supervisor = host.supervisor().expect("a supervisor");
    match tokio::time::timeout(PATIENCE, supervisor.wait_for(component, condition)).await {
        Ok(Some(info)) => info,
        _ => panic!("{component}: never {what}: {:?}", supervisor.process(component)),
    }
}

/// Whether `pid` is still a live process (a zombie counts as gone: it runs
/// nothing; zombies of ours are checked separately).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Whether `pid` is an unreaped child of this test process.
fn our_zombie(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    fields.first() == Some(&"Z") && fields.get(1).and_then(|p| p.parse::<u32>().ok()) == Some(std::process::id())
}

fn gone_within(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a process this test started (through plughost).
    unsafe {
        libc::kill(pid as i32, signal);
    }
}

async fn ready(host: &Host, component: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let info = host.components().iter().find(|c| c.name == component).unwrap().clone();
        if info.current_status() == Status::Ready {
            return;
        }
        assert!(Instant::now() < deadline, "{component} never became ready again: {}", info.current_status());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Rows 37 and 39: a supervised component serves; SIGKILLed, calls fail
/// fast, it is restarted and serves again (Init replayed, no zombie left);
/// a graceful shutdown stops it and removes its socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_process_is_restarted_and_shutdown_leaves_nothing() {
    let dir = short_tempdir();
    let spec = state_component("orders", "orders").annotate("plughost.io/minBackoff", "500ms");
    let host = host(dir.path()).component(spec).build().await.expect("host starts");
    let store = host.state("orders").unwrap();
    store.set(SetRequest::new("k", "v1")).await.unwrap();

    let first = host.processes()[0].clone();
    assert_eq!((first.state, first.restarts), (ProcessState::Running, 0), "{first:?}");
    let pid = first.pid.unwrap();
    signal(pid, libc::SIGKILL);
    // Down: calls fail at once (the restart waits 500 ms first).
    let started = Instant::now();
    let down = loop {
        match store.get(GetRequest::new("k")).await {
            Err(e) => break e,
            Ok(_) => assert!(started.elapsed() < Duration::from_secs(10), "calls still succeed after the kill"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(matches!(down, ComponentError::Unavailable { .. }), "{down:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "failing took {:?}", started.elapsed());

    let second = wait_for(&host, "orders", "restarted", |i| i.state == ProcessState::Running && i.restarts == 1).await;
    assert_ne!(second.pid, Some(pid));
    assert!(second.last_error.as_deref().unwrap_or_default().contains("signal: 9"), "{second:?}");
    assert!(!our_zombie(pid) && !alive(pid), "the killed process was not reaped");
    ready(&host, "orders").await;
    // The link reconnected and replayed Init on the new process.
    store.set(SetRequest::new("k", "v2")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v2");

    let socket = dir.path().join("orders.sock");
    assert!(socket.exists());
    let pid = second.pid.unwrap();
    host.shutdown().await;
    assert!(!alive(pid) && !our_zombie(pid), "the process survived a graceful shutdown");
    assert!(!socket.exists(), "socket left behind");
}

/// Row 34: a process that exits at once, one that prints junk and never
/// serves, and one that serves nothing of plughost's protocol fail with
/// their output in the error; the other component still starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_that_never_serve_fail_with_their_output_and_the_others_start() {
    let dir = short_tempdir();
    let mut quits = shell("quits", "quits", "echo 'cannot open config: no such file' >&2; exit 3")
        .annotate("plughost.io/maxRestarts", "0");
    let mut junk = shell("junk", "junk", "echo 'HTTP/1.1 200 OK garbage'; sleep 30")
        .annotate("plughost.io/startTimeout", "1s")
        .annotate("plughost.io/maxRestarts", "0")
        .annotate("plughost.io/stopTimeout", "1s");
    quits.ignore_errors = true;
    junk.ignore_errors = true;
    let host = host(dir.path())
        .component(quits)
        .component(junk)
        .component(state_component("good", "good"))
        .build()
        .await
        .expect("the host starts without the broken components");
    host.state("good").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    let status = |name: &str| host.components().iter().find(|c| c.name == name).unwrap().status.to_string();
    let quits = status("quits");
    assert!(quits.contains("exited (exit status: 3)") && quits.contains("cannot open config"), "{quits}");
    let junk = status("junk");
    assert!(junk.contains("startTimeout") && junk.contains("HTTP/1.1 200 OK garbage"), "{junk}");
    for name in ["quits", "junk"] {
        let info = wait_for(&host, name, "given up", |i| i.state == ProcessState::Failed).await;
        assert_eq!(info.pid, None);
    }
    host.shutdown().await;

    // Without ignoreErrors the host does not start, and says why.
    let quits =
        shell("quits", "quits", "echo 'cannot open config' >&2; exit 3").annotate("plughost.io/maxRestarts", "0");
    let error = host_error(host_builder(&dir, quits)).await;
    assert!(error.contains("component `quits`") && error.contains("cannot open config"), "{error}");
}

fn host_builder(dir: &tempfile::TempDir, spec: ComponentSpec) -> HostBuilder {
    host(dir.path()).component(spec)
}

async fn host_error(builder: HostBuilder) -> String {
    match builder.build().await {
        Ok(_) => panic!("the host started"),
        Err(e) => e.to_string(),
    }
}

/// Row 35: a server whose reflection lists `dapr.proto.components.v2` is
/// refused, naming what it serves and what plughost speaks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_protocol_version_is_refused_naming_both() {
    let dir = short_tempdir();
    let script = dir.path().join("v2.py");
    std::fs::write(
        &script,
        "import sys\nfrom concurrent import futures\nimport grpc\nfrom grpc_reflection.v1alpha import reflection\n\
         server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))\n\
         reflection.enable_server_reflection(['dapr.proto.components.v2.StateStore', reflection.SERVICE_NAME], server)\n\
         server.add_insecure_port('unix:' + sys.argv[1])\nserver.start()\nserver.wait_for_termination()\n",
    )
    .unwrap();
    let spec = supervised("future", "future", Path::new("python3"), &[script.to_str().unwrap(), "{socket}"])
        .annotate("plughost.io/inheritEnv", "PATH,HOME")
        .annotate("plughost.io/maxRestarts", "0")
        .annotate("plughost.io/stopTimeout", "1s");
    let error = host_error(host_builder(&dir, spec)).await;
    assert!(error.contains("serves dapr.proto.components.v2.StateStore"), "{error}");
    assert!(error.contains("dapr.proto.components.v1.StateStore"), "{error}");
}

/// Row 36: a crash loop backs off exponentially, gives up after its
/// budget (`failed`), and the budget resets after healthy uptime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_loop_backs_off_then_gives_up_and_healthy_uptime_resets_the_budget() {
    let dir = short_tempdir();
    let mut crash = shell("crash", "crash", "echo crashing >&2; exit 1")
        .annotate("plughost.io/maxRestarts", "3")
        .annotate("plughost.io/minBackoff", "100ms")
        .annotate("plughost.io/maxBackoff", "250ms");
    crash.ignore_errors = true;
    // Budget 1: without the reset, the second kill would give up.
    let steady = state_component("steady", "steady")
        .annotate("plughost.io/maxRestarts", "1")
        .annotate("plughost.io/minBackoff", "50ms")
        .annotate("plughost.io/healthyAfter", "300ms");
    let started = Instant::now();
    let host = host(dir.path()).component(crash).component(steady).build().await.unwrap();

    let failed = wait_for(&host, "crash", "given up", |i| i.state == ProcessState::Failed).await;
    // Backoffs 100 + 200 + 250 (capped) ms at least.
    assert!(started.elapsed() >= Duration::from_millis(550), "gave up after {:?}", started.elapsed());
    assert_eq!((failed.restarts, failed.failures), (3, 4), "{failed:?}");
    assert!(failed.last_error.as_deref().unwrap_or_default().contains("crashing"), "{failed:?}");

    for round in 1..=3u64 {
        let info = wait_for(&host, "steady", "healthy", |i| i.state == ProcessState::Running && i.failures == 0).await;
        signal(info.pid.unwrap(), libc::SIGKILL);
        wait_for(&host, "steady", "restarted", |i| i.state == ProcessState::Running && i.restarts == round).await;
    }
    assert_eq!(host.supervisor().unwrap().process("steady").unwrap().state, ProcessState::Running);
    host.shutdown().await;
}

/// Row 37 (hung variant): a process that stops answering (SIGSTOP) is
/// killed after `probeFailures` unanswered probes and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_that_stops_answering_is_restarted() {
    let dir = short_tempdir();
    let spec = state_component("frozen", "frozen")
        .annotate("plughost.io/probeInterval", "200ms")
        .annotate("plughost.io/probeFailures", "2")
        .annotate("plughost.io/stopTimeout", "500ms");
    let host = host(dir.path()).component(spec).build().await.unwrap();
    let pid = host.processes()[0].pid.unwrap();
    signal(pid, libc::SIGSTOP);
    let info = wait_for(&host, "frozen", "restarted", |i| i.state == ProcessState::Running && i.restarts == 1).await;
    assert!(info.last_error.as_deref().unwrap_or_default().contains("stopped answering"), "{info:?}");
    assert!(!alive(pid) && !our_zombie(pid));
    // The link may only now see the old connection end: it then reconnects
    // and replays Init; until then calls fail fast.
    let store = host.state("frozen").unwrap();
    let deadline = Instant::now() + PATIENCE;
    while let Err(e) = store.set(SetRequest::new("k", "v")).await {
        assert!(matches!(e, ComponentError::Unavailable { .. }), "{e:?}");
        assert!(Instant::now() < deadline, "never served again: {e}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.shutdown().await;
}

/// Row 40: 100 MB of 100-byte lines, one 10 MiB line and 1 MiB of random
/// bytes on stderr before serving: plughost drains it all (else the
/// process would block on the pipe and never serve).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_flood_never_blocks_the_process() {
    let dir = short_tempdir();
    let binary = grpc_components_binary().to_str().unwrap();
    let script = format!(
        "yes \"$(printf '%099d' 0)\" | head -c 100000000 >&2; head -c 10485760 /dev/zero | tr '\\0' y >&2; \
         echo >&2; head -c 1048576 /dev/urandom >&2; echo >&2; exec {binary} state --socket \"$1\""
    );
    let spec = supervised("flood", "flood", Path::new("/bin/sh"), &["-c", &script, "sh", "{socket}"])
        .annotate("plughost.io/inheritEnv", "PATH")
        .annotate("plughost.io/startTimeout", "300s");
    let host = host(dir.path()).component(spec).build().await.expect("served after the flood");
    host.state("flood").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    host.shutdown().await;
}

/// Row 42: a pinned SHA-256 that matches starts the program; one that
/// does not refuses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_that_does_not_match_its_pinned_sha256_is_refused() {
    let dir = short_tempdir();
    let binary = grpc_components_binary();
    let digest = sha2::Sha256::digest(std::fs::read(binary).unwrap());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    let pinned = state_component("pinned", "pinned").annotate("plughost.io/sha256", &hex);
    let host = host_builder(&dir, pinned).build().await.expect("the pinned binary starts");
    host.shutdown().await;

    let tampered = "0".repeat(64);
    let spec = state_component("pinned", "pinned")
        .annotate("plughost.io/sha256", &tampered)
        .annotate("plughost.io/maxRestarts", "0");
    let error = host_error(host_builder(&dir, spec)).await;
    assert!(error.contains("refusing to start") && error.contains(&hex) && error.contains(&tampered), "{error}");
}

/// Row 43: the process sees the socket folder variables, what its
/// component declares and what is allow-listed, and nothing else of the
/// host's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_host_environment_is_not_inherited_unless_allow_listed() {
    let dir = short_tempdir();
    let spec = supervised("env", "env", Path::new("/usr/bin/env"), &[])
        .annotate("plughost.io/env", r#"{"STORE_MODE": "fast"}"#)
        .annotate("plughost.io/inheritEnv", "HOME")
        .annotate("plughost.io/maxRestarts", "0");
    let error = host_error(host_builder(&dir, spec)).await;
    let sockets = dir.path().display();
    let home = std::env::var("HOME").unwrap();
    for expected in [
        format!("stdout: DAPR_COMPONENT_SOCKETS_FOLDER={sockets}"),
        format!("stdout: DAPR_COMPONENTS_SOCKETS_FOLDER={sockets}"),
        "stdout: STORE_MODE=fast".to_owned(),
        format!("stdout: HOME={home}"),
    ] {
        assert!(error.contains(&expected), "missing {expected:?} in {error}");
    }
    let lines = error.lines().filter(|l| l.trim_start().starts_with("stdout: ")).count();
    assert_eq!(lines, 4, "more than the allowed variables: {error}");
}

/// Row 38 (and 39 through the binary): `plughost run` SIGKILLed leaves no
/// component process running; SIGTERMed, it stops them and removes their
/// sockets.
#[test]
fn plughost_killed_or_stopped_leaves_no_component_process() {
    for graceful in [false, true] {
        let dir = short_tempdir();
        let sockets = dir.path().join("sockets");
        std::fs::create_dir(&sockets).unwrap();
        let binary = grpc_components_binary().display().to_string();
        let yaml = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\n  annotations:\n    \
             plughost.io/command: {binary}\n    plughost.io/args: '[\"state\", \"--socket\", \"{{socket}}\"]'\n\
             spec:\n  type: state.orders\n  version: v1\n"
        );
        std::fs::write(dir.path().join("components.yaml"), yaml).unwrap();
        let components = Components {
            _keep: Vec::new(),
            dir,
            wasm_dir: None,
            names: Names {
                store: "orders".into(),
                pubsub: String::new(),
                binding: String::new(),
                secret_store: String::new(),
            },
            args: vec!["--sockets-dir".into(), sockets.clone().into()],
        };
        let mut sidecar = RunningSidecar::start(&components, &[]);
        let children = children_of(sidecar.pid());
        assert_eq!(children.len(), 1, "expected one component process: {children:?}");
        let child = children[0];
        assert!(alive(child));
        if graceful {
            signal(sidecar.pid(), libc::SIGTERM);
            let clean = sidecar.wait_exit(PATIENCE);
            sidecar.drain_log();
            assert!(clean, "plughost failed to stop cleanly:\n{}", sidecar.log.join("\n"));
            assert!(!alive(child), "component process left running after a graceful stop");
            assert!(!sockets.join("orders.sock").exists(), "socket left behind");
        } else {
            signal(sidecar.pid(), libc::SIGKILL);
            sidecar.wait_exit(PATIENCE);
            assert!(
                gone_within(child, Duration::from_secs(5)),
                "component process {child} survived plughost's SIGKILL"
            );
        }
    }
}

/// The PIDs whose parent is `pid` (from `/proc/<pid>/task/*/children`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut children = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).unwrap().flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        children.extend(list.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
    }
    children
}
