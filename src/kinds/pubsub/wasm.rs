//! [`WasmPubSub`]: a broker in a WASM component (world `pubsub-component`,
//! `wit/pubsub.wit`).
//!
//! A guest cannot call the host unprompted, so delivery is pulled: one task
//! per subscription asks the guest for the next message (`pull`), hands it to
//! the subscriber, and answers the guest with `ack` once the subscriber acks,
//! nacks or drops the delivery. The guest keeps pulled messages in flight
//! until then and re-queues the nacked ones, so at-least-once delivery stays
//! in the broker, exactly as with a gRPC broker's `PullMessages`. The pump
//! wakes on every publish through this adapter, and polls every
//! `wasm.pollInterval` otherwise.

use std::sync::Arc;

use tokio::sync::Notify;

use super::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{ComponentError, Deliveries, Delivery, Metadata, Result};
use crate::wasm::bindings::pubsub::exports::plughost::components::pubsub as wit;
use crate::wasm::instances::{Instances, spawn_until_closed};
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

async fn subscribe(instances: &Instances<Exports>, topic: &str, metadata: &Metadata) -> Result<u64> {
    let (topic, metadata) = (topic.to_owned(), to_wit(metadata));
    instances
        .call("subscribe", move |g, s| {
            Box::pin(async move { g.plughost_components_pubsub().call_subscribe(s, &topic, &metadata).await })
        })
        .await
}

async fn pull(instances: &Instances<Exports>, subscription: u64) -> Result<Option<wit::Message>> {
    let mut batch = instances
        .call_internal("pull", move |g, s| {
            Box::pin(async move { g.plughost_components_pubsub().call_pull(s, subscription, 1).await })
        })
        .await?;
    if batch.is_empty() {
        return Ok(None);
    }
    let first = batch.remove(0);
    // A guest that returns more than asked gets the extras back as nacks
    // (last first, so they stay in order at the head of its queue).
    for extra in batch.into_iter().rev() {
        ack(instances, subscription, extra.id, Some("pulled more than the one message asked for".to_owned())).await?;
    }
    Ok(Some(first))
}

async fn ack(instances: &Instances<Exports>, subscription: u64, id: String, failure: Option<String>) -> Result<()> {
    instances
        .call_internal("ack", move |g, s| {
            Box::pin(
                async move { g.plughost_components_pubsub().call_ack(s, subscription, &id, failure.as_deref()).await },
            )
        })
        .await
}

/// Feeds one subscriber until it drops its stream, then unsubscribes.
async fn pump(
    instances: Arc<Instances<Exports>>,
    published: Arc<Notify>,
    topic: String,
    metadata: Metadata,
    mut subscription: u64,
    tx: tokio::sync::mpsc::Sender<Delivery<Message>>,
) {
    let poll = instances.settings().map_or(std::time::Duration::from_millis(20), |s| s.poll_interval);
    loop {
        let Ok(permit) = tx.reserve().await else { break };
        let wake = published.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let message = match pull(&instances, subscription).await {
            Ok(Some(message)) => message,
            Ok(None) => {
                drop(permit);
                tokio::select! {
                    () = &mut wake => {}
                    () = tokio::time::sleep(poll) => {}
                    () = tx.closed() => break,
                }
                continue;
            }
            Err(e) => {
                // A replaced instance has lost its subscriptions: subscribe again.
                tracing::warn!(component = instances.name(), %topic, "pull failed ({e}); re-subscribing");
                drop(permit);
                tokio::time::sleep(poll).await;
                if let Ok(renewed) = subscribe(&instances, &topic, &metadata).await {
                    subscription = renewed;
                }
                continue;
            }
        };
        let id = message.id.clone();
        let (delivery, answer) = Delivery::new(Message {
            id: message.id,
            topic: message.topic,
            data: message.data,
            content_type: message.content_type,
            metadata: from_wit(message.metadata),
        });
        permit.send(delivery);
        let (instances, published) = (instances.clone(), published.clone());
        tokio::spawn(async move {
            let failure = match answer.await {
                Ok(Ok(_)) => None,
                Ok(Err(reason)) => Some(reason),
                Err(_) => Some("dropped by the subscriber without an answer".to_owned()),
            };
            let redeliver = failure.is_some();
            if let Err(e) = ack(&instances, subscription, id, failure).await {
                tracing::warn!(component = instances.name(), "ack failed: {e}");
            }
            if redeliver {
                published.notify_waiters();
            }
        });
    }
    let _ = instances
        .call_internal("unsubscribe", move |g, s| {
            Box::pin(async move { g.plughost_components_pubsub().call_unsubscribe(s, subscription).await.map(Ok) })
        })
        .await;
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
        let subscription = subscribe(&self.instances, topic, &metadata).await?;
        let (tx, deliveries) = Deliveries::channel(BUFFERED);
        let (instances, published) = (self.instances.clone(), self.published.clone());
        spawn_until_closed(
            &self.component.closing,
            pump(instances, published, topic.to_owned(), metadata, subscription, tx),
        );
        Ok(deliveries)
    }
}

impl SharedLifecycle for WasmPubSub {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
