//! `pubsub.in-memory`: a broker inside the process.
//!
//! Each topic has consumer groups; each group has a queue. Publishing appends
//! to every group's queue; a subscriber takes from its group's queue. A
//! subscription without a `consumerID` is a group of its own, so every
//! subscriber of a topic sees every message. A named group outlives its
//! subscribers (like a Kafka consumer group): messages a leaving subscriber
//! had not acked go back to the queue for the next subscriber of that group.

use crate::component::Lifecycle;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::{Notify, mpsc};

use super::{CONSUMER_ID, Message, PubSub, PublishRequest};
use crate::kinds::{ComponentError, Deliveries, Delivery, Metadata, Result};

/// How many messages may wait in a subscriber's buffer before it reads them
/// (the subscriber bounds what it holds unanswered after reading).
const BUFFERED: usize = 64;

/// An in-process [`PubSub`].
#[derive(Debug, Default)]
pub struct MemoryPubSub {
    broker: Arc<Broker>,
    /// Set by `close`: every subscription ends (what it held unanswered
    /// goes back to its group's queue).
    closing: tokio::sync::watch::Sender<bool>,
}

impl MemoryPubSub {
    /// An empty broker.
    pub fn new() -> Self {
        Self::default()
    }
}

#[derive(Debug, Default)]
struct Broker {
    /// topic → group name → group.
    topics: Mutex<HashMap<String, HashMap<String, Arc<Group>>>>,
    next_id: AtomicU64,
    next_anonymous: AtomicU64,
}

#[derive(Debug, Default)]
struct Group {
    queue: Mutex<VecDeque<Message>>,
    ready: Notify,
    /// Anonymous groups disappear with their only subscriber.
    anonymous: bool,
}

impl Group {
    fn push_back(&self, message: Message) {
        self.queue.lock().expect("queue lock poisoned").push_back(message);
        self.ready.notify_waiters();
    }

    /// Puts an unacknowledged message back at the head, so it is redelivered
    /// before newer ones.
    fn requeue(&self, message: Message) {
        self.queue.lock().expect("queue lock poisoned").push_front(message);
        self.ready.notify_waiters();
    }

    async fn pop(&self) -> Message {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(message) = self.queue.lock().expect("queue lock poisoned").pop_front() {
                return message;
            }
            ready.await;
        }
    }
}

impl Broker {
    fn group(&self, topic: &str, name: Option<&str>) -> (String, Arc<Group>) {
        let mut topics = self.topics.lock().expect("topics lock poisoned");
        let groups = topics.entry(topic.to_owned()).or_default();
        match name {
            Some(name) => {
                let group = groups.entry(name.to_owned()).or_default().clone();
                (name.to_owned(), group)
            }
            None => {
                let name = format!("\0anonymous-{}", self.next_anonymous.fetch_add(1, Ordering::Relaxed));
                let group = Arc::new(Group { anonymous: true, ..Group::default() });
                groups.insert(name.clone(), group.clone());
                (name, group)
            }
        }
    }

    fn forget(&self, topic: &str, name: &str) {
        if let Some(groups) = self.topics.lock().expect("topics lock poisoned").get_mut(topic) {
            groups.remove(name);
        }
    }
}

/// Feeds one subscriber from its group until the subscriber drops its stream.
async fn pump(
    broker: Arc<Broker>,
    topic: String,
    name: String,
    group: Arc<Group>,
    tx: mpsc::Sender<Delivery<Message>>,
) {
    loop {
        // Reserve room first, so a message is only taken off the queue when it
        // can be handed over at once.
        let Ok(permit) = tx.reserve().await else { break };
        let message = tokio::select! {
            message = group.pop() => message,
            () = tx.closed() => break,
        };
        let (delivery, answer) = Delivery::new(message.clone());
        permit.send(delivery);
        let group = group.clone();
        tokio::spawn(async move {
            // Nacked, or dropped unanswered: deliver again.
            if !matches!(answer.await, Ok(Ok(_))) {
                group.requeue(message);
            }
        });
    }
    if group.anonymous {
        broker.forget(&topic, &name);
    }
}

#[async_trait::async_trait]
impl Lifecycle for MemoryPubSub {
    async fn init(&self, _metadata: Metadata) -> Result<()> {
        Ok(())
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.closing.send_replace(true);
        Ok(())
    }
}

#[async_trait::async_trait]
impl PubSub for MemoryPubSub {
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        if request.topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let message = Message {
            id: format!("m{}", self.broker.next_id.fetch_add(1, Ordering::Relaxed)),
            topic: request.topic,
            data: request.data,
            content_type: request.content_type,
            metadata: request.metadata,
        };
        let topics = self.broker.topics.lock().expect("topics lock poisoned");
        for group in topics.get(&message.topic).into_iter().flat_map(|groups| groups.values()) {
            group.push_back(message.clone());
        }
        Ok(())
    }

    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        if topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let consumer = metadata.get(CONSUMER_ID).map(String::as_str).filter(|c| !c.is_empty());
        let (name, group) = self.broker.group(topic, consumer);
        let (tx, deliveries) = Deliveries::channel(BUFFERED);
        let mut closing = self.closing.subscribe();
        let pump = pump(self.broker.clone(), topic.to_owned(), name, group, tx);
        tokio::spawn(async move {
            tokio::select! {
                () = pump => {}
                _ = closing.wait_for(|closed| *closed) => {}
            }
        });
        Ok(deliveries)
    }
}
