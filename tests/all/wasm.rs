//! WASM mode beyond the conformance suites: loading bad files, misbehaving
//! guests, the compile cache, stateless pools.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use plughost::kinds::ComponentError;
use plughost::kinds::state::{GetRequest, SetRequest};

use crate::support::{wasm, wasm_host};

async fn misbehaving(crate_name: &str, metadata: &[(&str, &str)]) -> (plughost::Host, tempfile::TempDir) {
    wasm_host("state", wasm::guest(crate_name), metadata).await
}

/// Sets a value, triggers the misbehaviour with `get("boom")`, and checks
/// that the error names the component and satisfies `cause`, and that the
/// next calls work on a fresh instance.
async fn fails_once_then_recovers(
    crate_name: &str,
    metadata: &[(&str, &str)],
    cause: impl Fn(&ComponentError) -> bool,
) {
    let (host, _dir) = misbehaving(crate_name, metadata).await;
    let store = host.state("under-test").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();
    let err = store.get(GetRequest::new("boom")).await.unwrap_err();
    assert!(err.to_string().contains("under-test"), "{crate_name}: the error names the component: {err}");
    assert!(cause(&err), "{crate_name}: unexpected error {err:?}");
    // A fresh instance: healthy, re-initialised, with empty guest memory.
    store.ping().await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap(), None, "state lived in the dropped instance");
    store.set(SetRequest::new("k", "again")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_hits_the_deadline() {
    fails_once_then_recovers(
        "wasm-state-loop",
        &[("wasm.callTimeout", "300ms")],
        |e| matches!(e, ComponentError::DeadlineExceeded { after, .. } if *after == Duration::from_millis(300)),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_runs_out_of_fuel_when_metered() {
    let metered = [("wasm.fuel", "5000000"), ("wasm.callTimeout", "30s")];
    fails_once_then_recovers(
        "wasm-state-loop",
        &metered,
        |e| matches!(e, ComponentError::Internal(m) if m.contains("out of fuel")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_hits_the_cap() {
    fails_once_then_recovers(
        "wasm-state-memory-bomb",
        &[("wasm.maxMemory", "32Mi")],
        |e| matches!(e, ComponentError::Internal(m) if m.contains("memory limit of 32 MiB")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trap_mid_call_is_contained() {
    fails_once_then_recovers(
        "wasm-state-trap",
        &[],
        |e| matches!(e, ComponentError::Internal(m) if m.contains("unreachable")),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_is_a_stack_overflow() {
    fails_once_then_recovers(
        "wasm-state-recursion",
        &[],
        |e| matches!(e, ComponentError::Internal(m) if m.contains("stack overflow")),
    )
    .await;
}

/// On a single-threaded runtime, a guest that never returns must still let
/// other tasks run (it yields on every epoch tick): the good component's
/// calls complete while the runaway call is still spinning. (Its deadline is
/// wall clock, so it is long enough for the good calls on a loaded machine.)
#[tokio::test(flavor = "current_thread")]
async fn other_components_are_unaffected_by_a_runaway_guest() {
    let dir =
        wasm::wasm_dir(&[("runaway.wasm", wasm::guest("wasm-state-loop")), ("good.wasm", wasm::guest("wasm-state"))]);
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(plughost::config::ComponentSpec::new("runaway", "state.runaway").with("wasm.callTimeout", "5s"))
        .component(plughost::config::ComponentSpec::new("good", "state.good"))
        .build()
        .await
        .unwrap();
    let (runaway, good) = (host.state("runaway").unwrap(), host.state("good").unwrap());
    let stuck = tokio::spawn(async move { runaway.get(GetRequest::new("boom")).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    // While the runaway instance spins, the other component keeps serving.
    for i in 0..20 {
        good.set(SetRequest::new(format!("k{i}"), "v")).await.unwrap();
    }
    assert!(!stuck.is_finished(), "the runaway call is still spinning while the good component serves");
    assert!(matches!(stuck.await.unwrap(), Err(ComponentError::DeadlineExceeded { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stateless_components_get_a_pool_and_stateful_ones_cannot() {
    let (host, _dir) = misbehaving("wasm-state", &[("wasm.stateless", "true"), ("wasm.instances", "3")]).await;
    let store = host.state("under-test").unwrap();
    let calls: Vec<_> = (0..30)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.set(SetRequest::new(format!("k{i}"), "v")).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }

    let dir = wasm::wasm_dir(&[("guest.wasm", wasm::guest("wasm-state"))]);
    let data = tempfile::tempdir().unwrap();
    let spec = plughost::config::ComponentSpec::new("pooled", "state.guest").with("wasm.instances", "3");
    let err = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(spec)
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("wasm.stateless"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_good_component_and_five_bad_files() {
    let good = wasm::guest("wasm-state");
    let bytes = std::fs::read(&good).unwrap();
    let dir = wasm::wasm_dir(&[
        ("good.wasm", good),
        ("wrong-world.wasm", wasm::guest("wasm-wrong-world")),
        ("bad-import.wasm", wasm::guest("wasm-bad-import")),
    ]);
    std::fs::write(dir.path().join("random.wasm"), b"this is not webassembly at all").unwrap();
    std::fs::write(dir.path().join("truncated.wasm"), &bytes[..bytes.len() / 2]).unwrap();
    std::fs::write(dir.path().join("core-module.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"not a .wasm file: ignored").unwrap();

    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(plughost::config::ComponentSpec::new("store", "state.good"))
        .build()
        .await
        .unwrap();
    host.state("store").unwrap().set(SetRequest::new("k", "v")).await.unwrap();

    let skipped: Vec<(String, &str)> = host
        .skipped_wasm()
        .iter()
        .map(|(path, reason)| (path.file_name().unwrap().to_string_lossy().into_owned(), reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 5, "{skipped:#?}");
    let reason = |file: &str| {
        skipped.iter().find(|(f, _)| f == file).map(|(_, r)| *r).unwrap_or_else(|| panic!("{file} not reported"))
    };
    assert!(
        reason("wrong-world.wasm").contains("exports none of plughost's interfaces"),
        "{}",
        reason("wrong-world.wasm")
    );
    assert!(
        reason("bad-import.wasm").contains("cannot link") && reason("bad-import.wasm").contains("example:missing"),
        "{}",
        reason("bad-import.wasm")
    );
    assert!(reason("random.wasm").contains("not a WebAssembly file"), "{}", reason("random.wasm"));
    assert!(
        reason("core-module.wasm").contains("core WebAssembly module, not a component"),
        "{}",
        reason("core-module.wasm")
    );
    assert!(!reason("truncated.wasm").is_empty());
    for (path, _) in host.skipped_wasm() {
        assert!(path.is_absolute() || path.starts_with(dir.path()), "the reason names the path: {}", path.display());
    }
}

fn plughost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plughost"));
    command.env("RUST_LOG", "info");
    command
}

/// Runs `plughost components list` over a WASM dir and returns stderr.
fn list(wasm_dir: &std::path::Path, components: &std::path::Path, data: &std::path::Path) -> (String, String) {
    let output = plughost()
        .args(["components", "list", "--offline", "--wasm-dir"])
        .arg(wasm_dir)
        .arg("--components")
        .arg(components)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    let (stdout, stderr) =
        (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned());
    assert!(output.status.success(), "{stderr}");
    (stdout, stderr)
}

#[test]
fn second_start_loads_the_python_component_from_the_cache() {
    let python = wasm::python_state();
    let dir = wasm::wasm_dir(&[("py.wasm", python)]);
    let work = tempfile::tempdir().unwrap();
    let components: PathBuf = work.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(
        components.join("py.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pystore\nspec:\n  type: state.py\n  initTimeout: 60s\n",
    )
    .unwrap();
    let data = work.path().join("data");

    let (stdout, first) = list(dir.path(), &components, &data);
    assert!(first.contains("compiling component"), "first start compiles:\n{first}");
    assert!(stdout.lines().any(|l| l.starts_with("pystore") && l.contains("wasm") && l.ends_with("ready")), "{stdout}");
    let cached: Vec<_> = std::fs::read_dir(data.join("wasm-cache"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "cwasm"))
        .collect();
    assert_eq!(cached.len(), 1, "one artifact for one component");

    let (stdout, second) = list(dir.path(), &components, &data);
    assert!(!second.contains("compiling component"), "second start must not compile:\n{second}");
    assert!(second.contains("loaded precompiled component"), "{second}");
    assert!(stdout.lines().any(|l| l.starts_with("pystore") && l.ends_with("ready")), "{stdout}");
}

#[test]
fn components_list_reports_skipped_wasm_files() {
    let dir = wasm::wasm_dir(&[("good.wasm", wasm::guest("wasm-state"))]);
    std::fs::write(dir.path().join("broken.wasm"), b"garbage").unwrap();
    let work = tempfile::tempdir().unwrap();
    let components = work.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(
        components.join("c.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cache\nspec:\n  type: state.good\n",
    )
    .unwrap();
    let (stdout, _) = list(dir.path(), &components, &work.path().join("data"));
    assert!(
        stdout.lines().any(|l| l.starts_with("cache") && l.contains("state.good") && l.contains("wasm")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("skipped") && l.contains("broken.wasm") && l.contains("not a WebAssembly file")),
        "{stdout}"
    );
}

async fn probe(host: &plughost::Host, key: &str) -> String {
    let item = host.state("under-test").unwrap().get(GetRequest::new(key)).await.unwrap().expect("probes answer");
    String::from_utf8(item.data).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_is_deny_by_default() {
    let secret_dir = tempfile::tempdir().unwrap();
    std::fs::write(secret_dir.path().join("secret.txt"), "host file").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (host, _dir) = misbehaving("wasm-state-probe", &[]).await;
    assert!(probe(&host, "probe:env:PLUGHOST_TEST_CONFORMANCE_SECRET").await.starts_with("denied"));
    let file = format!("probe:read:{}", secret_dir.path().join("secret.txt").display());
    assert!(probe(&host, &file).await.starts_with("denied"));
    assert!(probe(&host, "probe:read:/etc/passwd").await.starts_with("denied"));
    assert!(probe(&host, &format!("probe:connect:{addr}")).await.starts_with("denied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasi_grants_come_from_metadata() {
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("granted.txt"), "shared with the guest").unwrap();
    let dirs = format!("{}:/data", shared.path().display());
    let grants = [("wasm.env", "PLUGHOST_TEST_CONFORMANCE_SECRET"), ("wasm.dirs", dirs.as_str())];
    let (host, _dir) = misbehaving("wasm-state-probe", &grants).await;
    assert_eq!(probe(&host, "probe:env:PLUGHOST_TEST_CONFORMANCE_SECRET").await, "s3cret");
    assert_eq!(probe(&host, "probe:read:/data/granted.txt").await, "shared with the guest");
    assert!(probe(&host, "probe:env:HOME").await.starts_with("denied"), "only the named variables");
    assert!(probe(&host, "probe:read:/etc/passwd").await.starts_with("denied"), "only the granted directory");
}

/// Every tracing event of this test process, as text (installed once).
fn captured_logs() -> &'static std::sync::Mutex<Vec<u8>> {
    static LOGS: std::sync::OnceLock<&'static std::sync::Mutex<Vec<u8>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs: &'static std::sync::Mutex<Vec<u8>> = Box::leak(Box::default());
        let writer = move || Capture(logs);
        let subscriber =
            tracing_subscriber::fmt().with_writer(writer).with_ansi(false).with_env_filter("plughost=debug").finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber in the tests");
        logs
    })
}

struct Capture(&'static std::sync::Mutex<Vec<u8>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_stderr_and_log_calls_reach_tracing_with_the_component_name() {
    let logs = captured_logs();
    let (host, _dir) = misbehaving("wasm-state-trap", &[]).await;
    let store = host.state("under-test").unwrap();
    store.get(GetRequest::new("boom")).await.unwrap_err();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let line = |needle: &str| text.lines().find(|l| l.contains(needle) && l.contains("under-test")).map(str::to_owned);
    assert!(line("in-memory state store ready").is_some(), "the guest's log call, tagged with the component:\n{text}");
    let panic = line("panics on purpose").unwrap_or_else(|| panic!("the guest's stderr:\n{text}"));
    assert!(panic.contains("stream=\"stderr\"") || panic.contains("stream=stderr"), "{panic}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cancelled_by_its_caller_does_not_break_the_next_call() {
    let (host, _dir) = misbehaving("wasm-state-probe", &[]).await;
    let store = host.state("under-test").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();
    // The caller gives up while the guest is suspended in a host call.
    let cancelled =
        tokio::time::timeout(Duration::from_millis(100), store.get(GetRequest::new("probe:sleep:3000"))).await;
    assert!(cancelled.is_err(), "the call was still sleeping when its caller gave up");
    // The next call works (on a fresh instance: the old store was stuck mid-call).
    store.set(SetRequest::new("k", "again")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"again");
    assert_eq!(probe(&host, "probe:sleep:1").await, "slept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_wasm_subscriptions_and_reads() {
    let (host, _dir) = wasm_host("pubsub", wasm::guest("wasm-pubsub"), &[]).await;
    let mut messages = host.pubsub("under-test").unwrap().subscribe("t", Default::default()).await.unwrap();
    let (inputs_host, _dir2) = wasm_host("bindings", wasm::guest("wasm-input-binding"), &[("intervalMs", "50")]).await;
    let mut events = inputs_host.input_binding("under-test").unwrap().read().await.unwrap();
    host.shutdown().await;
    inputs_host.shutdown().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("the subscription ends");
    assert!(ended.is_none());
    // Events already buffered may still come out; then the stream ends.
    let drained = tokio::time::timeout(Duration::from_secs(10), async { while events.next().await.is_some() {} }).await;
    assert!(drained.is_ok(), "the input binding stream ends");
}

/// A component exporting both binding directions is one component with one
/// instance, as a gRPC component is one connection: what its output side is
/// given (`create`), its input side emits, which only works if both sides
/// call into the same instance's memory. One `init`, one set of features.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_binding_directions_share_one_instance() {
    use plughost::kinds::ComponentKind;
    use plughost::kinds::output_binding::InvokeRequest;

    let (host, _dir) = wasm_host("bindings", wasm::guest("wasm-bindings-loop"), &[]).await;
    let info = host.components().iter().find(|c| c.name == "under-test").unwrap().clone();
    assert_eq!(info.kinds, [ComponentKind::InputBinding, ComponentKind::OutputBinding]);
    assert_eq!(info.features, ["create"], "an output binding's features are its operations");

    let mut events = host.input_binding("under-test").unwrap().read().await.unwrap();
    let output = host.output_binding("under-test").unwrap();
    for n in 0..3 {
        output.invoke(InvokeRequest::new("create", format!("item {n}"))).await.unwrap();
    }
    for n in 0..3 {
        let event = tokio::time::timeout(Duration::from_secs(20), events.next())
            .await
            .expect("the input side emits what the output side was given")
            .expect("stream open");
        assert_eq!(event.item.data, format!("item {n}").into_bytes());
        event.ack();
    }
    host.shutdown().await;
}

/// A broker whose instance is replaced (a publish past its memory cap traps
/// it) has lost its subscriptions: the pull loop's next pull fails, and it
/// subscribes again on the fresh instance, so later messages still arrive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wasm_subscription_survives_its_instance_being_replaced() {
    use plughost::kinds::pubsub::PublishRequest;
    let (host, _dir) = wasm_host("pubsub", wasm::guest("wasm-pubsub"), &[("wasm.maxMemory", "4Mi")]).await;
    let pubsub = host.pubsub("under-test").unwrap();
    let mut messages = pubsub.subscribe("t", Default::default()).await.unwrap();
    let err = pubsub.publish(PublishRequest::new("t", vec![0u8; 8 << 20])).await.unwrap_err();
    assert!(err.to_string().contains("memory"), "{err}");
    // Until the loop has subscribed again, a message on a topic without
    // subscribers is dropped by this broker: publish until one arrives.
    let received = tokio::time::timeout(Duration::from_secs(30), async {
        for n in 0.. {
            pubsub.publish(PublishRequest::new("t", format!("after {n}"))).await.unwrap();
            if let Ok(Some(delivery)) = tokio::time::timeout(Duration::from_millis(200), messages.next()).await {
                let data = delivery.item.data.clone();
                delivery.ack();
                return data;
            }
        }
        unreachable!()
    })
    .await
    .expect("a message arrives on the renewed subscription");
    assert!(received.starts_with(b"after "), "{}", String::from_utf8_lossy(&received));
}

/// Compiling an untrusted `.wasm` is off the start-up path of the other
/// components: a built-in configured with a component whose 18 MB Python
/// `.wasm` has never been compiled (a fresh cache) is ready before that
/// compile ends, and the Python component waits for its compile and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_components_start_while_a_wasm_file_compiles() {
    let logs = captured_logs();
    // A custom section of its own makes the content new to this process's
    // compile cache, so it really compiles.
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(wasm::python_state()).unwrap();
    let name = format!("plughost-test-{}-{:?}", std::process::id(), std::time::SystemTime::now());
    let mut section = vec![u8::try_from(name.len()).unwrap()];
    section.extend_from_slice(name.as_bytes());
    bytes.push(0); // custom section
    bytes.push(u8::try_from(section.len()).unwrap());
    bytes.extend_from_slice(&section);
    std::fs::write(dir.path().join("slow-compile.wasm"), bytes).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(plughost::config::ComponentSpec::new("python-slow", "state.slow-compile"))
        .component(plughost::config::ComponentSpec::new("quick-neighbour", "state.in-memory"))
        .build()
        .await
        .unwrap();
    host.state("python-slow").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    host.state("quick-neighbour").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    let at = |needle: &dyn Fn(&str) -> bool, what: &str| {
        text.lines().position(needle).unwrap_or_else(|| panic!("no log line for {what}:\n{text}"))
    };
    let neighbour_ready = at(&|l| l.contains("component ready") && l.contains("quick-neighbour"), "the neighbour");
    let compiled = at(&|l| l.contains("compiled component") && l.contains("slow-compile.wasm"), "the compile");
    let python_ready = at(&|l| l.contains("component ready") && l.contains("python-slow"), "the Python component");
    assert!(neighbour_ready < compiled, "the built-in started while the .wasm compiled:\n{text}");
    assert!(compiled < python_ready, "the Python component waited for its compile");
    host.shutdown().await;
}
