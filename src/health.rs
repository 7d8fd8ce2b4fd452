//! The host's periodic health probe, for every component in every mode.
//!
//! Every [`HealthOptions::interval`] each serving component is pinged
//! once through its [`Lifecycle`](crate::component::Lifecycle) (`ping`: a
//! built-in's own check, the WASM lifecycle `ping`, gRPC `Ping` of every
//! service it serves), bounded by
//! [`HealthOptions::timeout`]. The result, its latency and the last error go
//! into the component's [`Health`], which listings, the metadata API and
//! `/v1.0/healthz/outbound` read. For in-process components the probe also
//! decides the status (`unavailable: <reason>` while pings fail); a gRPC
//! component's status stays with its connection (`pluggable::link`), which knows
//! more (connection lost, reconnecting, Init replayed).

use std::time::{Duration, Instant, SystemTime};

use futures::future::join_all;

use crate::component::{ComponentInfo, Health, Mode, Probe, Status};
use crate::registry::Registry;

/// How often and how patiently components are probed.
#[derive(Debug, Clone)]
pub struct HealthOptions {
    /// Between two probes of a component (the first runs at start-up).
    pub interval: Duration,
    /// Deadline of one ping.
    pub timeout: Duration,
}

impl Default for HealthOptions {
    fn default() -> Self {
        Self { interval: Duration::from_secs(5), timeout: Duration::from_secs(2) }
    }
}

/// Probes every serving component of `registry` now, all at once.
pub async fn probe_all(registry: &Registry, options: &HealthOptions) {
    let components = registry.components();
    let serving = components.iter().filter(|c| c.status == Status::Ready);
    join_all(serving.map(|info| probe(registry, info, options.timeout))).await;
}

/// Probes forever, every `options.interval`.
pub async fn run(registry: Registry, options: HealthOptions) {
    loop {
        probe_all(&registry, &options).await;
        tokio::time::sleep(options.interval).await;
    }
}

async fn probe(registry: &Registry, info: &ComponentInfo, timeout: Duration) {
    let started = Instant::now();
    let kinds: Vec<&str> = info.kinds.iter().map(|k| k.as_str()).collect();
    let kinds = kinds.join("/");
    let error = match registry.lifecycle(&info.name) {
        None => Some(format!("{kinds}: not serving")),
        Some(lifecycle) => match tokio::time::timeout(timeout, lifecycle.ping()).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{kinds} ping failed: {e}")),
            Err(_) => Some(format!("{kinds} ping: no answer within {timeout:?}")),
        },
    };
    let probe = Probe { ok: error.is_none(), latency: started.elapsed(), error: error.clone(), at: SystemTime::now() };
    record(&info.name, info.mode, &info.health, probe);
}

fn record(name: &str, mode: Mode, health: &Health, probe: Probe) {
    let before = health.last_probe().map(|p| p.ok);
    if before != Some(probe.ok) {
        match &probe.error {
            None if before.is_some() => tracing::info!(component = name, "health probe passes again"),
            None => {}
            Some(error) => tracing::warn!(component = name, "health probe failed: {error}"),
        }
    }
    crate::metrics::global().probed(name, mode.as_str(), probe.ok, probe.latency);
    if mode != Mode::Grpc {
        match &probe.error {
            None => health.set_ready(),
            Some(error) => health.set_unavailable(error.clone()),
        }
    }
    health.record(probe);
}
