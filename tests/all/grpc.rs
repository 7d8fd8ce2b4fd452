//! gRPC mode beyond conformance: discovery of a messy socket folder, sockets
//! that appear after start-up, component processes killed and restarted
//! (streams included), health, and what travels on the wire.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost::Host;
use plughost::component::Status;
use plughost::config::ComponentSpec;
use plughost::kinds::pubsub::{CONSUMER_ID, PublishRequest};
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::kinds::{ComponentError, Metadata};
use plughost::pluggable::GrpcOptions;
use plughost::proto::components as pb;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::support::grpc::{ComponentProcess, Program, quick_options, short_tempdir, socket_host};

/// An in-process server or listener, stopped when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn folder() -> (tempfile::TempDir, PathBuf) {
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    (dir, sockets)
}

/// Starts a component process without blocking the runtime.
async fn start(program: Program, socket: PathBuf, data: PathBuf) -> ComponentProcess {
    tokio::task::spawn_blocking(move || ComponentProcess::start(program, socket, data)).await.unwrap()
}

/// A state store that serves only what the tests below need, recording the
/// `x-component-instance` and `grpc-timeout` headers of every call.
#[derive(Default, Clone)]
struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// One call: its name, its `x-component-instance`, whether it had a
/// `grpc-timeout`.
type Seen = (String, Option<String>, bool);

impl Recorder {
    fn record<T>(&self, call: &str, request: &tonic::Request<T>) {
        let header = request.metadata().get("x-component-instance").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let deadline = request.metadata().get("grpc-timeout").is_some();
        self.seen.lock().unwrap().push((call.to_owned(), header, deadline));
    }
}

#[tonic::async_trait]
impl pb::state_store_server::StateStore for Recorder {
    async fn init(
        &self,
        r: tonic::Request<pb::InitRequest>,
    ) -> Result<tonic::Response<pb::InitResponse>, tonic::Status> {
        self.record("Init", &r);
        Ok(tonic::Response::new(pb::InitResponse {}))
    }
    async fn features(
        &self,
        r: tonic::Request<pb::FeaturesRequest>,
    ) -> Result<tonic::Response<pb::FeaturesResponse>, tonic::Status> {
        self.record("Features", &r);
        Ok(tonic::Response::new(pb::FeaturesResponse { features: vec!["TRANSACTIONAL".into()] }))
    }
    async fn ping(
        &self,
        r: tonic::Request<pb::PingRequest>,
    ) -> Result<tonic::Response<pb::PingResponse>, tonic::Status> {
        self.record("Ping", &r);
        Ok(tonic::Response::new(pb::PingResponse {}))
    }
    async fn get(&self, r: tonic::Request<pb::GetRequest>) -> Result<tonic::Response<pb::GetResponse>, tonic::Status> {
        self.record("Get", &r);
        Ok(tonic::Response::new(pb::GetResponse::default()))
    }
}

#[tonic::async_trait]
impl pb::transactional_state_store_server::TransactionalStateStore for Recorder {
    async fn transact(
        &self,
        r: tonic::Request<pb::TransactionalStateRequest>,
    ) -> Result<tonic::Response<pb::TransactionalStateResponse>, tonic::Status> {
        self.record("Transact", &r);
        Ok(tonic::Response::new(pb::TransactionalStateResponse {}))
    }
}

/// Serves `recorder` on `socket`, with reflection (v1 only, which is enough
/// for discovery) unless `reflection` is false.
fn serve_recorder(socket: &Path, recorder: Recorder, reflection: bool) -> Task {
    let listener = UnixListener::bind(socket).unwrap();
    let mut router = tonic::transport::Server::builder()
        .add_service(pb::state_store_server::StateStoreServer::new(recorder.clone()))
        .add_service(pb::transactional_state_store_server::TransactionalStateStoreServer::new(recorder));
    if reflection {
        let v1 = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(plughost::proto::FILE_DESCRIPTOR_SET)
            .with_service_name("dapr.proto.components.v1.StateStore")
            .build_v1()
            .unwrap();
        router = router.add_service(v1);
    }
    Task(tokio::spawn(async move {
        router.serve_with_incoming(UnixListenerStream::new(listener)).await.unwrap();
    }))
}

/// A listener that answers every connection in HTTP/1.1 and hangs up.
fn serve_http1(socket: &Path) -> Task {
    let listener = UnixListener::bind(socket).unwrap();
    Task(tokio::spawn(async move {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    }))
}

