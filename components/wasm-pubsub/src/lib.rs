//! `pubsub-component`: a broker inside the guest, with the semantics of
//! plughost's native `pubsub.in-memory`.
//!
//! Each topic has consumer groups; each group has a FIFO queue. Publishing
//! appends a copy to every group of the topic. A subscription with a
//! `consumerID` joins that named group; one without gets an anonymous group of
//! its own, so every such subscriber sees every message. Pulled messages stay
//! in flight on their subscription until acked; a failed ack, or an
//! unsubscribe, puts them back at the front of the group's queue.

wit_bindgen::generate!({ world: "pubsub-component", path: "../../wit" });

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};

use exports::plughost::components::lifecycle;
use exports::plughost::components::pubsub::{self, BulkEntry, FailedEntry, Message, PublishRequest};
use plughost::components::types::{Error, Metadata};

/// Subscribe metadata naming a consumer group.
const CONSUMER_ID: &str = "consumerID";

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

#[derive(Default)]
struct Broker {
    /// topic → group → queue.
    topics: HashMap<String, HashMap<GroupKey, VecDeque<Message>>>,
    subscriptions: HashMap<u64, Subscription>,
    next_message: u64,
    next_subscription: u64,
    next_pull: u64,
}

thread_local! {
    static BROKER: RefCell<Broker> = RefCell::new(Broker::default());
}

fn with_broker<R>(f: impl FnOnce(&mut Broker) -> R) -> R {
    BROKER.with(|broker| f(&mut broker.borrow_mut()))
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
    fn publish(&mut self, request: PublishRequest) {
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
    }

    fn queue(&mut self, topic: &str, group: &GroupKey) -> &mut VecDeque<Message> {
        self.topics.entry(topic.to_owned()).or_default().entry(group.clone()).or_default()
    }
}

struct Component;

impl lifecycle::Guest for Component {
    fn init(_metadata: Metadata) -> Result<(), Error> {
        Ok(())
    }

    fn features() -> Vec<String> {
        Vec::new()
    }

    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

impl pubsub::Guest for Component {
    fn publish(request: PublishRequest) -> Result<(), Error> {
        check_topic(&request.topic)?;
        with_broker(|broker| broker.publish(request));
        Ok(())
    }

    fn bulk_publish(topic: String, entries: Vec<BulkEntry>, metadata: Metadata) -> Result<Vec<FailedEntry>, Error> {
        check_topic(&topic)?;
        with_broker(|broker| {
            for entry in entries {
                // The entry's metadata overrides the request's.
                let mut merged: Metadata =
                    metadata.iter().filter(|(k, _)| !entry.metadata.iter().any(|(e, _)| e == k)).cloned().collect();
                merged.extend(entry.metadata);
                broker.publish(PublishRequest {
                    topic: topic.clone(),
                    data: entry.data,
                    content_type: entry.content_type,
                    metadata: merged,
                });
            }
        });
        Ok(Vec::new())
    }

    fn subscribe(topic: String, metadata: Metadata) -> Result<u64, Error> {
        check_topic(&topic)?;
        let consumer = metadata.into_iter().find(|(k, v)| k == CONSUMER_ID && !v.is_empty()).map(|(_, v)| v);
        Ok(with_broker(|broker| {
            broker.next_subscription += 1;
            let id = broker.next_subscription;
            let group = consumer.map_or(GroupKey::Anonymous(id), GroupKey::Named);
            broker.queue(&topic, &group);
            let subscription = Subscription { topic, group, in_flight: BTreeMap::new(), by_id: HashMap::new() };
            broker.subscriptions.insert(id, subscription);
            id
        }))
    }

    fn pull(subscription: u64, max: u32) -> Result<Vec<Message>, Error> {
        with_broker(|broker| {
            let Broker { topics, subscriptions, next_pull, .. } = broker;
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
        })
    }

    fn ack(subscription: u64, message_id: String, failure: Option<String>) -> Result<(), Error> {
        with_broker(|broker| {
            let sub = broker.subscriptions.get_mut(&subscription).ok_or_else(|| unknown(subscription))?;
            let message =
                sub.by_id.remove(&message_id).and_then(|seq| sub.in_flight.remove(&seq)).ok_or_else(|| {
                    Error::NotFound(format!("message `{message_id}` is not in flight on subscription {subscription}"))
                })?;
            if failure.is_some() {
                let (topic, group) = (sub.topic.clone(), sub.group.clone());
                broker.queue(&topic, &group).push_front(message);
            }
            Ok(())
        })
    }

