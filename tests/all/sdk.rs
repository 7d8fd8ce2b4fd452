//! The Rust component SDK (`components/sdk/rust`) over real sockets and real
//! processes: what its gRPC runtime answers to bad input (as daprd expects,
//! never a panic), its socket duties, reflection, and one component moving
//! between gRPC and WASM mode with its data. The conformance suites run the
//! SDK examples in both modes (`conformance::*::sdk_*`).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::proto::components as c;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request, Status};
use tonic_types::StatusExt as _;

use crate::support::{grpc, sdk, wasm};

/// One SDK example process, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn wait_for_socket(socket: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if let Some(exit) = child.try_wait().unwrap() {
            panic!("exited before serving {}: {exit}", socket.display());
        }
        assert!(Instant::now() < deadline, "{} not served in time", socket.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn serve(example: &str, socket: &Path) -> Served {
    let mut child = Command::new(sdk::binary(example))
        .arg("--socket")
        .arg(socket)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for_socket(socket, &mut child);
    Served(child)
}

async fn channel(socket: &Path) -> Channel {
    let socket = socket.to_owned();
    Endpoint::from_static("http://component.sock")
        .connect_with_connector(tower::service_fn(move |_| {
            let socket = socket.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(tokio::net::UnixStream::connect(socket).await?))
            }
        }))
        .await
        .unwrap()
}

/// `message` for instance `instance` (the `x-component-instance` header).
fn to<T>(instance: &str, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-component-instance", instance.parse().unwrap());
    request
}

fn etag_field(status: &Status) -> Option<String> {
    let details = status.check_error_details().ok()?;
    match details.bad_request()?.field_violations.as_slice() {
        [only] => Some(only.field.clone()),
        _ => None,
    }
}

fn init(file: &Path) -> c::InitRequest {
    let properties = [("file".to_owned(), file.to_str().unwrap().to_owned())].into();
    c::InitRequest { metadata: Some(c::MetadataRequest { properties }) }
}

fn set(key: &str, value: &str, etag: Option<&str>) -> c::SetRequest {
    c::SetRequest {
        key: key.into(),
        value: value.into(),
        etag: etag.map(|value| c::Etag { value: value.into() }),
        ..Default::default()
    }
}

