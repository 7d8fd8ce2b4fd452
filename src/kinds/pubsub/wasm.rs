//! [`WasmPubSub`]: a broker in a WASM component (world `pubsub-component`,
//! `wit/pubsub.wit`).
//!
//! A guest cannot call the host unprompted, so delivery is pulled: one task
//! per subscription asks the guest for the next message (`pull`), hands it to
//! the subscriber, and answers the guest with `ack` once the subscriber acks,
//! nacks or drops the delivery. The guest keeps pulled messages in flight
//! until then and re-queues the nacked ones, so at-least-once delivery stays
//! in the broker, exactly as with a gRPC broker's `PullMessages`. The pump
//! (WASM mode's one pull loop, [`crate::wasm::pull`]) wakes on every publish
//! through this adapter, and polls every `wasm.pollInterval` otherwise.

use std::sync::Arc;

use tokio::sync::Notify;

use super::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{ComponentError, Deliveries, Metadata, Reply, Result};
use crate::wasm::bindings::pubsub::exports::plughost::components::pubsub as wit;
use crate::wasm::instances::Instances;
use crate::wasm::pull::PullSource;
use crate::wasm::{Exports, WasmComponent};
use crate::wasm::{from_wit, to_wit};

/// How many messages may wait in a subscriber's buffer before it reads them
/// (the subscriber bounds what it holds unanswered after reading).
const BUFFERED: usize = 64;

/// A [`PubSub`] backed by a WASM component.
pub struct WasmPubSub {
    component: Arc<WasmComponent>,
    instances: Arc<Instances<Exports>>,
    published: Arc<Notify>,
}

impl WasmPubSub {
    /// The adapter of `component`'s kind.
    pub fn new(component: &Arc<WasmComponent>) -> Self {
        Self {
            component: component.clone(),
            instances: component.instances.clone(),
            published: Arc::new(Notify::new()),
        }
    }
}

/// One subscription, pulled by [`crate::wasm::pull`] one message at a time,
/// so a message only leaves the broker's queue when the subscriber has room.
struct Subscription {
    instances: Arc<Instances<Exports>>,
    published: Arc<Notify>,
    topic: String,
    metadata: Metadata,
}

impl PullSource for Subscription {
    type Guest = Exports;
    type Item = Message;
    const BATCH: u32 = 1;

    fn instances(&self) -> &Instances<Exports> {
        &self.instances
    }

    fn describe(&self) -> String {
        format!("subscription to topic `{}`", self.topic)
    }

    async fn open(&self) -> Result<u64> {
        let (topic, metadata) = (self.topic.clone(), to_wit(&self.metadata));
        self.instances
            .call("subscribe", move |g, s| {
                Box::pin(async move { g.plughost_components_pubsub().call_subscribe(s, &topic, &metadata).await })
            })
            .await
    }

    async fn pull(&self, subscription: u64, max: u32) -> Result<Vec<(String, Message)>> {
        let mut batch = self
            .instances
            .call_internal("pull", move |g, s| {
                Box::pin(async move { g.plughost_components_pubsub().call_pull(s, subscription, max).await })
            })
            .await?;
        // A guest that returns more than asked gets the extras back as nacks
        // (last first, so they stay in order at the head of its queue).
        let extras = batch.split_off(batch.len().min(max as usize));
        for extra in extras.into_iter().rev() {
            let failure = Err(format!("pulled more than the {max} message(s) asked for"));
            self.answer(subscription, extra.id, failure).await?;
        }
        Ok(batch
            .into_iter()
            .map(|m| {
                let message = Message {
                    id: m.id.clone(),
                    topic: m.topic,
                    data: m.data,
                    content_type: m.content_type,
                    metadata: from_wit(m.metadata),
                };
                (m.id, message)
            })
            .collect())
    }

    async fn answer(&self, subscription: u64, id: String, reply: Reply) -> Result<()> {
        let failure = reply.err();
        self.instances
            .call_internal("ack", move |g, s| {
                Box::pin(async move {
                    g.plughost_components_pubsub().call_ack(s, subscription, &id, failure.as_deref()).await
                })
            })
            .await
    }

    async fn close(&self, subscription: u64) {
        let _ = self
            .instances
            .call_internal("unsubscribe", move |g, s| {
                Box::pin(async move { g.plughost_components_pubsub().call_unsubscribe(s, subscription).await.map(Ok) })
            })
            .await;
    }

    fn wake(&self) -> Option<&Notify> {
        Some(&self.published)
    }
}

#[async_trait::async_trait]
impl PubSub for WasmPubSub {
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let request = wit::PublishRequest {
            topic: request.topic,
            data: request.data,
            content_type: request.content_type,
            metadata: to_wit(&request.metadata),
        };
        self.instances
            .call("publish", move |g, s| {
                Box::pin(async move { g.plughost_components_pubsub().call_publish(s, &request).await })
            })
            .await?;
        self.published.notify_waiters();
        Ok(())
    }

    async fn bulk_publish(
        &self,
        topic: &str,
        entries: Vec<BulkMessage>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>> {
        let topic = topic.to_owned();
        let entries: Vec<_> = entries
            .into_iter()
            .map(|e| wit::BulkEntry {
                entry_id: e.entry_id,
                data: e.data,
                content_type: e.content_type,
                metadata: to_wit(&e.metadata),
            })
            .collect();
        let metadata = to_wit(&metadata);
        let failed = self
            .instances
            .call("bulk-publish", move |g, s| {
                Box::pin(async move {
                    g.plughost_components_pubsub().call_bulk_publish(s, &topic, &entries, &metadata).await
                })
            })
            .await?;
        self.published.notify_waiters();
        Ok(failed.into_iter().map(|f| FailedEntry { entry_id: f.entry_id, error: f.error }).collect())
    }

    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        if topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let subscription = Subscription {
            instances: self.instances.clone(),
            published: self.published.clone(),
            topic: topic.to_owned(),
            metadata,
        };
        crate::wasm::pull::start(subscription, BUFFERED, &self.component.closing).await
    }
}

impl SharedLifecycle for WasmPubSub {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
