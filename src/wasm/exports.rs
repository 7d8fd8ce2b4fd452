//! [`Exports`]: one instance of a component with every plughost interface
//! it exports, so a component exporting both binding directions serves both
//! from one instance (as a gRPC component serves both over one connection).
//!
//! The bindgen worlds (`bindings`) each expect exactly one kind; here the
//! per-interface handles of those worlds are looked up one by one on a
//! plain instance instead, and only for the interfaces the component
//! exports.

use futures::future::BoxFuture;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::HostState;
use super::bindings::{input_binding, output_binding, pubsub, secret_store, state};
use super::instances::{Call, Guest};

use input_binding::exports::plughost::components::input_binding as input_wit;
use output_binding::exports::plughost::components::output_binding as output_wit;
use pubsub::exports::plughost::components::pubsub as pubsub_wit;
use secret_store::exports::plughost::components::secret_store as secrets_wit;
use state::exports::plughost::components::lifecycle as lifecycle_wit;
use state::exports::plughost::components::state as state_wit;

/// Where each exported interface is, looked up once per component.
#[derive(Clone)]
pub(crate) struct ExportsPre {
    pre: InstancePre<HostState>,
    lifecycle: lifecycle_wit::GuestIndices,
    state: Option<state_wit::GuestIndices>,
    pubsub: Option<pubsub_wit::GuestIndices>,
    input_binding: Option<input_wit::GuestIndices>,
    output_binding: Option<output_wit::GuestIndices>,
    secret_store: Option<secrets_wit::GuestIndices>,
}

impl ExportsPre {
    /// Whether the component exports `kind`'s interface.
    pub(crate) fn has(&self, kind: crate::kinds::ComponentKind) -> bool {
        use crate::kinds::ComponentKind as K;
        match kind {
            K::State => self.state.is_some(),
            K::PubSub => self.pubsub.is_some(),
            K::InputBinding => self.input_binding.is_some(),
            K::OutputBinding => self.output_binding.is_some(),
            K::SecretStore => self.secret_store.is_some(),
        }
    }
}

/// One instance's exported interfaces.
pub(crate) struct Exports {
    lifecycle: lifecycle_wit::Guest,
    state: Option<state_wit::Guest>,
    pubsub: Option<pubsub_wit::Guest>,
    input_binding: Option<input_wit::Guest>,
    output_binding: Option<output_wit::Guest>,
    secret_store: Option<secrets_wit::Guest>,
}

/// The interface's handle; adapters exist only for exported kinds.
fn exported<'a, T>(interface: &'a Option<T>, name: &str) -> &'a T {
    interface.as_ref().unwrap_or_else(|| panic!("the `{name}` adapter exists only for components exporting it"))
}

impl Exports {
    /// `plughost:components/state`.
    pub(crate) fn plughost_components_state(&self) -> &state_wit::Guest {
        exported(&self.state, "state")
    }

    /// `plughost:components/pubsub`.
    pub(crate) fn plughost_components_pubsub(&self) -> &pubsub_wit::Guest {
        exported(&self.pubsub, "pubsub")
    }

    /// `plughost:components/input-binding`.
    pub(crate) fn plughost_components_input_binding(&self) -> &input_wit::Guest {
        exported(&self.input_binding, "input-binding")
    }

    /// `plughost:components/output-binding`.
    pub(crate) fn plughost_components_output_binding(&self) -> &output_wit::Guest {
        exported(&self.output_binding, "output-binding")
    }

    /// `plughost:components/secret-store`.
    pub(crate) fn plughost_components_secret_store(&self) -> &secrets_wit::Guest {
        exported(&self.secret_store, "secret-store")
    }
}

/// An interface's indices if the component exports it; a component that
/// exports it with the wrong shape is an error.
fn optional<T>(pre: &InstancePre<HostState>, found: wasmtime::Result<T>, export: &str) -> wasmtime::Result<Option<T>> {
    match found {
        Ok(indices) => Ok(Some(indices)),
        Err(_) if pre.component().get_export_index(None, export).is_none() => Ok(None),
        Err(e) => Err(e),
    }
}

impl Guest for Exports {
    type Pre = ExportsPre;

    fn pre(pre: &InstancePre<HostState>) -> wasmtime::Result<ExportsPre> {
        use crate::kinds::ComponentKind as K;
        let name = |kind| super::export_name(kind);
        Ok(ExportsPre {
            pre: pre.clone(),
            lifecycle: lifecycle_wit::GuestIndices::new(pre)?,
            state: optional(pre, state_wit::GuestIndices::new(pre), &name(K::State))?,
            pubsub: optional(pre, pubsub_wit::GuestIndices::new(pre), &name(K::PubSub))?,
            input_binding: optional(pre, input_wit::GuestIndices::new(pre), &name(K::InputBinding))?,
            output_binding: optional(pre, output_wit::GuestIndices::new(pre), &name(K::OutputBinding))?,
            secret_store: optional(pre, secrets_wit::GuestIndices::new(pre), &name(K::SecretStore))?,
        })
    }

    fn instantiate<'a>(pre: &'a ExportsPre, store: &'a mut Store<HostState>) -> BoxFuture<'a, wasmtime::Result<Self>> {
        Box::pin(async move {
            let instance = pre.pre.instantiate_async(&mut *store).await?;
            Ok(Exports {
                lifecycle: pre.lifecycle.load(&mut *store, &instance)?,
                state: pre.state.as_ref().map(|i| i.load(&mut *store, &instance)).transpose()?,
                pubsub: pre.pubsub.as_ref().map(|i| i.load(&mut *store, &instance)).transpose()?,
                input_binding: pre.input_binding.as_ref().map(|i| i.load(&mut *store, &instance)).transpose()?,
                output_binding: pre.output_binding.as_ref().map(|i| i.load(&mut *store, &instance)).transpose()?,
                secret_store: pre.secret_store.as_ref().map(|i| i.load(&mut *store, &instance)).transpose()?,
            })
        })
    }

    fn init<'a>(&'a self, store: &'a mut Store<HostState>, metadata: &'a Vec<(String, String)>) -> Call<'a, ()> {
        Box::pin(self.lifecycle.call_init(store, metadata))
    }

    fn features<'a>(&'a self, store: &'a mut Store<HostState>) -> Call<'a, Vec<String>> {
        Box::pin(async move {
            // An output binding's features are its operations (Dapr's
            // `ListOperations`), asked of its own interface.
            match &self.output_binding {
                Some(output) => output.call_operations(store).await.map(Ok),
                None => self.lifecycle.call_features(store).await.map(Ok),
            }
        })
    }

    fn ping<'a>(&'a self, store: &'a mut Store<HostState>) -> Call<'a, ()> {
        Box::pin(self.lifecycle.call_ping(store))
    }
}