/// A message whose field 1 is a number where `GetRequest` has a string.
#[derive(Clone, PartialEq, prost::Message)]
struct NotAGetRequest {
    #[prost(uint64, tag = "1")]
    key: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_runtime_answers_bad_input_as_daprd_expects() {
    let dir = grpc::short_tempdir();
    let socket = dir.path().join("s.sock");
    let mut served = serve("file-state", &socket);
    let channel = channel(&socket).await;
    let mut state = c::state_store_client::StateStoreClient::new(channel.clone());

    // Before Init: refused, naming the instance.
    let early = state.get(to("a", c::GetRequest { key: "k".into(), ..Default::default() })).await.unwrap_err();
    assert_eq!(early.code(), Code::FailedPrecondition, "{early:?}");
    assert!(early.message().contains("`a` is not initialised"), "{early:?}");

    // The component's own init error, with its code.
    let bad_init = state.init(to("a", c::InitRequest::default())).await.unwrap_err();
    assert_eq!(bad_init.code(), Code::InvalidArgument, "{bad_init:?}");
    assert!(bad_init.message().contains("`file`"), "{bad_init:?}");

    state.init(to("a", init(&dir.path().join("a.log")))).await.unwrap();
    state.init(to("a", init(&dir.path().join("a.log")))).await.expect("Init again keeps the instance");
    let unknown = state.ping(to("nobody", c::PingRequest {})).await.unwrap_err();
    assert_eq!(unknown.code(), Code::FailedPrecondition);
    assert!(unknown.message().contains("`nobody`"), "{unknown:?}");

    state.set(to("a", set("k", "v", None))).await.unwrap();
    let etag = state.get(to("a", c::GetRequest { key: "k".into(), ..Default::default() })).await.unwrap();
    let etag = etag.into_inner().etag.expect("an etag").value;

    // ETag mismatch: FAILED_PRECONDITION + BadRequest field `etag`.
    let stale = state.set(to("a", set("k", "v2", Some("999999")))).await.unwrap_err();
    assert_eq!((stale.code(), etag_field(&stale).as_deref()), (Code::FailedPrecondition, Some("etag")), "{stale:?}");
    // Invalid ETag: INVALID_ARGUMENT + the same detail.
    let invalid = state.set(to("a", set("k", "v2", Some("not-a-version")))).await.unwrap_err();
    assert_eq!((invalid.code(), etag_field(&invalid).as_deref()), (Code::InvalidArgument, Some("etag")));
    // Bulk delete with a mismatch: the ETag status too; the other key is deleted.
    let deletes = vec![
        c::DeleteRequest { key: "k".into(), etag: Some(c::Etag { value: "999999".into() }), ..Default::default() },
        c::DeleteRequest { key: "other".into(), ..Default::default() },
    ];
    let bulk = state.bulk_delete(to("a", c::BulkDeleteRequest { items: deletes, options: None })).await.unwrap_err();
    assert_eq!((bulk.code(), etag_field(&bulk).as_deref()), (Code::FailedPrecondition, Some("etag")), "{bulk:?}");
    state.set(to("a", set("k", "v3", Some(&etag)))).await.expect("the right etag still works");

    // A transaction operation without a request.
    let mut transactions = c::transactional_state_store_client::TransactionalStateStoreClient::new(channel.clone());
    let empty_op = c::TransactionalStateRequest {
        operations: vec![c::TransactionalStateOperation { request: None }],
        metadata: Default::default(),
    };
    let malformed = transactions.transact(to("a", empty_op)).await.unwrap_err();
    assert_eq!(malformed.code(), Code::InvalidArgument, "{malformed:?}");

    // Bytes that do not decode as the request: an error status, the server lives on.
    let mut raw = tonic::client::Grpc::new(channel.clone());
    raw.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/dapr.proto.components.v1.StateStore/Get");
    let codec = tonic_prost::ProstCodec::<NotAGetRequest, c::GetResponse>::default();
    let garbled = raw.unary(to("a", NotAGetRequest { key: 7 }), path, codec).await.unwrap_err();
    assert_ne!(garbled.code(), Code::Ok);

    state.ping(to("a", c::PingRequest {})).await.expect("still serving");
    assert!(served.0.try_wait().unwrap().is_none(), "the component process is still running");
}

/// A panic in the component's code is that call's `INTERNAL`, naming the
/// operation; the instance and the process keep serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_component_keeps_serving() {
    let dir = grpc::short_tempdir();
    let socket = dir.path().join("p.sock");
    let mut served = serve("sdk-state-panic", &socket);
    let mut state = c::state_store_client::StateStoreClient::new(channel(&socket).await);
    state.init(to("p", c::InitRequest::default())).await.unwrap();
    state.set(to("p", set("k", "v", None))).await.unwrap();
    let boom = state.get(to("p", c::GetRequest { key: "boom".into(), ..Default::default() })).await.unwrap_err();
    assert_eq!(boom.code(), Code::Internal, "{boom:?}");
    assert!(boom.message().contains("panicked in `get`") && boom.message().contains("on purpose"), "{boom:?}");
    let after = state.get(to("p", c::GetRequest { key: "k".into(), ..Default::default() })).await.unwrap();
    assert_eq!(after.into_inner().data, b"v", "the instance keeps its data");
    assert!(served.0.try_wait().unwrap().is_none(), "the component process is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsub_runtime_answers_bad_streams_and_topics() {
    let dir = grpc::short_tempdir();
    let socket = dir.path().join("b.sock");
    let mut served = serve("broker", &socket);
    let mut pubsub = c::pub_sub_client::PubSubClient::new(channel(&socket).await);

    let early = pubsub.publish(to("b", c::PublishRequest { topic: "t".into(), ..Default::default() })).await;
    assert_eq!(early.unwrap_err().code(), Code::FailedPrecondition);
    pubsub.init(to("b", c::PubSubInitRequest::default())).await.unwrap();

    let no_topic = pubsub.publish(to("b", c::PublishRequest::default())).await.unwrap_err();
    assert_eq!(no_topic.code(), Code::InvalidArgument, "{no_topic:?}");

    // A PullMessages stream whose first message has no topic, and one that
    // ends before its first message.
    let first = c::PullMessagesRequest { topic: None, ack_message_id: "x".into(), ack_error: None };
    let topicless = pubsub.pull_messages(to("b", tokio_stream::iter(vec![first]))).await.unwrap_err();
    assert_eq!(topicless.code(), Code::InvalidArgument, "{topicless:?}");
    let empty = pubsub.pull_messages(to("b", tokio_stream::iter(Vec::new()))).await.unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument, "{empty:?}");

