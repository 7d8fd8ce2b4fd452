//! `bindings.cron`: an event on a fixed schedule, after Dapr's cron binding.
//! The `schedule` metadata takes `@every <duration>` (a Go duration, as in
//! Dapr: `@every 15s`, `@every 500ms`, `@every 1m30s`), `@hourly` or
//! `@daily`; full cron expressions, and durations past Go's limit, are
//! refused at init with a clear error rather than guessed at or wrapped.

use crate::component::Lifecycle;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{InputBinding, InputEvent};
use crate::kinds::{ComponentError, Deliveries, Delivery, Metadata, Result};
use crate::units::UnitError;

/// An [`InputBinding`] that fires on a fixed interval.
#[derive(Debug, Default)]
pub struct CronBinding {
    every: OnceLock<Duration>,
    fired: Arc<AtomicU64>,
}

impl CronBinding {
    /// A binding configured by its `init` metadata.
    pub fn new() -> Self {
        Self::default()
    }
}

fn parse_schedule(schedule: &str) -> Result<Duration> {
    let unsupported = || {
        ComponentError::invalid(format!(
            "schedule `{schedule}` is not supported: use `@every <duration>` (such as 500ms, 15s or 1m30s), `@hourly` or `@daily`"
        ))
    };
    let every = match schedule.trim() {
        "@hourly" => Duration::from_secs(3600),
        "@daily" => Duration::from_secs(86_400),
        other => {
            let every = other.strip_prefix("@every").ok_or_else(unsupported)?;
            match crate::units::parse_duration(every) {
                Ok(every) => every,
                Err(e @ UnitError::DurationTooLong(_)) => {
                    return Err(ComponentError::invalid(format!("schedule `{schedule}`: {e}")));
                }
                Err(_) => return Err(unsupported()),
            }
        }
    };
    if every.is_zero() {
        return Err(unsupported());
    }
    Ok(every)
}

#[async_trait::async_trait]
impl Lifecycle for CronBinding {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let schedule =
            metadata.get("schedule").ok_or_else(|| ComponentError::invalid("missing `schedule` metadata"))?;
        self.every.set(parse_schedule(schedule)?).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl InputBinding for CronBinding {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        let every = *self.every.get().ok_or_else(|| ComponentError::internal("bindings.cron used before init"))?;
        let (tx, deliveries) = Deliveries::channel(1);
        let fired = self.fired.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    () = tx.closed() => break,
                }
                let n = fired.fetch_add(1, Ordering::Relaxed) + 1;
                let now = time::OffsetDateTime::now_utc();
                let stamp = now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
                let event = InputEvent {
                    id: n.to_string(),
                    data: stamp.clone().into_bytes(),
                    metadata: Metadata::from([("scheduledTime".to_owned(), stamp)]),
                    content_type: Some("text/plain".to_owned()),
                };
                let (delivery, answer) = Delivery::new(event);
                if tx.send(delivery).await.is_err() {
                    break;
                }
                // A cron tick is not redelivered; a failed handler is logged.
                if let Ok(Err(reason)) = answer.await {
                    tracing::warn!(tick = n, %reason, "cron event handler failed");
                }
            }
        });
        Ok(deliveries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(parse_schedule("@every 250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_schedule("@every 2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_schedule("@hourly").unwrap(), Duration::from_secs(3600));
        let err = parse_schedule("*/5 * * * *").unwrap_err().to_string();
        assert!(err.contains("*/5 * * * *"), "{err}");
        assert!(parse_schedule("@every 0s").is_err());
        assert_eq!(parse_schedule("@every 1m30s").unwrap(), Duration::from_secs(90));
        let err = parse_schedule("@every 99999999999999999h").unwrap_err().to_string();
        assert!(err.contains("schedule `@every 99999999999999999h`") && err.contains("too long"), "{err}");
    }
}
