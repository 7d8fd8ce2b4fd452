//! The live registry: components replaced, added and removed while calls
//! run, by editing files (watched folders) or through the embedding API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plughost::kinds::ComponentError;
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::proto::common;
use plughost::proto::runtime as rt;
use plughost::{Host, Mode, Status};

use crate::support::{grpc, wasm};

/// A statestore YAML on the SDK's file-state, `type_name` choosing the mode
/// (`state.file-grpc`: the socket; `state.file-wasm`: the `.wasm`); both
/// use the same data file.
fn store_yaml(type_name: &str, files: &Path, extra: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n  - name: file\n    value: {}\n  - name: wasm.dirs\n    value: {}\n{extra}",
        files.join("state.log").display(),
        files.display()
    )
}

/// Writes `text` to `path` the way editors do: a temporary file renamed over it.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Setup {
    dir: tempfile::TempDir,
    components: PathBuf,
    files: PathBuf,
    wasm_dir: tempfile::TempDir,
    _process: grpc::ComponentProcess,
}

impl Setup {
    fn new() -> Self {
        let dir = grpc::short_tempdir();
        let (components, files, sockets) =
            (dir.path().join("components"), dir.path().join("files"), dir.path().join("sockets"));
        for folder in [&components, &files, &sockets] {
            std::fs::create_dir_all(folder).unwrap();
        }
        let wasm_dir = wasm::wasm_dir(&[("file-wasm.wasm", wasm::guest("file-state"))]);
        let process = grpc::ComponentProcess::start(
            grpc::Program::Sdk("file-state"),
            sockets.join("file-grpc.sock"),
            dir.path().join("cdata"),
        );
        Self { dir, components, files, wasm_dir, _process: process }
    }

    fn yaml(&self) -> PathBuf {
        self.components.join("statestore.yaml")
    }

    async fn host(&self, watch: bool) -> Host {
        Host::builder()
            .data_dir(self.dir.path().join("data"))
            .components_dir(&self.components)
            .wasm_dir(self.wasm_dir.path())
            .socket_dir(self.dir.path().join("sockets"))
            .watch(watch)
            .build()
            .await
            .unwrap()
    }
}

fn info(host: &Host, name: &str) -> Option<plughost::ComponentInfo> {
    host.components().into_iter().find(|c| c.name == name)
}

