//! Operating a running `plughost run` (issue 13): the admin API and the CLI
//! that talks to it, the per-operation metrics scraped and parsed, W3C trace
//! context reaching a real gRPC component, pub/sub delivery counts.
//!
//! One process for the whole scenario (starting plughost and a supervised
//! component is the slow part): `kv` (built-in state), `pubsub` (built-in)
//! and `files`, an output binding served by a `grpc-components` process
//! plughost supervises. The binding echoes the `traceparent` and
//! `tracestate` metadata it received as `received-*` response metadata.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use plughost::proto::runtime as rt;
use rt::dapr_client::DaprClient;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use rt::topic_event_response::TopicEventResponseStatus;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::transport::Channel;

use crate::health::prometheus_samples;
use crate::support::grpc::{grpc_components_binary, short_tempdir};
use crate::support::sidecar::{Components, Names, RunningSidecar};

const TOKEN: &str = "ops-t0ken";
const PATIENCE: Duration = Duration::from_secs(60);
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACEPARENT_GRPC: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn yaml(binary: &str, data: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: kv\nspec:\n  type: state.in-memory\n  version: v1\n\
         ---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: pubsub\nspec:\n  type: pubsub.in-memory\n  version: v1\n\
         ---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: files\n  annotations:\n    \
         plughost.io/command: {binary}\n    \
         plughost.io/args: '[\"output-binding\", \"--socket\", \"{{socket}}\", \"--data-dir\", \"{data}\"]'\n    \
         plughost.io/minBackoff: 100ms\n\
         spec:\n  type: bindings.files\n  version: v1\n"
    )
}

/// The HTTP side: every call with the token.
struct Http {
    base: String,
    client: reqwest::Client,
}

impl Http {
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
        let response = request.header("dapr-api-token", TOKEN).send().await.unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        (status, headers, response.text().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let (status, _, body) = self.send(self.client.get(format!("{}{path}", self.base))).await;
        (status, body)
    }

    async fn post(&self, path: &str, body: &str) -> (u16, String) {
        let (status, _, body) = self.send(self.client.post(format!("{}{path}", self.base)).body(body.to_owned())).await;
        (status, body)
    }

