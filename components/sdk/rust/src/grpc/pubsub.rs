//! `PubSub` over a [`crate::PubSub`].

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::instances::{Instances, status};
use super::pb::components as c;
use super::stream::{self, Pump};
use crate::pubsub::{BulkEntry, PublishRequest};
use crate::{Error, PubSub as Broker};

/// The service: one `T` per component instance.
pub struct PubSub<T> {
    instances: Instances<T>,
}

impl<T> Default for PubSub<T> {
    fn default() -> Self {
        Self { instances: Instances::default() }
    }
}

struct Subscription(u64);

impl<T: Broker> Pump<T> for Subscription {
    type In = c::PullMessagesRequest;
    type Out = c::PullMessagesResponse;

    fn pull(&self, broker: &mut T, max: u32) -> Result<Vec<Self::Out>, Error> {
        Ok(broker
            .pull(self.0, max)?
            .into_iter()
            .map(|m| c::PullMessagesResponse {
                data: m.data,
                topic_name: m.topic,
                metadata: m.metadata.into_iter().collect(),
                content_type: m.content_type.unwrap_or_default(),
                id: m.id,
            })
            .collect())
    }

    fn answer(&self, broker: &mut T, answer: Self::In) -> Option<Result<(), Error>> {
        if answer.ack_message_id.is_empty() {
            return None;
        }
        Some(broker.ack(self.0, answer.ack_message_id, answer.ack_error.map(|e| e.message)))
    }

    fn end(&self, broker: &mut T) {
        broker.unsubscribe(self.0);
    }
}

fn nonempty_topic(topic: &str) -> Result<(), Status> {
    if topic.is_empty() {
        return Err(status(Error::InvalidArgument("topic name is empty".to_owned())));
    }
    Ok(())
}

#[tonic::async_trait]
impl<T: Broker> c::pub_sub_server::PubSub for PubSub<T> {
    async fn init(&self, request: Request<c::PubSubInitRequest>) -> Result<Response<c::PubSubInitResponse>, Status> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata)?;
        Ok(Response::new(c::PubSubInitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        let features = self.instances.get(&request)?.call("features", |b| Ok(b.features()))?;
        Ok(Response::new(c::FeaturesResponse { features }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?.call("ping", T::ping)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn publish(&self, request: Request<c::PublishRequest>) -> Result<Response<c::PublishResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let r = request.into_inner();
        nonempty_topic(&r.topic)?;
        let publish = PublishRequest {
            topic: r.topic,
            data: r.data,
            content_type: Some(r.content_type).filter(|c| !c.is_empty()),
            metadata: r.metadata.into_iter().collect(),
        };
        instance.call("publish", |b| b.publish(publish))?;
        instance.wake.notify_waiters();
        Ok(Response::new(c::PublishResponse {}))
    }

    async fn bulk_publish(
        &self,
        request: Request<c::BulkPublishRequest>,
    ) -> Result<Response<c::BulkPublishResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let r = request.into_inner();
        nonempty_topic(&r.topic)?;
        let entries = r
            .entries
            .into_iter()
            .map(|e| BulkEntry {
                entry_id: e.entry_id,
                data: e.event,
                content_type: Some(e.content_type).filter(|c| !c.is_empty()),
                metadata: e.metadata.into_iter().collect(),
            })
            .collect();
        let metadata = r.metadata.into_iter().collect();
        let failed = instance.call("bulk_publish", |b| b.bulk_publish(r.topic, entries, metadata))?;
        instance.wake.notify_waiters();
        let failed_entries = failed
            .into_iter()
            .map(|f| c::BulkPublishResponseFailedEntry { entry_id: f.entry_id, error: f.error })
            .collect();
        Ok(Response::new(c::BulkPublishResponse { failed_entries }))
    }

    async fn pull_messages(
        &self,
        request: Request<Streaming<c::PullMessagesRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<c::PullMessagesResponse, Status>> + Send>>>, Status> {
        let instance = self.instances.get(&request)?;
        let mut incoming = request.into_inner();
        let first = incoming.message().await?.ok_or_else(|| {
            status(Error::InvalidArgument("PullMessages ended before its first message (the topic)".to_owned()))
        })?;
        let topic = first.topic.ok_or_else(|| {
            status(Error::InvalidArgument("the first PullMessages message must carry the topic".to_owned()))
        })?;
        nonempty_topic(&topic.name)?;
        let metadata = topic.metadata.into_iter().collect();
        let id = instance.call("subscribe", |b| b.subscribe(topic.name, metadata))?;
        Ok(Response::new(Box::pin(stream::start(instance, incoming, Subscription(id)))))
    }
}
