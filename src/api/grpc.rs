//! `dapr.proto.runtime.v1.Dapr` over gRPC: each RPC converts its request
//! into plughost's types, calls the [`Sidecar`] and converts the answer back.
//! RPCs outside the subset answer `UNIMPLEMENTED` (the generated default).
//! Reflection (v1 and v1alpha) is served on the same port, naming only the
//! `Dapr` service. The server runs with the [`ApiLimits`](super::ApiLimits)
//! and `TCP_NODELAY` on every accepted connection.

mod read_timeout;

use std::collections::HashMap;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::{Request, Response, Status};

use super::Sidecar;
use super::auth::{TOKEN_HEADER, Token};
use super::errors::ApiError;
use super::sidecar::SubscriptionType;
use crate::kinds::Metadata;
use crate::kinds::output_binding::InvokeRequest;
use crate::kinds::pubsub::BulkMessage;
use crate::kinds::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, SetRequest, StateOptions, TransactionOperation,
};
use crate::proto::common;
use crate::proto::{self, runtime as rt};

type Result<T> = std::result::Result<Response<T>, Status>;

/// The `Dapr` service over a [`Sidecar`].
#[derive(Clone)]
pub struct DaprApi {
    sidecar: Arc<Sidecar>,
}

impl DaprApi {
    /// The service.
    pub fn new(sidecar: Arc<Sidecar>) -> Self {
        Self { sidecar }
    }
}

/// The gRPC routes: the `Dapr` service with the configured message size
/// limit, and reflection, all behind the token check.
pub fn routes(sidecar: Arc<Sidecar>) -> tonic::service::Routes {
    let max = sidecar.config().max_body;
    let dapr = rt::dapr_server::DaprServer::new(DaprApi::new(sidecar))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(proto::FILE_DESCRIPTOR_SET)
            .with_service_name("dapr.proto.runtime.v1.Dapr")
    };
    let v1 = reflection().build_v1().expect("the descriptor set is valid");
    let v1alpha = reflection().build_v1alpha().expect("the descriptor set is valid");
    tonic::service::Routes::new(dapr).add_service(v1).add_service(v1alpha)
}

/// Serves [`routes`] on `listener` until the sidecar stops.
pub(super) async fn serve(
    sidecar: Arc<Sidecar>,
    listener: TcpListener,
    cap: super::connections::ConnectionCap,
) -> std::result::Result<(), String> {
    let token = Token::new(sidecar.config().token.as_deref());
    let check = move |request: Request<()>| {
        let presented = request.metadata().get(TOKEN_HEADER).map(|v| v.as_bytes());
        if token.admits(presented) { Ok(request) } else { Err(Status::unauthenticated("invalid api token")) }
    };
    let limits = sidecar.config().limits.clone();
    let read_timeout = limits.body_read_timeout;
    let message_deadline = move |request: axum::http::Request<tonic::body::Body>| {
        request.map(|body| tonic::body::Body::new(read_timeout::MessageDeadline::new(body, read_timeout)))
    };
    let incoming = cap.limit(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)));
    let stopping = sidecar.clone();
    tonic::transport::Server::builder()
        .max_concurrent_streams(limits.max_concurrent_streams)
        .http2_max_pending_accept_reset_streams(Some(limits.max_pending_reset_streams))
        .http2_max_local_error_reset_streams(Some(limits.max_local_error_reset_streams))
        .http2_max_header_list_size(limits.max_header_size)
        .http2_keepalive_interval(Some(limits.keepalive_interval))
        .http2_keepalive_timeout(Some(super::limits::KEEPALIVE_TIMEOUT))
        .layer(crate::ops::grpc_api::GrpcApiLayer)
        .layer(tower::util::MapResponseLayer::new(too_large_is_resource_exhausted))
        .layer(tower::util::MapRequestLayer::new(message_deadline))
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_routes(routes(sidecar))
        .serve_with_incoming_shutdown(incoming, async move { stopping.stopping().await })
        .await
        .map_err(|e| e.to_string())
}

/// tonic refuses a message over the size limit with `OUT_OF_RANGE`: a
/// request at once (in the headers), an answer in the trailers once it is
/// encoded. gRPC's other servers (daprd's grpc-go among them) say
/// `RESOURCE_EXHAUSTED`, which is what clients expect, so both are rewritten.
fn too_large_is_resource_exhausted<B>(response: axum::http::Response<B>) -> axum::http::Response<tonic::body::Body>
where
    B: axum::body::HttpBody<Data = axum::body::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    use http_body_util::BodyExt as _;
    let (mut parts, body) = response.into_parts();
    too_large_status(&mut parts.headers);
    let body = body.map_frame(|mut frame| {
        if let Some(trailers) = frame.trailers_mut() {
            too_large_status(trailers);
        }
        frame
    });
    axum::http::Response::from_parts(parts, tonic::body::Body::new(body))
}

fn too_large_status(headers: &mut axum::http::HeaderMap) {
    let out_of_range = headers.get("grpc-status").is_some_and(|s| s == "11");
    let too_large = headers
        .get("grpc-message")
        .is_some_and(|m| m.to_str().is_ok_and(|m| m.contains("too%20large") || m.contains("too large")));
    if out_of_range && too_large {
        headers.insert("grpc-status", axum::http::HeaderValue::from_static("8"));
    }
}

