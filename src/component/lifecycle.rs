//! The lifecycle every component has, whatever its kinds and wherever it
//! runs, mirroring Dapr's pluggable component protocol: the host calls
//! `init(metadata)` exactly once, before anything else, bounded by the
//! component's `initTimeout`; then `features()`; `ping()` at any time after
//! as a liveness probe (the host's health probe, [`crate::health`]); `close()`
//! once at the end.
//!
//! Declared once here and implemented once per *mode*: a built-in
//! implements it itself; a WASM component's adapters share one
//! `wasm::WasmComponent`, a gRPC component's adapters one
//! `pluggable::GrpcLifecycle`. The kind traits ([`crate::kinds`]) extend
//! [`Lifecycle`] with their operations only, so `store.ping()` works on any
//! `Arc<dyn StateStore>`.

use crate::kinds::{Metadata, Result};

/// `init`, `features`, `ping`, `close` of one component.
#[async_trait::async_trait]
pub trait Lifecycle: Send + Sync + 'static {
    /// Configures the component with its `spec.metadata`. Called once.
    async fn init(&self, metadata: Metadata) -> Result<()>;

    /// What the component supports: Dapr's feature strings (state, pub/sub,
    /// secret stores) or an output binding's operations; an input binding
    /// has none.
    async fn features(&self) -> Result<Vec<String>>;

    /// Liveness probe.
    async fn ping(&self) -> Result<()>;

    /// Releases resources; the component is not called again.
    async fn close(&self) -> Result<()> {
        Ok(())
    }
}

/// An adapter whose lifecycle is its component's: the kind adapters of one
/// WASM or gRPC component (and decorators such as resiliency) implement this
/// one method instead of [`Lifecycle`]'s four.
pub trait SharedLifecycle: Send + Sync + 'static {
    /// The component's lifecycle.
    fn lifecycle(&self) -> &dyn Lifecycle;
}

#[async_trait::async_trait]
impl<T: SharedLifecycle> Lifecycle for T {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.lifecycle().init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.lifecycle().features().await
    }

    async fn ping(&self) -> Result<()> {
        self.lifecycle().ping().await
    }

    async fn close(&self) -> Result<()> {
        self.lifecycle().close().await
    }
}
