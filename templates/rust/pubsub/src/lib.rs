//! `{{name}}`: a pub/sub broker, pulled by the host. Replace the queues with
//! your broker; the SDK does the rest in both modes (see README.md).

use std::collections::{BTreeMap, HashMap, VecDeque};

use plughost_component::pubsub::{Message, PublishRequest};
use plughost_component::{Component, Error, Metadata, PubSub};

struct Subscription {
    topic: String,
    queue: VecDeque<Message>,
    in_flight: BTreeMap<String, Message>,
}

/// The component: every subscription gets every message of its topic,
/// at least once (a nacked or unacked message is delivered again).
#[derive(Default)]
pub struct {{camel_name}} {
    subscriptions: HashMap<u64, Subscription>,
    next_id: u64,
}

fn unknown(subscription: u64) -> Error {
    Error::NotFound(format!("subscription {subscription}"))
}

impl Component for {{camel_name}} {
    fn init(_metadata: Metadata) -> Result<Self, Error> {
        Ok(Self::default())
    }
}

impl PubSub for {{camel_name}} {
    fn publish(&mut self, request: PublishRequest) -> Result<(), Error> {
        if request.topic.is_empty() {
            return Err(Error::InvalidArgument("topic name is empty".to_owned()));
        }
        self.next_id += 1;
        let message = Message {
            id: format!("m{}", self.next_id),
            topic: request.topic,
            data: request.data,
            content_type: request.content_type,
            metadata: request.metadata,
        };
        for subscription in self.subscriptions.values_mut().filter(|s| s.topic == message.topic) {
            subscription.queue.push_back(message.clone());
        }
        Ok(())
    }

    fn subscribe(&mut self, topic: String, _metadata: Metadata) -> Result<u64, Error> {
        self.next_id += 1;
        let subscription = Subscription { topic, queue: VecDeque::new(), in_flight: BTreeMap::new() };
        self.subscriptions.insert(self.next_id, subscription);
        Ok(self.next_id)
    }

    fn pull(&mut self, subscription: u64, max: u32) -> Result<Vec<Message>, Error> {
        let sub = self.subscriptions.get_mut(&subscription).ok_or_else(|| unknown(subscription))?;
        let count = sub.queue.len().min(max as usize);
        let pulled: Vec<Message> = sub.queue.drain(..count).collect();
        for message in &pulled {
            sub.in_flight.insert(message.id.clone(), message.clone());
        }
        Ok(pulled)
    }

    fn ack(&mut self, subscription: u64, message_id: String, failure: Option<String>) -> Result<(), Error> {
        let sub = self.subscriptions.get_mut(&subscription).ok_or_else(|| unknown(subscription))?;
        let message = sub
            .in_flight
            .remove(&message_id)
            .ok_or_else(|| Error::NotFound(format!("message `{message_id}` is not in flight")))?;
        if failure.is_some() {
            sub.queue.push_front(message);
        }
        Ok(())
    }

    fn unsubscribe(&mut self, subscription: u64) {
        self.subscriptions.remove(&subscription);
    }
}

// The WASM component (a wasm32 build exports the plughost world; elsewhere a no-op).
plughost_component::export_pubsub!({{camel_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let mut broker = {{camel_name}}::init(Vec::new()).unwrap();
        let sub = broker.subscribe("orders".to_owned(), Vec::new()).unwrap();
        let publish = PublishRequest {
            topic: "orders".to_owned(),
            data: b"hello".to_vec(),
            content_type: None,
            metadata: Vec::new(),
        };
        broker.publish(publish).unwrap();
        let pulled = broker.pull(sub, 10).unwrap();
        assert_eq!(pulled.len(), 1);
        broker.ack(sub, pulled[0].id.clone(), Some("retry".to_owned())).unwrap();
        let again = broker.pull(sub, 10).unwrap();
        assert_eq!(again[0].data, b"hello", "a nacked message comes back");
        broker.ack(sub, again[0].id.clone(), None).unwrap();
        assert!(broker.pull(sub, 10).unwrap().is_empty());
    }
}
