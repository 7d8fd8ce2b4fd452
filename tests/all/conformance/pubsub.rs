//! The pub/sub suite: delivery to every subscriber, redelivery on nack and on
//! a subscriber leaving, and 10,000 messages with none lost.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use plughost::kinds::pubsub::{BulkMessage, CONSUMER_ID, Message, PubSub, PublishRequest};
use plughost::kinds::{Deliveries, Delivery, Metadata};

const WAIT: Duration = Duration::from_secs(20);

fn topic(test: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{test}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn group(name: &str) -> Metadata {
    Metadata::from([(CONSUMER_ID.to_owned(), name.to_owned())])
}

async fn next(sub: &mut Deliveries<Message>) -> Delivery<Message> {
    tokio::time::timeout(WAIT, sub.next()).await.expect("a message within the deadline").expect("stream open")
}

/// Asserts nothing arrives within a short grace period.
async fn quiet(sub: &mut Deliveries<Message>) {
    if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        panic!("unexpected message {:?}", String::from_utf8_lossy(&d.item.data));
    }
}

pub async fn ping_and_features(pubsub: Arc<dyn PubSub>) {
    pubsub.ping().await.unwrap();
    pubsub.features().await.unwrap();
}

pub async fn publish_subscribe(pubsub: Arc<dyn PubSub>) {
    let t = topic("ps");
    let mut sub = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    for i in 0..3 {
        let mut request = PublishRequest::new(&t, format!("m{i}"));
        request.content_type = Some("text/plain".into());
        request.metadata.insert("k".into(), format!("v{i}"));
        pubsub.publish(request).await.unwrap();
    }
    for i in 0..3 {
        let d = next(&mut sub).await;
        assert_eq!(d.item.data, format!("m{i}").into_bytes(), "in order");
        assert_eq!(d.item.topic, t);
        assert_eq!(d.item.content_type.as_deref(), Some("text/plain"));
        assert_eq!(d.item.metadata.get("k"), Some(&format!("v{i}")));
        assert!(!d.item.id.is_empty());
        d.ack();
    }
    quiet(&mut sub).await;
}

pub async fn every_subscriber_gets_each_message(pubsub: Arc<dyn PubSub>) {
    let t = topic("fanout");
    let mut a = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    let mut b = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    for i in 0..10 {
        pubsub.publish(PublishRequest::new(&t, format!("m{i}"))).await.unwrap();
    }
    for sub in [&mut a, &mut b] {
        for i in 0..10 {
            let d = next(sub).await;
            assert_eq!(d.item.data, format!("m{i}").into_bytes());
            d.ack();
        }
    }
    // A stopped subscriber does not hold the others back.
    drop(a);
    pubsub.publish(PublishRequest::new(&t, "after")).await.unwrap();
    let d = next(&mut b).await;
    assert_eq!(d.item.data, b"after");
    d.ack();
}

pub async fn nack_redelivers(pubsub: Arc<dyn PubSub>) {
    let t = topic("nack");
    let mut sub = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    pubsub.publish(PublishRequest::new(&t, "retry me")).await.unwrap();
    let first = next(&mut sub).await;
    let id = first.item.id.clone();
    first.nack("handler failed");
    let again = next(&mut sub).await;
    assert_eq!(again.item.id, id, "same message again");
    assert_eq!(again.item.data, b"retry me");
    again.ack();
    quiet(&mut sub).await;
}

pub async fn unacked_is_redelivered_when_subscriber_leaves(pubsub: Arc<dyn PubSub>) {
    let t = topic("leave");
    let g = group(&format!("group-{t}"));
    let mut first = pubsub.subscribe(&t, g.clone()).await.unwrap();
    pubsub.publish(PublishRequest::new(&t, "in flight")).await.unwrap();
    let held = next(&mut first).await;
    assert_eq!(held.item.data, b"in flight");
    drop(held); // never answered
    drop(first);
    let mut second = pubsub.subscribe(&t, g).await.unwrap();
    let d = next(&mut second).await;
    assert_eq!(d.item.data, b"in flight", "delivered again to the group's next subscriber");
    d.ack();
}

