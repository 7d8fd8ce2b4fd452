//! [`WasmSecretStore`]: a secret store in a WASM component (world
//! `secret-store-component`, `wit/secrets.wit`).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Secret, SecretStore};
use crate::kinds::{Metadata, Result};
use crate::wasm::bindings::secret_store::{SecretStoreComponent, SecretStoreComponentPre};
use crate::wasm::instances::Instances;
use crate::wasm::{LoadedComponent, to_wit};

/// A [`SecretStore`] backed by a WASM component.
pub struct WasmSecretStore {
    instances: Instances<SecretStoreComponent>,
}

crate::wasm_guest!(SecretStoreComponent, SecretStoreComponentPre);

impl WasmSecretStore {
    /// An adapter for the component `name`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self { instances: Instances::new(loaded, name) }
    }
}

#[async_trait::async_trait]
impl SecretStore for WasmSecretStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.instances.init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.instances.features().await
    }

    async fn ping(&self) -> Result<()> {
        self.instances.ping().await
    }

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
