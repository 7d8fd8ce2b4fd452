//! The five component kinds. Each folder holds the kind's trait (`mod.rs`) and
//! its implementations, one file per mode or built-in.
//!
//! Every trait has the same lifecycle, mirroring Dapr's pluggable component
//! protocol: the host calls `init(metadata)` exactly once, before anything
//! else, bounded by the component's `initTimeout`; then `features()` (state,
//! pub/sub, secrets) or `operations()` (output bindings); `ping()` may be
//! called at any time after init as a liveness probe.

mod delivery;
mod error;
pub mod input_binding;
pub mod output_binding;
pub mod pubsub;
mod redis_conn;
pub mod secret_store;
pub mod state;

use std::collections::BTreeMap;

pub use delivery::{Deliveries, Delivery, Reply};
pub use error::ComponentError;

/// Name → value pairs: component configuration (`spec.metadata`) and
/// per-request metadata alike. Ordered so logs and tests are stable.
pub type Metadata = BTreeMap<String, String>;

/// Result of every component call.
pub type Result<T, E = ComponentError> = std::result::Result<T, E>;

/// The kinds of component plughost hosts. A closed set, so an enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// Key/value store with ETags, TTL and transactions.
    State,
    /// Publish/subscribe broker with at-least-once delivery.
    PubSub,
    /// Source of events the app answers.
    InputBinding,
    /// Target the app invokes operations on.
    OutputBinding,
    /// Read-only secrets.
    SecretStore,
}

impl ComponentKind {
    /// Every kind, in a fixed order.
    pub const ALL: [Self; 5] = [Self::State, Self::PubSub, Self::InputBinding, Self::OutputBinding, Self::SecretStore];

    /// Prefix of component types of this kind (`state` in `state.sqlite`).
    /// Both binding kinds share Dapr's `bindings` prefix.
    pub const fn type_prefix(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::PubSub => "pubsub",
            Self::InputBinding | Self::OutputBinding => "bindings",
            Self::SecretStore => "secretstores",
        }
    }

    /// Short name for logs and listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::PubSub => "pubsub",
            Self::InputBinding => "input-binding",
            Self::OutputBinding => "output-binding",
            Self::SecretStore => "secret-store",
        }
    }

    /// Dapr's gRPC service name for this kind (`dapr.proto.components.v1.*`).
    pub const fn grpc_service(self) -> &'static str {
        match self {
            Self::State => "dapr.proto.components.v1.StateStore",
            Self::PubSub => "dapr.proto.components.v1.PubSub",
            Self::InputBinding => "dapr.proto.components.v1.InputBinding",
            Self::OutputBinding => "dapr.proto.components.v1.OutputBinding",
            Self::SecretStore => "dapr.proto.components.v1.SecretStore",
        }
    }

    /// The kind serving `service`, if it is one of Dapr's component services.
    pub fn from_grpc_service(service: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.grpc_service() == service)
    }
}

impl std::fmt::Display for ComponentKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_service_names_round_trip() {
        for kind in ComponentKind::ALL {
            assert_eq!(ComponentKind::from_grpc_service(kind.grpc_service()), Some(kind));
        }
        assert_eq!(ComponentKind::from_grpc_service("grpc.reflection.v1.ServerReflection"), None);
    }
}
