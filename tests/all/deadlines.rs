//! Deadlines that mean what they say (checklist 3, 30-32): a slow gRPC
//! component answers `DeadlineExceeded` and keeps its connection (no redial,
//! no `Init` replay); `grpc.callTimeout` sets one component's deadline; a
//! huge error message does not break the next call; WASM deadlines are wall
//! clock, include the wait for a busy instance, and a full queue is refused
//! at once. Bounds are generous ("within 2x the deadline"), never exact.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost::Host;
use plughost::component::Status;
use plughost::config::ComponentSpec;
use plughost::kinds::ComponentError;
use plughost::kinds::state::{GetRequest, SetRequest};
use plughost::pluggable::GrpcOptions;
use plughost::proto::components as pb;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;

use crate::support::grpc::short_tempdir;
use crate::support::wasm;

/// A state store whose `get` is slow for `slow`, fails with a 200 KB message
/// for `huge-error`, and answers `v` otherwise; it records every `Init`'s
/// metadata.
#[derive(Clone, Default)]
struct Sluggish {
    inits: Arc<Mutex<Vec<HashMap<String, String>>>>,
}

const SLOW: Duration = Duration::from_secs(5);

#[tonic::async_trait]
impl pb::state_store_server::StateStore for Sluggish {
    async fn init(
        &self,
        r: tonic::Request<pb::InitRequest>,
    ) -> Result<tonic::Response<pb::InitResponse>, tonic::Status> {
        let properties = r.into_inner().metadata.unwrap_or_default().properties;
        self.inits.lock().unwrap().push(properties);
        Ok(tonic::Response::new(pb::InitResponse {}))
    }
    async fn features(
        &self,
        _: tonic::Request<pb::FeaturesRequest>,
    ) -> Result<tonic::Response<pb::FeaturesResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::FeaturesResponse::default()))
    }
    async fn ping(
        &self,
        _: tonic::Request<pb::PingRequest>,
    ) -> Result<tonic::Response<pb::PingResponse>, tonic::Status> {
        Ok(tonic::Response::new(pb::PingResponse {}))
    }
    async fn get(&self, r: tonic::Request<pb::GetRequest>) -> Result<tonic::Response<pb::GetResponse>, tonic::Status> {
        match r.into_inner().key.as_str() {
            "slow" => tokio::time::sleep(SLOW).await,
            "huge-error" => return Err(tonic::Status::internal("e".repeat(200_000))),
            _ => {}
        }
        Ok(tonic::Response::new(pb::GetResponse { data: b"v".to_vec(), ..Default::default() }))
    }
}

/// Serves `component` on `socket` (with reflection, for discovery) until
/// the returned task is aborted.
fn serve(socket: &Path, component: Sluggish) -> tokio::task::JoinHandle<()> {
    let listener = UnixListener::bind(socket).unwrap();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(plughost::proto::FILE_DESCRIPTOR_SET)
        .with_service_name("dapr.proto.components.v1.StateStore")
        .build_v1()
        .unwrap();
    let router = tonic::transport::Server::builder()
        .add_service(pb::state_store_server::StateStoreServer::new(component))
        .add_service(reflection);
    tokio::spawn(async move {
        router.serve_with_incoming(UnixListenerStream::new(listener)).await.unwrap();
    })
}

/// A host with the component `slow-store` on a [`Sluggish`] server, with
/// `grpc.callTimeout` = `timeout`.
async fn sluggish_host(timeout: &str) -> (Host, Sluggish, tokio::task::JoinHandle<()>, tempfile::TempDir) {
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    let component = Sluggish::default();
    let server = serve(&sockets.join("sluggish.sock"), component.clone());
    let options = GrpcOptions { ping_interval: Duration::from_millis(100), ..GrpcOptions::default() };
    let host = Host::builder()
        .data_dir(dir.path().join("data"))
        .socket_dir(&sockets)
        .grpc_options(options)
        .component(ComponentSpec::new("slow-store", "state.sluggish").with("grpc.callTimeout", timeout))
        .build()
        .await
        .unwrap();
    (host, component, server, dir)
}

