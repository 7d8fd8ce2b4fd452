//! `broker`: an in-memory pub/sub broker with consumer groups and
//! at-least-once delivery, written once with `plughost-component`:
//! `cargo build` gives the gRPC component, `cargo build --target
//! wasm32-wasip2 --lib` the WASM one.
//!
//! Each topic has consumer groups; each group has a FIFO queue. Publishing
//! appends a copy to every group of the topic. A subscription with a
//! `consumerID` joins that named group; one without gets an anonymous group
//! of its own, so every such subscriber sees every message. Pulled messages
//! stay in flight on their subscription until acked; a failed ack, or an
//! unsubscribe, puts them back at the front of the group's queue.

use std::collections::{BTreeMap, HashMap, VecDeque};

use plughost_component::pubsub::{CONSUMER_ID, Message, PublishRequest};
use plughost_component::{Component, Error, Metadata, PubSub, metadata_value};

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum GroupKey {
    Named(String),
    /// The group of one subscription without a `consumerID`.
    Anonymous(u64),
}

struct Subscription {
    topic: String,
    group: GroupKey,
    /// Pulled, not yet acked: pull sequence → message.
    in_flight: BTreeMap<u64, Message>,
    /// Message id → its pull sequence in `in_flight`.
    by_id: HashMap<String, u64>,
}

/// The broker.
#[derive(Default)]
pub struct Broker {
    /// topic → group → queue.
    topics: HashMap<String, HashMap<GroupKey, VecDeque<Message>>>,
    subscriptions: HashMap<u64, Subscription>,
    next_message: u64,
    next_subscription: u64,
    next_pull: u64,
}

fn check_topic(topic: &str) -> Result<(), Error> {
    if topic.is_empty() {
        return Err(Error::InvalidArgument("topic name is empty".to_owned()));
    }
    Ok(())
}

fn unknown(subscription: u64) -> Error {
    Error::NotFound(format!("subscription {subscription}"))
}

impl Broker {
    fn queue(&mut self, topic: &str, group: &GroupKey) -> &mut VecDeque<Message> {
        self.topics.entry(topic.to_owned()).or_default().entry(group.clone()).or_default()
    }
}

impl Component for Broker {
    fn init(_metadata: Metadata) -> Result<Self, Error> {
        Ok(Self::default())
    }
}

impl PubSub for Broker {
    fn publish(&mut self, request: PublishRequest) -> Result<(), Error> {
        check_topic(&request.topic)?;
        self.next_message += 1;
        let message = Message {
            id: format!("m{}", self.next_message),
            topic: request.topic,
            data: request.data,
            content_type: request.content_type,
            metadata: request.metadata,
        };
        for queue in self.topics.get_mut(&message.topic).into_iter().flat_map(HashMap::values_mut) {
            queue.push_back(message.clone());
        }
        Ok(())
    }

    fn subscribe(&mut self, topic: String, metadata: Metadata) -> Result<u64, Error> {
        check_topic(&topic)?;
        let consumer = metadata_value(&metadata, CONSUMER_ID).filter(|v| !v.is_empty()).map(str::to_owned);
        self.next_subscription += 1;
        let id = self.next_subscription;
        let group = consumer.map_or(GroupKey::Anonymous(id), GroupKey::Named);
        self.queue(&topic, &group);
        self.subscriptions.insert(id, Subscription { topic, group, in_flight: BTreeMap::new(), by_id: HashMap::new() });
        Ok(id)
    }

    fn pull(&mut self, subscription: u64, max: u32) -> Result<Vec<Message>, Error> {
        let Broker { topics, subscriptions, next_pull, .. } = self;
        let sub = subscriptions.get_mut(&subscription).ok_or_else(|| unknown(subscription))?;
        let queue = topics.entry(sub.topic.clone()).or_default().entry(sub.group.clone()).or_default();
        let count = queue.len().min(usize::try_from(max).unwrap_or(usize::MAX));
        let pulled: Vec<Message> = queue.drain(..count).collect();
        for message in &pulled {
            *next_pull += 1;
            sub.by_id.insert(message.id.clone(), *next_pull);
            sub.in_flight.insert(*next_pull, message.clone());
        }
        Ok(pulled)
    }

    fn ack(&mut self, subscription: u64, message_id: String, failure: Option<String>) -> Result<(), Error> {
        let sub = self.subscriptions.get_mut(&subscription).ok_or_else(|| unknown(subscription))?;
        let message = sub.by_id.remove(&message_id).and_then(|seq| sub.in_flight.remove(&seq)).ok_or_else(|| {
            Error::NotFound(format!("message `{message_id}` is not in flight on subscription {subscription}"))
        })?;
        if failure.is_some() {
            let (topic, group) = (sub.topic.clone(), sub.group.clone());
            self.queue(&topic, &group).push_front(message);
        }
        Ok(())
    }

