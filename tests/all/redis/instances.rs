//! Several instances, one system: three `plughost run` processes (app id
//! `orders`) on one redis-server, driven through the sidecar API, in one
//! scenario so CI pays for the processes once:
//!
//! 1. ETag contention: rounds of 50 writers spread over the instances on one
//!    key, all with the same ETag and first-write: exactly one wins each round.
//! 2. A consumer group across instances: 10,000 messages published through
//!    the instances, consumed by a streaming subscription on each.
//! 3. Meanwhile one instance stops answering (holding its messages) and is
//!    SIGKILLed: what it held reaches the others within `processingTimeout` +
//!    `redeliverInterval` (bounded generously).
//! 4. Then Redis is restarted (append-only file on): calls answer 503 /
//!    `UNAVAILABLE` while it is down and succeed after.
//!
//! In the end every published message was received (sent == received by
//! id); a message is received twice only if it was redelivered (held by the
//! killed instance, or handled while Redis was down so its ack failed) or
//! its publish was retried after an outage error.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost::proto::runtime as rt;
use rt::dapr_client::DaprClient;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use rt::topic_event_response::TopicEventResponseStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::support::redis_server::RedisServer;
use crate::support::sidecar::{Components, Names, RunningSidecar};

const MESSAGES: usize = 10_000;
const PROCESSING_TIMEOUT: Duration = Duration::from_millis(3000);
const REDELIVER_INTERVAL: Duration = Duration::from_millis(500);
/// The instance that stops answering and is killed.
const VICTIM: usize = 2;
/// The victim acks this many messages, then holds the rest unanswered.
const VICTIM_ACKS: usize = 50;