/// Before: every slow call answered `Unavailable` (503), tore the connection
/// down and replayed `Init`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_grpc_call_is_deadline_exceeded_and_keeps_the_connection() {
    let (host, component, server, _dir) = sluggish_host("1s").await;
    let store = host.state("slow-store").unwrap();
    for _ in 0..3 {
        let started = Instant::now();
        let err = store.get(GetRequest::new("slow")).await.unwrap_err();
        let took = started.elapsed();
        assert_eq!(
            err,
            ComponentError::DeadlineExceeded { component: "slow-store".into(), after: Duration::from_secs(1) },
            "grpc.callTimeout sets the deadline"
        );
        assert!(took < Duration::from_secs(2), "failed after {took:?}, more than 2x its deadline");
        // The same connection serves the next call at once.
        assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v");
    }
    tokio::time::sleep(Duration::from_millis(300)).await; // a few pings
    assert_eq!(host.components()[0].current_status(), Status::Ready);
    let inits = component.inits.lock().unwrap().clone();
    assert_eq!(inits.len(), 1, "Init was replayed: the connection was torn down");
    assert!(!inits[0].contains_key("grpc.callTimeout"), "plughost's own setting is not sent: {:?}", inits[0]);
    server.abort();
}

/// Before: the 200 KB message broke the connection without marking it
/// down, so the next call failed too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_error_message_fails_only_its_call() {
    let (host, _component, server, _dir) = sluggish_host("5s").await;
    let store = host.state("slow-store").unwrap();
    for _ in 0..2 {
        let err = store.get(GetRequest::new("huge-error")).await.unwrap_err();
        assert!(!matches!(err, ComponentError::Unavailable { .. }), "{:.200}", err.to_string());
        assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"v", "the next call works");
    }
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_grpc_call_timeout_names_the_key() {
    let dir = short_tempdir();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    let server = serve(&sockets.join("sluggish.sock"), Sluggish::default());
    let err = Host::builder()
        .data_dir(dir.path().join("data"))
        .socket_dir(&sockets)
        .component(ComponentSpec::new("slow-store", "state.sluggish").with("grpc.callTimeout", "soon"))
        .build()
        .await
        .err()
        .expect("a bad duration stops start-up");
    let text = format!("{err:#}");
    assert!(text.contains("grpc.callTimeout") && text.contains("soon"), "{text}");
    server.abort();
}

/// A runaway guest on a busy runtime: before, the deadline counted epoch
/// callbacks, and a guest that got the thread only now and then ran far past
/// it (a 300 ms deadline let calls run 0.7 s and more).
#[tokio::test(flavor = "current_thread")]
async fn a_wasm_deadline_is_wall_clock_on_a_busy_runtime() {
    let (host, _dir) =
        crate::support::wasm_host("state", wasm::guest("wasm-state-loop"), &[("wasm.callTimeout", "400ms")]).await;
    let store = host.state("under-test").unwrap();
    // A neighbour that holds the only runtime thread 50 ms at a time.
    let hog = tokio::spawn(async {
        loop {
            std::thread::sleep(Duration::from_millis(50));
            tokio::task::yield_now().await;
        }
    });
    let started = Instant::now();
    let err = store.get(GetRequest::new("boom")).await.unwrap_err();
    let took = started.elapsed();
    hog.abort();
    assert!(matches!(err, ComponentError::DeadlineExceeded { .. }), "{err:?}");
    assert!(took < Duration::from_millis(800), "a 400 ms deadline fired after {took:?}");
}

