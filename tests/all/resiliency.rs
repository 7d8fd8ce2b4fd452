//! Resiliency policies (`kind: Resiliency` in the components folder) on real
//! gRPC components: a `grpc-components` process killed and restarted, and an
//! in-process gRPC state store on a real socket whose faults the test turns
//! on and off and whose calls it counts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use plughost::Host;
use plughost::api::{self, ApiConfig};
use plughost::kinds::ComponentError;
use plughost::kinds::state::{DeleteRequest, GetRequest, SetRequest};
use plughost::pluggable::GrpcOptions;
use plughost::proto::components as pb;
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::support::grpc::{ComponentProcess, Program, quick_options, short_tempdir, socket_host};

/// [`quick_options`], reconnecting quickly too.
fn quick() -> GrpcOptions {
    GrpcOptions { min_backoff: Duration::from_millis(50), max_backoff: Duration::from_millis(200), ..quick_options() }
}

/// A temporary folder with `s/` for sockets and `components/` holding
/// `store` (type `state.<socket>`) and `resiliency` as a second document.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(socket: &str, resiliency: &str) -> Self {
        let dir = short_tempdir();
        std::fs::create_dir(dir.path().join("s")).unwrap();
        std::fs::create_dir(dir.path().join("components")).unwrap();
        let yaml = format!(
            "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: store\nspec:\n  type: state.{socket}\n  \
             version: v1\n---\napiVersion: dapr.io/v1alpha1\nkind: Resiliency\nmetadata:\n  name: res\nspec:\n{resiliency}"
        );
        std::fs::write(dir.path().join("components/components.yaml"), yaml).unwrap();
        Self { dir }
    }

    fn socket(&self, name: &str) -> PathBuf {
        self.dir.path().join("s").join(format!("{name}.sock"))
    }

    async fn host(&self) -> Host {
        socket_host(self.dir.path(), &self.dir.path().join("s"), quick())
            .components_dir(self.dir.path().join("components"))
            .build()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retry_policy_rides_out_a_component_process_restart() {
    let setup = Setup::new(
        "kv",
        "  policies:\n    retries:\n      patient: { policy: constant, duration: 100ms, maxRetries: 100 }\n  \
         targets:\n    components:\n      store: { outbound: { retry: patient } }\n",
    );
    let socket = setup.socket("kv");
    let data = setup.dir.path().join("cdata");
    let mut process =
        tokio::task::spawn_blocking(move || ComponentProcess::start(Program::Rust("state"), socket, data))
            .await
            .unwrap();
    let host = setup.host().await;
    let store = host.state("store").unwrap();
    store.set(SetRequest::new("k", "before")).await.unwrap();

    // Down: without a policy every call fails at once (see
    // grpc::calls_fail_fast_while_the_process_is_down...); with it the call
    // keeps trying until the process is back and the host has replayed Init.
    process.kill();
    let restart = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(700));
        process.restart();
        process
    });
    store.set(SetRequest::new("k", "after")).await.expect("retried until the restarted process answered");
    let _process = restart.join().unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"after");
}

