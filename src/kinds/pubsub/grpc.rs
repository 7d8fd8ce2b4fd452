//! [`GrpcPubSub`]: a broker in another process, over Dapr's `PubSub` service
//! (spec A9). Each subscription is one `PullMessages` stream that survives
//! reconnections (see `grpc::stream`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_stream::wrappers::ReceiverStream;

use super::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::grpc::pb::components as pb;
use crate::grpc::stream::{self, AckedStream};
use crate::grpc::{ComponentChannel, Link, client, hook, request};
use crate::kinds::{ComponentError, ComponentKind, Deliveries, Metadata, Reply, Result};

type Client = pb::pub_sub_client::PubSubClient<ComponentChannel>;

/// How many messages may wait in a subscriber's buffer before it reads them
/// (the subscriber bounds what it holds unanswered after reading).
const BUFFERED: usize = 64;
/// `Pause` at close is a courtesy: bounded tightly.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The feature that makes `bulk_publish` one `BulkPublish` call.
const BULK_PUBSUB: &str = "BULK_PUBSUB";

/// A [`PubSub`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcPubSub {
    link: Link,
    features: Arc<Mutex<Option<Vec<String>>>>,
}

impl GrpcPubSub {
    /// A broker over `link`; nothing is dialed before `init`.
    pub fn new(link: Link) -> Self {
        Self { link, features: Arc::default() }
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
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let metadata = self.link.take_settings(metadata)?;
        let max = self.max();
        let init = pb::PubSubInitRequest {
            metadata: Some(pb::MetadataRequest { properties: metadata.into_iter().collect() }),
        };
        let features = self.features.clone();
        self.link
            .init(hook!(Client, ComponentKind::PubSub, max, init, move |channel, timeout| {
                let features = features.clone();
                Box::pin(async move {
                    let list = ask_features(channel, timeout, max).await?;
                    *features.lock().expect("features lock") = Some(list);
                    Ok(())
                })
            }))
            .await
    }

    async fn features(&self) -> Result<Vec<String>> {
        let max = self.max();
        let list = self
            .link
            .call(None, |ch, t| async move { ask_features(ch, t, max).await.map(tonic::Response::new) })
            .await?;
        *self.features.lock().expect("features lock") = Some(list.clone());
        Ok(list)
    }

    async fn ping(&self) -> Result<()> {
        let max = self.max();
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).ping(request(pb::PingRequest {}, t)).await })
            .await?;
        Ok(())
    }

    /// Asks the component to `Pause` (tolerating `UNIMPLEMENTED` and any
    /// other error: components older than Dapr 1.18 lack it), then closes
    /// the link, which ends every subscription without answering what is in
    /// flight (the component redelivers it later, as daprd's shutdown does).
    async fn close(&self) -> Result<()> {
        if let Ok((channel, _)) = self.link.channel() {
            let max = self.max();
            let mut client = client!(Client, max, channel);
            let pause = client.pause(request(pb::PauseRequest {}, PAUSE_TIMEOUT));
            match tokio::time::timeout(PAUSE_TIMEOUT, pause).await {
                Ok(Ok(_)) => {}
                Ok(Err(status)) => tracing::debug!(component = self.link.name(), "Pause: {status}"),
                Err(_) => tracing::debug!(component = self.link.name(), "Pause did not answer"),
            }
        }
        self.link.close();
        Ok(())
    }

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
            self.features.lock().expect("features lock").as_ref().is_some_and(|f| f.iter().any(|f| f == BULK_PUBSUB));
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
