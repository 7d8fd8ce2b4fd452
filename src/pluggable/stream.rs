//! Pub/sub `PullMessages` and input binding `Read` as acked
//! [`Deliveries`]: one bidirectional stream per subscription, each item
//! answered on the same stream (ack, or ack with an error).
//!
//! The stream outlives its connection: when it fails (the component process
//! died, the component ended it), the loop logs it with the component's name,
//! waits for the [`Link`] to be back (reconnected, `Init` replayed), and opens
//! it again with the same first message (the same topic and subscription
//! metadata), with capped backoff between failed attempts. What the
//! component had delivered but not seen acked, it delivers again on the new
//! stream; answers to items of the dead stream are dropped, since that
//! stream can no longer carry them.

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::{ComponentChannel, Link};
use crate::kinds::{ComponentError, Deliveries, Delivery, Reply};

/// Room for answers on their way back to the component.
const ACK_BUFFER: usize = 256;

/// How one kind's stream is shaped.
pub(crate) trait AckedStream: Send + Sync + 'static {
    /// Host → component: the first message and the answers.
    type Ack: Send + 'static;
    /// Component → host.
    type Event: Send + 'static;
    /// What the consumer sees.
    type Item: Send + 'static;

    /// For logs, e.g. ``subscription to topic `orders` ``.
    fn describe(&self) -> String;
    /// The message that opens every stream, if the protocol has one.
    fn first(&self) -> Option<Self::Ack>;
    /// Opens the stream on `channel`, with `acks` as what the host sends.
    fn open(
        &self,
        channel: ComponentChannel,
        acks: ReceiverStream<Self::Ack>,
    ) -> BoxFuture<'static, Result<tonic::Response<Streaming<Self::Event>>, Status>>;
    /// The event's id and the item for the consumer.
    fn item(&self, event: Self::Event) -> (String, Self::Item);
    /// The answer for event `id`.
    fn answer(&self, id: String, reply: Reply) -> Self::Ack;
}

struct Open<S: AckedStream> {
    generation: u64,
    acks: mpsc::Sender<S::Ack>,
    events: Streaming<S::Event>,
}

/// Opens the stream now (so errors reach the caller, and the component has
/// registered it before this returns), then keeps it open in a task until the
/// consumer drops its [`Deliveries`] or the link is closed.
pub(crate) async fn start<S: AckedStream>(
    link: Link,
    spec: S,
    buffer: usize,
) -> Result<Deliveries<S::Item>, ComponentError> {
    let spec = Arc::new(spec);
    let first = open(&link, &spec).await?;
    let (tx, deliveries) = Deliveries::channel(buffer);
    tokio::spawn(run(link, spec, first, tx));
    Ok(deliveries)
}

async fn open<S: AckedStream>(link: &Link, spec: &Arc<S>) -> Result<Open<S>, ComponentError> {
    let (channel, generation) = link.channel()?;
    let (acks, rx) = mpsc::channel(ACK_BUFFER);
    if let Some(first) = spec.first() {
        acks.try_send(first).map_err(|_| ComponentError::internal("cannot queue the stream's first message"))?;
    }
    // No `grpc-timeout` on the stream itself (it would end it); only opening
    // it is bounded.
    let deadline = link.call_timeout();
    match tokio::time::timeout(deadline, spec.open(channel, ReceiverStream::new(rx))).await {
        Ok(Ok(response)) => Ok(Open { generation, acks, events: response.into_inner() }),
        Ok(Err(status)) => Err(link.error(&status, generation, None, deadline)),
        Err(_) => Err(ComponentError::DeadlineExceeded { component: link.name().to_owned(), after: deadline }),
    }
}

async fn run<S: AckedStream>(link: Link, spec: Arc<S>, first: Open<S>, tx: mpsc::Sender<Delivery<S::Item>>) {
    let (min, max) = (link.options().min_backoff, link.options().max_backoff);
    let next = |backoff: Option<Duration>| Some(backoff.map_or(min, |b: Duration| (b * 2).min(max)));
    let mut current = first;
    let mut backoff: Option<Duration> = None;
    loop {
        let Some((reason, delivered)) = pump(&link, &spec, &mut current, &tx).await else { return };
        if link.is_closed() {
            return;
        }
        tracing::warn!(component = link.name(), "{} ended: {reason}; re-opening it", spec.describe());
        backoff = if delivered { None } else { next(backoff) };
        loop {
            if let Some(delay) = backoff {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = tx.closed() => return,
                }
            }
            tokio::select! {
                up = link.wait_up() => if !up { return },
                () = tx.closed() => return,
            }
            match open(&link, &spec).await {
                Ok(opened) => {
                    current = opened;
                    tracing::info!(component = link.name(), "{} re-opened", spec.describe());
                    break;
                }
                Err(e) => {
                    if link.is_closed() {
                        return;
                    }
                    tracing::debug!(component = link.name(), "re-opening {} failed: {e}", spec.describe());
                    backoff = next(backoff);
                }
            }
        }
    }
}

/// Moves events to the consumer until the stream ends (`Some(why, whether
/// anything was delivered)`) or the consumer leaves (`None`).
async fn pump<S: AckedStream>(
    link: &Link,
    spec: &Arc<S>,
    current: &mut Open<S>,
    tx: &mpsc::Sender<Delivery<S::Item>>,
) -> Option<(String, bool)> {
    let mut delivered = false;
    loop {
        // Room first: an event is only taken off the stream when the
        // consumer can have it.
        let permit = tokio::select! {
            permit = tx.reserve() => permit.ok()?,
            () = link.closed() => return None,
        };
        let event = tokio::select! {
            event = current.events.message() => event,
            () = tx.closed() => return None,
            () = link.closed() => return None,
        };
        match event {
            Ok(Some(event)) => {
                delivered = true;
                let (id, item) = spec.item(event);
                let (delivery, answer) = Delivery::new(item);
                permit.send(delivery);
                let (acks, spec) = (current.acks.clone(), spec.clone());
                tokio::spawn(async move {
                    let reply = answer.await.unwrap_or_else(|_| Err("dropped unanswered by the consumer".to_owned()));
                    // Fails only if this stream is gone; the component then
                    // delivers the item again on the next one.
                    let _ = acks.send(spec.answer(id, reply)).await;
                });
            }
            Ok(None) => return Some(("the component ended the stream".to_owned(), delivered)),
            Err(status) => {
                let error = link.error(&status, current.generation, None, link.call_timeout());
                return Some((error.to_string(), delivered));
            }
        }
    }
}
