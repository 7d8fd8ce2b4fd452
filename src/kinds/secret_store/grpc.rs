//! [`GrpcSecretStore`]: a secret store in another process, over Dapr's
//! `SecretStore` service (spec A11, Dapr 1.12+).

use std::collections::BTreeMap;
use std::time::Duration;

use super::{Secret, SecretStore};
use crate::grpc::pb::components as pb;
use crate::grpc::{ComponentChannel, Link, client, hook, request};
use crate::kinds::{ComponentKind, Metadata, Result};

type Client = pb::secret_store_client::SecretStoreClient<ComponentChannel>;

/// A [`SecretStore`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcSecretStore {
    link: Link,
}

impl GrpcSecretStore {
    /// A store over `link`; nothing is dialed before `init`.
    pub fn new(link: Link) -> Self {
        Self { link }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

async fn ask_features(channel: ComponentChannel, timeout: Duration, max: usize) -> Result<Vec<String>, tonic::Status> {
    match client!(Client, max, channel).features(request(pb::FeaturesRequest {}, timeout)).await {
        Ok(response) => Ok(response.into_inner().features),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
        Err(status) => Err(status),
    }
}

#[async_trait::async_trait]
impl SecretStore for GrpcSecretStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let metadata = self.link.take_settings(metadata)?;
        let max = self.max();
        let init = pb::SecretStoreInitRequest {
            metadata: Some(pb::MetadataRequest { properties: metadata.into_iter().collect() }),
        };
        self.link
            .init(hook!(Client, ComponentKind::SecretStore, max, init, move |channel, timeout| {
                Box::pin(async move { ask_features(channel, timeout, max).await.map(drop) })
            }))
            .await
    }

    async fn features(&self) -> Result<Vec<String>> {
        let max = self.max();
        self.link.call(None, |ch, t| async move { ask_features(ch, t, max).await.map(tonic::Response::new) }).await
    }

    async fn ping(&self) -> Result<()> {
        let max = self.max();
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).ping(request(pb::PingRequest {}, t)).await })
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.link.close();
        Ok(())
    }

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
