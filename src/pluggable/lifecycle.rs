//! [`GrpcLifecycle`]: `Init`, `Features`, `Ping` and close of one pluggable
//! component, for every kind it serves over its one [`Link`].
//!
//! Dapr gives each kind's service its own `Init`, `Features` and `Ping`
//! methods, with messages of the same wire shape (`*InitRequest` is
//! `{ MetadataRequest metadata = 1 }` for all five; `FeaturesResponse` and
//! `ListOperationsResponse` are both `{ repeated string = 1 }`). So one
//! implementation calls them by path, `/<service>/<method>`, with the names
//! each [`ComponentKind`] gives, instead of one copy per generated client.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tonic::codegen::http::uri::PathAndQuery;

use super::link::{Hook, HookFn};
use super::{ComponentChannel, Link, request};
use crate::component::Lifecycle;
use crate::kinds::{ComponentError, ComponentKind, Metadata, Result};
use crate::proto::components as pb;

/// How long the courtesy calls at close (`PubSub/Pause`) may take.
const CLOSE_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Features as each kind's service last answered them (refreshed after
/// every reconnection).
type Features = Arc<Mutex<BTreeMap<ComponentKind, Vec<String>>>>;

/// The lifecycle of one gRPC component, shared by its kinds' adapters.
#[derive(Debug)]
pub struct GrpcLifecycle {
    link: Link,
    kinds: Vec<ComponentKind>,
    features: Features,
}

impl GrpcLifecycle {
    /// The lifecycle of the component on `link` serving `kinds`.
    pub fn new(link: Link, kinds: Vec<ComponentKind>) -> Arc<Self> {
        Arc::new(Self { link, kinds, features: Features::default() })
    }

    /// The component's connection.
    pub fn link(&self) -> &Link {
        &self.link
    }

    /// `kind`'s features as last answered, if they were asked.
    pub fn features_of(&self, kind: ComponentKind) -> Option<Vec<String>> {
        self.features.lock().expect("features lock").get(&kind).cloned()
    }
}

/// `/<kind's service>/<method>`.
fn path(kind: ComponentKind, method: &str) -> PathAndQuery {
    PathAndQuery::try_from(format!("/{}/{method}", kind.grpc_service())).expect("service and method names are ASCII")
}

/// One unary call by path, with the message size limit both ways.
pub(crate) async fn unary<Req, Resp>(
    channel: ComponentChannel,
    path: PathAndQuery,
    message: Req,
    timeout: Duration,
    max: usize,
) -> std::result::Result<tonic::Response<Resp>, tonic::Status>
where
    Req: prost::Message + Send + Sync + 'static,
    Resp: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(max).max_encoding_message_size(max);
    grpc.ready().await.map_err(|e| tonic::Status::unknown(format!("service was not ready: {e}")))?;
    grpc.unary(request(message, timeout), path, tonic_prost::ProstCodec::default()).await
}

/// `kind`'s `Features` (or `ListOperations`); `UNIMPLEMENTED` is no
/// features, as daprd reads it. An input binding has none to ask.
async fn ask_features(
    kind: ComponentKind,
    channel: ComponentChannel,
    timeout: Duration,
    max: usize,
) -> std::result::Result<Vec<String>, tonic::Status> {
    let Some(method) = kind.grpc_features_method() else { return Ok(Vec::new()) };
    match unary::<_, pb::FeaturesResponse>(channel, path(kind, method), pb::FeaturesRequest {}, timeout, max).await {
        Ok(response) => Ok(response.into_inner().features),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
        Err(status) => Err(status),
    }
}

/// What the link replays for `kind` on every new connection: `Init` with
/// the component's metadata, then its features; and how to ping it.
fn hook(kind: ComponentKind, init: pb::InitRequest, features: Features, max: usize) -> Hook {
    let init: HookFn = Box::new(move |channel, timeout| {
        let init = init.clone();
        Box::pin(async move {
            unary::<_, pb::InitResponse>(channel, path(kind, "Init"), init, timeout, max).await.map(drop)
        })
    });
    let refresh: HookFn = Box::new(move |channel, timeout| {
        let features = features.clone();
        Box::pin(async move {
            let list = ask_features(kind, channel, timeout, max).await?;
            features.lock().expect("features lock").insert(kind, list);
            Ok(())
        })
    });
    let ping: HookFn = Box::new(move |channel, timeout| {
        Box::pin(async move {
            unary::<_, pb::PingResponse>(channel, path(kind, "Ping"), pb::PingRequest {}, timeout, max).await.map(drop)
        })
    });
    Hook { kind, init, refresh, ping }
}

#[async_trait::async_trait]
impl Lifecycle for GrpcLifecycle {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let metadata = self.link.take_settings(metadata)?;
        let max = self.link.options().max_message_size;
        let init =
            pb::InitRequest { metadata: Some(pb::MetadataRequest { properties: metadata.into_iter().collect() }) };
        for kind in &self.kinds {
            self.link.init(hook(*kind, init.clone(), self.features.clone(), max)).await?;
        }
        Ok(())
    }

    async fn features(&self) -> Result<Vec<String>> {
        let max = self.link.options().max_message_size;
        let mut all = Vec::new();
        for kind in &self.kinds {
            let kind = *kind;
            let list = self
                .link
                .call(None, |ch, t| async move { ask_features(kind, ch, t, max).await.map(tonic::Response::new) })
                .await?;
            self.features.lock().expect("features lock").insert(kind, list.clone());
            all.extend(list);
        }
        Ok(all)
    }

    async fn ping(&self) -> Result<()> {
        let max = self.link.options().max_message_size;
        for kind in &self.kinds {
            let kind = *kind;
            self.link
                .call(None, |ch, t| async move {
                    unary::<_, pb::PingResponse>(ch, path(kind, "Ping"), pb::PingRequest {}, t, max).await
                })
                .await?;
        }
        Ok(())
    }

    /// Sends each kind's courtesy call at close (`PubSub/Pause`), bounded
    /// tightly, then closes the link.
    async fn close(&self) -> Result<(), ComponentError> {
        let max = self.link.options().max_message_size;
        for kind in &self.kinds {
            let (Some(method), Ok((channel, _))) = (kind.grpc_close_method(), self.link.channel()) else { continue };
            let calling = unary::<_, ()>(channel, path(*kind, method), (), CLOSE_CALL_TIMEOUT, max);
            match tokio::time::timeout(CLOSE_CALL_TIMEOUT, calling).await {
                Ok(Ok(_)) => {}
                Ok(Err(status)) => tracing::debug!(component = self.link.name(), "{kind} {method}: {status}"),
                Err(_) => tracing::debug!(component = self.link.name(), "{kind} {method} did not answer"),
            }
        }
        self.link.close();
        Ok(())
    }
}
