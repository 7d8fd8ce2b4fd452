//! [`GrpcPubSub`]: a broker in another process, over Dapr's `PubSub` service
//! (spec A9). Each subscription is one `PullMessages` stream that survives
//! reconnections (see `pluggable::stream`).

use std::sync::Arc;

use futures::future::BoxFuture;
use tokio_stream::wrappers::ReceiverStream;

use super::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{ComponentError, ComponentKind, Deliveries, Metadata, Reply, Result};
use crate::pluggable::stream::{self, AckedStream};
use crate::pluggable::{ComponentChannel, GrpcLifecycle, Link, client, request};
use crate::proto::components as pb;

type Client = pb::pub_sub_client::PubSubClient<ComponentChannel>;

/// How many messages may wait in a subscriber's buffer before it reads them
/// (the subscriber bounds what it holds unanswered after reading).
const BUFFERED: usize = 64;
/// The feature that makes `bulk_publish` one `BulkPublish` call.
const BULK_PUBSUB: &str = "BULK_PUBSUB";

/// A [`PubSub`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcPubSub {
    lifecycle: Arc<GrpcLifecycle>,
    link: Link,
}

impl GrpcPubSub {
    /// The pub/sub side of the component of `lifecycle`; nothing is
    /// dialed before `init`.
    pub fn new(lifecycle: &Arc<GrpcLifecycle>) -> Self {
        Self { lifecycle: lifecycle.clone(), link: lifecycle.link().clone() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

/// One subscription's stream.
struct Subscription {
    topic: pb::Topic,
    max: usize,
}

impl AckedStream for Subscription {
    type Ack = pb::PullMessagesRequest;
    type Event = pb::PullMessagesResponse;
    type Item = Message;

    fn describe(&self) -> String {
        format!("subscription to topic `{}`", self.topic.name)
    }

    fn first(&self) -> Option<Self::Ack> {
        Some(pb::PullMessagesRequest { topic: Some(self.topic.clone()), ..Default::default() })
    }

    fn open(
        &self,
        channel: ComponentChannel,
        acks: ReceiverStream<Self::Ack>,
    ) -> BoxFuture<'static, Result<tonic::Response<tonic::Streaming<Self::Event>>, tonic::Status>> {
        let max = self.max;
        Box::pin(async move { client!(Client, max, channel).pull_messages(acks).await })
    }

    fn item(&self, event: Self::Event) -> (String, Message) {
        let message = Message {
            id: event.id.clone(),
            topic: if event.topic_name.is_empty() { self.topic.name.clone() } else { event.topic_name },
            data: event.data,
            content_type: Some(event.content_type).filter(|c| !c.is_empty()),
            metadata: event.metadata.into_iter().collect(),
        };
        (event.id, message)
    }

    fn answer(&self, id: String, reply: Reply) -> Self::Ack {
        pb::PullMessagesRequest {
            topic: None,
            ack_message_id: id,
            ack_error: reply.err().map(|message| pb::AckMessageError { message }),
        }
    }
}

#[async_trait::async_trait]
impl PubSub for GrpcPubSub {
    /// Asks the component to `Pause` (tolerating `UNIMPLEMENTED` and any
    /// other error: components older than Dapr 1.18 lack it), then closes
    /// the link, which ends every subscription without answering what is in
    /// flight (the component redelivers it later, as daprd's shutdown does).
    async fn publish(&self, r: PublishRequest) -> Result<()> {
        let max = self.max();
        let message = pb::PublishRequest {
            data: r.data,
            pubsub_name: self.link.name().to_owned(),
            topic: r.topic,
            metadata: r.metadata.into_iter().collect(),
            content_type: r.content_type.unwrap_or_default(),
        };
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).publish(request(message, t)).await })
            .await?;
        Ok(())
    }

    async fn bulk_publish(
        &self,
        topic: &str,
        entries: Vec<BulkMessage>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>> {
        let bulk =
            self.lifecycle.features_of(ComponentKind::PubSub).is_some_and(|f| f.iter().any(|f| f == BULK_PUBSUB));
        if !bulk {
            // As daprd: without BULK_PUBSUB, one Publish per entry.
            return super::publish_each(self, topic, entries, metadata).await;
        }
        let max = self.max();
        let message = pb::BulkPublishRequest {
            entries: entries
                .into_iter()
                .map(|e| pb::BulkMessageEntry {
                    entry_id: e.entry_id,
                    event: e.data,
                    content_type: e.content_type.unwrap_or_default(),
                    metadata: e.metadata.into_iter().collect(),
                })
                .collect(),
            pubsub_name: self.link.name().to_owned(),
            topic: topic.to_owned(),
            metadata: metadata.into_iter().collect(),
        };
        let answer = self
            .link
            .call(None, |ch, t| async move { client!(Client, max, ch).bulk_publish(request(message, t)).await })
            .await?;
        Ok(answer.failed_entries.into_iter().map(|f| FailedEntry { entry_id: f.entry_id, error: f.error }).collect())
    }

    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        if topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let subscription = Subscription {
            topic: pb::Topic { name: topic.to_owned(), metadata: metadata.into_iter().collect() },
            max: self.max(),
        };
        stream::start(self.link.clone(), subscription, BUFFERED).await
    }
}

impl SharedLifecycle for GrpcPubSub {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.lifecycle
    }
}
