//! The contract, generated from `wit/` by wit-bindgen on every target. The
//! SDK's worlds (`wit/worlds.wit`) split `plughost:components@0.1.0` so each
//! piece is generated once: [`base`] holds the shared types, the `log` import
//! and the `lifecycle` export; each kind's module adds its interface. The
//! traits of this crate use these types, so the gRPC and WASM modes cannot
//! drift apart.
//!
//! The export macros are public (`pub_export_macro`): the crate itself only
//! describes imports, and a component that calls
//! [`export_state!`](crate::export_state) (and so on) exports `lifecycle`
//! and its kind, which is the kind's world in the repository's `wit/`.
#![allow(missing_docs, clippy::all)]

/// Types, `log`, `lifecycle`.
pub mod base {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/base",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::base",
        generate_all,
    });
}

/// The `state` interface.
pub mod state_world {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/state",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::state_world",
        with: {
            "plughost:components/types@0.1.0": crate::contract::base::plughost::components::types,
        },
    });
}

/// The `pubsub` interface.
pub mod pubsub_world {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/pubsub",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::pubsub_world",
        with: {
            "plughost:components/types@0.1.0": crate::contract::base::plughost::components::types,
        },
    });
}

/// The `input-binding` interface.
pub mod input_binding_world {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/input-binding",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::input_binding_world",
        with: {
            "plughost:components/types@0.1.0": crate::contract::base::plughost::components::types,
        },
    });
}

/// The `output-binding` interface.
pub mod output_binding_world {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/output-binding",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::output_binding_world",
        with: {
            "plughost:components/types@0.1.0": crate::contract::base::plughost::components::types,
        },
    });
}

/// The `secret-store` interface.
pub mod secret_store_world {
    wit_bindgen::generate!({
        world: "plughost-sdk:worlds/secret-store",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "plughost_component::contract::secret_store_world",
        with: {
            "plughost:components/types@0.1.0": crate::contract::base::plughost::components::types,
        },
    });
}
