//! [`WasmComponent`]: the lifecycle of one configured WASM component, shared
//! by the adapters of every kind it serves (they call into the same
//! instances).

use std::sync::Arc;

use super::LoadedComponent;
use super::exports::Exports;
use super::instances::Instances;
use crate::component::Lifecycle;
use crate::kinds::{Metadata, Result};

/// One configured component's instance(s) and its `lifecycle` exports.
pub struct WasmComponent {
    pub(crate) instances: Arc<Instances<Exports>>,
    /// Set by `close`: every subscription or reader pump ends, and its
    /// stream with it.
    pub(crate) closing: tokio::sync::watch::Sender<bool>,
}

impl WasmComponent {
    /// The component `name` of `loaded`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Arc<Self> {
        Arc::new(Self {
            instances: Arc::new(Instances::new(loaded, name)),
            closing: tokio::sync::watch::Sender::new(false),
        })
    }
}

#[async_trait::async_trait]
impl Lifecycle for WasmComponent {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.instances.init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.instances.features().await
    }

    async fn ping(&self) -> Result<()> {
        self.instances.ping().await
    }

    async fn close(&self) -> Result<()> {
        self.closing.send_replace(true);
        Ok(())
    }
}
