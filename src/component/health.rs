//! A component's health after start-up, as the probes and connections see it.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

/// A component's health after start-up, shared between the component (which
/// updates it: a gRPC component's periodic ping and its connection state),
/// the host's periodic probe (`crate::health`, every mode) and listings
/// (which read it). Cheap to clone; healthy until told otherwise.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<RwLock<HealthState>>);

#[derive(Debug, Default)]
struct HealthState {
    problem: Option<String>,
    probe: Option<Probe>,
    last_error: Option<(String, SystemTime)>,
}

/// The result of one liveness probe (`ping` on every kind the component
/// provides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Whether every ping answered in time.
    pub ok: bool,
    /// How long the pings took.
    pub latency: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When it ended.
    pub at: SystemTime,
}

impl Health {
    /// Marks the component healthy.
    pub fn set_ready(&self) {
        self.0.write().expect("health lock").problem = None;
    }

    /// Marks the component unavailable, saying why.
    pub fn set_unavailable(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut state = self.0.write().expect("health lock");
        state.last_error = Some((reason.clone(), SystemTime::now()));
        state.problem = Some(reason);
    }

    /// Why the component is unavailable, if it is.
    pub fn problem(&self) -> Option<String> {
        self.0.read().expect("health lock").problem.clone()
    }

    /// Records a probe (it does not change [`Self::problem`]).
    pub fn record(&self, probe: Probe) {
        let mut state = self.0.write().expect("health lock");
        if let Some(error) = &probe.error {
            state.last_error = Some((error.clone(), probe.at));
        }
        state.probe = Some(probe);
    }

    /// The last probe, if one ran.
    pub fn last_probe(&self) -> Option<Probe> {
        self.0.read().expect("health lock").probe.clone()
    }

    /// The last problem seen (by a probe or the connection) and when, even
    /// if the component has recovered since.
    pub fn last_error(&self) -> Option<(String, SystemTime)> {
        self.0.read().expect("health lock").last_error.clone()
    }
}
