//! Running one call under a component's policies: retry outermost, then the
//! circuit breaker, then the timeout of each attempt (Dapr's order).

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::Breaker;
use crate::kinds::{ComponentError, Result};

/// The configuration of one named retry policy (`spec.policies.retries`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// How long to wait before each retry.
    pub backoff: Backoff,
    /// `maxRetries`: `None` retries forever (Dapr's `-1`, the default).
    pub max_retries: Option<u64>,
    /// `matching.gRPCStatusCodes`: if not empty, only these codes are retried.
    pub grpc_codes: Vec<(u16, u16)>,
    /// `matching.httpStatusCodes`: if not empty, only these statuses are retried.
    pub http_codes: Vec<(u16, u16)>,
}

/// `policy: constant` or `policy: exponential`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backoff {
    /// The same wait every time (`duration`, default 5s).
    Constant(Duration),
    /// From 500 ms, ×1.5 per retry with ±50 % jitter, capped at `maxInterval`
    /// (default 60s), for at most 15 minutes in all (Dapr's fixed values).
    Exponential {
        /// `maxInterval`.
        max_interval: Duration,
    },
}

const EXPONENTIAL_INITIAL: Duration = Duration::from_millis(500);
const EXPONENTIAL_MULTIPLIER: f64 = 1.5;
const EXPONENTIAL_JITTER: f64 = 0.5;
const EXPONENTIAL_MAX_ELAPSED: Duration = Duration::from_secs(15 * 60);

impl RetryPolicy {
    /// Whether `error` is retried: it must be transient
    /// ([`ComponentError::is_transient`]) and, if `matching` lists codes, its
    /// gRPC code or HTTP status (as the sidecar API would answer) listed.
    pub fn retries(&self, error: &ComponentError) -> bool {
        if !error.is_transient() {
            return false;
        }
        let (grpc, http) = match error {
            ComponentError::Unavailable { .. } => (14, 503),
            ComponentError::DeadlineExceeded { .. } => (4, 504),
            _ => (13, 500),
        };
        let listed = |ranges: &[(u16, u16)], code: u16| {
            ranges.is_empty() || ranges.iter().any(|&(low, high)| (low..=high).contains(&code))
        };
        listed(&self.grpc_codes, grpc) && listed(&self.http_codes, http)
    }

    /// The wait before retry number `retry` (0-based), or `None` if the
    /// policy allows no more (`maxRetries`, or exponential's 15 minutes).
    fn delay(&self, retry: u64, elapsed: Duration) -> Option<Duration> {
        if self.max_retries.is_some_and(|max| retry >= max) {
            return None;
        }
        match self.backoff {
            Backoff::Constant(wait) => Some(wait),
            Backoff::Exponential { max_interval } => {
                if elapsed >= EXPONENTIAL_MAX_ELAPSED {
                    return None;
                }
                let grown = EXPONENTIAL_INITIAL.as_secs_f64() * EXPONENTIAL_MULTIPLIER.powi(retry.min(200) as i32);
                let interval = grown.min(max_interval.as_secs_f64());
                let jitter = 1.0 + EXPONENTIAL_JITTER * (2.0 * fastrand::f64() - 1.0);
                Some(Duration::from_secs_f64(interval * jitter))
            }
        }
    }
}

/// How one attempt ended, if not well.
enum Attempt {
    /// The breaker did not let it through.
    Refused(ComponentError),
    /// The component (or the timeout) failed it.
    Failed(ComponentError),
}

/// The outbound policies of one component: any of a timeout per attempt,
/// a retry policy and a circuit breaker.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The component's name, for errors and logs.
    pub component: String,
    /// The deadline of each attempt.
    pub timeout: Option<Duration>,
    /// When and how often to try again.
    pub retry: Option<RetryPolicy>,
    /// The component's breaker (one per component, shared by its kinds).
    pub breaker: Option<Arc<Breaker>>,
}

impl Policy {
    /// Whether the policy does anything at all.
    pub fn is_empty(&self) -> bool {
        self.timeout.is_none() && self.retry.is_none() && self.breaker.is_none()
    }

    /// Runs `call(request)` under the policy. The request is cloned for each
    /// attempt only when a retry policy may need it again.
    pub async fn run<R, T, F, Fut>(&self, request: R, call: F) -> Result<T>
    where
        R: Clone,
        F: Fn(R) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let started = Instant::now();
        let mut request = Some(request);
        let mut retry = 0;
        loop {
            let this = match self.retry {
                Some(_) => request.clone(),
                None => request.take(),
            };
            let error = match self.attempt(call(this.expect("request kept for the retry"))).await {
                Ok(value) => return Ok(value),
                // An open breaker is never retried (as in Dapr): it would
                // only wait out the breaker's timeout here.
                Err(Attempt::Refused(error)) => return Err(error),
                Err(Attempt::Failed(error)) => error,
            };
            let Some(policy) = &self.retry else { return Err(error) };
            if !policy.retries(&error) {
                return Err(error);
            }
            let Some(wait) = policy.delay(retry, started.elapsed()) else { return Err(error) };
            retry += 1;
            tracing::debug!(component = %self.component, retry, "retrying in {wait:?} after: {error}");
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt: through the breaker, within the timeout.
    async fn attempt<T>(&self, call: impl Future<Output = Result<T>>) -> Result<T, Attempt> {
        let permit = match &self.breaker {
            Some(breaker) => Some(breaker.admit().map_err(Attempt::Refused)?),
            None => None,
        };
        let result = match self.timeout {
            Some(after) => tokio::time::timeout(after, call)
                .await
                .unwrap_or_else(|_| Err(ComponentError::DeadlineExceeded { component: self.component.clone(), after })),
            None => call.await,
        };
        if let Some(permit) = permit {
            permit.record(&result);
        }
        result.map_err(Attempt::Failed)
    }
}