fn metadata(map: HashMap<String, String>) -> Metadata {
    map.into_iter().collect()
}

fn options(options: Option<common::StateOptions>) -> StateOptions {
    let options = options.unwrap_or_default();
    StateOptions { concurrency: concurrency(options.concurrency), consistency: consistency(options.consistency) }
}

fn concurrency(value: i32) -> Concurrency {
    match value {
        1 => Concurrency::FirstWrite,
        2 => Concurrency::LastWrite,
        _ => Concurrency::Unspecified,
    }
}

fn consistency(value: i32) -> Consistency {
    match value {
        1 => Consistency::Eventual,
        2 => Consistency::Strong,
        _ => Consistency::Unspecified,
    }
}

fn set_request(item: common::StateItem) -> SetRequest {
    SetRequest {
        key: item.key,
        value: item.value,
        etag: item.etag.map(|e| e.value),
        metadata: metadata(item.metadata),
        options: options(item.options),
        content_type: None,
    }
}

fn delete_request(item: common::StateItem) -> DeleteRequest {
    DeleteRequest {
        key: item.key,
        etag: item.etag.map(|e| e.value),
        metadata: metadata(item.metadata),
        options: options(item.options),
    }
}

#[tonic::async_trait]
impl rt::dapr_server::Dapr for DaprApi {
    async fn get_state(&self, request: Request<rt::GetStateRequest>) -> Result<rt::GetStateResponse> {
        let r = request.into_inner();
        let get = GetRequest { key: r.key, metadata: metadata(r.metadata), consistency: consistency(r.consistency) };
        let item = self.sidecar.get_state(&r.store_name, get).await?.unwrap_or_default();
        Ok(Response::new(rt::GetStateResponse {
            data: item.data,
            etag: item.etag.unwrap_or_default(),
            metadata: item.metadata.into_iter().collect(),
        }))
    }

    async fn get_bulk_state(&self, request: Request<rt::GetBulkStateRequest>) -> Result<rt::GetBulkStateResponse> {
        let r = request.into_inner();
        let items = self.sidecar.bulk_get_state(&r.store_name, r.keys, metadata(r.metadata)).await?;
        let items = items
            .into_iter()
            .map(|i| {
                let item = i.item.unwrap_or_default();
                rt::BulkStateItem {
                    key: i.key,
                    data: item.data,
                    etag: item.etag.unwrap_or_default(),
                    error: i.error.unwrap_or_default(),
                    metadata: item.metadata.into_iter().collect(),
                }
            })
            .collect();
        Ok(Response::new(rt::GetBulkStateResponse { items }))
    }

    async fn save_state(&self, request: Request<rt::SaveStateRequest>) -> Result<()> {
        let r = request.into_inner();
        self.sidecar.save_state(&r.store_name, r.states.into_iter().map(set_request).collect()).await?;
        Ok(Response::new(()))
    }

    async fn delete_state(&self, request: Request<rt::DeleteStateRequest>) -> Result<()> {
        let r = request.into_inner();
        let delete = DeleteRequest {
            key: r.key,
            etag: r.etag.map(|e| e.value),
            metadata: metadata(r.metadata),
            options: options(r.options),
        };
        self.sidecar.delete_state(&r.store_name, vec![delete]).await?;
        Ok(Response::new(()))
    }

    async fn delete_bulk_state(&self, request: Request<rt::DeleteBulkStateRequest>) -> Result<()> {
        let r = request.into_inner();
        self.sidecar.delete_state(&r.store_name, r.states.into_iter().map(delete_request).collect()).await?;
        Ok(Response::new(()))
    }

    async fn execute_state_transaction(&self, request: Request<rt::ExecuteStateTransactionRequest>) -> Result<()> {
        let r = request.into_inner();
        let mut operations = Vec::with_capacity(r.operations.len());
        for op in r.operations {
            let item = op.request.ok_or_else(|| ApiError::malformed("a transaction operation has no request"))?;
            operations.push(match op.operation_type.as_str() {
                "upsert" => TransactionOperation::Set(set_request(item)),
                "delete" => TransactionOperation::Delete(delete_request(item)),
                other => return Err(ApiError::unknown_operation(other).into()),
            });
        }
        self.sidecar.transact(&r.store_name, operations, metadata(r.metadata)).await?;
        Ok(Response::new(()))
    }

    async fn publish_event(&self, request: Request<rt::PublishEventRequest>) -> Result<()> {
        let r = request.into_inner();
        let metadata = metadata(r.metadata);
        self.sidecar.publish(&r.pubsub_name, &r.topic, &r.data, &r.data_content_type, metadata).await?;
        Ok(Response::new(()))
    }

    async fn bulk_publish_event_alpha1(
        &self,
        request: Request<rt::BulkPublishRequest>,
    ) -> Result<rt::BulkPublishResponse> {
        self.bulk_publish_event(request).await
    }

