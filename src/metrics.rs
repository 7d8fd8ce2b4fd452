//! Prometheus metrics (`prometheus-client`), served by `plughost run` on
//! `--metrics-port` (daprd's flag names: `--enable-metrics`, default port
//! 9090) at `/metrics` in the text exposition format.
//!
//! One process-wide set ([`global`]): the supervisor, the health probe and
//! the HTTP API record into it. Labels are bounded: configured component
//! names, modes, outcomes, HTTP methods and status codes; never keys,
//! topics or PIDs.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    component: String,
    mode: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    component: String,
    mode: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Every metric plughost keeps.
pub struct Metrics {
    registry: Registry,
    restarts: Family<ComponentLabels, Counter>,
    probes: Family<ProbeLabels, Counter>,
    probe_seconds: HistogramFamily<ModeLabels>,
    up: Family<ModeLabels, Gauge>,
    http: Family<HttpLabels, Counter>,
}

/// The process-wide metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

fn latency_histogram() -> Histogram {
    // 100 µs to ~26 s.
    Histogram::new(exponential_buckets(0.0001, 4.0, 10))
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("plughost");
        let restarts = Family::<ComponentLabels, Counter>::default();
        registry.register("component_process_restarts", "Restarts of a supervised component process", restarts.clone());
        let probes = Family::<ProbeLabels, Counter>::default();
        registry.register("component_health_probes", "Health probes by outcome (ok, error)", probes.clone());
        let probe_seconds: HistogramFamily<ModeLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("component_health_probe_seconds", "Latency of health probes", probe_seconds.clone());
        let up = Family::<ModeLabels, Gauge>::default();
        registry.register("component_up", "1 if the component's last health probe passed, else 0", up.clone());
        let http = Family::<HttpLabels, Counter>::default();
        registry.register("sidecar_http_requests", "Sidecar HTTP API requests by method and status", http.clone());
        Self { registry, restarts, probes, probe_seconds, up, http }
    }

    /// A supervised process was started again.
    pub fn process_restarted(&self, component: &str) {
        self.restarts.get_or_create(&ComponentLabels { component: component.to_owned() }).inc();
    }

    /// A health probe ended.
    pub fn probed(&self, component: &str, mode: &str, ok: bool, latency: Duration) {
        let outcome = if ok { "ok" } else { "error" }.to_owned();
        let labels = ModeLabels { component: component.to_owned(), mode: mode.to_owned() };
        self.probes
            .get_or_create(&ProbeLabels { component: labels.component.clone(), mode: labels.mode.clone(), outcome })
            .inc();
        self.probe_seconds.get_or_create(&labels).observe(latency.as_secs_f64());
        self.up.get_or_create(&labels).set(i64::from(ok));
    }

    /// The text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String");
        text
    }
}

/// Axum middleware counting sidecar HTTP requests by method and status.
pub async fn count_http(request: Request, next: Next) -> Response {
    let method = match request.method().as_str() {
        m @ ("GET" | "POST" | "PUT" | "DELETE" | "PATCH" | "HEAD" | "OPTIONS") => m.to_owned(),
        _ => "other".to_owned(),
    };
    let response = next.run(request).await;
    let labels = HttpLabels { method, status: response.status().as_u16().to_string() };
    global().http.get_or_create(&labels).inc();
    response
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(|| async {
            ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], global().encode())
        }),
    );
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_show_in_the_exposition() {
        let metrics = global();
        metrics.process_restarted("unit-test-component");
        metrics.probed("unit-test-component", "wasm", false, Duration::from_millis(3));
        let text = metrics.encode();
        assert!(
            text.contains("plughost_component_process_restarts_total{component=\"unit-test-component\"} 1"),
            "{text}"
        );
        assert!(
            text.contains(
                "plughost_component_health_probes_total{component=\"unit-test-component\",mode=\"wasm\",outcome=\"error\"} 1"
            ),
            "{text}"
        );
        assert!(text.contains("plughost_component_up{component=\"unit-test-component\",mode=\"wasm\"} 0"), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
