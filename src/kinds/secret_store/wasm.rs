//! [`WasmSecretStore`]: a secret store in a WASM component (world
//! `secret-store-component`, `wit/secrets.wit`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Secret, SecretStore};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{Metadata, Result};
use crate::wasm::instances::Instances;
use crate::wasm::to_wit;
use crate::wasm::{Exports, WasmComponent};

/// A [`SecretStore`] backed by a WASM component.
pub struct WasmSecretStore {
    component: Arc<WasmComponent>,
    instances: Arc<Instances<Exports>>,
}

impl WasmSecretStore {
    /// The adapter of `component`'s kind.
    pub fn new(component: &Arc<WasmComponent>) -> Self {
        Self { component: component.clone(), instances: component.instances.clone() }
    }
}

#[async_trait::async_trait]
impl SecretStore for WasmSecretStore {
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        let (key, metadata) = (key.to_owned(), to_wit(&metadata));
        let secret = self
            .instances
            .call("get", move |g, s| {
                Box::pin(async move { g.plughost_components_secret_store().call_get(s, &key, &metadata).await })
            })
            .await?;
        Ok(secret.into_iter().collect())
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        let metadata = to_wit(&metadata);
        let all = self
            .instances
            .call("bulk-get", move |g, s| {
                Box::pin(async move { g.plughost_components_secret_store().call_bulk_get(s, &metadata).await })
            })
            .await?;
        Ok(all.into_iter().map(|(name, values)| (name, values.into_iter().collect())).collect())
    }
}

impl SharedLifecycle for WasmSecretStore {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