/// A listener that accepts connections and never says anything.
fn serve_silence(socket: &Path) -> Task {
    let listener = UnixListener::bind(socket).unwrap();
    Task(tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    }))
}

fn reasons(host: &Host) -> BTreeMap<String, String> {
    let report = host.sockets().expect("socket discovery is on");
    report
        .skipped
        .into_iter()
        .map(|(path, reason)| (path.file_name().unwrap().to_string_lossy().into_owned(), reason))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_loads_the_good_socket_and_reports_four_bad_ones() {
    let (dir, sockets) = folder();
    let _good = start(Program::Rust("state"), sockets.join("good.sock"), dir.path().join("cdata")).await;
    drop(std::os::unix::net::UnixListener::bind(sockets.join("stale.sock")).unwrap()); // file stays, nobody listens
    std::fs::write(sockets.join("notes.txt"), "not a socket").unwrap();
    let _http = serve_http1(&sockets.join("http.sock"));
    let _bare = serve_recorder(&sockets.join("bare.sock"), Recorder::default(), false);

    let started = Instant::now();
    let host = socket_host(dir.path(), &sockets, GrpcOptions::default())
        .component(ComponentSpec::new("store", "state.good"))
        .build()
        .await
        .expect("the good component loads despite the bad entries");
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());

    let store = host.state("store").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v");

    let report = host.sockets().unwrap();
    assert_eq!(report.components, [(sockets.join("good.sock"), vec!["state.good".to_owned()])]);
    let reasons = reasons(&host);
    assert_eq!(reasons.len(), 4, "{reasons:#?}");
    assert!(reasons["stale.sock"].contains("nothing is listening"), "{reasons:#?}");
    assert!(reasons["notes.txt"].contains("not a socket (a regular file)"), "{reasons:#?}");
    assert!(reasons["http.sock"].contains("not a gRPC server"), "{reasons:#?}");
    assert!(reasons["bare.sock"].contains("without reflection"), "{reasons:#?}");
    let components = host.components();
    let info = &components[0];
    assert_eq!((info.mode.as_str(), info.current_status()), ("grpc", Status::Ready));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_sockets_are_reported_after_the_probe_deadline_and_v1alpha_reflection_is_enough() {
    let (dir, sockets) = folder();
    let _silent = serve_silence(&sockets.join("silent.sock"));
    // A server with v1alpha reflection only (like the .NET component SDK).
    let listener = UnixListener::bind(sockets.join("alpha.sock")).unwrap();
    let v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(plughost::proto::FILE_DESCRIPTOR_SET)
        .with_service_name("dapr.proto.components.v1.StateStore")
        .build_v1alpha()
        .unwrap();
    let router = tonic::transport::Server::builder()
        .add_service(v1alpha)
        .add_service(pb::state_store_server::StateStoreServer::new(Recorder::default()));
    let _alpha = Task(tokio::spawn(async move {
        router.serve_with_incoming(UnixListenerStream::new(listener)).await.unwrap();
    }));

    let started = Instant::now();
    let host = socket_host(dir.path(), &sockets, quick_options()).build().await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "the hung socket held start-up for {:?}", started.elapsed());
    let report = host.sockets().unwrap();
    assert_eq!(report.components, [(sockets.join("alpha.sock"), vec!["state.alpha".to_owned()])]);
    let reasons = reasons(&host);
    assert!(reasons["silent.sock"].contains("no answer within"), "{reasons:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_carries_the_component_name_and_a_deadline() {
    let (dir, sockets) = folder();
    let recorder = Recorder::default();
    let _server = serve_recorder(&sockets.join("rec.sock"), recorder.clone(), true);
    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("named-store", "state.rec"))
        .build()
        .await
        .unwrap();
    let store = host.state("named-store").unwrap();
    assert_eq!(store.get(GetRequest::new("absent")).await.unwrap(), None, "OK + empty data + no etag is a missing key");
    // The recorder does not serve MultiMaxSize: UNIMPLEMENTED is tolerated.
    store.transact(Vec::new(), Metadata::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await; // a ping or two
    let seen = recorder.seen.lock().unwrap().clone();
    let calls: Vec<&str> = seen.iter().map(|(call, ..)| call.as_str()).collect();
    assert_eq!(&calls[..2], ["Init", "Features"], "Init first, then Features: {calls:?}");
    assert!(calls.contains(&"Get") && calls.contains(&"Transact") && calls.contains(&"Ping"), "{calls:?}");
    for (call, header, deadline) in &seen {
        assert_eq!(header.as_deref(), Some("named-store"), "{call} without x-component-instance");
        assert!(deadline, "{call} without grpc-timeout");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_started_before_the_socket_exists_uses_the_component_once_it_appears() {
    // Build the component first: a cold build must not eat the wait below.
    tokio::task::spawn_blocking(crate::support::grpc::grpc_components_binary).await.unwrap();
    let (dir, sockets) = folder();
    let spec =
        ComponentSpec { init_timeout: Duration::from_secs(60), ..ComponentSpec::new("late-store", "state.late") };
    let building = tokio::spawn(
        socket_host(dir.path(), &sockets, quick_options())
            .component(spec)
            .component(ComponentSpec::new("cache", "state.in-memory"))
            .build(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!building.is_finished(), "the host waits for the component's socket");

    let _late = start(Program::Rust("state"), sockets.join("late.sock"), dir.path().join("cdata")).await;
    let host = tokio::time::timeout(Duration::from_secs(20), building)
        .await
        .expect("the host finishes starting once the socket appears")
        .unwrap()
        .expect("start-up succeeds");
    let store = host.state("late-store").unwrap();
    store.set(SetRequest::new("k", "late but here")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"late but here");
    assert!(host.state("cache").is_ok(), "the other components started too");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_appears_fails_like_an_unknown_type() {
    let (dir, sockets) = folder();
    let spec = ComponentSpec { init_timeout: Duration::from_millis(300), ..ComponentSpec::new("ghost", "state.never") };
    let started = Instant::now();
    let err = socket_host(dir.path(), &sockets, quick_options())
        .component(spec)
        .build()
        .await
        .err()
        .expect("no socket, no component");
    let text = err.to_string();
    assert!(text.contains("unknown type `state.never`") && text.contains("no socket in"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Waits until `condition` holds, polling.
async fn eventually(what: &str, limit: Duration, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what} did not happen within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_fail_fast_while_the_process_is_down_and_work_again_after_a_restart() {
    let (dir, sockets) = folder();
    let mut process = start(Program::Rust("state"), sockets.join("kv.sock"), dir.path().join("cdata")).await;
    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("cache", "state.kv"))
        .build()
        .await
        .unwrap();
    let store = host.state("cache").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();

    process.kill();
    let started = Instant::now();
    let err = store.get(GetRequest::new("k")).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(1), "failed after {:?}", started.elapsed());
    assert!(matches!(&err, ComponentError::Unavailable { component, .. } if component == "cache"), "{err:?}");
    assert!(err.to_string().starts_with("component `cache` unavailable"), "{err}");
    eventually("status unavailable", Duration::from_secs(5), async || {
        matches!(host.components()[0].current_status(), Status::Unavailable(_))
    })
    .await;
    // Down: every call fails at once.
    for _ in 0..5 {
        let started = Instant::now();
        assert!(store.set(SetRequest::new("k", "v")).await.is_err());
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    tokio::task::block_in_place(|| process.restart());
    // The instance is new (its data died with the process) but initialised:
    // the component refuses calls before Init, so success proves the replay.
    eventually("calls to work again", Duration::from_secs(10), async || {
        store.set(SetRequest::new("k", "again")).await.is_ok()
    })
    .await;
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"again");
    eventually("status ready", Duration::from_secs(5), async || host.components()[0].current_status() == Status::Ready)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_process_killed_mid_stream_loses_no_message() {
    const N: usize = 1000;
    const TOPIC: &str = "orders";
    let (dir, sockets) = folder();
    let mut process = start(Program::Rust("pubsub"), sockets.join("broker.sock"), dir.path().join("cdata")).await;
    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("bus", "pubsub.broker"))
        .build()
        .await
        .unwrap();
    let pubsub = host.pubsub("bus").unwrap();
    let group = Metadata::from([(CONSUMER_ID.to_owned(), "billing".to_owned())]);
    let mut subscription = pubsub.subscribe(TOPIC, group).await.unwrap();

    // Sent = every payload whose publish succeeded; a publish refused while
    // the component is down is tried again until it is accepted.
    let publisher = {
        let pubsub = pubsub.clone();
        tokio::spawn(async move {
            let mut refused = 0;
            for i in 0..N {
                loop {
                    match pubsub.publish(PublishRequest::new(TOPIC, format!("m{i}"))).await {
                        Ok(()) => break,
                        Err(ComponentError::Unavailable { .. } | ComponentError::DeadlineExceeded { .. }) => {
                            refused += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(other) => panic!("publish m{i}: {other}"),
                    }
                }
                // The first half at once (a backlog in flight), the rest
                // spread over the outage.
                if i >= N / 2 {
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
            refused
        })
    };

    let mut received = HashSet::new();
    let mut deliveries = 0;
    let mut in_flight_at_kill = Vec::new();
    let next = async |subscription: &mut plughost::kinds::Deliveries<_>, received: &HashSet<String>| {
        tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("stalled with {} of {N} received", received.len()))
            .expect("the subscription stays open across the restart")
    };
    while received.len() < N {
        let delivery: plughost::kinds::Delivery<plughost::kinds::pubsub::Message> =
            next(&mut subscription, &received).await;
        deliveries += 1;
        if in_flight_at_kill.is_empty() && received.len() == N / 3 {
            // Mid-stream: hold this message and the next ones delivered but
            // unanswered, kill the process, answer them too late (their
            // stream is gone), and bring the component back.
            let mut held = vec![delivery];
            while held.len() < 20 {
                held.push(next(&mut subscription, &received).await);
                deliveries += 1;
            }
            process.kill();
            in_flight_at_kill = held.iter().map(|d| String::from_utf8(d.item.data.clone()).unwrap()).collect();
            held.into_iter().for_each(|d| d.ack());
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(matches!(host.components()[0].current_status(), Status::Unavailable(_)));
            tokio::task::block_in_place(|| process.restart());
            continue;
        }
        received.insert(String::from_utf8(delivery.item.data.clone()).unwrap());
        if in_flight_at_kill.is_empty() {
            tokio::time::sleep(Duration::from_millis(1)).await; // a slow consumer: messages pile up in flight
        }
        delivery.ack();
    }
    let refused = publisher.await.unwrap();
    let sent: HashSet<String> = (0..N).map(|i| format!("m{i}")).collect();
    assert_eq!(received, sent, "sent == received");
    assert_eq!(in_flight_at_kill.len(), 20, "the process was killed mid-stream");
    for payload in &in_flight_at_kill {
        assert!(received.contains(payload), "{payload}, in flight at the kill, was delivered again");
    }
    assert!(deliveries >= N + 20, "unacked messages were redelivered ({deliveries} deliveries)");
    eprintln!("{N} sent, {N} received, {deliveries} deliveries, {refused} publishes refused while down");
    assert_eq!(host.components()[0].current_status(), Status::Ready);
    host.shutdown().await; // Pause: UNIMPLEMENTED, tolerated
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn input_binding_stream_is_reopened_after_a_restart() {
    let (dir, sockets) = folder();
    let mut process = start(Program::Rust("input-binding"), sockets.join("ticks.sock"), dir.path().join("cdata")).await;
    let host = socket_host(dir.path(), &sockets, quick_options())
        .component(ComponentSpec::new("ticks", "bindings.ticks").with("interval", "20ms"))
        .build()
        .await
        .unwrap();
    let binding = host.input_binding("ticks").unwrap();
    let mut events = binding.read().await.unwrap();
    let next = async |events: &mut plughost::kinds::Deliveries<_>| {
        tokio::time::timeout(Duration::from_secs(20), events.next()).await.expect("an event in time").expect("open")
    };
    for _ in 0..3 {
        next(&mut events).await.ack();
    }
    process.kill();
    tokio::time::sleep(Duration::from_millis(200)).await;
    tokio::task::block_in_place(|| process.restart());
    // Drain what was buffered before the kill, then see the new process's
    // events (its ids start again from 1) on the same stream.
    let mut fresh = false;
    for _ in 0..50 {
        let event: plughost::kinds::Delivery<plughost::kinds::input_binding::InputEvent> = next(&mut events).await;
        fresh |= event.item.id == "1";
        event.ack();
        if fresh {
            break;
        }
    }
    assert!(fresh, "events from the restarted process arrive on the same stream");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_a_grpc_pubsub_ends_its_subscriptions() {
    let fixture = crate::support::grpc_pubsub().await;
    let mut messages = fixture.component.subscribe("t", Default::default()).await.unwrap();
    fixture.component.close().await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("the subscription ends");
    assert!(ended.is_none());
}
