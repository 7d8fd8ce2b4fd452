//! Host bindings for the WIT worlds in `wit/`, one module per world. The
//! shared `types` and `log` interfaces are generated once (in `state`) and
//! reused by the others with `with:`, so there is one `Error` type and one
//! `log` implementation.
#![allow(missing_docs, clippy::all)]

pub mod state {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "state-component",
        exports: { default: async },
    });
}

pub mod pubsub {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "pubsub-component",
        exports: { default: async },
        with: {
            "plughost:components/types": super::state::plughost::components::types,
            "plughost:components/log": super::state::plughost::components::log,
        },
    });
}

pub mod output_binding {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "output-binding-component",
        exports: { default: async },
        with: {
            "plughost:components/types": super::state::plughost::components::types,
            "plughost:components/log": super::state::plughost::components::log,
        },
    });
}

pub mod input_binding {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "input-binding-component",
        exports: { default: async },
        with: {
            "plughost:components/types": super::state::plughost::components::types,
            "plughost:components/log": super::state::plughost::components::log,
        },
    });
}

pub mod secret_store {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "secret-store-component",
        exports: { default: async },
        with: {
            "plughost:components/types": super::state::plughost::components::types,
            "plughost:components/log": super::state::plughost::components::log,
        },
    });
}

pub use state::plughost::components::log;
pub use state::plughost::components::types::Error as WitError;

use crate::kinds::{ComponentError, Metadata};

/// WIT metadata (a list of pairs) from the host's map.
pub fn to_wit(metadata: &Metadata) -> Vec<(String, String)> {
    metadata.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// The host's map from WIT metadata.
pub fn from_wit(metadata: Vec<(String, String)>) -> Metadata {
    metadata.into_iter().collect()
}

impl From<WitError> for ComponentError {
    fn from(error: WitError) -> Self {
        match error {
            WitError::EtagMismatch(key) => ComponentError::etag_mismatch(&key),
            WitError::EtagInvalid(key) => ComponentError::etag_invalid(&key, "rejected by the component"),
            WitError::NotFound(what) => ComponentError::NotFound(what),
            WitError::InvalidArgument(why) => ComponentError::InvalidArgument(why),
            WitError::NotSupported(what) => ComponentError::NotSupported(what),
            WitError::Unavailable(why) => ComponentError::Unavailable { component: String::new(), reason: why },
            WitError::Internal(why) => ComponentError::Internal(why),
        }
    }
}
