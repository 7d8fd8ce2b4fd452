//! The periodic health probe (every mode) and what shows it: the host's
//! component listing, `/v1.0/healthz/outbound` and the metadata API.

use std::time::{Duration, Instant};

use plughost::Host;
use plughost::component::Status;
use plughost::config::ComponentSpec;
use plughost::health::HealthOptions;
use serde_json::Value;

use crate::support::grpc::{grpc_components_binary, short_tempdir};
use crate::support::sidecar::{Components, Names, RunningSidecar};

const PATIENCE: Duration = Duration::from_secs(60);

async fn until<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(Instant::now() < deadline, "never {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A built-in component (`bindings.localstorage`, whose ping checks its
/// root folder) goes unavailable when its probe fails and recovers when it
/// passes again; the probe's latency and the last error are kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_native_component_follows_its_probe() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("files");
    std::fs::create_dir(&root).unwrap();
    let spec = ComponentSpec::new("files", "bindings.localstorage").with("rootPath", root.to_str().unwrap());
    let options = HealthOptions { interval: Duration::from_millis(50), timeout: Duration::from_secs(2) };
    let host = Host::builder()
        .data_dir(dir.path().join("data"))
        .component(spec)
        .health_options(options)
        .build()
        .await
        .unwrap();
    let info = || host.components().iter().find(|c| c.name == "files").unwrap().clone();
    let probe = until("probed", || info().health.last_probe()).await;
    assert!(probe.ok && probe.error.is_none(), "{probe:?}");
    assert_eq!(info().current_status(), Status::Ready);

    std::fs::remove_dir(&root).unwrap();
    let status = until("unavailable", || Some(info().current_status()).filter(|s| *s != Status::Ready)).await;
    assert!(status.to_string().contains("output-binding ping failed"), "{status}");
    let probe = info().health.last_probe().unwrap();
    assert!(!probe.ok && probe.error.as_deref().unwrap_or_default().contains("files"), "{probe:?}");

    std::fs::create_dir(&root).unwrap();
    until("ready again", || Some(()).filter(|_| info().current_status() == Status::Ready)).await;
    let (error, _) = info().health.last_error().expect("the last error is kept after recovery");
    assert!(error.contains("ping failed"), "{error}");
    host.shutdown().await;
}

/// Through `plughost run`: a supervised gRPC component SIGKILLed makes
/// `/v1.0/healthz/outbound` answer 500 naming it and the metadata API show
/// it unavailable; once restarted both say healthy again, the metadata
/// keeping the last error. `/v1.0/healthz` (liveness) stays 204. The
/// metrics endpoint, scraped and parsed, counts the restart, the requests
/// by status and the probes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_transitions_show_in_the_sidecar_api() {
    let dir = short_tempdir();
    let sockets = dir.path().join("sockets");
    std::fs::create_dir(&sockets).unwrap();
    let binary = grpc_components_binary().display().to_string();
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: orders\n  annotations:\n    \
         plughost.io/command: {binary}\n    plughost.io/args: '[\"state\", \"--socket\", \"{{socket}}\"]'\n    \
         plughost.io/minBackoff: 4s\nspec:\n  type: state.orders\n  version: v1\n"
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
        args: vec!["--sockets-dir".into(), sockets.into()],
    };
    let mut sidecar = RunningSidecar::start(&components, &[]);
    let http = format!("http://{}", sidecar.http);
    let client = reqwest::Client::new();
    let get = |path: &str| {
        let request = client.get(format!("{http}{path}"));
        async move {
            let response = request.send().await.unwrap();
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let orders = |metadata: &str| {
        let metadata: Value = serde_json::from_str(metadata).unwrap();
        metadata["components"].as_array().unwrap().iter().find(|c| c["name"] == "orders").cloned().unwrap()
    };
    assert_eq!(get("/v1.0/healthz/outbound").await.0, 204);
    let component = orders(&get("/v1.0/metadata").await.1);
    assert_eq!(component["status"], "ready", "{component}");

    let pid = *crate::supervisor::children_of(sidecar.pid()).first().expect("a component process") as i32;
    // SAFETY: the component process plughost started.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
    // Down for at least minBackoff (4 s).
    let deadline = Instant::now() + PATIENCE;
    let (status, body) = loop {
        let (status, body) = get("/v1.0/healthz/outbound").await;
        if status != 204 || Instant::now() > deadline {
            break (status, body);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("ERR_OUTBOUND_HEALTH_NOT_READY") && body.contains("orders (unavailable"), "{body}");
    let component = orders(&get("/v1.0/metadata").await.1);
    assert!(component["status"].as_str().unwrap().starts_with("unavailable"), "{component}");
    assert_eq!(get("/v1.0/healthz").await.0, 204, "liveness does not follow component health");

    let deadline = Instant::now() + PATIENCE;
    while get("/v1.0/healthz/outbound").await.0 != 204 {
        assert!(Instant::now() < deadline, "never healthy again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let component = orders(&get("/v1.0/metadata").await.1);
    assert_eq!(component["status"], "ready", "{component}");
    assert!(!component["health"]["lastError"].as_str().unwrap_or_default().is_empty(), "{component}");
    assert!(component["health"]["lastErrorAt"].is_string(), "{component}");

    // The same events in the Prometheus metrics (`--metrics-port 0`).
    sidecar.drain_log();
    let line = sidecar.log.iter().find(|l| l.contains("Prometheus metrics on")).expect("a metrics line");
    let addr = line.rsplit("metrics=").next().unwrap().split_whitespace().next().unwrap();
    let text = client.get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
    let samples = prometheus_samples(&text);
    let log = sidecar.log.join("\n");
    let sample = |series: &str| *samples.get(series).unwrap_or_else(|| panic!("no {series} in\n{text}\nlog:\n{log}"));
    assert_eq!(sample(r#"plughost_component_process_restarts_total{component="orders"}"#), 1.0);
    assert!(sample(r#"plughost_sidecar_http_requests_total{method="GET",status="204"}"#) >= 3.0);
    assert!(sample(r#"plughost_sidecar_http_requests_total{method="GET",status="500"}"#) >= 1.0);
    // At least the start-up probe (its outcome depends on how loaded the machine is).
    let probes: f64 = ["ok", "error"]
        .iter()
        .filter_map(|o| {
            samples.get(&format!(
                r#"plughost_component_health_probes_total{{component="orders",mode="grpc",outcome="{o}"}}"#
            ))
        })
        .sum();
    assert!(probes >= 1.0, "no probes counted:\n{text}\n{log}");
    assert!(sample(r#"plughost_component_health_probe_seconds_count{component="orders",mode="grpc"}"#) >= 1.0);
}

/// Parses Prometheus text exposition: `series value` per sample line,
/// comments (`# HELP`, `# TYPE`, `# EOF`) checked for shape and skipped.
pub(crate) fn prometheus_samples(text: &str) -> std::collections::HashMap<String, f64> {
    let mut samples = std::collections::HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix("# ") {
            let word = comment.split_whitespace().next().unwrap_or_default();
            assert!(matches!(word, "HELP" | "TYPE" | "UNIT" | "EOF"), "bad comment line {line:?}");
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad sample line {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name in {line:?}"
        );
        assert!(!series.contains('{') || series.ends_with('}'), "bad labels in {line:?}");
        let value: f64 = value.parse().unwrap_or_else(|e| panic!("bad value in {line:?}: {e}"));
        samples.insert(series.to_owned(), value);
    }
    samples
}