/// A gRPC state store whose faults the test controls, counting calls.
#[derive(Default, Clone)]
struct Flaky {
    /// `Get` fails with INTERNAL this many more times.
    get_failures: Arc<AtomicU64>,
    /// `Get` fails with INTERNAL while this is set.
    broken: Arc<AtomicBool>,
    gets: Arc<AtomicU64>,
    sets: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl pb::state_store_server::StateStore for Flaky {
    async fn init(&self, _: Request<pb::InitRequest>) -> Result<Response<pb::InitResponse>, Status> {
        Ok(Response::new(pb::InitResponse {}))
    }
    async fn features(&self, _: Request<pb::FeaturesRequest>) -> Result<Response<pb::FeaturesResponse>, Status> {
        Ok(Response::new(pb::FeaturesResponse { features: vec!["ETAG".into()] }))
    }
    async fn ping(&self, _: Request<pb::PingRequest>) -> Result<Response<pb::PingResponse>, Status> {
        Ok(Response::new(pb::PingResponse {}))
    }
    async fn get(&self, _: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        self.gets.fetch_add(1, Ordering::SeqCst);
        let scheduled =
            self.get_failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if scheduled || self.broken.load(Ordering::SeqCst) {
            return Err(Status::internal("backend connection refused"));
        }
        Ok(Response::new(pb::GetResponse {
            data: b"v".to_vec(),
            etag: Some(pb::Etag { value: "1".into() }),
            ..Default::default()
        }))
    }
    async fn set(&self, r: Request<pb::SetRequest>) -> Result<Response<pb::SetResponse>, Status> {
        self.sets.fetch_add(1, Ordering::SeqCst);
        if r.get_ref().etag.as_ref().is_some_and(|e| e.value != "1") {
            let details = tonic_types::ErrorDetails::with_bad_request_violation("etag", "possible etag mismatch");
            return Err(<Status as tonic_types::StatusExt>::with_error_details(
                tonic::Code::FailedPrecondition,
                "etag mismatch",
                details,
            ));
        }
        Ok(Response::new(pb::SetResponse {}))
    }
    async fn delete(&self, _: Request<pb::DeleteRequest>) -> Result<Response<pb::DeleteResponse>, Status> {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(Response::new(pb::DeleteResponse {}))
    }
}

/// Serves `flaky` on `socket`, with the reflection discovery needs; stopped
/// when dropped.
struct Served(tokio::task::JoinHandle<()>);

impl Drop for Served {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn serve(socket: &Path, flaky: Flaky) -> Served {
    let listener = UnixListener::bind(socket).unwrap();
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(plughost::proto::FILE_DESCRIPTOR_SET)
        .with_service_name("dapr.proto.components.v1.StateStore")
        .build_v1()
        .unwrap();
    let router = tonic::transport::Server::builder()
        .add_service(pb::state_store_server::StateStoreServer::new(flaky))
        .add_service(reflection);
    Served(tokio::spawn(async move {
        router.serve_with_incoming(UnixListenerStream::new(listener)).await.unwrap();
    }))
}

async fn flaky_host(resiliency: &str) -> (Setup, Flaky, Served, Host) {
    let setup = Setup::new("flaky", resiliency);
    let flaky = Flaky::default();
    let served = serve(&setup.socket("flaky"), flaky.clone());
    let host = setup.host().await;
    (setup, flaky, served, host)
}

const RETRY_FIVE: &str = "  policies:\n    retries:\n      five: { policy: constant, duration: 20ms, maxRetries: 5 }\n  \
                          targets:\n    components:\n      store: { outbound: { retry: five } }\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_errors_are_retried_up_to_max_retries() {
    let (_setup, flaky, _served, host) = flaky_host(RETRY_FIVE).await;
    let store = host.state("store").unwrap();

    flaky.get_failures.store(3, Ordering::SeqCst);
    let item = store.get(GetRequest::new("k")).await.expect("the fourth attempt succeeds");
    assert_eq!(item.unwrap().data, b"v");
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 4, "three failures, then the success");

