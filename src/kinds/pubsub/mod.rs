//! The `pubsub` kind: a broker with at-least-once delivery, shaped after
//! Dapr's `dapr.proto.components.v1.PubSub`.
//!
//! A subscription is a [`Deliveries`] stream: every message must be acked or
//! nacked. A nack, or a message still unanswered when the subscriber drops the
//! stream, is delivered again.

mod grpc;
mod memory;
mod redis;
mod redis_consumer;
mod wasm;

use super::{Deliveries, Metadata, Result};
use crate::component::Lifecycle;

pub use self::redis::RedisPubSub;
pub use grpc::GrpcPubSub;
pub use memory::MemoryPubSub;
pub use wasm::WasmPubSub;

/// Subscribe metadata key naming a consumer group. Subscriptions with the same
/// group share (compete for) the messages; each group gets every message.
pub const CONSUMER_ID: &str = "consumerID";

/// A message to publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PublishRequest {
    /// Topic name.
    pub topic: String,
    /// Payload (usually a CloudEvent envelope built by the sidecar API).
    pub data: Vec<u8>,
    /// Per-message metadata, delivered with the message.
    pub metadata: Metadata,
    /// Content type of `data`.
    pub content_type: Option<String>,
}

impl PublishRequest {
    /// A message of `data` on `topic`.
    pub fn new(topic: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { topic: topic.into(), data: data.into(), ..Self::default() }
    }
}

/// One entry of a bulk publish.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkMessage {
    /// Caller-chosen id, echoed in failures.
    pub entry_id: String,
    /// Payload.
    pub data: Vec<u8>,
    /// Content type of `data`.
    pub content_type: Option<String>,
    /// Per-entry metadata.
    pub metadata: Metadata,
}

/// An entry of a bulk publish that was not published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedEntry {
    /// The entry's id.
    pub entry_id: String,
    /// Why it failed.
    pub error: String,
}

/// A message as delivered to a subscriber.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Broker-assigned id, stable across redeliveries.
    pub id: String,
    /// Topic it was published on.
    pub topic: String,
    /// Payload.
    pub data: Vec<u8>,
    /// Content type given at publish time.
    pub content_type: Option<String>,
    /// Metadata given at publish time.
    pub metadata: Metadata,
}

/// A publish/subscribe broker, however it is hosted.
#[async_trait::async_trait]
pub trait PubSub: Lifecycle {
    /// Publishes one message; returns once the broker has accepted it.
    async fn publish(&self, request: PublishRequest) -> Result<()>;

    /// Publishes several messages to `topic`; returns the entries that failed.
    async fn bulk_publish(
        &self,
        topic: &str,
        entries: Vec<BulkMessage>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>> {
        publish_each(self, topic, entries, metadata).await
    }

    /// Starts a subscription to `topic`. Messages published after this call
    /// returns are delivered; `metadata` may name a [`CONSUMER_ID`] group.
    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>>;
}

/// `bulk_publish` as one `publish` per entry (entry metadata over the
/// request's): the default, and what daprd does for a gRPC broker without
/// the `BULK_PUBSUB` feature.
pub(crate) async fn publish_each<P: PubSub + ?Sized>(
    pubsub: &P,
    topic: &str,
    entries: Vec<BulkMessage>,
    metadata: Metadata,
) -> Result<Vec<FailedEntry>> {
    let mut failed = Vec::new();
    for entry in entries {
        let mut message_metadata = metadata.clone();
        message_metadata.extend(entry.metadata);
        let request = PublishRequest {
            topic: topic.to_owned(),
            data: entry.data,
            metadata: message_metadata,
            content_type: entry.content_type,
        };
        if let Err(e) = pubsub.publish(request).await {
            failed.push(FailedEntry { entry_id: entry.entry_id, error: e.to_string() });
        }
    }
    Ok(failed)
}
