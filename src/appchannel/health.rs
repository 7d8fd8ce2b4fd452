//! App health checks (`--enable-app-health-check`, protocol spec C1): the
//! app starts unhealthy; it is probed at once and every interval. One
//! successful probe makes it healthy; `threshold` failures in a row make it
//! unhealthy, which pauses every subscription and input binding loop (they
//! take no new message; what they hold is answered as the app answers it)
//! until a probe succeeds again. Nothing is lost: undelivered messages stay
//! in the broker.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{App, Channel};

/// The health check settings, with daprd's flags and defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthCheck {
    /// `--app-health-check-path` (HTTP only; default `/healthz`).
    pub path: String,
    /// `--app-health-probe-interval` (default 5 s).
    pub interval: Duration,
    /// `--app-health-probe-timeout` (default 500 ms).
    pub timeout: Duration,
    /// `--app-health-threshold` (default 3).
    pub threshold: u32,
}

impl Default for HealthCheck {
    fn default() -> Self {
        Self {
            path: "/healthz".to_owned(),
            interval: Duration::from_secs(5),
            timeout: Duration::from_millis(500),
            threshold: 3,
        }
    }
}

impl HealthCheck {
    /// Refuses settings daprd refuses: a probe timeout longer than the
    /// interval, or a zero interval or threshold.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval.is_zero() || self.threshold == 0 {
            return Err("--app-health-probe-interval and --app-health-threshold must be positive".to_owned());
        }
        if self.timeout > self.interval {
            return Err(format!(
                "--app-health-probe-timeout ({:?}) is longer than --app-health-probe-interval ({:?})",
                self.timeout, self.interval
            ));
        }
        Ok(())
    }
}

/// Probes `app` until the sidecar stops, publishing its health on `healthy`.
pub(super) async fn probe(app: Arc<App>, check: HealthCheck, healthy: watch::Sender<bool>) {
    let mut failures = 0u32;
    let mut ticks = tokio::time::interval(check.interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticks.tick() => {}
            () = app.sidecar.stopping() => return,
        }
        let result = match &app.channel {
            Channel::Http(http) => http.probe(&check.path, check.timeout).await,
            Channel::Grpc(grpc) => grpc.probe(check.timeout).await,
        };
        match result {
            Ok(()) => {
                failures = 0;
                if !*healthy.borrow() {
                    healthy.send_replace(true);
                    tracing::info!("the app is healthy: delivering");
                }
            }
            Err(e) => {
                failures += 1;
                if failures >= check.threshold && *healthy.borrow() {
                    healthy.send_replace(false);
                    tracing::warn!("the app is unhealthy after {failures} failed probes ({e}): delivery paused");
                } else if failures == check.threshold {
                    // Never healthy yet (it starts unhealthy): say why nothing is delivered.
                    tracing::warn!("the app is not healthy yet after {failures} probes ({e}): nothing is delivered");
                } else {
                    tracing::debug!("app health probe failed ({failures}): {e}");
                }
            }
        }
    }
}
