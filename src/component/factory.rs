//! Component types: a [`Factory`] per type name makes an [`Instance`] for
//! each configured component of that type.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;

use super::{Health, Instance};

/// Where a component runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Native Rust shipped with plughost.
    Builtin,
    /// Handed to the host in code by an embedding application.
    Embedded,
    /// In-process WebAssembly component.
    Wasm,
    /// Out-of-process gRPC service on a Unix socket.
    Grpc,
}

impl Mode {
    /// Lower-case name for listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Builtin => "builtin",
            Mode::Embedded => "embedded",
            Mode::Wasm => "wasm",
            Mode::Grpc => "grpc",
        }
    }
}

/// What a factory knows about the component it makes.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// The component's configured name.
    pub name: String,
    /// The host's data directory, for components that persist.
    pub data_dir: PathBuf,
    /// Where the instance reports its health after start-up (gRPC
    /// components do; in-process ones have nothing to report).
    pub health: Health,
}

/// Makes one instance per configured component. Async, because making one
/// may mean instantiating a WASM component or dialing a socket.
pub type MakeFn = dyn Fn(FactoryContext) -> BoxFuture<'static, anyhow::Result<Instance>> + Send + Sync;

/// A component type the host can make.
#[derive(Clone)]
pub struct Factory {
    /// Where instances of this type run.
    pub mode: Mode,
    /// Where the type came from (`builtin`, a `.wasm` path, a socket path).
    pub source: String,
    /// The constructor.
    pub make: Arc<MakeFn>,
}

impl Factory {
    /// A factory running `make`.
    pub fn new<F, Fut>(mode: Mode, source: impl Into<String>, make: F) -> Self
    where
        F: Fn(FactoryContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Instance>> + Send + 'static,
    {
        Self { mode, source: source.into(), make: Arc::new(move |ctx| Box::pin(make(ctx))) }
    }
}

/// Factories by component type (lower-case, e.g. `state.sqlite`).
#[derive(Clone, Default)]
pub struct Factories {
    by_type: BTreeMap<String, Factory>,
}

impl Factories {
    /// Registers `factory` as `type_name`, replacing any earlier one (so an
    /// embedder can override a built-in).
    pub fn insert(&mut self, type_name: &str, factory: Factory) {
        self.by_type.insert(type_name.to_lowercase(), factory);
    }

    /// The factory for `type_name`.
    pub fn get(&self, type_name: &str) -> Option<&Factory> {
        self.by_type.get(&type_name.to_lowercase())
    }

    /// Every registered type name, sorted.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }
}