fn components(redis: &RedisServer) -> Components {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{ name: store }}
spec:
  type: state.redis
  version: v1
  metadata:
    - {{ name: redisHost, value: \"{address}\" }}
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata: {{ name: broker }}
spec:
  type: pubsub.redis
  version: v1
  metadata:
    - {{ name: redisHost, value: \"{address}\" }}
    - {{ name: processingTimeout, value: \"{pt}\" }}
    - {{ name: redeliverInterval, value: \"{ri}\" }}
",
        address = redis.address(),
        pt = PROCESSING_TIMEOUT.as_millis(),
        ri = REDELIVER_INTERVAL.as_millis(),
    );
    std::fs::write(dir.path().join("components.yaml"), yaml).unwrap();
    let names =
        Names { store: "store".into(), pubsub: "broker".into(), binding: String::new(), secret_store: String::new() };
    Components { _keep: Vec::new(), dir, wasm_dir: None, names, args: Vec::new() }
}

/// What the consumers saw: every delivery of every message id.
#[derive(Default)]
struct Seen {
    deliveries: HashMap<usize, Vec<(usize, Instant)>>,
    /// Ids the victim received and never answered.
    held: HashSet<usize>,
}

type Shared = Arc<Mutex<Seen>>;

/// A streaming subscription on `grpc`; acks everything, except that the
/// victim holds what arrives after its first `VICTIM_ACKS`.
async fn consume(grpc: SocketAddr, instance: usize, seen: Shared) {
    let mut client = DaprClient::connect(format!("http://{grpc}")).await.unwrap();
    let (send, rx) = mpsc::channel(1024);
    let initial = rt::SubscribeTopicEventsRequestInitialAlpha1 {
        pubsub_name: "broker".into(),
        topic: "orders".into(),
        ..Default::default()
    };
    let open = rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::InitialRequest(initial)),
    };
    send.send(open).await.unwrap();
    let mut events = client.subscribe_topic_events_alpha1(ReceiverStream::new(rx)).await.unwrap().into_inner();
    let mut received = 0;
    while let Ok(Some(message)) = events.message().await {
        let Some(Outgoing::EventMessage(event)) = message.subscribe_topic_events_response_type else { continue };
        let id: usize = String::from_utf8_lossy(&event.data).trim_start_matches('m').parse().unwrap();
        received += 1;
        {
            let mut seen = seen.lock().unwrap();
            seen.deliveries.entry(id).or_default().push((instance, Instant::now()));
            if instance == VICTIM && received > VICTIM_ACKS {
                seen.held.insert(id);
                continue;
            }
        }
        let processed = rt::SubscribeTopicEventsRequestProcessedAlpha1 {
            id: event.id.clone(),
            status: Some(rt::TopicEventResponse { status: TopicEventResponseStatus::Success as i32 }),
        };
        let answer = rt::SubscribeTopicEventsRequestAlpha1 {
            subscribe_topic_events_request_type: Some(Incoming::EventProcessed(processed)),
        };
        if send.send(answer).await.is_err() {
            break;
        }
    }
}

/// The publishers: `workers` tasks taking the next id and publishing it
/// through the live instances in turn, retrying an id until it is accepted.
struct Publisher {
    next: AtomicUsize,
    published: AtomicUsize,
    live: Mutex<Vec<String>>,
    /// Status codes of refused publishes, and the ids they concerned.
    refused: Mutex<Vec<(u16, usize)>>,
}

impl Publisher {
    async fn run(self: Arc<Self>, http: reqwest::Client) {
        loop {
            let id = self.next.fetch_add(1, Ordering::Relaxed);
            if id >= MESSAGES {
                return;
            }
            for attempt in 0.. {
                let base = {
                    let live = self.live.lock().unwrap();
                    live[(id + attempt) % live.len()].clone()
                };
                let sent = http
                    .post(format!("{base}/v1.0/publish/broker/orders"))
                    .header("content-type", "text/plain")
                    .body(format!("m{id}"))
                    .send()
                    .await;
                match sent.map(|r| r.status().as_u16()) {
                    Ok(204) => break,
                    Ok(status) => self.refused.lock().unwrap().push((status, id)),
                    Err(_) => self.refused.lock().unwrap().push((0, id)),
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.published.fetch_add(1, Ordering::Relaxed);
        }
    }
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out after {limit:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Phase 1: each round, 50 writers with the round's ETag; one wins.
async fn etag_contention(http: &reqwest::Client, bases: &[String]) {
    let save = |base: &str, body: serde_json::Value| http.post(format!("{base}/v1.0/state/store")).json(&body).send();
    assert_eq!(
        save(&bases[0], serde_json::json!([{"key": "contended", "value": "start"}])).await.unwrap().status(),
        204
    );
    for round in 0..5 {
        let current = http.get(format!("{}/v1.0/state/store/contended", bases[round % 3])).send().await.unwrap();
        let etag = current.headers()["etag"].to_str().unwrap().to_owned();
        let writers = (0..50).map(|i| {
            let body = serde_json::json!([{
                "key": "contended", "value": format!("r{round}-w{i}"), "etag": etag,
                "options": {"concurrency": "first-write"},
            }]);
            let request = save(&bases[i % 3], body);
            async move { (i, request.await.unwrap().status().as_u16()) }
        });
        let statuses = futures::future::join_all(writers).await;
        let winners: Vec<usize> = statuses.iter().filter(|(_, s)| *s == 204).map(|(i, _)| *i).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner, got {statuses:?}");
        assert!(statuses.iter().all(|(_, s)| *s == 204 || *s == 409), "round {round}: {statuses:?}");
        let value = http.get(format!("{}/v1.0/state/store/contended", bases[(round + 1) % 3])).send().await.unwrap();
        assert_eq!(value.text().await.unwrap(), format!("\"r{round}-w{}\"", winners[0]));
    }
}

/// Publishes to a topic nobody reads; returns the status.
async fn probe(http: &reqwest::Client, base: &str) -> u16 {
    let response = http.post(format!("{base}/v1.0/publish/broker/probes")).body("probe").send().await.unwrap();
    response.status().as_u16()
}

/// While Redis is down: the HTTP API answers 503, the gRPC API UNAVAILABLE.
async fn check_unavailable(http: &reqwest::Client, base: &str, grpc: SocketAddr) {
    assert_eq!(probe(http, base).await, 503);
    let get = http.get(format!("{base}/v1.0/state/store/contended")).send().await.unwrap();
    assert_eq!(get.status().as_u16(), 503);
    let mut client = DaprClient::connect(format!("http://{grpc}")).await.unwrap();
    let request = rt::GetStateRequest { store_name: "store".into(), key: "contended".into(), ..Default::default() };
    let status = client.get_state(request).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_on_one_redis() {
    let mut redis = RedisServer::start(true);
    let components = components(&redis);
    let mut sidecars: Vec<Option<RunningSidecar>> =
        (0..3).map(|_| Some(RunningSidecar::start(&components, &["--app-id", "orders"]))).collect();
    let bases: Vec<String> = sidecars.iter().map(|s| format!("http://{}", s.as_ref().unwrap().http)).collect();
    let grpcs: Vec<SocketAddr> = sidecars.iter().map(|s| s.as_ref().unwrap().grpc).collect();
    let http = reqwest::Client::new();

    etag_contention(&http, &bases).await;

    let seen = Shared::default();
    for (instance, grpc) in grpcs.iter().enumerate() {
        tokio::spawn(consume(*grpc, instance, seen.clone()));
    }
    // Let all three subscriptions join the group before the first publish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let publisher = Arc::new(Publisher {
        next: AtomicUsize::new(0),
        published: AtomicUsize::new(0),
        live: Mutex::new(bases.clone()),
        refused: Mutex::default(),
    });
    let workers: Vec<_> = (0..8).map(|_| tokio::spawn(publisher.clone().run(http.clone()))).collect();

    // The victim holds at most `concurrency` (10) messages unanswered.
    wait_until("the victim holds 10 messages", Duration::from_secs(120), || seen.lock().unwrap().held.len() >= 10)
        .await;
    publisher.live.lock().unwrap().retain(|b| *b != bases[VICTIM]);
    tokio::time::sleep(Duration::from_secs(1)).await; // publishes in flight to the victim finish
    let held = seen.lock().unwrap().held.clone();
    sidecars[VICTIM] = None; // SIGKILL
    let killed = Instant::now();
    let redelivered =
        |seen: &Seen| held.iter().all(|id| seen.deliveries[id].iter().any(|(instance, _)| *instance != VICTIM));
    let bound = (PROCESSING_TIMEOUT + REDELIVER_INTERVAL) * 3 + Duration::from_secs(5);
    wait_until("the killed instance's messages reach the others", bound, || redelivered(&seen.lock().unwrap())).await;
    eprintln!("held messages of the killed instance redelivered after {:?}", killed.elapsed());

    wait_until("half the messages are published", Duration::from_secs(300), || {
        publisher.published.load(Ordering::Relaxed) >= MESSAGES / 2
    })
    .await;
    redis.stop();
    let down = Instant::now();
    check_unavailable(&http, &bases[0], grpcs[0]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart();
    let up = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(60);
    while probe(&http, &bases[0]).await != 204 {
        assert!(Instant::now() < deadline, "publishing does not work again after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each instance re-dials within about a second (a keep-alive PING).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let get = http.get(format!("{}/v1.0/state/store/contended", bases[1])).send().await.unwrap();
        match get.status().as_u16() {
            200 => break,
            503 if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
            status => panic!("state written before the restart is still there: {status}"),
        }
    }

    for worker in workers {
        worker.await.unwrap();
    }
    wait_until("every message is received", Duration::from_secs(300), || {
        seen.lock().unwrap().deliveries.len() == MESSAGES
    })
    .await;
    // Let late redeliveries arrive before counting duplicates.
    tokio::time::sleep(PROCESSING_TIMEOUT + REDELIVER_INTERVAL * 2).await;

    let seen = seen.lock().unwrap();
    let refused = publisher.refused.lock().unwrap();
    assert!(refused.iter().all(|(status, _)| *status == 503 || *status == 0), "only 503s: {refused:?}");
    let received: HashSet<usize> = seen.deliveries.keys().copied().collect();
    assert_eq!(received, (0..MESSAGES).collect(), "sent == received");
    let retried: HashSet<usize> = refused.iter().map(|(_, id)| *id).collect();
    let window = (down - Duration::from_secs(2), up + Duration::from_secs(2));
    let mut duplicates = 0;
    for (id, deliveries) in &seen.deliveries {
        if deliveries.len() > 1 {
            duplicates += 1;
            let redelivery = held.contains(id)
                || retried.contains(id)
                || deliveries.iter().any(|(_, at)| *at >= window.0 && *at <= window.1);
            assert!(redelivery, "message {id} delivered {} times without a reason: {deliveries:?}", deliveries.len());
        }
    }
    let per_instance = (0..3).map(|i| seen.deliveries.values().flatten().filter(|(n, _)| *n == i).count());
    eprintln!(
        "{MESSAGES} messages, {duplicates} delivered more than once, per instance {:?}, {} publishes refused",
        per_instance.collect::<Vec<_>>(),
        refused.len()
    );
}