async fn until(what: &str, within: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Under continuous load (4 clients through the sidecar's gRPC API, 4
/// through the embedding API on handles taken once before any swap), the
/// statestore moves gRPC → WASM → gRPC ... ten times by edits of its YAML:
/// not one call fails, and every read after a write sees that write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_store_between_modes_under_load_fails_no_call() {
    let setup = Setup::new();
    write_atomically(&setup.yaml(), &store_yaml("state.file-grpc", &setup.files, ""));
    let host = Arc::new(setup.host(true).await);
    assert_eq!(info(&host, "statestore").unwrap().mode, Mode::Grpc);
    let config = plughost::api::ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let api = plughost::api::serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
    let grpc_url = format!("http://{}", api.grpc_addr());

    let stop = Arc::new(AtomicBool::new(false));
    let (ops, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(std::sync::Mutex::new(Vec::<String>::new())));
    let mut clients = Vec::new();
    for client in 0..4 {
        let (stop, ops, failures, url) = (stop.clone(), ops.clone(), failures.clone(), grpc_url.clone());
        clients.push(tokio::spawn(async move {
            let mut dapr = rt::dapr_client::DaprClient::connect(url).await.unwrap();
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("api-{client}-{}", n % 20);
                let value = format!("{client}:{n}").into_bytes();
                let item = common::StateItem { key: key.clone(), value: value.clone(), ..Default::default() };
                let saved =
                    dapr.save_state(rt::SaveStateRequest { store_name: "statestore".into(), states: vec![item] }).await;
                let read = match saved {
                    Ok(_) => dapr
                        .get_state(rt::GetStateRequest { store_name: "statestore".into(), key, ..Default::default() })
                        .await
                        .map(|r| r.into_inner().data),
                    Err(status) => Err(status),
                };
                match read {
                    Ok(data) if data == value => {}
                    Ok(data) => failures
                        .lock()
                        .unwrap()
                        .push(format!("api client {client}: read {data:?} after writing {value:?}")),
                    Err(status) => failures.lock().unwrap().push(format!("api client {client}: {status}")),
                }
                ops.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }
    for client in 0..4 {
        let store = host.state("statestore").unwrap(); // taken once, before every swap
        let (stop, ops, failures) = (stop.clone(), ops.clone(), failures.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let key = format!("embedded-{client}-{}", n % 20);
                let value = format!("{client}:{n}").into_bytes();
                let read = match store.set(SetRequest::new(&key, value.clone())).await {
                    Ok(()) => store.get(GetRequest::new(&key)).await.map(|item| item.map(|i| i.data)),
                    Err(e) => Err(e),
                };
                match read {
                    Ok(Some(data)) if data == value => {}
                    Ok(other) => failures.lock().unwrap().push(format!("embedded client {client}: read {other:?}")),
                    Err(e) => failures.lock().unwrap().push(format!("embedded client {client}: {e}")),
                }
                ops.fetch_add(2, Ordering::Relaxed);
            }
        }));
    }

    for round in 1..=10u64 {
        let (type_name, mode) =
            if round % 2 == 1 { ("state.file-wasm", Mode::Wasm) } else { ("state.file-grpc", Mode::Grpc) };
        let before = ops.load(Ordering::Relaxed);
        write_atomically(&setup.yaml(), &store_yaml(type_name, &setup.files, ""));
        until(&format!("swap {round} to {type_name}"), Duration::from_secs(60), || {
            info(&host, "statestore").is_some_and(|c| c.generation == round + 1 && c.mode == mode)
        })
        .await;
        // Some calls on the new instance before the next move.
        until("calls after the swap", Duration::from_secs(30), || ops.load(Ordering::Relaxed) > before + 40).await;
    }
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(failures.is_empty(), "{} failed calls, first: {:?}", failures.len(), &failures[..failures.len().min(5)]);
    let listed = info(&host, "statestore").unwrap();
    assert_eq!((listed.generation, listed.mode), (11, Mode::Grpc));
    assert!(listed.swapped_at.is_some());
    api.stop();
    api.wait().await;
    Arc::into_inner(host).expect("the only owner").shutdown().await;
}

/// A broken edit changes nothing and the old component keeps serving: a
/// YAML syntax error (named with file and line), a failing `Init`, a `.wasm`
/// that does not load. Fixing the file applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_edits_leave_the_old_component_serving() {
    let setup = Setup::new();
    write_atomically(&setup.yaml(), &store_yaml("state.file-grpc", &setup.files, ""));
    let host = setup.host(false).await;
    let store = host.state("statestore").unwrap();
    store.set(SetRequest::new("k", "v1")).await.unwrap();

    write_atomically(&setup.yaml(), "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: [statestore\n");
    let error = host.reload().await.unwrap_err().to_string();
    assert!(error.contains("statestore.yaml:"), "names the file and line: {error}");
    assert_eq!(info(&host, "statestore").unwrap().generation, 1);
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v1");

    // Init fails: the WASM store has no `file` metadata.
    let no_file = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: state.file-wasm\n  version: v1\n";
    write_atomically(&setup.yaml(), no_file);
    assert!(host.reload().await.is_ok(), "the folder is valid; the component's error is in its listing");
    let listed = info(&host, "statestore").unwrap();
    assert_eq!((listed.generation, listed.mode, listed.status.clone()), (1, Mode::Grpc, Status::Ready));
    assert!(listed.reload_error.as_deref().unwrap_or_default().contains("file"), "{:?}", listed.reload_error);
    store.set(SetRequest::new("k", "v2")).await.unwrap();

    // A .wasm that does not load keeps the types it had.
    std::fs::write(setup.wasm_dir.path().join("file-wasm.wasm"), b"\0asm not a component").unwrap();
    write_atomically(
        &setup.yaml(),
        &store_yaml("state.file-grpc", &setup.files, "  - name: note\n    value: edited\n"),
    );
    host.reload().await.unwrap();
    assert_eq!(info(&host, "statestore").unwrap().generation, 2, "the YAML edit applied");
    std::fs::copy(wasm::guest("file-state"), setup.wasm_dir.path().join("file-wasm.wasm")).unwrap();

    // Fixed: the move to WASM applies, and the data moved with it.
    write_atomically(&setup.yaml(), &store_yaml("state.file-wasm", &setup.files, ""));
    host.reload().await.unwrap();
    let listed = info(&host, "statestore").unwrap();
    assert_eq!((listed.generation, listed.mode, listed.reload_error), (3, Mode::Wasm, None));
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v2");
    host.shutdown().await;
}