    fn unsubscribe(subscription: u64) {
        with_broker(|broker| {
            let Some(sub) = broker.subscriptions.remove(&subscription) else { return };
            match sub.group {
                GroupKey::Anonymous(_) => {
                    if let Some(groups) = broker.topics.get_mut(&sub.topic) {
                        groups.remove(&sub.group);
                        if groups.is_empty() {
                            broker.topics.remove(&sub.topic);
                        }
                    }
                }
                GroupKey::Named(_) => {
                    // Back to the front, in the order they were pulled.
                    let queue = broker.queue(&sub.topic, &sub.group);
                    for message in sub.in_flight.into_values().rev() {
                        queue.push_front(message);
                    }
                }
            }
        })
    }
}

export!(Component);

#[cfg(test)]
mod tests {
    use super::*;
    use pubsub::Guest as _;

    fn publish(topic: &str, data: &str) {
        let request =
            PublishRequest { topic: topic.into(), data: data.into(), content_type: None, metadata: Vec::new() };
        Component::publish(request).unwrap();
    }

    fn group(name: &str) -> Metadata {
        vec![(CONSUMER_ID.to_owned(), name.to_owned())]
    }

    fn pull(sub: u64, max: u32) -> Vec<String> {
        Component::pull(sub, max).unwrap().into_iter().map(|m| String::from_utf8(m.data).unwrap()).collect()
    }

    #[test]
    fn fan_out_and_groups() {
        let a = Component::subscribe("t".into(), Vec::new()).unwrap();
        let b = Component::subscribe("t".into(), Vec::new()).unwrap();
        let g1 = Component::subscribe("t".into(), group("g")).unwrap();
        let g2 = Component::subscribe("t".into(), group("g")).unwrap();
        for i in 0..4 {
            publish("t", &format!("m{i}"));
        }
        assert_eq!(pull(a, 10), ["m0", "m1", "m2", "m3"]);
        assert_eq!(pull(b, 2), ["m0", "m1"]);
        assert_eq!(pull(g1, 3), ["m0", "m1", "m2"]);
        assert_eq!(pull(g2, 3), ["m3"]);
        assert!(pull(a, 10).is_empty());
        assert!(Component::subscribe(String::new(), Vec::new()).is_err());
        assert!(matches!(Component::pull(999, 1), Err(Error::NotFound(_))));
    }

    #[test]
    fn nack_and_unsubscribe_redeliver_first() {
        let g = Component::subscribe("r".into(), group("g")).unwrap();
        for i in 0..4 {
            publish("r", &format!("m{i}"));
        }
        let pulled = Component::pull(g, 3).unwrap();
        Component::ack(g, pulled[0].id.clone(), None).unwrap();
        Component::ack(g, pulled[1].id.clone(), Some("failed".into())).unwrap();
        assert!(matches!(Component::ack(g, pulled[0].id.clone(), None), Err(Error::NotFound(_))));
        let again = Component::pull(g, 1).unwrap();
        assert_eq!(again[0].id, pulled[1].id, "same id on redelivery");
        // In flight now: m2, m1 (pull order). They return in that order.
        Component::unsubscribe(g);
        let next = Component::subscribe("r".into(), group("g")).unwrap();
        assert_eq!(pull(next, 10), ["m2", "m1", "m3"]);

        let anonymous = Component::subscribe("r".into(), Vec::new()).unwrap();
        publish("r", "x");
        assert_eq!(pull(anonymous, 10), ["x"]);
        Component::unsubscribe(anonymous);
        with_broker(|b| assert_eq!(b.topics["r"].len(), 1, "anonymous group removed"));
    }

    #[test]
    fn bulk_publish_merges_metadata() {
        let s = Component::subscribe("b".into(), Vec::new()).unwrap();
        let entry = BulkEntry {
            entry_id: "e".into(),
            data: b"d".to_vec(),
            content_type: None,
            metadata: vec![("k".into(), "entry".into())],
        };
        let request = vec![("k".to_owned(), "request".to_owned()), ("other".to_owned(), "o".to_owned())];
        assert!(Component::bulk_publish("b".into(), vec![entry], request).unwrap().is_empty());
        let message = Component::pull(s, 1).unwrap().remove(0);
        assert_eq!(message.metadata, [("other".to_owned(), "o".to_owned()), ("k".to_owned(), "entry".to_owned())]);
    }
}