    async fn components(&self) -> Value {
        let (status, body) = self.get("/v1.0-plughost/components").await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    async fn component(&self, name: &str) -> Value {
        let listing = self.components().await;
        listing["components"].as_array().unwrap().iter().find(|c| c["name"] == name).cloned().unwrap()
    }
}

/// Adds the token (and a traceparent, if set) to every gRPC call.
#[derive(Clone)]
struct Headers(Option<&'static str>);

impl tonic::service::Interceptor for Headers {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert("dapr-api-token", TOKEN.parse().unwrap());
        if let Some(traceparent) = self.0 {
            request.metadata_mut().insert("traceparent", traceparent.parse().unwrap());
        }
        Ok(request)
    }
}

type Client = DaprClient<tonic::service::interceptor::InterceptedService<Channel, Headers>>;

async fn grpc_client(sidecar: &RunningSidecar, traceparent: Option<&'static str>) -> Client {
    let channel = Channel::from_shared(format!("http://{}", sidecar.grpc)).unwrap().connect().await.unwrap();
    DaprClient::with_interceptor(channel, Headers(traceparent))
}

fn get_kv(key: &str) -> rt::GetStateRequest {
    rt::GetStateRequest { store_name: "kv".into(), key: key.into(), ..Default::default() }
}

fn list_files() -> rt::InvokeBindingRequest {
    rt::InvokeBindingRequest { name: "files".into(), operation: "list".into(), ..Default::default() }
}

fn plughost_cli(sidecar: &RunningSidecar, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(args)
        .args(["--dapr-http-port", &sidecar.http.port().to_string(), "--api-token", TOKEN])
        .env_remove("DAPR_HTTP_PORT")
        .env_remove("DAPR_API_TOKEN")
        .output()
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    (output.status.success(), text(output.stdout), text(output.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_see_and_steer_every_component() {
    let dir = short_tempdir();
    let sockets = dir.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let binary = grpc_components_binary().display().to_string();
    let files_data = dir.path().join("files");
    std::fs::write(dir.path().join("components.yaml"), yaml(&binary, files_data.to_str().unwrap())).unwrap();
    let components = Components {
        _keep: Vec::new(),
        dir,
        wasm_dir: None,
        names: Names {
            store: "kv".into(),
            pubsub: "pubsub".into(),
            binding: "files".into(),
            secret_store: String::new(),
        },
        args: vec!["--sockets-dir".into(), sockets.into()],
    };
    let mut sidecar = RunningSidecar::start(&components, &["--api-token", TOKEN]);
    let http = Http { base: format!("http://{}", sidecar.http), client: reqwest::Client::new() };

    // The admin API is behind the token like every other route.
    let anonymous = http.client.get(format!("{}/v1.0-plughost/components", http.base)).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    // The listing: mode, type, source, status, health, process, generation.
    let listing = http.components().await;
    assert_eq!(listing["pid"], sidecar.pid(), "{listing}");
    let kv = http.component("kv").await;
    assert_eq!(
        (&kv["mode"], &kv["type"], &kv["source"], &kv["enabled"], &kv["generation"], &kv["calls"]),
        (&"builtin".into(), &"state.in-memory".into(), &"builtin".into(), &true.into(), &1.into(), &0.into()),
        "{kv}"
    );
    assert_eq!((&kv["status"], &kv["process"], &kv["restarts"]), (&"ready".into(), &Value::Null, &0.into()), "{kv}");
    let files = http.component("files").await;
    assert_eq!((&files["mode"], &files["kinds"]), (&"grpc".into(), &serde_json::json!(["output-binding"])), "{files}");
    assert!(files["source"].as_str().unwrap().ends_with("files.sock"), "{files}");
    assert_eq!(files["process"]["state"], "running", "{files}");
    let first_pid = files["process"]["pid"].as_u64().expect("a pid");

    // Calls: three sets and a get over HTTP, a get over gRPC.
    for key in ["a", "b", "c"] {
        let (status, body) = http.post("/v1.0/state/kv", &format!(r#"[{{"key":"{key}","value":1}}]"#)).await;
        assert_eq!(status, 204, "{body}");
    }
    assert_eq!(http.get("/v1.0/state/kv/a").await.0, 200);
    let mut grpc = grpc_client(&sidecar, None).await;
    grpc.get_state(get_kv("a")).await.unwrap();

    // Trace context: exactly what came in reaches the gRPC component, over
    // both APIs; a call without it carries none.
    let request = http
        .client
        .post(format!("{}/v1.0/bindings/files", http.base))
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")
        .body(r#"{"operation":"list"}"#);
    let (status, headers, body) = http.send(request).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["metadata.received-traceparent"], TRACEPARENT, "{headers:?}");
    assert_eq!(headers["metadata.received-tracestate"], "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7");
    let mut traced = grpc_client(&sidecar, Some(TRACEPARENT_GRPC)).await;
    let answer = traced.invoke_binding(list_files()).await.unwrap().into_inner();
    assert_eq!(answer.metadata.get("received-traceparent").map(String::as_str), Some(TRACEPARENT_GRPC));
    assert!(!answer.metadata.contains_key("received-tracestate"), "{:?}", answer.metadata);
    let untraced = grpc.invoke_binding(list_files()).await.unwrap().into_inner();
    assert!(!untraced.metadata.contains_key("received-traceparent"), "{:?}", untraced.metadata);
    // An invalid traceparent is not passed on.
    let request = http
        .client
        .post(format!("{}/v1.0/bindings/files", http.base))
        .header("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")
        .body(r#"{"operation":"list"}"#);
    let (status, headers, body) = http.send(request).await;
    assert_eq!(status, 200, "{body}");
    assert!(!headers.contains_key("metadata.received-traceparent"), "{headers:?}");

    // Disable: calls fail fast with UNAVAILABLE (HTTP 503), naming why.
    assert_eq!(http.post("/v1.0-plughost/components/kv/disable", "").await.0, 204);
    let (status, body) = http.get("/v1.0/state/kv/a").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("ERR_STATE_GET") && body.contains("disabled by an operator"), "{body}");
    let refused = grpc.get_state(get_kv("a")).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert_eq!(http.component("kv").await["enabled"], false);
    // The CLI reads the running instance and says which.
    let (ok, stdout, stderr) = plughost_cli(&sidecar, &["components", "list"]);
    assert!(ok, "{stderr}");
    let header = stdout.lines().next().unwrap();
    assert!(header.contains(&format!("127.0.0.1:{}", sidecar.http.port())), "{stdout}");
    assert!(header.contains(&format!("pid {}", sidecar.pid())), "{stdout}");
    let row: Vec<&str> = stdout.lines().find(|l| l.starts_with("kv ")).unwrap().split_whitespace().collect();
    assert_eq!(row, ["kv", "state", "state.in-memory", "builtin", "ready", "false", "0", "7"], "{stdout}");
    let (ok, stdout, stderr) = plughost_cli(&sidecar, &["components", "enable", "kv"]);
    assert!(ok && stdout.contains("component `kv` enabled"), "{stdout}{stderr}");
    assert_eq!(http.get("/v1.0/state/kv/a").await.0, 200);
    assert_eq!(http.component("kv").await["enabled"], true);

    // Reload: a fresh instance by a handover (the in-memory store starts
    // empty), one generation more; over HTTP and through the CLI.
    let generation = http.component("kv").await["generation"].as_u64().unwrap();
    let (status, body) = http.post("/v1.0-plughost/components/kv/reload", "").await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(http.component("kv").await["generation"].as_u64().unwrap(), generation + 1);
    assert_eq!(http.get("/v1.0/state/kv/a").await.0, 204, "a fresh in-memory instance");
    let (ok, stdout, stderr) = plughost_cli(&sidecar, &["components", "reload", "kv"]);
    assert!(ok, "{stdout}{stderr}");
    assert_eq!(http.component("kv").await["generation"].as_u64().unwrap(), generation + 2);
    let (status, body) = http.post("/v1.0-plughost/components/kv/restart", "").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("no supervised process"), "{body}");
    assert_eq!(http.post("/v1.0-plughost/components/nope/disable", "").await.0, 404);

    // Restart the binding's process: a new PID, counted; calls work again.
    let (ok, stdout, stderr) = plughost_cli(&sidecar, &["components", "restart", "files"]);
    assert!(ok, "{stdout}{stderr}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        let files = http.component("files").await;
        let process = &files["process"];
        if process["state"] == "running" && process["restarts"] == 1 && process["pid"].as_u64() != Some(first_pid) {
            assert_eq!(files["restarts"], 1, "{files}");
            break;
        }
        assert!(Instant::now() < deadline, "never restarted: {files}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deadline = Instant::now() + PATIENCE;
    while let Err(e) = grpc.invoke_binding(list_files()).await {
        assert!(Instant::now() < deadline, "the binding never answered again: {e:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Pub/sub over a streaming subscription: one acked, one retried then
    // dropped.
    let (send, rx) = mpsc::channel(8);
    let initial = rt::SubscribeTopicEventsRequestInitialAlpha1 {
        pubsub_name: "pubsub".into(),
        topic: "orders".into(),
        ..Default::default()
    };
    send.send(rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::InitialRequest(initial)),
    })
    .await
    .unwrap();
    let mut events = grpc.subscribe_topic_events_alpha1(ReceiverStream::new(rx)).await.unwrap().into_inner();
    events.message().await.unwrap().expect("initial response");
    for data in ["one", "two"] {
        let publish = rt::PublishEventRequest {
            pubsub_name: "pubsub".into(),
            topic: "orders".into(),
            data: data.as_bytes().to_vec(),
            data_content_type: "text/plain".into(),
            ..Default::default()
        };
        grpc.publish_event(publish).await.unwrap();
    }
    let answer = |id: String, status: TopicEventResponseStatus| rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::EventProcessed(
            rt::SubscribeTopicEventsRequestProcessedAlpha1 {
                id,
                status: Some(rt::TopicEventResponse { status: status as i32 }),
            },
        )),
    };
    let mut retried = false;
    for _ in 0..3 {
        let next = tokio::time::timeout(PATIENCE, events.message()).await.unwrap().unwrap().unwrap();
        let Some(Outgoing::EventMessage(event)) = next.subscribe_topic_events_response_type else { panic!("an event") };
        let status = match (event.data.as_slice(), retried) {
            (b"one", _) => TopicEventResponseStatus::Success,
            (_, false) => {
                retried = true;
                TopicEventResponseStatus::Retry
            }
            (_, true) => TopicEventResponseStatus::Drop,
        };
        send.send(answer(event.id, status)).await.unwrap();
    }

    // The metrics, scraped and parsed; values checked.
    sidecar.drain_log();
    let line = sidecar.log.iter().find(|l| l.contains("Prometheus metrics on")).expect("a metrics line");
    let addr = line.rsplit("metrics=").next().unwrap().split_whitespace().next().unwrap().to_owned();
    let scrape = || async {
        let text = reqwest::get(format!("http://{addr}/metrics")).await.unwrap().text().await.unwrap();
        (prometheus_samples(&text), text)
    };
    // The last answer (DROP) is processed asynchronously: wait for it.
    let dropped = r#"plughost_pubsub_messages_total{component="pubsub",subscriber="stream",outcome="dropped"}"#;
    let deadline = Instant::now() + PATIENCE;
    let (samples, text) = loop {
        let (samples, text) = scrape().await;
        if samples.get(dropped) == Some(&1.0) || Instant::now() > deadline {
            break (samples, text);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sample = |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"));
    let kv = |metric: &str, operation: &str| {
        sample(&format!(r#"{metric}{{component="kv",kind="state",mode="builtin",operation="{operation}"}}"#))
    };
    assert_eq!(kv("plughost_component_calls_total", "set"), 3.0);
    // get: HTTP, gRPC, both refused while disabled, HTTP after enabling,
    // HTTP after the reload (the same series across instances).
    assert_eq!(kv("plughost_component_calls_total", "get"), 6.0);
    assert_eq!(kv("plughost_component_call_seconds_count", "get"), 6.0);
    assert_eq!(
        sample(
            r#"plughost_component_call_errors_total{component="kv",kind="state",mode="builtin",operation="get",outcome="unavailable"}"#
        ),
        2.0
    );
    assert!(!text.contains(r#"operation="get",outcome="not_found""#), "{text}");
    let invokes = sample(
        r#"plughost_component_calls_total{component="files",kind="output-binding",mode="grpc",operation="invoke"}"#,
    );
    assert!(invokes >= 5.0, "{invokes}");
    assert_eq!(sample(r#"plughost_component_process_restarts_total{component="files"}"#), 1.0);
    assert_eq!(sample(r#"plughost_sidecar_grpc_requests_total{method="GetState",status="OK"}"#), 1.0);
    assert_eq!(sample(r#"plughost_sidecar_grpc_requests_total{method="GetState",status="UNAVAILABLE"}"#), 1.0);
    assert_eq!(sample(r#"plughost_sidecar_grpc_requests_total{method="PublishEvent",status="OK"}"#), 2.0);
    assert!(sample(r#"plughost_sidecar_grpc_requests_total{method="InvokeBinding",status="OK"}"#) >= 3.0);
    assert_eq!(sample(r#"plughost_sidecar_http_requests_total{method="GET",status="503"}"#), 1.0);
    let pubsub = |outcome: &str| {
        sample(&format!(
            r#"plughost_pubsub_messages_total{{component="pubsub",subscriber="stream",outcome="{outcome}"}}"#
        ))
    };
    let counts: HashMap<&str, f64> = ["delivered", "acked", "retried", "dropped"].map(|o| (o, pubsub(o))).into();
    assert_eq!(counts, HashMap::from([("delivered", 3.0), ("acked", 1.0), ("retried", 1.0), ("dropped", 1.0)]));
    // Labels stay bounded: no key, topic or PID in any series.
    for forbidden in ["\"a\"".to_owned(), "orders".to_owned(), format!("\"{first_pid}\"")] {
        assert!(!text.lines().any(|l| !l.starts_with('#') && l.contains(&forbidden)), "{forbidden} in\n{text}");
    }
    drop(send);
}

/// WASM instance counters, in-process: a runaway guest past its deadline
/// and one out of fuel are each counted once (with the instance recycled
/// and the call's error outcome); names unique to this test, since the
/// metrics are process-wide.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wasm_deadlines_fuel_and_recycles_are_counted() {
    use plughost::config::ComponentSpec;
    use plughost::kinds::state::GetRequest;

    let dir = crate::support::wasm::wasm_dir(&[("loop.wasm", crate::support::wasm::guest("wasm-state-loop"))]);
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(ComponentSpec::new("ops-deadline", "state.loop").with("wasm.callTimeout", "300ms"))
        .component(
            ComponentSpec::new("ops-fuel", "state.loop").with("wasm.fuel", "5000000").with("wasm.callTimeout", "30s"),
        )
        .build()
        .await
        .unwrap();
    // After the start-up health probe (the next is 5 s away): a ping queued
    // behind the runaway call would hit its deadline too.
    let deadline = Instant::now() + PATIENCE;
    while host.components().iter().any(|c| c.health.last_probe().is_none()) {
        assert!(Instant::now() < deadline, "never probed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for name in ["ops-deadline", "ops-fuel"] {
        host.state(name).unwrap().get(GetRequest::new("boom")).await.unwrap_err();
    }
    let text = plughost::metrics::global().encode();
    let samples = prometheus_samples(&text);
    let sample = |series: &str| samples.get(series).copied().unwrap_or_else(|| panic!("no {series} in\n{text}"));
    assert_eq!(sample(r#"plughost_wasm_deadline_hits_total{component="ops-deadline"}"#), 1.0);
    assert_eq!(sample(r#"plughost_wasm_instance_recycles_total{component="ops-deadline",cause="deadline"}"#), 1.0);
    assert_eq!(sample(r#"plughost_wasm_fuel_exhausted_total{component="ops-fuel"}"#), 1.0);
    assert_eq!(sample(r#"plughost_wasm_instance_recycles_total{component="ops-fuel",cause="fuel"}"#), 1.0);
    assert!(!samples.contains_key(r#"plughost_wasm_deadline_hits_total{component="ops-fuel"}"#), "{text}");
    let error = |name: &str, outcome: &str| {
        sample(&format!(
            r#"plughost_component_call_errors_total{{component="{name}",kind="state",mode="wasm",operation="get",outcome="{outcome}"}}"#
        ))
    };
    assert_eq!(error("ops-deadline", "deadline_exceeded"), 1.0);
    assert_eq!(error("ops-fuel", "internal"), 1.0);
    host.shutdown().await;
}

/// A log line written during a WASM call (the trap's warning) carries the
/// trace context of the sidecar call it serves, through its span.
#[tokio::test(flavor = "current_thread")]
async fn wasm_call_log_lines_carry_the_trace_context() {
    use std::sync::{Arc, Mutex};

    use plughost::config::ComponentSpec;
    use plughost::kinds::state::GetRequest;
    use plughost::ops::trace::TraceContext;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().with_ansi(false).with_writer(move || writer.clone()).finish();
    // This thread only: the runtime is current-thread, so the call runs here.
    let _guard = tracing::subscriber::set_default(subscriber);

    let dir = crate::support::wasm::wasm_dir(&[("trap.wasm", crate::support::wasm::guest("wasm-state-trap"))]);
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(dir.path())
        .component(ComponentSpec::new("ops-trap", "state.trap"))
        .build()
        .await
        .unwrap();
    let context = TraceContext::parse(Some(TRACEPARENT.as_bytes()), Some(b"congo=t61rcWkgMzE")).unwrap();
    let store = host.state("ops-trap").unwrap();
    context.scope(store.get(GetRequest::new("boom"))).await.unwrap_err();
    host.shutdown().await;
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let line =
        log.lines().find(|l| l.contains("replacing the instance")).unwrap_or_else(|| panic!("no trap line:\n{log}"));
    assert!(line.contains(&format!("traceparent={TRACEPARENT}")) && line.contains("congo=t61rcWkgMzE"), "{line}");
}

/// The app channel's pub/sub counters, in-process: an HTTP app (axum) that
/// answers SUCCESS to one message and RETRY, then DROP, to the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_channel_deliveries_are_counted() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use plughost::api::{ApiConfig, serve};
    use plughost::appchannel::AppConfig;
    use plughost::config::ComponentSpec;

    const PUBSUB: &str = "ops-app-pubsub";
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .component(ComponentSpec::new(PUBSUB, "pubsub.in-memory"))
        .build()
        .await
        .unwrap();
    let config = ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..ApiConfig::default()
    };
    let api = serve(host.registry().clone(), config, std::future::pending()).await.unwrap();

    let retried = Arc::new(AtomicBool::new(false));
    let app = axum::Router::new()
        .route(
            "/dapr/subscribe",
            axum::routing::get(|| async {
                axum::Json(serde_json::json!([{ "pubsubname": PUBSUB, "topic": "t", "route": "/events" }]))
            }),
        )
        .route(
            "/events",
            axum::routing::post(move |axum::Json(event): axum::Json<Value>| {
                let retried = retried.clone();
                async move {
                    let status = match event["data"].as_str() {
                        Some("one") => "SUCCESS",
                        _ if !retried.swap(true, Ordering::SeqCst) => "RETRY",
                        _ => "DROP",
                    };
                    axum::Json(serde_json::json!({ "status": status }))
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    plughost::appchannel::start(api.sidecar().clone(), AppConfig::new(port));
    let deadline = Instant::now() + PATIENCE;
    while !api.sidecar().subscriptions().iter().any(|s| s.pubsub == PUBSUB) {
        assert!(Instant::now() < deadline, "the app never subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for message in ["one", "two"] {
        api.sidecar().publish(PUBSUB, "t", message.as_bytes(), "text/plain", Default::default()).await.unwrap();
    }

    let count = |outcome: &str| {
        let text = plughost::metrics::global().encode();
        let series =
            format!(r#"plughost_pubsub_messages_total{{component="{PUBSUB}",subscriber="app",outcome="{outcome}"}}"#);
        prometheus_samples(&text).get(&series).copied().unwrap_or_default()
    };
    let deadline = Instant::now() + PATIENCE;
    while count("dropped") < 1.0 {
        assert!(Instant::now() < deadline, "the second message was never dropped");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let counts: HashMap<&str, f64> = ["delivered", "acked", "retried", "dropped"].map(|o| (o, count(o))).into();
    assert_eq!(counts, HashMap::from([("delivered", 3.0), ("acked", 1.0), ("retried", 1.0), ("dropped", 1.0)]));
    api.stop();
    api.wait().await;
    host.shutdown().await;
}
