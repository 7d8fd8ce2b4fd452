//! The five component kinds. Each folder holds the kind's trait (`mod.rs`) and
//! its implementations, one file per mode or built-in.
//!
//! Every kind trait extends [`Lifecycle`](crate::component::Lifecycle)
//! (`init`, `features`, `ping`, `close`) with the kind's operations only.
//! Everything else that differs per kind — its Dapr type prefix, gRPC
//! service and method names, WIT interface, start order — is a method of
//! [`ComponentKind`], so adding a kind is a compiler-guided walk through
//! those matches.

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

    /// The kinds a component type such as `state.sqlite` or
    /// `bindings.cron` may serve, read from its prefix (both binding kinds
    /// for `bindings.*`); empty when the prefix is no kind's. The one place
    /// a type name is matched against the prefixes.
    pub fn of_type(type_name: &str) -> Vec<Self> {
        let Some((prefix, rest)) = type_name.split_once('.') else { return Vec::new() };
        if rest.is_empty() {
            return Vec::new();
        }
        Self::ALL.into_iter().filter(|kind| kind.type_prefix().eq_ignore_ascii_case(prefix)).collect()
    }

    /// When components of this kind start: lower first. Secret stores come
    /// first because other components' `secretKeyRef`s read them.
    pub const fn start_rank(self) -> u8 {
        match self {
            Self::SecretStore => 0,
            Self::State | Self::PubSub | Self::InputBinding | Self::OutputBinding => 1,
        }
    }

    /// The WIT interface a WASM component exports for this kind
    /// (`plughost:components/<name>`, `wit/`).
    pub const fn wit_interface(self) -> &'static str {
        match self {
            Self::State => "state",
            Self::PubSub => "pubsub",
            Self::InputBinding => "input-binding",
            Self::OutputBinding => "output-binding",
            Self::SecretStore => "secret-store",
        }
    }

    /// The gRPC method of this kind's service that lists its features:
    /// `Features`, or `ListOperations` for output bindings; input bindings
    /// have none.
    pub const fn grpc_features_method(self) -> Option<&'static str> {
        match self {
            Self::State | Self::PubSub | Self::SecretStore => Some("Features"),
            Self::OutputBinding => Some("ListOperations"),
            Self::InputBinding => None,
        }
    }

    /// The gRPC method called (empty request, best effort) when a component
    /// of this kind is closed: pub/sub's `Pause`, as daprd does.
    pub const fn grpc_close_method(self) -> Option<&'static str> {
        match self {
            Self::PubSub => Some("Pause"),
            Self::State | Self::InputBinding | Self::OutputBinding | Self::SecretStore => None,
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

    #[test]
    fn type_names_give_their_kinds() {
        assert_eq!(ComponentKind::of_type("state.sqlite"), [ComponentKind::State]);
        assert_eq!(ComponentKind::of_type("SecretStores.local.env"), [ComponentKind::SecretStore]);
        assert_eq!(
            ComponentKind::of_type("bindings.cron"),
            [ComponentKind::InputBinding, ComponentKind::OutputBinding]
        );
        assert!(ComponentKind::of_type("state.").is_empty());
        assert!(ComponentKind::of_type("statestore").is_empty());
        assert!(ComponentKind::of_type("lock.redis").is_empty());
    }
}
