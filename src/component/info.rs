//! What listings, the metadata API and the admin routes show of a
//! configured component.

use crate::config::Origin;
use crate::kinds::ComponentKind;

use super::{Health, Mode};

/// Whether a configured component is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Initialised and registered.
    Ready,
    /// Init failed or timed out and `ignoreErrors` was set: not registered.
    Failed(String),
    /// Registered, but not answering right now (a gRPC component whose
    /// process is down, or whose ping fails); see [`ComponentInfo::current_status`].
    Unavailable(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ready => f.write_str("ready"),
            Status::Failed(reason) => write!(f, "failed: {reason}"),
            Status::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// One configured component, for listings and the metadata API.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// Configured name.
    pub name: String,
    /// Kinds it provides (two for a binding that is both input and output).
    pub kinds: Vec<ComponentKind>,
    /// Component type, e.g. `state.sqlite`.
    pub type_name: String,
    /// Configured version.
    pub version: String,
    /// Where it runs.
    pub mode: Mode,
    /// Serving or not, as start-up left it.
    pub status: Status,
    /// Health since start-up; [`Self::current_status`] combines both.
    pub health: Health,
    /// Feature strings (state, pub/sub, secrets) or operations (output bindings).
    pub features: Vec<String>,
    /// Where it was defined.
    pub origin: Origin,
    /// How many implementations it has had: 1 until it is first swapped
    /// (a reload, or a move to another mode).
    pub generation: u64,
    /// When it was last swapped, if ever.
    pub swapped_at: Option<std::time::SystemTime>,
    /// Why its last reload failed, if it did (it kept serving as before).
    pub reload_error: Option<String>,
}

impl ComponentInfo {
    /// The status now: `failed` if start-up failed, else `unavailable` while
    /// the component's health says so, else `ready`.
    pub fn current_status(&self) -> Status {
        match (&self.status, self.health.problem()) {
            (Status::Ready, Some(problem)) => Status::Unavailable(problem),
            (status, _) => status.clone(),
        }
    }
}