/// Calls queued behind runaway calls fail at their own deadline (before: each
/// waited for all the runaways ahead of it), and a full queue is refused at
/// once with `ResourceExhausted`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_wasm_calls_count_their_wait_and_a_full_queue_is_refused() {
    let (host, _dir) =
        crate::support::wasm_host("state", wasm::guest("wasm-state-loop"), &[("wasm.callTimeout", "500ms")]).await;
    let store = host.state("under-test").unwrap();
    let runaways: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(GetRequest::new("boom")).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = Instant::now();
    let queued = store.get(GetRequest::new("k")).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "a call queued behind runaways took {took:?} against a 500 ms deadline");
    assert!(matches!(queued, Err(ComponentError::DeadlineExceeded { .. }) | Ok(_)), "{queued:?}");
    for runaway in runaways {
        assert!(matches!(runaway.await.unwrap(), Err(ComponentError::DeadlineExceeded { .. })));
    }

    // One spinning call holds the only instance; fill the queue and one more.
    let max = plughost::wasm::MAX_QUEUED_CALLS;
    let calls: Vec<_> = (0..max + 2)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.get(GetRequest::new("boom")).await })
        })
        .collect();
    let mut refused = 0;
    for call in calls {
        match call.await.unwrap() {
            Err(ComponentError::ResourceExhausted { component, .. }) => {
                assert_eq!(component, "under-test");
                refused += 1;
            }
            Err(ComponentError::DeadlineExceeded { .. }) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(refused >= 1, "the call over the queue limit was queued");
    // The component recovers once the load is gone.
    store.set(SetRequest::new("k", "v")).await.unwrap();
}

/// One HTTP/1.1 keep-alive request on `stream`; the status and the body.
fn http_get(stream: &mut std::net::TcpStream, path: &str) -> std::io::Result<(u16, Vec<u8>)> {
    use std::io::{Read as _, Write as _};
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n")?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&chunk[..n]);
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&got[..head_end]).to_ascii_lowercase();
    let status = head.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    while got.len() < head_end + length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&chunk[..n]);
    }
    Ok((status, got[head_end..head_end + length].to_vec()))
}

/// Checklist 59: runaway guests do not starve the sidecar API. The API runs
/// on this test's runtime (one thread, the worst case); four calls of a
/// guest that spins until its 5 s deadline run at once, and meanwhile a
/// client on its own thread makes 200 sequential HTTP calls to a built-in
/// store. Before, each guest held the API's thread 10 ms at a time (an
/// epoch slice), so every request waited behind all four (~40 ms each) and
/// the 200 calls outlasted the guests' deadline; now a guest call that runs
/// past its first slice continues on plughost's guest runtime, and the 200
/// calls all succeed while the runaway calls are still spinning. The runaway
/// calls then fail with their deadline, within 2x of it.
#[tokio::test(flavor = "current_thread")]
async fn runaway_guests_do_not_starve_the_api_of_a_built_in_store() {
    use plughost::api::ApiConfig;
    const CALLS: usize = 200;
    let deadline = Duration::from_secs(5);
    let wasm_dir = wasm::wasm_dir(&[("spin.wasm", wasm::guest("wasm-state-loop"))]);
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder()
        .data_dir(dir.path().join("data"))
        .wasm_dir(wasm_dir.path())
        .component(ComponentSpec::new("statestore", "state.in-memory").with("keyPrefix", "none"))
        .component(
            ComponentSpec::new("spin", "state.spin")
                .with("wasm.stateless", "true")
                .with("wasm.instances", "4")
                .with("wasm.callTimeout", "5s"),
        )
        .build()
        .await
        .unwrap();
    host.state("statestore").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    let config = ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ApiConfig::default()
    };
    let api = plughost::api::serve(host.registry().clone(), config, std::future::pending()).await.unwrap();

    let spin = host.state("spin").unwrap();
    let started = Instant::now();
    let runaways: Vec<_> = (0..4)
        .map(|_| {
            let spin = spin.clone();
            tokio::spawn(async move { (spin.get(GetRequest::new("boom")).await, started.elapsed()) })
        })
        .collect();
    let (done, finished) = tokio::sync::oneshot::channel();
    let addr = api.http_addr();
    std::thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let answers: Vec<_> =
            (0..CALLS).map(|_| http_get(&mut stream, "/v1.0/state/statestore/k").map_err(|e| e.to_string())).collect();
        let _ = done.send(answers);
    });
    let answers = finished.await.unwrap();
    let still_spinning = runaways.iter().filter(|r| !r.is_finished()).count();
    for answer in &answers {
        assert_eq!(answer.as_ref().map(|(status, body)| (*status, body.as_slice())), Ok((200, &b"v"[..])));
    }
    assert_eq!(
        still_spinning, 4,
        "the {CALLS} calls to the built-in store waited behind the runaway guests until their deadline"
    );
    for runaway in runaways {
        let (outcome, took) = runaway.await.unwrap();
        assert!(
            matches!(&outcome, Err(ComponentError::DeadlineExceeded { component, .. }) if component == "spin"),
            "{outcome:?}"
        );
        assert!(took < deadline * 2, "a 5 s deadline fired after {took:?}");
    }
    api.stop();
    host.shutdown().await;
}
