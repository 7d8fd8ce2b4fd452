//! The one pull loop of WASM mode, for the kinds whose items flow from the
//! component to the host: pub/sub subscriptions and input binding readers.
//!
//! A guest cannot call the host unprompted, so delivery is pulled: a task per
//! stream asks the guest for what is due behind a handle (a subscription, a
//! reader), hands each item to the consumer as a [`Delivery`], and answers
//! the guest once the consumer acks, nacks or drops it. The guest keeps
//! pulled items in flight until answered (pub/sub re-queues the nacked
//! ones), so at-least-once delivery stays in the component, as with gRPC
//! mode's acked streams ([`crate::pluggable::stream`]). The [`PullSource`] says
//! how one kind calls its guest; this file holds the loop:
//!
//! * **Room first.** The loop waits for room in the consumer's buffer before
//!   it pulls, and asks for at most [`PullSource::BATCH`] items, so nothing
//!   is taken off the guest's queue that the consumer cannot have.
//! * **Idle.** An empty pull waits `wasm.pollInterval`, or less when the
//!   source's [`PullSource::wake`] fires (pub/sub: a publish through this
//!   host, or a nack to redeliver).
//! * **Errors.** A failed pull is logged with the component's name; the
//!   loop waits one poll interval and opens the handle again (a replaced
//!   instance has lost its subscriptions and readers), then pulls on.
//! * **Shutdown.** When the consumer drops its [`Deliveries`] the loop
//!   closes the handle (the guest re-queues what was in flight); when the
//!   component is closed the task simply ends ([`spawn_until_closed`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, mpsc, oneshot};

use super::instances::{Guest, Instances, spawn_until_closed};
use super::settings::WasmSettings;
use crate::kinds::{Deliveries, Delivery, Reply, Result};

/// The reason a guest gets for a delivery the consumer dropped unanswered.
const DROPPED: &str = "dropped by the consumer without an answer";

/// How one kind pulls from its guest.
pub(crate) trait PullSource: Send + Sync + 'static {
    /// The guest's world.
    type Guest: Guest;
    /// What the consumer sees.
    type Item: Send + 'static;
    /// Most items asked for per pull.
    const BATCH: u32;

    /// The component's instances (its name and settings come from them).
    fn instances(&self) -> &Instances<Self::Guest>;
    /// For logs, e.g. ``subscription to topic `orders` ``.
    fn describe(&self) -> String;
    /// Opens a handle (subscribe, open a reader).
    fn open(&self) -> impl Future<Output = Result<u64>> + Send;
    /// Up to `max` items due on `handle`, each with its id.
    fn pull(&self, handle: u64, max: u32) -> impl Future<Output = Result<Vec<(String, Self::Item)>>> + Send;
    /// Gives the guest the consumer's answer to item `id`.
    fn answer(&self, handle: u64, id: String, reply: Reply) -> impl Future<Output = Result<()>> + Send;
    /// Closes `handle` once its consumer has gone.
    fn close(&self, handle: u64) -> impl Future<Output = ()> + Send;
    /// What ends an idle wait early, if anything does.
    fn wake(&self) -> Option<&Notify> {
        None
    }
}

/// Opens a handle now (so errors reach the caller), then pulls from it in a
/// task until the consumer drops the returned [`Deliveries`] or `closing`
/// turns true. `buffer` is how many deliveries may wait in the consumer's
/// buffer.
pub(crate) async fn start<S: PullSource>(
    source: S,
    buffer: usize,
    closing: &tokio::sync::watch::Sender<bool>,
) -> Result<Deliveries<S::Item>> {
    let handle = source.open().await?;
    let (tx, deliveries) = Deliveries::channel(buffer);
    spawn_until_closed(closing, run(Arc::new(source), handle, tx));
    Ok(deliveries)
}

async fn run<S: PullSource>(source: Arc<S>, mut handle: u64, tx: mpsc::Sender<Delivery<S::Item>>) {
    let instances = source.instances();
    let poll = instances.settings().map_or_else(|| WasmSettings::default().poll_interval, |s| s.poll_interval);
    'pulling: loop {
        let Ok(permit) = tx.reserve().await else { break };
        // Listening before the pull, so a wake during it is not missed.
        let mut wake = std::pin::pin!(source.wake().map(Notify::notified));
        if let Some(wake) = wake.as_mut().as_pin_mut() {
            wake.enable();
        }
        let items = match source.pull(handle, S::BATCH).await {
            Ok(items) => items,
            Err(e) => {
                tracing::warn!(
                    component = instances.name(),
                    "pulling from {} failed ({e}); re-opening it",
                    source.describe()
                );
                drop(permit);
                if !idle(poll, None, &tx).await {
                    break;
                }
                if let Ok(reopened) = source.open().await {
                    handle = reopened;
                }
                continue;
            }
        };
        let mut items = items.into_iter();
        let Some((id, item)) = items.next() else {
            drop(permit);
            if !idle(poll, wake.as_mut().as_pin_mut(), &tx).await {
                break;
            }
            continue;
        };
        let (delivery, answer) = Delivery::new(item);
        permit.send(delivery);
        answer_later(&source, handle, id, answer);
        for (id, item) in items {
            let (delivery, answer) = Delivery::new(item);
            if tx.send(delivery).await.is_err() {
                // Unanswered, so still in flight in the guest until the
                // handle is closed below.
                break 'pulling;
            }
            answer_later(&source, handle, id, answer);
        }
    }
    source.close(handle).await;
}

/// Waits `poll`, or until `wake` fires; `false` if the consumer left.
async fn idle<T>(
    poll: Duration,
    wake: Option<std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>>,
    tx: &mpsc::Sender<T>,
) -> bool {
    let woken = async {
        match wake {
            Some(wake) => wake.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = woken => true,
        () = tokio::time::sleep(poll) => true,
        () = tx.closed() => false,
    }
}

/// Answers the guest (in a task) once the consumer has answered item `id`;
/// a nack wakes the loop, since the guest may have the item ready again.
fn answer_later<S: PullSource>(source: &Arc<S>, handle: u64, id: String, answer: oneshot::Receiver<Reply>) {
    let source = source.clone();
    tokio::spawn(async move {
        let reply = answer.await.unwrap_or_else(|_| Err(DROPPED.to_owned()));
        let nacked = reply.is_err();
        if let Err(e) = source.answer(handle, id, reply).await {
            tracing::warn!(component = source.instances().name(), "answering {} failed: {e}", source.describe());
        }
        if nacked && let Some(wake) = source.wake() {
            wake.notify_waiters();
        }
    });
}
