//! A circuit breaker with Dapr's (sony/gobreaker's) semantics.
//!
//! * **Closed**: calls pass; results are counted. A failure that makes the
//!   `trip` condition true opens the breaker. With `interval` > 0 the counts
//!   start over every `interval`.
//! * **Open**: calls fail at once with `UNAVAILABLE`, without reaching the
//!   component, until `timeout` has passed; then half-open.
//! * **Half-open**: at most `maxRequests` calls pass (the others fail at
//!   once); one failure opens the breaker again, `maxRequests` successes in a
//!   row close it.
//!
//! Every state change starts a new generation: a call admitted in an older one
//! is not counted. A call whose caller gave up (its future was dropped) counts
//! as a failure, so a lost half-open probe cannot keep the breaker half-open.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::kinds::ComponentError;

/// The configuration of one named breaker (`spec.policies.circuitBreakers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// `maxRequests`: calls let through while half-open (default 1).
    pub max_requests: u64,
    /// `interval`: how often closed-state counts start over (0 = never).
    pub interval: Duration,
    /// `timeout`: how long the breaker stays open (default 60s).
    pub timeout: Duration,
    /// `trip`: when a failure opens the breaker.
    pub trip: Trip,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            max_requests: 1,
            interval: Duration::ZERO,
            timeout: Duration::from_secs(60),
            trip: Trip { counter: Counter::ConsecutiveFailures, op: Comparison::Gt, value: 5 },
        }
    }
}

/// The counters a `trip` condition can read (Dapr's CEL variables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counter {
    /// `requests`
    Requests,
    /// `totalSuccesses`
    TotalSuccesses,
    /// `totalFailures`
    TotalFailures,
    /// `consecutiveSuccesses`
    ConsecutiveSuccesses,
    /// `consecutiveFailures`
    ConsecutiveFailures,
}

impl Counter {
    const ALL: [(&'static str, Counter); 5] = [
        ("requests", Counter::Requests),
        ("totalSuccesses", Counter::TotalSuccesses),
        ("totalFailures", Counter::TotalFailures),
        ("consecutiveSuccesses", Counter::ConsecutiveSuccesses),
        ("consecutiveFailures", Counter::ConsecutiveFailures),
    ];
}

/// A comparison operator of a `trip` condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `!=`
    Ne,
}

/// A `trip` condition: `<counter> <comparison> <number>`, such as
/// `consecutiveFailures > 5`. The subset of CEL that Dapr's documentation
/// uses; anything else is refused at load time rather than guessed at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trip {
    /// What is compared.
    pub counter: Counter,
    /// How.
    pub op: Comparison,
    /// With what.
    pub value: u64,
}

impl Trip {
    /// Parses `consecutiveFailures > 5` and the like.
    pub fn parse(text: &str) -> Result<Self, String> {
        let refuse = || {
            format!(
                "trip `{text}` is not supported: plughost understands `<counter> <op> <number>` with counter one of \
                 requests, totalSuccesses, totalFailures, consecutiveSuccesses, consecutiveFailures and op one of \
                 > >= == < <= != (e.g. `consecutiveFailures > 5`)"
            )
        };
        let text = text.trim();
        let name_end = text.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(text.len());
        let counter = Counter::ALL.iter().find(|(name, _)| *name == &text[..name_end]).ok_or_else(refuse)?.1;
        let rest = text[name_end..].trim_start();
        let ops = [
            (">=", Comparison::Ge),
            ("<=", Comparison::Le),
            ("==", Comparison::Eq),
            ("!=", Comparison::Ne),
            (">", Comparison::Gt),
            ("<", Comparison::Lt),
        ];
        let (symbol, op) = ops.into_iter().find(|(symbol, _)| rest.starts_with(symbol)).ok_or_else(refuse)?;
        let value = rest[symbol.len()..].trim().parse().map_err(|_| refuse())?;
        Ok(Self { counter, op, value })
    }