    fn unsubscribe(&mut self, subscription: u64) {
        let Some(sub) = self.subscriptions.remove(&subscription) else { return };
        match sub.group {
            GroupKey::Anonymous(_) => {
                if let Some(groups) = self.topics.get_mut(&sub.topic) {
                    groups.remove(&sub.group);
                    if groups.is_empty() {
                        self.topics.remove(&sub.topic);
                    }
                }
            }
            GroupKey::Named(_) => {
                // Back to the front, in the order they were pulled.
                let queue = self.queue(&sub.topic, &sub.group);
                for message in sub.in_flight.into_values().rev() {
                    queue.push_front(message);
                }
            }
        }
    }
}

plughost_component::export_pubsub!(Broker);

#[cfg(test)]
mod tests {
    use plughost_component::pubsub::BulkEntry;

    use super::*;

    fn broker() -> Broker {
        Broker::init(Vec::new()).unwrap()
    }

    fn publish(broker: &mut Broker, topic: &str, data: &str) {
        let request =
            PublishRequest { topic: topic.into(), data: data.into(), content_type: None, metadata: Vec::new() };
        broker.publish(request).unwrap();
    }

    fn group(name: &str) -> Metadata {
        vec![(CONSUMER_ID.to_owned(), name.to_owned())]
    }

    fn pull(broker: &mut Broker, sub: u64, max: u32) -> Vec<String> {
        broker.pull(sub, max).unwrap().into_iter().map(|m| String::from_utf8(m.data).unwrap()).collect()
    }

    #[test]
    fn fan_out_and_groups() {
        let b = &mut broker();
        let a = b.subscribe("t".into(), Vec::new()).unwrap();
        let b2 = b.subscribe("t".into(), Vec::new()).unwrap();
        let g1 = b.subscribe("t".into(), group("g")).unwrap();
        let g2 = b.subscribe("t".into(), group("g")).unwrap();
        for i in 0..4 {
            publish(b, "t", &format!("m{i}"));
        }
        assert_eq!(pull(b, a, 10), ["m0", "m1", "m2", "m3"]);
        assert_eq!(pull(b, b2, 2), ["m0", "m1"]);
        assert_eq!(pull(b, g1, 3), ["m0", "m1", "m2"]);
        assert_eq!(pull(b, g2, 3), ["m3"]);
        assert!(pull(b, a, 10).is_empty());
        assert!(b.subscribe(String::new(), Vec::new()).is_err());
        assert!(matches!(b.pull(999, 1), Err(Error::NotFound(_))));
    }

    #[test]
    fn nack_and_unsubscribe_redeliver_first() {
        let b = &mut broker();
        let g = b.subscribe("r".into(), group("g")).unwrap();
        for i in 0..4 {
            publish(b, "r", &format!("m{i}"));
        }
        let pulled = b.pull(g, 3).unwrap();
        b.ack(g, pulled[0].id.clone(), None).unwrap();
        b.ack(g, pulled[1].id.clone(), Some("failed".into())).unwrap();
        assert!(matches!(b.ack(g, pulled[0].id.clone(), None), Err(Error::NotFound(_))));
        let again = b.pull(g, 1).unwrap();
        assert_eq!(again[0].id, pulled[1].id, "same id on redelivery");
        // In flight now: m2, m1 (pull order). They return in that order.
        b.unsubscribe(g);
        let next = b.subscribe("r".into(), group("g")).unwrap();
        assert_eq!(pull(b, next, 10), ["m2", "m1", "m3"]);

        let anonymous = b.subscribe("r".into(), Vec::new()).unwrap();
        publish(b, "r", "x");
        assert_eq!(pull(b, anonymous, 10), ["x"]);
        b.unsubscribe(anonymous);
        assert_eq!(b.topics["r"].len(), 1, "anonymous group removed");
    }

    #[test]
    fn bulk_publish_merges_metadata() {
        let b = &mut broker();
        let s = b.subscribe("b".into(), Vec::new()).unwrap();
        let entry = BulkEntry {
            entry_id: "e".into(),
            data: b"d".to_vec(),
            content_type: None,
            metadata: vec![("k".into(), "entry".into())],
        };
        let request = vec![("k".to_owned(), "request".to_owned()), ("other".to_owned(), "o".to_owned())];
        assert!(b.bulk_publish("b".into(), vec![entry], request).unwrap().is_empty());
        let message = b.pull(s, 1).unwrap().remove(0);
        assert_eq!(message.metadata, [("other".to_owned(), "o".to_owned()), ("k".to_owned(), "entry".to_owned())]);
    }
}
