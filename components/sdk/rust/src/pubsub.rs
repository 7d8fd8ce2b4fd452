//! Pub/sub brokers: the WIT `pubsub` interface, operation for operation.

use crate::{Component, Error, Metadata};

pub use crate::contract::pubsub_world::exports::plughost::components::pubsub::{
    BulkEntry, FailedEntry, Message, PublishRequest,
};

/// Subscribe metadata naming a consumer group.
pub const CONSUMER_ID: &str = "consumerID";

/// A broker, **pulled** by the host: the host subscribes, pulls messages and
/// answers each one with [`ack`](PubSub::ack).
///
/// Keep every pulled message in flight until it is acked; a failed ack, or
/// [`unsubscribe`](PubSub::unsubscribe) with messages still in flight, puts
/// them back for redelivery (at-least-once). In gRPC mode the SDK turns this
/// into Dapr's `PullMessages` stream: it pulls when you have messages (it is
/// woken by every publish and polls every 20 ms otherwise) and calls `ack`
/// with the host's answers.
pub trait PubSub: Component {
    /// Publishes one message to every subscriber (group) of its topic.
    fn publish(&mut self, request: PublishRequest) -> Result<(), Error>;

    /// Publishes several messages; returns the entries that failed.
    fn bulk_publish(
        &mut self,
        topic: String,
        entries: Vec<BulkEntry>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>, Error> {
        Ok(entries
            .into_iter()
            .filter_map(|entry| {
                let mut merged: Metadata =
                    metadata.iter().filter(|(k, _)| !entry.metadata.iter().any(|(e, _)| e == k)).cloned().collect();
                merged.extend(entry.metadata);
                let request = PublishRequest {
                    topic: topic.clone(),
                    data: entry.data,
                    content_type: entry.content_type,
                    metadata: merged,
                };
                self.publish(request).err().map(|e| FailedEntry { entry_id: entry.entry_id, error: e.to_string() })
            })
            .collect())
    }

    /// Starts a subscription to `topic`; [`CONSUMER_ID`] in `metadata` names a
    /// consumer group. Returns the subscription's id.
    fn subscribe(&mut self, topic: String, metadata: Metadata) -> Result<u64, Error>;

    /// Up to `max` messages for `subscription`, each now in flight.
    fn pull(&mut self, subscription: u64, max: u32) -> Result<Vec<Message>, Error>;

    /// The answer to a pulled message: `None` = done, `Some(reason)` =
    /// deliver it again.
    fn ack(&mut self, subscription: u64, message_id: String, failure: Option<String>) -> Result<(), Error>;

    /// Ends a subscription; its in-flight messages are delivered again.
    fn unsubscribe(&mut self, subscription: u64);
}
