//! [`Live`]: what lookups hand out for a named component — one handle per
//! component that serves every kind trait by calling whatever instance its
//! [`Slot`] holds *now*. An embedder that took `host.state("orders")` before
//! a swap reaches the new implementation after it, with no new lookup.
//!
//! Streams (`subscribe`, `read`) follow the slot too: after a swap the
//! handle opens the same stream on the new instance and forwards both until
//! the old one ends (when the old instance is closed), so a subscriber sees
//! one stream across any number of swaps. Deliveries are forwarded as they
//! are: each answer still goes to the instance that produced the message.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::{BoxStream, SelectAll};

use super::Slot;
use crate::component::{Instance, Lifecycle};
use crate::kinds::input_binding::{InputBinding, InputEvent};
use crate::kinds::output_binding::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::pubsub::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::kinds::secret_store::{Secret, SecretStore};
use crate::kinds::state::{
    BulkStateItem, DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation,
};
use crate::kinds::{ComponentError, ComponentKind, Deliveries, Delivery, Metadata, Result};

/// How many deliveries a followed stream buffers between the instances'
/// streams and its reader.
const FOLLOW_BUFFER: usize = 64;

/// The handle of one named component.
pub struct Live {
    slot: Arc<Slot>,
}

impl Live {
    /// The handle of `slot`.
    pub fn new(slot: Arc<Slot>) -> Arc<Self> {
        Arc::new(Self { slot })
    }

    fn missing(&self, kind: ComponentKind) -> ComponentError {
        missing(self.slot.name(), kind)
    }
}

/// The error of a call to a kind the component no longer serves.
fn missing(name: &str, kind: ComponentKind) -> ComponentError {
    ComponentError::NotFound(format!("component `{name}` no longer serves {kind}"))
}

/// The `kind` side of `instance`, or the error saying it has none any more.
macro_rules! side {
    ($live:expr, $instance:expr, $field:ident, $kind:expr) => {
        $instance.kinds.$field.as_ref().ok_or_else(|| $live.missing($kind))?
    };
}

/// One item of a followed stream: a delivery, or the end of the stream
/// opened on generation `n`.
enum Item<T> {
    Delivery(Delivery<T>),
    End(u64),
}

/// Opens a stream with `open` on the slot's instance, and again on every
/// new instance after a swap; forwards all of them into one. It ends when
/// the stream of the current instance ends (the component was closed, or
/// ended the stream itself); the end of a replaced instance's stream is
/// just that instance going away.
async fn follow<T: Send + 'static>(
    slot: &Arc<Slot>,
    open: impl Fn(Arc<Instance>) -> BoxFuture<'static, Result<Deliveries<T>>> + Send + Sync + 'static,
) -> Result<Deliveries<T>> {
    let mut changes = slot.changes();
    let generation = slot.generation();
    let first = open(slot.current().await).await?;
    let (tx, out) = Deliveries::channel(FOLLOW_BUFFER);
    let slot = slot.clone();
    tokio::spawn(async move {
        let mut sources: SelectAll<BoxStream<'static, Item<T>>> = SelectAll::new();
        sources.push(stream(first, generation));
        loop {
            tokio::select! {
                item = sources.next(), if !sources.is_empty() => match item {
                    Some(Item::Delivery(delivery)) => {
                        if tx.send(delivery).await.is_err() {
                            return; // the reader went away
                        }
                    }
                    Some(Item::End(ended)) if ended >= slot.generation() => return,
                    Some(Item::End(_)) | None => {}
                },
                changed = changes.changed() => {
                    if changed.is_err() {
                        return; // the slot is gone
                    }
                    let generation = slot.generation();
                    match open(slot.current().await).await {
                        Ok(next) => sources.push(stream(next, generation)),
                        Err(e) => {
                            tracing::warn!(component = slot.name(), "reopening a stream after a swap: {e}");
                            return;
                        }
                    }
                }
                () = tx.closed() => return,
            }
        }
    });
    Ok(out)
}

fn stream<T: Send + 'static>(deliveries: Deliveries<T>, generation: u64) -> BoxStream<'static, Item<T>> {
    let items = futures::stream::unfold(deliveries, |mut d| async move { d.next().await.map(|item| (item, d)) });
    items.map(Item::Delivery).chain(futures::stream::once(async move { Item::End(generation) })).boxed()
}

#[async_trait::async_trait]
impl Lifecycle for Live {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.slot.current().await.lifecycle.init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.slot.current().await.lifecycle.features().await
    }

    async fn ping(&self) -> Result<()> {
        self.slot.current().await.lifecycle.ping().await
    }

    async fn close(&self) -> Result<()> {
        self.slot.current().await.lifecycle.close().await
    }
}

#[async_trait::async_trait]
impl StateStore for Live {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).get(request).await
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).set(request).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).delete(request).await
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).bulk_get(requests).await
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).bulk_set(requests).await
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).bulk_delete(requests).await
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, state, ComponentKind::State).transact(operations, metadata).await
    }
}

#[async_trait::async_trait]
impl PubSub for Live {
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        let now = self.slot.current().await;
        side!(self, now, pubsub, ComponentKind::PubSub).publish(request).await
    }

    async fn bulk_publish(
        &self,
        topic: &str,
        entries: Vec<BulkMessage>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>> {
        let now = self.slot.current().await;
        side!(self, now, pubsub, ComponentKind::PubSub).bulk_publish(topic, entries, metadata).await
    }

    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        let (topic, name) = (topic.to_owned(), self.slot.name().to_owned());
        follow(&self.slot, move |instance| {
            let (topic, metadata, name) = (topic.clone(), metadata.clone(), name.clone());
            Box::pin(async move {
                let pubsub = instance.kinds.pubsub.clone().ok_or_else(|| missing(&name, ComponentKind::PubSub))?;
                pubsub.subscribe(&topic, metadata).await
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl InputBinding for Live {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        let name = self.slot.name().to_owned();
        follow(&self.slot, move |instance| {
            let name = name.clone();
            Box::pin(async move {
                let binding =
                    instance.kinds.input_binding.clone().ok_or_else(|| missing(&name, ComponentKind::InputBinding))?;
                binding.read().await
            })
        })
        .await
    }
}

#[async_trait::async_trait]
impl OutputBinding for Live {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let now = self.slot.current().await;
        side!(self, now, output_binding, ComponentKind::OutputBinding).invoke(request).await
    }
}

#[async_trait::async_trait]
impl SecretStore for Live {
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        let now = self.slot.current().await;
        side!(self, now, secret_store, ComponentKind::SecretStore).get(key, metadata).await
    }

    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        let now = self.slot.current().await;
        side!(self, now, secret_store, ComponentKind::SecretStore).bulk_get(metadata).await
    }
}