    flaky.gets.store(0, Ordering::SeqCst);
    flaky.get_failures.store(100, Ordering::SeqCst);
    let err = store.get(GetRequest::new("k")).await.unwrap_err();
    assert!(matches!(&err, ComponentError::Internal(m) if m.contains("connection refused")), "{err:?}");
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 6, "the call and its five retries");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_etag_conflict_is_never_retried() {
    let (_setup, flaky, _served, host) = flaky_host(RETRY_FIVE).await;
    let store = host.state("store").unwrap();
    let err = store.set(SetRequest::new("k", "v").with_etag("stale")).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagMismatch { .. }), "{err:?}");
    assert_eq!(flaky.sets.load(Ordering::SeqCst), 1, "one call: the caller must re-read, not retry");
    store.set(SetRequest::new("k", "v").with_etag("1")).await.unwrap();
    assert_eq!(flaky.sets.load(Ordering::SeqCst), 2);
    // The same policy does retry a transient failure.
    flaky.get_failures.store(1, Ordering::SeqCst);
    store.get(GetRequest::new("k")).await.unwrap();
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_policy_turns_a_slow_call_into_deadline_exceeded() {
    let (_setup, _flaky, _served, host) = flaky_host(
        "  policies:\n    timeouts:\n      quick: 300ms\n  targets:\n    components:\n      store: { outbound: { timeout: quick } }\n",
    )
    .await;
    let store = host.state("store").unwrap();
    let started = Instant::now();
    let err = store.delete(DeleteRequest::new("k")).await.unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&err, ComponentError::DeadlineExceeded { component, after } if component == "store" && *after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(took < Duration::from_secs(3), "the component sleeps 30 s; the policy answered after {took:?}");
    // The connection survived: the next call works.
    store.set(SetRequest::new("k", "v")).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_circuit_breaker_opens_fails_fast_with_503_and_closes_after_a_half_open_probe() {
    let (_setup, flaky, _served, host) = flaky_host(
        "  policies:\n    circuitBreakers:\n      cb:\n        maxRequests: 1\n        timeout: 1s\n        \
         trip: consecutiveFailures >= 3\n  targets:\n    components:\n      store:\n        outbound:\n          \
         circuitBreaker: cb\n",
    )
    .await;
    let config = ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ApiConfig::default()
    };
    let api = api::serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
    let url = format!("http://{}/v1.0/state/store/k", api.http_addr());
    let http = reqwest::Client::new();
    let get = async || http.get(&url).send().await.unwrap().status().as_u16();

    flaky.broken.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        assert_eq!(get().await, 500, "the component's own failure");
    }
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 3);
    // Open: refused without reaching the component, as UNAVAILABLE / 503.
    for _ in 0..3 {
        assert_eq!(get().await, 503);
    }
    let response = http.get(&url).send().await.unwrap();
    let body = response.text().await.unwrap();
    assert!(body.contains("circuit breaker `cb` is open"), "{body}");
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 3, "no call reached the component while open");

    // After `timeout` one probe goes through; while the component still fails,
    // the failed probe opens the breaker again.
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get().await, 500, "the half-open probe reaches the component");
    assert_eq!(get().await, 503, "open again after the failed probe");
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 4);

    // Healthy again: the next probe succeeds and the breaker closes.
    flaky.broken.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(get().await, 200, "the half-open probe");
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 5);
    for _ in 0..3 {
        assert_eq!(get().await, 200, "closed again");
    }
    assert_eq!(flaky.gets.load(Ordering::SeqCst), 8);
    api.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_wasm_a_timeout_cancels_a_stuck_guest_and_the_breaker_then_fails_fast() {
    let wasm = crate::support::wasm::wasm_dir(&[("probe.wasm", crate::support::wasm::guest("wasm-state-probe"))]);
    let setup = Setup::new(
        "probe",
        "  policies:\n    timeouts: { short: 300ms }\n    circuitBreakers:\n      cb: { timeout: 1h, trip: consecutiveFailures >= 2 }\n  \
         targets:\n    components:\n      store: { outbound: { timeout: short, circuitBreaker: cb } }\n",
    );
    let host = Host::builder()
        .data_dir(setup.dir.path().join("data"))
        .wasm_dir(wasm.path())
        .components_dir(setup.dir.path().join("components"))
        .build()
        .await
        .unwrap();
    let store = host.state("store").unwrap();
    store.set(SetRequest::new("k", "v")).await.unwrap();
    for _ in 0..2 {
        let started = Instant::now();
        // The guest sleeps 5 s in a WASI call (its own deadline is 5 s too).
        let err = store.get(GetRequest::new("probe:sleep:5000")).await.unwrap_err();
        assert!(matches!(err, ComponentError::DeadlineExceeded { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3), "answered after {:?}", started.elapsed());
    }
    let err = store.get(GetRequest::new("k")).await.unwrap_err();
    assert!(
        matches!(&err, ComponentError::Unavailable { component, reason } if component == "store" && reason.contains("circuit breaker `cb` is open")),
        "{err:?}"
    );
}
