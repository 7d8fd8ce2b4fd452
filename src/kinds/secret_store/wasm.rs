//! [`WasmSecretStore`]: a secret store in a WASM component (world
//! `secret-store-component`, `wit/secrets.wit`).

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{Secret, SecretStore};
use crate::kinds::{Metadata, Result};
use crate::wasm::bindings::WitError;
use crate::wasm::bindings::secret_store::{SecretStoreComponent, SecretStoreComponentPre};
use crate::wasm::instances::{Guest, Instances};
use crate::wasm::{HostState, LoadedComponent, to_wit};

/// A [`SecretStore`] backed by a WASM component.
pub struct WasmSecretStore {
    instances: Instances<SecretStoreComponent>,
}

impl Guest for SecretStoreComponent {
    type Pre = SecretStoreComponentPre<HostState>;

    fn pre(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        SecretStoreComponentPre::new(pre.clone())
    }

    fn instantiate<'a>(pre: &'a Self::Pre, store: &'a mut Store<HostState>) -> BoxFuture<'a, wasmtime::Result<Self>> {
        Box::pin(pre.instantiate_async(store))
    }

    fn init<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
        metadata: &'a Vec<(String, String)>,
    ) -> BoxFuture<'a, wasmtime::Result<std::result::Result<(), WitError>>> {
        Box::pin(self.plughost_components_lifecycle().call_init(store, metadata))
    }
}

impl WasmSecretStore {
    /// An adapter for the component `name`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self { instances: Instances::new(loaded, name) }
    }

    pub(crate) fn check(pre: &InstancePre<HostState>) -> wasmtime::Result<()> {
        SecretStoreComponent::pre(pre).map(|_| ())
    }
}

#[async_trait::async_trait]
impl SecretStore for WasmSecretStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.instances.init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.instances
            .call("features", |g, s| {
                Box::pin(async move { g.plughost_components_lifecycle().call_features(s).await.map(Ok) })
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.instances.call("ping", |g, s| Box::pin(g.plughost_components_lifecycle().call_ping(s))).await
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
