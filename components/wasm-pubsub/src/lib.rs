//! `wasm-pubsub`: the pub/sub guest the tests and the load bench load, which
//! is `broker` (`../broker`, the in-memory broker written with the component
//! SDK) under this name: no logic of its own.
//!
//! `broker`'s own `export_pubsub!(Broker)` emits the WASM exports (the
//! `pubsub-component` world); linked in as a library, they are this
//! component's exports, as a cdylib exports every `#[no_mangle]` symbol of
//! its dependencies. Calling the macro again here would define them twice.

pub use broker::Broker;
