//! The table of modes: which adapter serves each (kind, mode), and the
//! component types each loaded `.wasm` file or discovered socket gives.
//!
//! Built-ins are their own adapters (`crate::builtins`). For the two other
//! modes, a component's kinds share one lifecycle — one
//! [`WasmComponent`] (its instances), one [`GrpcLifecycle`] (its
//! connection) — and [`kinds`] puts the kind adapters on top of it. The
//! mode folders (`wasm`, `grpc`) know neither the adapters nor the registry;
//! this file is where they meet.

use std::sync::Arc;

use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};

use super::{Factory, FactoryContext, Instance, Kinds, Mode};
use crate::kinds::ComponentKind;
use crate::kinds::input_binding::{GrpcInputBinding, WasmInputBinding};
use crate::kinds::output_binding::{GrpcOutputBinding, WasmOutputBinding};
use crate::kinds::pubsub::{GrpcPubSub, WasmPubSub};
use crate::kinds::secret_store::{GrpcSecretStore, WasmSecretStore};
use crate::kinds::state::{GrpcStateStore, WasmStateStore};
use crate::pluggable::{GrpcLifecycle, GrpcOptions, Link, Provider};
use crate::wasm::{LoadedComponent, WasmComponent};

/// The shared lifecycle of one component of a non-native mode.
enum Served {
    Wasm(Arc<WasmComponent>),
    Grpc(Arc<GrpcLifecycle>),
}

/// The adapters serving `kinds` on top of `served`: the table.
fn kinds(served: &Served, kinds: &[ComponentKind]) -> Kinds {
    use ComponentKind as K;
    let mut out = Kinds::default();
    for kind in kinds {
        match (kind, served) {
            (K::State, Served::Wasm(c)) => out.state = Some(Arc::new(WasmStateStore::new(c))),
            (K::State, Served::Grpc(l)) => out.state = Some(Arc::new(GrpcStateStore::new(l))),
            (K::PubSub, Served::Wasm(c)) => out.pubsub = Some(Arc::new(WasmPubSub::new(c))),
            (K::PubSub, Served::Grpc(l)) => out.pubsub = Some(Arc::new(GrpcPubSub::new(l))),
            (K::InputBinding, Served::Wasm(c)) => out.input_binding = Some(Arc::new(WasmInputBinding::new(c))),
            (K::InputBinding, Served::Grpc(l)) => out.input_binding = Some(Arc::new(GrpcInputBinding::new(l))),
            (K::OutputBinding, Served::Wasm(c)) => out.output_binding = Some(Arc::new(WasmOutputBinding::new(c))),
            (K::OutputBinding, Served::Grpc(l)) => out.output_binding = Some(Arc::new(GrpcOutputBinding::new(l))),
            (K::SecretStore, Served::Wasm(c)) => out.secret_store = Some(Arc::new(WasmSecretStore::new(c))),
            (K::SecretStore, Served::Grpc(l)) => out.secret_store = Some(Arc::new(GrpcSecretStore::new(l))),
        }
    }
    out
}

/// A `.wasm` file being compiled: its outcome, shared by every component
/// of its types (and by the host, which reports a failure).
pub type Compiling = Shared<BoxFuture<'static, Result<Arc<LoadedComponent>, String>>>;

/// The types a loaded `.wasm` file gives: see [`wasm_types_compiling`].
pub fn wasm_types(loaded: &Arc<LoadedComponent>) -> Vec<(String, Factory)> {
    let ready: BoxFuture<'static, Result<Arc<LoadedComponent>, String>> =
        Box::pin(std::future::ready(Ok(loaded.clone())));
    wasm_types_compiling(&loaded.path, &loaded.stem, &loaded.kinds, ready.shared())
}

/// The types a `.wasm` file gives while it still compiles:
/// `<type prefix>.<stem>` for each prefix among `kinds` (read before
/// compiling). A component of one of them waits for the compile when it is
/// made. Input and output bindings share the `bindings.` prefix, so a
/// component exporting both gives one type whose components serve both
/// sides from one instance.
pub fn wasm_types_compiling(
    path: &std::path::Path,
    stem: &str,
    exported: &[ComponentKind],
    compiling: Compiling,
) -> Vec<(String, Factory)> {
    let mut types: Vec<(String, Factory)> = Vec::new();
    for kind in exported {
        let type_name = format!("{}.{stem}", kind.type_prefix());
        if types.iter().any(|(known, _)| *known == type_name) {
            continue;
        }
        let served: Vec<ComponentKind> =
            exported.iter().copied().filter(|k| k.type_prefix() == kind.type_prefix()).collect();
        let compiling = compiling.clone();
        let factory = Factory::new(Mode::Wasm, path.display().to_string(), move |ctx: FactoryContext| {
            let (compiling, served) = (compiling.clone(), served.clone());
            async move {
                let loaded = compiling.await.map_err(anyhow::Error::msg)?;
                let component = WasmComponent::new(loaded, &ctx.name);
                let kinds = kinds(&Served::Wasm(component.clone()), &served);
                Ok(Instance::new(component, kinds))
            }
        });
        types.push((type_name, factory));
    }
    types
}

/// The type a socket provides: each component made gets its own [`Link`]
/// to the socket, shared by the kinds it serves.
pub fn grpc_type(provider: Provider, options: GrpcOptions) -> Factory {
    let source = provider.socket.display().to_string();
    Factory::new(Mode::Grpc, source, move |ctx: FactoryContext| {
        let made = Link::new(&ctx.name, &provider.socket, options.clone(), ctx.health.clone()).map(|link| {
            let lifecycle = GrpcLifecycle::new(link, provider.kinds.clone());
            let kinds = kinds(&Served::Grpc(lifecycle.clone()), &provider.kinds);
            Instance::new(lifecycle, kinds)
        });
        async move { Ok(made?) }
    })
}
