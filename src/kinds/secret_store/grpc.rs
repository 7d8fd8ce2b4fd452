//! [`GrpcSecretStore`]: a secret store in another process, over Dapr's
//! `SecretStore` service (spec A11, Dapr 1.12+).

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{Secret, SecretStore};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{Metadata, Result};
use crate::pluggable::{ComponentChannel, GrpcLifecycle, Link, client, request};
use crate::proto::components as pb;

type Client = pb::secret_store_client::SecretStoreClient<ComponentChannel>;

/// A [`SecretStore`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcSecretStore {
    lifecycle: Arc<GrpcLifecycle>,
    link: Link,
}

impl GrpcSecretStore {
    /// The secret store side of the component of `lifecycle`; nothing is
    /// dialed before `init`.
    pub fn new(lifecycle: &Arc<GrpcLifecycle>) -> Self {
        Self { lifecycle: lifecycle.clone(), link: lifecycle.link().clone() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

#[async_trait::async_trait]
impl SecretStore for GrpcSecretStore {
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        let max = self.max();
        let message = pb::GetSecretRequest { key: key.to_owned(), metadata: metadata.into_iter().collect() };
        let answer = self
            .link
            .call(None, |ch, t| async move { client!(Client, max, ch).get(request(message, t)).await })
            .await?;
        Ok(answer.data.into_iter().collect())
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        let max = self.max();
        let message = pb::BulkGetSecretRequest { metadata: metadata.into_iter().collect() };
        let answer = self
            .link
            .call(None, |ch, t| async move { client!(Client, max, ch).bulk_get(request(message, t)).await })
            .await?;
        Ok(answer.data.into_iter().map(|(name, secret)| (name, secret.secrets.into_iter().collect())).collect())
    }
}

impl SharedLifecycle for GrpcSecretStore {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.lifecycle
    }
}