/// Components added and removed while the host runs; a component waiting
/// for its socket (`ignoreErrors`, past its `initTimeout`) starts when the
/// socket appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_come_and_go_and_a_late_socket_still_resolves() {
    let setup = Setup::new();
    write_atomically(&setup.yaml(), &store_yaml("state.file-grpc", &setup.files, ""));
    let late = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: late\nspec:\n  type: state.late\n  version: v1\n  initTimeout: 1s\n  ignoreErrors: true\n";
    write_atomically(&setup.components.join("late.yaml"), late);
    let host = setup.host(true).await;
    assert!(matches!(info(&host, "late").unwrap().status, Status::Failed(_)));

    // Added by a new file.
    let memory = "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: cache\nspec:\n  type: state.in-memory\n  version: v1\n";
    write_atomically(&setup.components.join("cache.yaml"), memory);
    until("cache added", Duration::from_secs(30), || host.state("cache").is_ok()).await;
    let cache = host.state("cache").unwrap();
    cache.set(SetRequest::new("a", "1")).await.unwrap();

    // Removed: lookups and the handle taken before both say not found.
    std::fs::remove_file(setup.components.join("cache.yaml")).unwrap();
    until("cache removed", Duration::from_secs(30), || host.state("cache").is_err()).await;
    let err = cache.get(GetRequest::new("a")).await.unwrap_err();
    assert!(matches!(&err, ComponentError::NotFound(m) if m.contains("cache")), "{err:?}");
    assert!(info(&host, "cache").is_none());

    // The late socket, long after the 1 s initTimeout.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _late = grpc::ComponentProcess::start(
        grpc::Program::Sdk("file-state"),
        setup.dir.path().join("sockets/late.sock"),
        setup.dir.path().join("late-data"),
    );
    // file-state needs its `file`: the first try fails (listed), the edit
    // that adds it applies.
    let with_file =
        format!("{late}  metadata:\n  - name: file\n    value: {}\n", setup.files.join("late.log").display());
    write_atomically(&setup.components.join("late.yaml"), &with_file);
    until("late ready", Duration::from_secs(60), || info(&host, "late").is_some_and(|c| c.status == Status::Ready))
        .await;
    host.state("late").unwrap().set(SetRequest::new("x", "y")).await.unwrap();
    host.shutdown().await;
}