    fn holds(&self, counts: &Counts) -> bool {
        let actual = match self.counter {
            Counter::Requests => counts.requests,
            Counter::TotalSuccesses => counts.total_successes,
            Counter::TotalFailures => counts.total_failures,
            Counter::ConsecutiveSuccesses => counts.consecutive_successes,
            Counter::ConsecutiveFailures => counts.consecutive_failures,
        };
        match self.op {
            Comparison::Gt => actual > self.value,
            Comparison::Ge => actual >= self.value,
            Comparison::Eq => actual == self.value,
            Comparison::Lt => actual < self.value,
            Comparison::Le => actual <= self.value,
            Comparison::Ne => actual != self.value,
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    requests: u64,
    total_successes: u64,
    total_failures: u64,
    consecutive_successes: u64,
    consecutive_failures: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open,
    HalfOpen,
}

#[derive(Debug)]
struct Inner {
    state: State,
    generation: u64,
    counts: Counts,
    /// Closed: when the counts start over; open: when it turns half-open.
    expiry: Option<Instant>,
}

/// One breaker instance, shared by every call to one component.
#[derive(Debug)]
pub struct Breaker {
    /// The policy's name, for messages.
    name: String,
    component: String,
    policy: BreakerPolicy,
    inner: Mutex<Inner>,
}

/// Admission to one call; report its result with [`Permit::record`].
/// Dropped unreported (the call was cancelled), it counts as a failure.
pub struct Permit<'a> {
    breaker: &'a Breaker,
    generation: u64,
    recorded: bool,
}

impl Permit<'_> {
    /// Counts the call's result: a transient error is a failure; success and
    /// permanent errors (the component answered) are successes.
    pub fn record<T>(mut self, result: &Result<T, ComponentError>) {
        self.recorded = true;
        let success = result.as_ref().err().is_none_or(|e| !e.is_transient());
        self.breaker.record(self.generation, success);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.recorded {
            self.breaker.record(self.generation, false);
        }
    }
}

impl Breaker {
    /// A closed breaker named `name` guarding `component`.
    pub fn new(name: &str, component: &str, policy: BreakerPolicy) -> Self {
        let expiry = (!policy.interval.is_zero()).then(|| Instant::now() + policy.interval);
        Self {
            name: name.to_owned(),
            component: component.to_owned(),
            policy,
            inner: Mutex::new(Inner { state: State::Closed, generation: 0, counts: Counts::default(), expiry }),
        }
    }