    async fn bulk_publish_event(&self, request: Request<rt::BulkPublishRequest>) -> Result<rt::BulkPublishResponse> {
        let r = request.into_inner();
        let entries = r
            .entries
            .into_iter()
            .map(|e| BulkMessage {
                entry_id: e.entry_id,
                data: e.event,
                content_type: (!e.content_type.is_empty()).then_some(e.content_type),
                metadata: metadata(e.metadata),
            })
            .collect();
        let failed = self.sidecar.bulk_publish(&r.pubsub_name, &r.topic, entries, metadata(r.metadata)).await?;
        let failed_entries = failed
            .into_iter()
            .map(|f| rt::BulkPublishResponseFailedEntry { entry_id: f.entry_id, error: f.error })
            .collect();
        Ok(Response::new(rt::BulkPublishResponse { failed_entries }))
    }

    async fn subscribe_topic_events_alpha1(
        &self,
        request: Request<tonic::Streaming<rt::SubscribeTopicEventsRequestAlpha1>>,
    ) -> Result<tonic::codegen::BoxStream<rt::SubscribeTopicEventsResponseAlpha1>> {
        let stream = super::subscribe::open(self.sidecar.clone(), request.into_inner()).await?;
        Ok(Response::new(stream))
    }

    async fn invoke_binding(&self, request: Request<rt::InvokeBindingRequest>) -> Result<rt::InvokeBindingResponse> {
        let r = request.into_inner();
        let invoke = InvokeRequest { operation: r.operation, data: r.data, metadata: metadata(r.metadata) };
        let answer = self.sidecar.invoke_binding(&r.name, invoke).await?;
        let mut headers = tonic::metadata::MetadataMap::new();
        for (key, value) in &answer.metadata {
            let key = MetadataKey::from_bytes(format!("metadata.{}", key.to_ascii_lowercase()).as_bytes());
            if let (Ok(key), Ok(value)) = (key, MetadataValue::try_from(value.as_str())) {
                headers.insert(key, value);
            }
        }
        let body = rt::InvokeBindingResponse { data: answer.data, metadata: answer.metadata.into_iter().collect() };
        Ok(Response::from_parts(headers, body, tonic::Extensions::default()))
    }

    async fn get_secret(&self, request: Request<rt::GetSecretRequest>) -> Result<rt::GetSecretResponse> {
        let r = request.into_inner();
        let secret = self.sidecar.get_secret(&r.store_name, &r.key, metadata(r.metadata)).await?;
        Ok(Response::new(rt::GetSecretResponse { data: secret.into_iter().collect() }))
    }

    async fn get_bulk_secret(&self, request: Request<rt::GetBulkSecretRequest>) -> Result<rt::GetBulkSecretResponse> {
        let r = request.into_inner();
        let secrets = self.sidecar.bulk_secrets(&r.store_name, metadata(r.metadata)).await?;
        let data = secrets
            .into_iter()
            .map(|(name, values)| (name, rt::SecretResponse { secrets: values.into_iter().collect() }))
            .collect();
        Ok(Response::new(rt::GetBulkSecretResponse { data }))
    }

    async fn get_metadata(&self, _request: Request<rt::GetMetadataRequest>) -> Result<rt::GetMetadataResponse> {
        let sidecar = &self.sidecar;
        let registered_components = sidecar
            .components()
            .into_iter()
            .map(|c| rt::RegisteredComponents {
                name: c.name,
                r#type: c.type_name,
                version: c.version,
                capabilities: c.capabilities,
            })
            .collect();
        let subscriptions = sidecar
            .subscriptions()
            .into_iter()
            .map(|s| rt::PubsubSubscription {
                pubsub_name: s.pubsub,
                topic: s.topic,
                metadata: s.metadata.into_iter().collect(),
                dead_letter_topic: s.dead_letter_topic,
                r#type: match s.kind {
                    SubscriptionType::Streaming => rt::PubsubSubscriptionType::Streaming,
                    SubscriptionType::Programmatic => rt::PubsubSubscriptionType::Programmatic,
                    SubscriptionType::Declarative => rt::PubsubSubscriptionType::Declarative,
                } as i32,
                ..Default::default()
            })
            .collect();
        Ok(Response::new(rt::GetMetadataResponse {
            id: sidecar.config().app_id.clone(),
            registered_components,
            extended_metadata: sidecar.extended_metadata().into_iter().collect(),
            subscriptions,
            runtime_version: env!("CARGO_PKG_VERSION").to_owned(),
            actor_runtime: Some(rt::ActorRuntime {
                runtime_status: rt::actor_runtime::ActorRuntimeStatus::Disabled as i32,
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn set_metadata(&self, request: Request<rt::SetMetadataRequest>) -> Result<()> {
        let r = request.into_inner();
        self.sidecar.set_metadata(r.key, r.value);
        Ok(Response::new(()))
    }

    async fn shutdown(&self, _request: Request<rt::ShutdownRequest>) -> Result<()> {
        tracing::info!("shutdown requested through the gRPC API");
        self.sidecar.request_shutdown();
        Ok(Response::new(()))
    }
}