    // An ack for a message that was never delivered is ignored; the stream
    // still delivers.
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let topic = c::Topic { name: "t".into(), metadata: Default::default() };
    tx.send(c::PullMessagesRequest { topic: Some(topic), ..Default::default() }).await.unwrap();
    tx.send(c::PullMessagesRequest { ack_message_id: "never-sent".into(), ..Default::default() }).await.unwrap();
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let mut messages = pubsub.pull_messages(to("b", stream)).await.unwrap().into_inner();
    let publish = c::PublishRequest { topic: "t".into(), data: b"hello".to_vec(), ..Default::default() };
    pubsub.publish(to("b", publish)).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), messages.message()).await.unwrap().unwrap().unwrap();
    assert_eq!(got.data, b"hello");
    assert!(served.0.try_wait().unwrap().is_none(), "the component process is still running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_lists_only_the_served_services() {
    let dir = grpc::short_tempdir();
    let (state, broker) = (dir.path().join("s.sock"), dir.path().join("b.sock"));
    let _served = (serve("file-state", &state), serve("broker", &broker));
    let mut services =
        plughost::pluggable::discovery::probe(&state, Duration::from_secs(10), &Default::default()).await.unwrap();
    services.sort();
    assert_eq!(services, ["dapr.proto.components.v1.StateStore", "dapr.proto.components.v1.TransactionalStateStore"]);
    let services =
        plughost::pluggable::discovery::probe(&broker, Duration::from_secs(10), &Default::default()).await.unwrap();
    assert_eq!(services, ["dapr.proto.components.v1.PubSub"]);
}

/// The socket folder from either variable, a stale socket replaced, a live
/// one refused, and SIGTERM stopping the server and removing its socket.
#[test]
fn socket_folder_stale_and_live_sockets_and_sigterm() {
    let dir = grpc::short_tempdir();
    let socket = dir.path().join("file-state.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap()); // stale: the file stays
    let start = |var: &str| {
        Command::new(sdk::binary("file-state"))
            .env_remove("DAPR_COMPONENT_SOCKETS_FOLDER")
            .env_remove("DAPR_COMPONENTS_SOCKETS_FOLDER")
            .env(var, dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut first = start("DAPR_COMPONENT_SOCKETS_FOLDER");
    wait_for_socket(&socket, &mut first);
    let second = start("DAPR_COMPONENTS_SOCKETS_FOLDER").wait_with_output().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains(&format!("{}: a live server already answers", socket.display())), "{stderr}");

    let killed = Command::new("kill").arg("-TERM").arg(first.id().to_string()).status().unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    let exit = loop {
        if let Some(exit) = first.try_wait().unwrap() {
            break exit;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(exit.success(), "{exit}");
    assert!(!socket.exists(), "the socket is removed on SIGTERM");
}

async fn grpc_orders(sockets: &Path, data: &Path, files: &Path) -> Host {
    let spec = ComponentSpec::new("orders", "state.orders").with("file", files.join("orders.log").to_str().unwrap());
    Host::builder().data_dir(data).socket_dir(sockets).component(spec).build().await.unwrap()
}

async fn wasm_orders(wasm_dir: &Path, data: &Path, files: &Path) -> Host {
    let spec = ComponentSpec::new("orders", "state.orders")
        .with("file", files.join("orders.log").to_str().unwrap())
        .with("wasm.dirs", files.to_str().unwrap());
    Host::builder().data_dir(data).wasm_dir(wasm_dir).component(spec).build().await.unwrap()
}

async fn read(host: &Host, key: &str) -> (Vec<u8>, String) {
    let item = host.state("orders").unwrap().get(GetRequest::new(key)).await.unwrap().expect(key);
    (item.data, item.etag.expect("an etag"))
}

/// The same file-state source, gRPC then WASM then gRPC again, on the same
/// file: the data and its ETags move with it (the YAML differs only by
/// `wasm.dirs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_state_moves_between_modes() {
    let dir = grpc::short_tempdir();
    let (sockets, files, data) = (dir.path().join("sockets"), dir.path().join("files"), dir.path().join("data"));
    std::fs::create_dir_all(&sockets).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    let wasm_dir = wasm::wasm_dir(&[("orders.wasm", wasm::guest("file-state"))]);

    let mut process =
        grpc::ComponentProcess::start(grpc::Program::Sdk("file-state"), sockets.join("orders.sock"), data.clone());
    let host = grpc_orders(&sockets, &data, &files).await;
    host.state("orders").unwrap().set(SetRequest::new("order-1", "tea")).await.unwrap();
    let (_, etag) = read(&host, "order-1").await;
    host.shutdown().await;
    process.kill();

    let host = wasm_orders(wasm_dir.path(), &data, &files).await;
    assert_eq!(read(&host, "order-1").await, (b"tea".to_vec(), etag.clone()), "WASM mode reads what gRPC wrote");
    let store = host.state("orders").unwrap();
    store.set(SetRequest::new("order-1", "coffee").with_etag(&etag)).await.unwrap();
    let (_, moved_etag) = read(&host, "order-1").await;
    assert_ne!(moved_etag, etag);
    host.shutdown().await;

    process.restart();
    let host = grpc_orders(&sockets, &data, &files).await;
    assert_eq!(read(&host, "order-1").await, (b"coffee".to_vec(), moved_etag), "and gRPC mode reads it back");
    let stale = host.state("orders").unwrap().set(SetRequest::new("order-1", "x").with_etag(&etag)).await;
    assert!(stale.is_err(), "an old ETag stays stale across the moves");
    host.shutdown().await;
}
