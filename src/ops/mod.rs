//! Operating a running host: what an operator sees and can do per
//! component, beyond the component's own calls.
//!
//! * [`observe`](Ops::wrap): the decorator the host puts around every
//!   instance (outside the resiliency one), in every mode: per-operation
//!   call counts, errors by outcome and latency ([`crate::metrics`]), and
//!   the switch that disables a component.
//! * `admin`: the admin API, `/v1.0-plughost/...` on the sidecar's HTTP
//!   port, and the [`Host`](crate::Host) methods behind it.
//! * [`trace`]: W3C trace context (`traceparent`, `tracestate`) from the
//!   sidecar APIs into the spans of the call and the metadata of gRPC
//!   component calls.
//! * `grpc_api`: the tower layer of the sidecar's gRPC server that counts
//!   requests by method and status and scopes their trace context.

pub mod admin;
pub(crate) mod grpc_api;
mod observe;
pub mod trace;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use crate::component::{Instance, Mode};
use crate::kinds::ComponentError;
use crate::metrics::CallMetrics;
use crate::supervisor::Processes;

/// What the host keeps per component for operators: its switch, its
/// per-operation metrics, where its type came from, and the supervised
/// processes. Shared by the host, the decorators and the admin API.
#[derive(Default)]
pub struct Ops {
    components: RwLock<BTreeMap<String, Arc<ComponentOps>>>,
    processes: Processes,
    /// Replaces one component by a fresh instance of its spec (the live
    /// registry's handover), set by the host.
    reloader: std::sync::OnceLock<Reload>,
}

/// What [`Ops`] calls to reload one component.
pub type Reload = Arc<dyn Fn(String) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<String> = self.components.read().expect("ops lock").keys().cloned().collect();
        f.debug_struct("Ops").field("components", &names).finish_non_exhaustive()
    }
}

/// One component's operator state.
pub struct ComponentOps {
    name: String,
    mode: Mode,
    source: RwLock<String>,
    enabled: AtomicBool,
    generation: AtomicU64,
    /// Every operation's metrics, across the component's kinds.
    operations: RwLock<Vec<Arc<CallMetrics>>>,
}

impl ComponentOps {
    /// Whether calls go through (an operator may disable the component).
    pub fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// The error a call to a disabled component fails with: `Unavailable`
    /// (gRPC `UNAVAILABLE`, HTTP 500 with the operation's Dapr error code),
    /// not not-found: the component is still configured and listed, and a
    /// client that retries transient errors will succeed once it is enabled
    /// again.
    pub fn disabled_error(&self) -> ComponentError {
        ComponentError::Unavailable {
            component: self.name.clone(),
            reason: "disabled by an operator (admin API); enable it to serve calls again".to_owned(),
        }
    }

    /// Calls and failed calls so far, across operations.
    pub fn counts(&self) -> (u64, u64) {
        let operations = self.operations.read().expect("ops lock");
        operations.iter().fold((0, 0), |(c, e), m| (c + m.calls(), e + m.errors()))
    }

    /// Where its type came from (`builtin`, a `.wasm` path, a socket path,
    /// `code`).
    pub fn source(&self) -> String {
        self.source.read().expect("ops lock").clone()
    }

    /// 1 for the instance made at start, +1 per reload.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Relaxed)
    }

    /// The mode it runs in.
    pub fn mode(&self) -> Mode {
        self.mode
    }
}

impl Ops {
    /// An empty table over the host's supervised processes.
    pub fn new(processes: Processes) -> Arc<Self> {
        Arc::new(Self { components: RwLock::default(), processes, reloader: std::sync::OnceLock::new() })
    }

    /// Sets how one component is reloaded (the host does, once).
    pub fn set_reloader(&self, reload: Reload) {
        let _ = self.reloader.set(reload);
    }

    /// Wraps `instance` of component `name` in the decorator (metrics, the
    /// enable switch) and records the component; the host calls this for
    /// every instance it starts, a replacement included (which keeps the
    /// switch and counts one more generation).
    pub fn wrap(&self, name: &str, mode: Mode, instance: Instance) -> Instance {
        let before = self.component(name);
        let component = Arc::new(ComponentOps {
            name: name.to_owned(),
            mode,
            source: RwLock::new(if mode == Mode::Embedded { "code".to_owned() } else { String::new() }),
            enabled: AtomicBool::new(before.as_ref().is_none_or(|b| b.enabled())),
            generation: AtomicU64::new(before.as_ref().map_or(1, |b| b.generation() + 1)),
            operations: RwLock::default(),
        });
        self.components.write().expect("ops lock").insert(name.to_owned(), component.clone());
        observe::wrap(component, instance)
    }

    /// Records where component `name`'s type came from.
    pub fn set_source(&self, name: &str, source: &str) {
        if let Some(component) = self.component(name) {
            *component.source.write().expect("ops lock") = source.to_owned();
        }
    }

    /// Component `name`'s operator state, if it started.
    pub fn component(&self, name: &str) -> Option<Arc<ComponentOps>> {
        self.components.read().expect("ops lock").get(name).cloned()
    }

    /// The supervised processes.
    pub fn processes(&self) -> &Processes {
        &self.processes
    }
}

/// The `outcome` label of a failed call.
pub(crate) fn outcome(error: &ComponentError) -> &'static str {
    match error {
        ComponentError::EtagMismatch { .. } => "etag_mismatch",
        ComponentError::EtagInvalid { .. } => "etag_invalid",
        ComponentError::NotFound(_) => "not_found",
        ComponentError::InvalidArgument(_) => "invalid_argument",
        ComponentError::NotSupported(_) => "not_supported",
        ComponentError::Unavailable { .. } => "unavailable",
        ComponentError::DeadlineExceeded { .. } => "deadline_exceeded",
        ComponentError::ResourceExhausted { .. } => "resource_exhausted",
        ComponentError::Bulk(_) => "bulk",
        ComponentError::Internal(_) => "internal",
    }
}
