//! `pubsub.redis` settings the conformance suite does not touch, checked in
//! Redis itself: `maxLenApprox` caps the stream (`XADD ... MAXLEN ~`), and
//! `concurrency` bounds what one subscription holds unanswered (its pending
//! entries in the group).

use std::time::{Duration, Instant};

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::pubsub::{CONSUMER_ID, Message, PublishRequest};
use plughost::kinds::{Deliveries, Delivery, Metadata};
use redis::Commands;

use crate::support::redis_server;

async fn broker(metadata: &[(&str, &str)]) -> (Host, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ComponentSpec::new("broker", "pubsub.redis").with("redisHost", redis_server::shared().address());
    for (name, value) in metadata {
        spec = spec.with(*name, *value);
    }
    let host = Host::builder().data_dir(dir.path()).component(spec).build().await.unwrap();
    (host, dir)
}

/// The next delivery, bounded generously.
async fn next(subscription: &mut Deliveries<Message>) -> Delivery<Message> {
    tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.expect("a delivery").unwrap()
}

fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_len_approx_caps_the_stream() {
    let (capped, _dir) = broker(&[("maxLenApprox", "100")]).await;
    let (uncapped, _dir2) = broker(&[]).await;
    let mut raw = redis_server::shared().connection();
    let (short, long) = (unique("capped"), unique("uncapped"));
    for n in 0..1000 {
        let data = format!("message {n}");
        capped.pubsub("broker").unwrap().publish(PublishRequest::new(&short, data.clone())).await.unwrap();
        uncapped.pubsub("broker").unwrap().publish(PublishRequest::new(&long, data)).await.unwrap();
    }
    // `~`: Redis trims whole nodes (100 entries each by default), so the
    // stream keeps at least 100 and at most about one node more.
    let len: usize = raw.xlen(&short).unwrap();
    assert!((100..=300).contains(&len), "XLEN {len} with maxLenApprox 100");
    let len: usize = raw.xlen(&long).unwrap();
    assert_eq!(len, 1000, "no cap without maxLenApprox");
    capped.shutdown().await;
    uncapped.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_bounds_what_a_subscription_holds() {
    let (host, _dir) = broker(&[("concurrency", "3")]).await;
    let broker = host.pubsub("broker").unwrap();
    let mut raw = redis_server::shared().connection();
    let topic = unique("orders");
    let group = Metadata::from([(CONSUMER_ID.to_owned(), "orders".to_owned())]);
    let mut subscription = broker.subscribe(&topic, group).await.unwrap();
    for n in 0..10 {
        broker.publish(PublishRequest::new(&topic, format!("message {n}"))).await.unwrap();
    }
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(next(&mut subscription).await);
    }
    // Holding 3 unanswered, the subscription reads no more: the group has
    // exactly 3 pending entries, however long it is given.
    let pending = |raw: &mut redis::Connection| {
        let reply: redis::streams::StreamPendingReply = raw.xpending(&topic, "orders").unwrap();
        reply.count()
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(pending(&mut raw), 3);
    let early = tokio::time::timeout(Duration::from_millis(300), subscription.next()).await;
    assert!(early.is_err(), "a 4th delivery while 3 are unanswered");

    // Answering one lets one more in; in the end all 10 arrive.
    held.pop().unwrap().ack();
    held.push(next(&mut subscription).await);
    assert!(pending(&mut raw) <= 3);
    let mut received = 4;
    for delivery in held.drain(..) {
        delivery.ack();
    }
    while received < 10 {
        next(&mut subscription).await.ack();
        received += 1;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while pending(&mut raw) > 0 {
        assert!(Instant::now() < deadline, "acks reach Redis");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(subscription);
    host.shutdown().await;
}
