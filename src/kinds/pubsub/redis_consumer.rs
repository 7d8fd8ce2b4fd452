//! One `pubsub.redis` subscription: a consumer in a Redis consumer group.
//!
//! The loop takes at most `concurrency` messages unanswered at a time: it
//! reads only as many as it has room for (`XREADGROUP ... COUNT n BLOCK`),
//! so nothing waits in a local buffer while its idle time runs. Each message
//! is answered on its own task: an ack is an `XACK`; a nack, or a delivery
//! dropped unanswered, sends the message again on the same subscription.
//! When the subscription ends, what it still holds is *handed back*: its idle
//! time is set past `processingTimeout` (`XCLAIM ... IDLE`), so the next
//! claim pass of any consumer of the group takes it at once.
//!
//! Every `redeliverInterval` the loop claims entries of the group idle for
//! `processingTimeout` (`XPENDING ... IDLE` then `XCLAIM`): those of a dead
//! or stuck consumer, or handed back. Its own messages in flight are skipped.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::streams::{StreamClaimReply, StreamId, StreamPendingCountReply, StreamReadReply};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, watch};
use tokio::time::Instant;

use super::Message;
use super::redis::{Shared, to_message};
use crate::kinds::{Deliveries, Delivery, Result};

/// The subscription settings of `pubsub.redis` (Dapr's names and defaults).
#[derive(Debug, Clone)]
pub(super) struct Options {
    /// `processingTimeout` (60 s): a message unacked this long may be
    /// claimed by another consumer. `0` turns redelivery off.
    pub processing_timeout: Duration,
    /// `redeliverInterval` (15 s): how often to look for such messages.
    /// `0` turns redelivery off.
    pub redeliver_interval: Duration,
    /// `queueDepth` (100): most entries read or claimed in one call.
    pub queue_depth: usize,
    /// `concurrency` (10): most messages one subscription holds unanswered.
    pub concurrency: usize,
}

impl Options {
    fn redelivery(&self) -> bool {
        !self.processing_timeout.is_zero() && !self.redeliver_interval.is_zero()
    }

    /// How long one blocking read waits, so claims and shutdown are noticed.
    fn block(&self) -> Duration {
        match self.redelivery() {
            true => self.redeliver_interval.min(Duration::from_secs(1)),
            false => Duration::from_secs(1),
        }
    }
}

/// One consumer of a group.
pub(super) struct Consumer {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    name: String,
    /// The group is this subscription's alone: destroyed at the end.
    own_group: bool,
    /// A connection of its own: a blocking read holds its connection.
    reader: ConnectionManager,
    permits: Arc<Semaphore>,
    in_flight: Arc<Mutex<HashSet<String>>>,
}

impl Consumer {
    pub async fn start(
        shared: Arc<Shared>,
        topic: String,
        group: String,
        name: String,
        own_group: bool,
    ) -> Result<Self> {
        let reader = shared.settings.connect(&shared.name, shared.options.block()).await?;
        let permits = Arc::new(Semaphore::new(shared.options.concurrency));
        Ok(Self { shared, topic, group, name, own_group, reader, permits, in_flight: Arc::default() })
    }

    /// Starts the loop; the subscription lasts until the returned stream is
    /// dropped or the component closes.
    pub fn run(self, mut closing: watch::Receiver<bool>) -> Deliveries<Message> {
        let (tx, deliveries) = Deliveries::channel(self.shared.options.concurrency);
        tokio::spawn(async move {
            tokio::select! {
                () = self.pump(&tx) => {}
                () = tx.closed() => {}
                _ = closing.wait_for(|closed| *closed) => {}
            }
            if self.own_group {
                let mut destroy = ::redis::cmd("XGROUP");
                destroy.arg("DESTROY").arg(&self.topic).arg(&self.group);
                let _ = destroy.query_async::<()>(&mut self.shared.conn.clone()).await;
            }
        });
        deliveries
    }