/// A broker (the SDK's, as a gRPC component) replaced three times by YAML
/// edits while 10,000 messages are published through the sidecar and
/// consumed through one streaming subscription: every message arrives (by
/// id; redeliveries of messages in flight at a swap are allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_swapped_mid_stream_loses_no_message() {
    use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
    use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
    use rt::topic_event_response::TopicEventResponseStatus;

    let dir = grpc::short_tempdir();
    let (components, sockets) = (dir.path().join("components"), dir.path().join("sockets"));
    std::fs::create_dir_all(&components).unwrap();
    std::fs::create_dir_all(&sockets).unwrap();
    let _broker =
        grpc::ComponentProcess::start(grpc::Program::Sdk("broker"), sockets.join("broker.sock"), dir.path().join("b"));
    let yaml = |note: u32| {
        format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\nspec:\n  type: pubsub.broker\n  version: v1\n  metadata:\n  - name: note\n    value: \"{note}\"\n"
        )
    };
    let file = components.join("orders.yaml");
    write_atomically(&file, &yaml(0));
    let host = Host::builder()
        .data_dir(dir.path().join("data"))
        .components_dir(&components)
        .socket_dir(&sockets)
        .build()
        .await
        .unwrap();
    let config = plughost::api::ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let api = plughost::api::serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
    let url = format!("http://{}", api.grpc_addr());

    let mut subscriber = rt::dapr_client::DaprClient::connect(url.clone()).await.unwrap();
    let (answers, rx) = tokio::sync::mpsc::channel(64);
    let initial = rt::SubscribeTopicEventsRequestInitialAlpha1 {
        pubsub_name: "orders".into(),
        topic: "t".into(),
        ..Default::default()
    };
    answers
        .send(rt::SubscribeTopicEventsRequestAlpha1 {
            subscribe_topic_events_request_type: Some(Incoming::InitialRequest(initial)),
        })
        .await
        .unwrap();
    let mut events = subscriber
        .subscribe_topic_events_alpha1(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    let first = events.message().await.unwrap().unwrap().subscribe_topic_events_response_type;
    assert!(matches!(first, Some(Outgoing::InitialResponse(_))), "{first:?}");
    let received = Arc::new(std::sync::Mutex::new(std::collections::HashSet::<String>::new()));
    let receiving = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Ok(Some(message)) = events.message().await {
                let Some(Outgoing::EventMessage(event)) = message.subscribe_topic_events_response_type else {
                    continue;
                };
                received.lock().unwrap().insert(String::from_utf8_lossy(&event.data).into_owned());
                let processed = rt::SubscribeTopicEventsRequestProcessedAlpha1 {
                    id: event.id.clone(),
                    status: Some(rt::TopicEventResponse { status: TopicEventResponseStatus::Success as i32 }),
                };
                let answer = rt::SubscribeTopicEventsRequestAlpha1 {
                    subscribe_topic_events_request_type: Some(Incoming::EventProcessed(processed)),
                };
                if answers.send(answer).await.is_err() {
                    return;
                }
            }
        })
    };

    const MESSAGES: usize = 10_000;
    let publishing = tokio::spawn(async move {
        let mut publisher = rt::dapr_client::DaprClient::connect(url).await.unwrap();
        for i in 0..MESSAGES {
            let request = rt::PublishEventRequest {
                pubsub_name: "orders".into(),
                topic: "t".into(),
                data: format!("m{i}").into_bytes(),
                data_content_type: "text/plain".into(),
                ..Default::default()
            };
            publisher.publish_event(request).await.unwrap_or_else(|e| panic!("publishing m{i}: {e}"));
        }
    });
    for note in 1..=3u32 {
        until("messages flowing", Duration::from_secs(60), || received.lock().unwrap().len() >= note as usize * 1500)
            .await;
        write_atomically(&file, &yaml(note));
        until(&format!("swap {note}"), Duration::from_secs(60), || {
            info(&host, "orders").is_some_and(|c| c.generation == u64::from(note) + 1)
        })
        .await;
    }
    publishing.await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.lock().unwrap().len() < MESSAGES && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let missing: Vec<String> =
        (0..MESSAGES).map(|i| format!("m{i}")).filter(|id| !received.lock().unwrap().contains(id)).collect();
    assert!(missing.is_empty(), "missing {} messages, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]);
    receiving.abort();
    api.stop();
    api.wait().await;
    host.shutdown().await;
}