pub async fn consumer_group_shares_messages(pubsub: Arc<dyn PubSub>) {
    let t = topic("group");
    let g = group(&format!("group-{t}"));
    let mut a = pubsub.subscribe(&t, g.clone()).await.unwrap();
    let mut b = pubsub.subscribe(&t, g).await.unwrap();
    for i in 0..20 {
        pubsub.publish(PublishRequest::new(&t, format!("m{i}"))).await.unwrap();
    }
    let mut got = Vec::new();
    while got.len() < 20 {
        let d = tokio::select! {
            Some(d) = a.next() => d,
            Some(d) = b.next() => d,
            () = tokio::time::sleep(WAIT) => panic!("only {} of 20 arrived", got.len()),
        };
        got.push(String::from_utf8(d.item.data.clone()).unwrap());
        d.ack();
    }
    let distinct: HashSet<_> = got.iter().collect();
    assert_eq!(distinct.len(), 20, "each message to exactly one member: {got:?}");
    quiet(&mut a).await;
    quiet(&mut b).await;
}

pub async fn bulk_publish(pubsub: Arc<dyn PubSub>) {
    let t = topic("bulk");
    let mut sub = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    let entries = (0..5)
        .map(|i| BulkMessage { entry_id: format!("e{i}"), data: format!("b{i}").into_bytes(), ..Default::default() })
        .collect();
    let failed = pubsub.bulk_publish(&t, entries, Metadata::new()).await.unwrap();
    assert!(failed.is_empty(), "{failed:?}");
    let mut got = HashSet::new();
    for _ in 0..5 {
        let d = next(&mut sub).await;
        got.insert(d.item.data.clone());
        d.ack();
    }
    assert_eq!(got, (0..5).map(|i| format!("b{i}").into_bytes()).collect());
}

/// Dapr's conformance handler: fail the first two messages and every 5th
/// (once each). Every message must arrive; only nacked ones may repeat.
pub async fn ten_thousand_messages(pubsub: Arc<dyn PubSub>) {
    const N: usize = 10_000;
    let t = topic("10k");
    let mut sub = pubsub.subscribe(&t, Metadata::new()).await.unwrap();
    let publisher = {
        let (pubsub, t) = (pubsub.clone(), t.clone());
        tokio::spawn(async move {
            for i in 0..N {
                pubsub.publish(PublishRequest::new(&t, i.to_string())).await.unwrap();
            }
        })
    };
    let mut seen: HashMap<usize, usize> = HashMap::new();
    let mut nacked = 0;
    let mut acked = HashSet::new();
    while acked.len() < N {
        let d = next(&mut sub).await;
        let n: usize = String::from_utf8_lossy(&d.item.data).parse().unwrap();
        let times = seen.entry(n).or_default();
        *times += 1;
        if *times == 1 && (n < 2 || n.is_multiple_of(5)) {
            nacked += 1;
            d.nack("simulated failure");
        } else {
            assert!(acked.insert(n), "message {n} delivered again after it was acked");
            d.ack();
        }
    }
    publisher.await.unwrap();
    let deliveries: usize = seen.values().sum();
    assert_eq!(deliveries, N + nacked, "no duplicates beyond redelivery of nacked messages");
    quiet(&mut sub).await;
}

macro_rules! pubsub_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            pubsub_suite!(@tests $make;
                ping_and_features, publish_subscribe, every_subscriber_gets_each_message, nack_redelivers,
                unacked_is_redelivered_when_subscriber_leaves, consumer_group_shares_messages, bulk_publish,
                ten_thousand_messages);
        }
    };
    (@tests $make:expr; $($test:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let fixture = $make.await;
                super::$test(fixture.component.clone()).await;
            }
        )*
    };
}

pubsub_suite!(in_memory, crate::support::builtin_pubsub("pubsub.in-memory"));
pubsub_suite!(redis, crate::support::redis_pubsub());
pubsub_suite!(wasm, crate::support::wasm_pubsub());
pubsub_suite!(grpc_rust, crate::support::grpc_pubsub());
pubsub_suite!(sdk_broker_grpc, crate::support::sdk::broker_grpc());
pubsub_suite!(sdk_broker_wasm, crate::support::sdk::broker_wasm());