    async fn pump(&self, tx: &mpsc::Sender<Delivery<Message>>) {
        let options = &self.shared.options;
        let mut next_claim = Instant::now();
        loop {
            let Ok(first) = self.permits.clone().acquire_owned().await else { return };
            let mut permits = vec![first];
            while permits.len() < options.queue_depth {
                match self.permits.clone().try_acquire_owned() {
                    Ok(permit) => permits.push(permit),
                    Err(_) => break,
                }
            }
            let mut entries = Ok(Vec::new());
            if options.redelivery() && Instant::now() >= next_claim {
                entries = self.claim(permits.len()).await;
                // A full batch may mean more are waiting: claim again at once.
                let full = entries.as_ref().is_ok_and(|e| e.len() == permits.len());
                next_claim = if full { Instant::now() } else { Instant::now() + options.redeliver_interval };
            }
            if entries.as_ref().is_ok_and(Vec::is_empty) {
                entries = self.read(permits.len()).await;
            }
            match entries {
                Ok(entries) => {
                    for (entry, permit) in entries.into_iter().zip(permits) {
                        self.deliver(entry, permit, tx).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(component = %self.shared.name, topic = %self.topic, "reading the stream: {e}");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// New entries for this consumer (`XREADGROUP ... >`).
    async fn read(&self, count: usize) -> Result<Vec<StreamId>> {
        let mut read = ::redis::cmd("XREADGROUP");
        read.arg("GROUP").arg(&self.group).arg(&self.name).arg("COUNT").arg(count);
        read.arg("BLOCK").arg(self.shared.options.block().as_millis() as u64).arg("STREAMS").arg(&self.topic).arg(">");
        match read.query_async::<Option<StreamReadReply>>(&mut self.reader.clone()).await {
            Ok(reply) => Ok(reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids).collect()),
            // The stream or group was deleted: make it again, as Dapr does.
            Err(e) if e.code() == Some("NOGROUP") => {
                self.shared.create_group(&self.topic, &self.group, "0").await.map(|()| Vec::new())
            }
            Err(e) => Err(self.shared.error(e)),
        }
    }

    /// Entries idle for `processingTimeout`, except this consumer's own in
    /// flight, claimed for this consumer.
    async fn claim(&self, count: usize) -> Result<Vec<StreamId>> {
        let idle = self.shared.options.processing_timeout.as_millis() as u64;
        let mut conn = self.shared.conn.clone();
        let mut pending = ::redis::cmd("XPENDING");
        pending.arg(&self.topic).arg(&self.group).arg("IDLE").arg(idle).arg("-").arg("+").arg(count * 2);
        let pending = match pending.query_async::<StreamPendingCountReply>(&mut conn).await {
            Ok(pending) => pending,
            Err(e) if e.code() == Some("NOGROUP") => return Ok(Vec::new()),
            Err(e) => return Err(self.shared.error(e)),
        };
        let ids: Vec<String> = {
            let in_flight = self.in_flight.lock().expect("in-flight lock");
            pending
                .ids
                .into_iter()
                .filter(|p| !(p.consumer == self.name && in_flight.contains(&p.id)))
                .map(|p| p.id)
                .take(count)
                .collect()
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut claim = ::redis::cmd("XCLAIM");
        claim.arg(&self.topic).arg(&self.group).arg(&self.name).arg(idle).arg(&ids);
        let claimed: StreamClaimReply = claim.query_async(&mut conn).await.map_err(|e| self.shared.error(e))?;
        Ok(claimed.ids)
    }

    /// Hands one entry to the subscriber and starts the task awaiting its
    /// answer.
    async fn deliver(&self, entry: StreamId, permit: OwnedSemaphorePermit, tx: &mpsc::Sender<Delivery<Message>>) {
        let message = to_message(&self.topic, entry.id, entry.map);
        let id = message.id.clone();
        self.in_flight.lock().expect("in-flight lock").insert(id.clone());
        let (delivery, answer) = Delivery::new(message.clone());
        let answered = Answered {
            shared: self.shared.clone(),
            topic: self.topic.clone(),
            group: self.group.clone(),
            consumer: self.name.clone(),
            in_flight: self.in_flight.clone(),
            _permit: permit,
        };
        if tx.send(delivery).await.is_err() {
            answered.hand_back(&id).await;
            return;
        }
        let tx = tx.downgrade();
        tokio::spawn(async move {
            let mut answer = answer;
            loop {
                if let Ok(Ok(_)) = answer.await {
                    answered.ack(&id).await;
                    return;
                }
                // Nacked or dropped unanswered: again, while the subscription lasts.
                let Some(tx) = tx.upgrade() else { break };
                let (again, next) = Delivery::new(message.clone());
                if tx.send(again).await.is_err() {
                    break;
                }
                answer = next;
            }
            answered.hand_back(&id).await;
        });
    }
}

/// What the task awaiting one message's answer needs.
struct Answered {
    shared: Arc<Shared>,
    topic: String,
    group: String,
    consumer: String,
    in_flight: Arc<Mutex<HashSet<String>>>,
    /// Frees the subscription's slot when the message is settled.
    _permit: OwnedSemaphorePermit,
}

impl Answered {
    async fn ack(self, id: &str) {
        let mut ack = ::redis::cmd("XACK");
        ack.arg(&self.topic).arg(&self.group).arg(id);
        if let Err(e) = ack.query_async::<i64>(&mut self.shared.conn.clone()).await {
            // Still pending: another consumer claims it after processingTimeout.
            tracing::warn!(component = %self.shared.name, topic = %self.topic, id, "XACK failed: {e}");
        }
        self.settle(id);
    }

    /// Makes the entry claimable at once by the group's next claim pass.
    async fn hand_back(self, id: &str) {
        let options = &self.shared.options;
        if options.redelivery() {
            let idle = (options.processing_timeout + Duration::from_secs(1)).as_millis() as u64;
            let mut claim = ::redis::cmd("XCLAIM");
            claim.arg(&self.topic).arg(&self.group).arg(&self.consumer).arg(0).arg(id).arg("IDLE").arg(idle);
            let _ = claim.arg("JUSTID").query_async::<::redis::Value>(&mut self.shared.conn.clone()).await;
        }
        self.settle(id);
    }

    fn settle(&self, id: &str) {
        self.in_flight.lock().expect("in-flight lock").remove(id);
    }
}
