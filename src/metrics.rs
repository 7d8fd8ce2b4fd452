//! Prometheus metrics (`prometheus-client`), served by `plughost run` on
//! `--metrics-port` (daprd's flag names: `--enable-metrics`, default port
//! 9090) at `/metrics` in the text exposition format.
//!
//! One process-wide set ([`global`]): the supervisor, the health probe,
//! both sidecar APIs, every component's decorator (`crate::ops`), pub/sub
//! delivery and WASM instances record into it. Labels are bounded:
//! configured component names, kinds, modes, operation names, outcomes,
//! gRPC method names of the `Dapr` service, HTTP methods and status codes;
//! never keys, topics or PIDs. The per-call metrics are resolved once per
//! component and operation ([`CallMetrics`]), so a call costs two atomic
//! adds and one histogram observation, no label lookup or allocation.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    component: String,
    kind: String,
    mode: String,
    operation: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallErrorLabels {
    component: String,
    kind: String,
    mode: String,
    operation: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PubSubLabels {
    component: String,
    subscriber: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CauseLabels {
    component: String,
    cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct GrpcLabels {
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
    grpc: Family<GrpcLabels, Counter>,
    calls: Family<CallLabels, Counter>,
    call_errors: Family<CallErrorLabels, Counter>,
    call_seconds: HistogramFamily<CallLabels>,
    pubsub: Family<PubSubLabels, Counter>,
    wasm_recycles: Family<CauseLabels, Counter>,
    wasm_deadlines: Family<ComponentLabels, Counter>,
    wasm_fuel: Family<ComponentLabels, Counter>,
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
        let grpc = Family::<GrpcLabels, Counter>::default();
        registry.register("sidecar_grpc_requests", "Sidecar gRPC API requests by method and status", grpc.clone());
        let calls = Family::<CallLabels, Counter>::default();
        registry.register("component_calls", "Calls to a component by kind, mode and operation", calls.clone());
        let call_errors = Family::<CallErrorLabels, Counter>::default();
        registry.register("component_call_errors", "Failed calls to a component by outcome", call_errors.clone());
        let call_seconds: HistogramFamily<CallLabels> = Family::new_with_constructor(latency_histogram);
        registry.register("component_call_seconds", "Latency of calls to a component", call_seconds.clone());
        let pubsub = Family::<PubSubLabels, Counter>::default();
        registry.register(
            "pubsub_messages",
            "Pub/sub messages handed to a subscriber (delivered) and how they ended (acked, retried, dropped)",
            pubsub.clone(),
        );
        let wasm_recycles = Family::<CauseLabels, Counter>::default();
        registry.register(
            "wasm_instance_recycles",
            "WASM instances dropped and replaced, by cause",
            wasm_recycles.clone(),
        );
        let wasm_deadlines = Family::<ComponentLabels, Counter>::default();
        registry.register("wasm_deadline_hits", "WASM calls that ran out of time", wasm_deadlines.clone());
        let wasm_fuel = Family::<ComponentLabels, Counter>::default();
        registry.register("wasm_fuel_exhausted", "WASM calls that ran out of fuel", wasm_fuel.clone());
        Self {
            registry,
            restarts,
            probes,
            probe_seconds,
            up,
            http,
            grpc,
            calls,
            call_errors,
            call_seconds,
            pubsub,
            wasm_recycles,
            wasm_deadlines,
            wasm_fuel,
        }
    }

    /// The metrics of one operation of one component, resolved once.
    pub fn call_metrics(&self, component: &str, kind: &str, mode: &str, operation: &str) -> CallMetrics {
        let labels = CallLabels {
            component: component.to_owned(),
            kind: kind.to_owned(),
            mode: mode.to_owned(),
            operation: operation.to_owned(),
        };
        CallMetrics {
            calls: self.calls.get_or_create(&labels).clone(),
            seconds: self.call_seconds.get_or_create(&labels).clone(),
            count: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            labels,
        }
    }

    /// The pub/sub counters of one subscription of `component`, resolved
    /// once; `subscriber` is `app` (the app channel) or `stream` (a
    /// streaming subscription).
    pub fn pubsub_counters(&self, component: &str, subscriber: &str) -> PubSubCounters {
        let counter = |outcome: &str| {
            let labels = PubSubLabels {
                component: component.to_owned(),
                subscriber: subscriber.to_owned(),
                outcome: outcome.to_owned(),
            };
            self.pubsub.get_or_create(&labels).clone()
        };
        PubSubCounters {
            delivered: counter("delivered"),
            acked: counter("acked"),
            retried: counter("retried"),
            dropped: counter("dropped"),
        }
    }

    /// A WASM instance of `component` was dropped (`cause`: `deadline`,
    /// `fuel`, `trap`, `panic`); the next call makes a new one.
    pub fn wasm_recycled(&self, component: &str, cause: &str) {
        let labels = CauseLabels { component: component.to_owned(), cause: cause.to_owned() };
        self.wasm_recycles.get_or_create(&labels).inc();
    }

    /// A WASM call of `component` hit its deadline.
    pub fn wasm_deadline(&self, component: &str) {
        self.wasm_deadlines.get_or_create(&ComponentLabels { component: component.to_owned() }).inc();
    }

    /// A WASM call of `component` ran out of fuel.
    pub fn wasm_out_of_fuel(&self, component: &str) {
        self.wasm_fuel.get_or_create(&ComponentLabels { component: component.to_owned() }).inc();
    }

    /// The counter of sidecar gRPC API requests of `method` that ended
    /// with `status`, resolved once (`method` is bounded by the caller).
    pub fn grpc_counter(&self, method: &str, status: &str) -> Counter {
        self.grpc.get_or_create(&GrpcLabels { method: method.to_owned(), status: status.to_owned() }).clone()
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

/// One operation of one component: its call counter and latency histogram
/// (handles into the registered families), and its error counter, resolved
/// by outcome only when a call fails.
#[derive(Debug)]
pub struct CallMetrics {
    calls: Counter,
    seconds: Histogram,
    /// This handle's own counts, for the admin listing (the families are
    /// process-wide; two hosts in one process may share a component name).
    count: AtomicU64,
    errors: AtomicU64,
    labels: CallLabels,
}

impl CallMetrics {
    /// Records one call that took `elapsed` and failed with `outcome`, if
    /// it failed.
    pub fn record(&self, elapsed: Duration, outcome: Option<&str>) {
        self.calls.inc();
        self.count.fetch_add(1, Ordering::Relaxed);
        self.seconds.observe(elapsed.as_secs_f64());
        if let Some(outcome) = outcome {
            self.errors.fetch_add(1, Ordering::Relaxed);
            let CallLabels { component, kind, mode, operation } = self.labels.clone();
            let labels = CallErrorLabels { component, kind, mode, operation, outcome: outcome.to_owned() };
            global().call_errors.get_or_create(&labels).inc();
        }
    }

    /// Calls recorded through this handle.
    pub fn calls(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// Failed calls recorded through this handle.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}

/// The pub/sub counters of one subscription.
#[derive(Debug, Clone)]
pub struct PubSubCounters {
    /// Messages handed to the subscriber.
    pub delivered: Counter,
    /// Messages the subscriber processed: acked to the broker.
    pub acked: Counter,
    /// Messages handed back to the broker to be delivered again.
    pub retried: Counter,
    /// Messages acked without being processed (the subscriber said drop, no
    /// route matched, or they went to the dead-letter topic).
    pub dropped: Counter,
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