    /// Lets a call through, or refuses it with `Unavailable` (open, or
    /// half-open with `maxRequests` calls already under way).
    pub fn admit(&self) -> Result<Permit<'_>, ComponentError> {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("breaker lock");
        self.refresh(&mut inner, now);
        let refuse = |reason: String| ComponentError::Unavailable { component: self.component.clone(), reason };
        match inner.state {
            State::Open => {
                let left = inner.expiry.map(|e| e.saturating_duration_since(now)).unwrap_or_default();
                return Err(refuse(format!(
                    "circuit breaker `{}` is open (half-open again in {:.1}s)",
                    self.name,
                    left.as_secs_f64()
                )));
            }
            State::HalfOpen if inner.counts.requests >= self.policy.max_requests => {
                return Err(refuse(format!(
                    "circuit breaker `{}` is half-open and already probing with {} call(s)",
                    self.name, self.policy.max_requests
                )));
            }
            _ => {}
        }
        inner.counts.requests += 1;
        Ok(Permit { breaker: self, generation: inner.generation, recorded: false })
    }

    fn record(&self, generation: u64, success: bool) {
        let now = Instant::now();
        let mut guard = self.inner.lock().expect("breaker lock");
        let inner = &mut *guard;
        self.refresh(inner, now);
        if inner.generation != generation {
            return;
        }
        let counts = &mut inner.counts;
        if success {
            counts.total_successes += 1;
            counts.consecutive_successes += 1;
            counts.consecutive_failures = 0;
            if inner.state == State::HalfOpen && inner.counts.consecutive_successes >= self.policy.max_requests {
                self.set_state(inner, State::Closed, now);
            }
        } else {
            counts.total_failures += 1;
            counts.consecutive_failures += 1;
            counts.consecutive_successes = 0;
            let trip = match inner.state {
                State::Closed => self.policy.trip.holds(&inner.counts),
                State::HalfOpen => true,
                State::Open => false,
            };
            if trip {
                self.set_state(inner, State::Open, now);
            }
        }
    }

    /// Applies what the passing of time changes: counts starting over,
    /// open turning half-open.
    fn refresh(&self, inner: &mut Inner, now: Instant) {
        match (inner.state, inner.expiry) {
            (State::Closed, Some(expiry)) if expiry <= now => self.new_generation(inner, now),
            (State::Open, Some(expiry)) if expiry <= now => self.set_state(inner, State::HalfOpen, now),
            _ => {}
        }
    }

    fn set_state(&self, inner: &mut Inner, state: State, now: Instant) {
        match state {
            State::Open => tracing::warn!(
                component = %self.component,
                "circuit breaker `{}` opened: calls fail at once for {:?}",
                self.name,
                self.policy.timeout
            ),
            State::HalfOpen => tracing::info!(
                component = %self.component,
                "circuit breaker `{}` half-open: letting {} call(s) through",
                self.name,
                self.policy.max_requests
            ),
            State::Closed => tracing::info!(component = %self.component, "circuit breaker `{}` closed", self.name),
        }
        inner.state = state;
        self.new_generation(inner, now);
    }

    fn new_generation(&self, inner: &mut Inner, now: Instant) {
        inner.generation += 1;
        inner.counts = Counts::default();
        inner.expiry = match inner.state {
            State::Closed => (!self.policy.interval.is_zero()).then(|| now + self.policy.interval),
            State::Open => Some(now + self.policy.timeout),
            State::HalfOpen => None,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(trip: &str, max_requests: u64, timeout: Duration) -> Breaker {
        let policy = BreakerPolicy { max_requests, timeout, trip: Trip::parse(trip).unwrap(), ..Default::default() };
        Breaker::new("cb", "store", policy)
    }

    fn fail(b: &Breaker) {
        b.admit().unwrap().record::<()>(&Err(ComponentError::internal("boom")));
    }

    fn succeed(b: &Breaker) {
        b.admit().unwrap().record(&Ok(()));
    }

    #[test]
    fn trip_expressions() {
        assert_eq!(
            Trip::parse("consecutiveFailures > 5"),
            Ok(Trip { counter: Counter::ConsecutiveFailures, op: Comparison::Gt, value: 5 })
        );
        assert_eq!(Trip::parse(" totalFailures>=10 ").unwrap().op, Comparison::Ge);
        for bad in ["consecutiveFailures > x", "failures > 3", "consecutiveFailures > 3 && requests > 2", "", "> 3"] {
            let err = Trip::parse(bad).unwrap_err();
            assert!(err.contains("not supported") && err.contains(bad.trim()), "{err}");
        }
    }

    #[test]
    fn opens_after_the_trip_condition_and_refuses_until_the_timeout() {
        let b = breaker("consecutiveFailures >= 3", 1, Duration::from_secs(3600));
        fail(&b);
        fail(&b);
        succeed(&b); // resets the run
        fail(&b);
        fail(&b);
        fail(&b); // admitted: still closed after two in a row; this third one trips it
        let err = b.admit().err().expect("open");
        assert!(matches!(&err, ComponentError::Unavailable { reason, .. } if reason.contains("is open")), "{err}");
    }

    #[test]
    fn permanent_errors_do_not_count_as_failures() {
        let b = breaker("consecutiveFailures > 1", 1, Duration::from_secs(3600));
        for _ in 0..5 {
            b.admit().unwrap().record::<()>(&Err(ComponentError::etag_mismatch("k")));
        }
        assert!(b.admit().is_ok());
    }

    #[test]
    fn half_open_lets_max_requests_through_and_closes_on_success() {
        let b = breaker("consecutiveFailures > 0", 2, Duration::from_millis(20));
        fail(&b);
        assert!(b.admit().is_err());
        std::thread::sleep(Duration::from_millis(40));
        let first = b.admit().expect("half-open probe 1");
        let second = b.admit().expect("half-open probe 2");
        assert!(b.admit().is_err(), "a third concurrent probe is refused");
        first.record(&Ok(()));
        second.record(&Ok(()));
        for _ in 0..5 {
            succeed(&b);
        }
    }

    #[test]
    fn a_failed_or_abandoned_probe_opens_it_again() {
        let b = breaker("consecutiveFailures > 0", 1, Duration::from_millis(20));
        fail(&b);
        std::thread::sleep(Duration::from_millis(40));
        fail(&b);
        assert!(b.admit().is_err(), "open again after a failed probe");
        std::thread::sleep(Duration::from_millis(40));
        drop(b.admit().expect("probe"));
        assert!(b.admit().is_err(), "open again after an abandoned probe");
    }
}
