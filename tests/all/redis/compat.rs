//! Data compatibility with Dapr's `state.redis` and `pubsub.redis`: keys and
//! stream entries written the way daprd writes them (raw Redis commands of
//! Dapr's layout, docs/redis-layout.md) read back through plughost's sidecar
//! API, and what plughost writes is checked in Redis exactly as daprd reads
//! it (`HGETALL` → `data` + `version`; stream fields `data` + `metadata`).

use std::collections::HashMap;
use std::time::Duration;

use plughost::Host;
use plughost::api::{ApiConfig, ApiHandle, serve};
use plughost::config::ComponentSpec;
use plughost::kinds::Metadata;
use plughost::kinds::pubsub::CONSUMER_ID;
use redis::Commands;

use crate::support::redis_server::{self, RedisServer};

struct Sidecar {
    api: ApiHandle,
    host: Host,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Sidecar {
    /// App `orders` with `store` (state.redis) and `broker` (pubsub.redis).
    async fn start(redis: &RedisServer) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::builder()
            .data_dir(dir.path())
            .component(ComponentSpec::new("store", "state.redis").with("redisHost", redis.address()))
            .component(ComponentSpec::new("broker", "pubsub.redis").with("redisHost", redis.address()))
            .build()
            .await
            .unwrap();
        let config = ApiConfig {
            app_id: "orders".into(),
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            ..ApiConfig::default()
        };
        let api = serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
        Self { api, host, http: reqwest::Client::new(), _dir: dir }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.http_addr())
    }

    /// GET of a state key: (status, body, ETag header).
    async fn get(&self, key: &str) -> (u16, String, Option<String>) {
        let response = self.http.get(self.url(&format!("/v1.0/state/store/{key}"))).send().await.unwrap();
        let etag = response.headers().get("etag").map(|v| v.to_str().unwrap().to_owned());
        (response.status().as_u16(), response.text().await.unwrap(), etag)
    }

    /// Saves `entries` (Dapr's JSON save body); returns the status.
    async fn save(&self, entries: serde_json::Value) -> u16 {
        let response = self.http.post(self.url("/v1.0/state/store")).json(&entries).send().await.unwrap();
        response.status().as_u16()
    }
}

/// A unique name for this test's keys and topics.
fn unique(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4().simple())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_written_by_daprd_reads_through_plughost_and_back() {
    let server = redis_server::shared();
    let sidecar = Sidecar::start(server).await;
    let mut raw = server.connection();

    // daprd after an HTTP save of {"item":"tea"}: the JSON text, version 1.
    let order = unique("order");
    let _: () =
        raw.hset_multiple(format!("orders||{order}"), &[("data", r#"{"item":"tea"}"#), ("version", "1")]).unwrap();
    assert_eq!(sidecar.get(&order).await, (200, r#"{"item":"tea"}"#.into(), Some("1".into())));

    // A stale ETag is refused; the current one wins and the version grows.
    let stale = serde_json::json!([{"key": order, "value": "x", "etag": "7"}]);
    assert_eq!(sidecar.save(stale).await, 409);
    assert_eq!(sidecar.save(serde_json::json!([{"key": order, "value": {"item": "cake"}, "etag": "1"}])).await, 204);
    let hash: HashMap<String, String> = raw.hgetall(format!("orders||{order}")).unwrap();
    assert_eq!(hash.get("data").map(String::as_str), Some(r#"{"item":"cake"}"#), "{hash:?}");
    let version: u64 = hash["version"].parse().expect("an integer version, as daprd expects");
    assert!(version > 1, "{hash:?}");
    assert!(hash.keys().all(|k| ["data", "version"].contains(&k.as_str())), "only Dapr's fields: {hash:?}");

    // daprd writes again over plughost's value, as its script does: the
    // version must equal the ETag it read, then HINCRBY.
    let (_, _, etag) = sidecar.get(&order).await;
    assert_eq!(etag, Some(version.to_string()), "the ETag is the hash's version");
    let _: () = raw.hset(format!("orders||{order}"), "data", r#""from daprd""#).unwrap();
    let _: i64 = raw.hincr(format!("orders||{order}"), "version", 1).unwrap();
    assert_eq!(sidecar.get(&order).await, (200, r#""from daprd""#.into(), Some((version + 1).to_string())));

    // A key daprd saved with first-write concurrency needs its ETag.
    let guarded = unique("guarded");
    let fields = [("data", r#""x""#), ("version", "3"), ("first-write", "0")];
    let _: () = raw.hset_multiple(format!("orders||{guarded}"), &fields).unwrap();
    assert_eq!(sidecar.save(serde_json::json!([{"key": guarded, "value": "y"}])).await, 409);
    assert_eq!(sidecar.save(serde_json::json!([{"key": guarded, "value": "y", "etag": "3"}])).await, 204);

    // A legacy plain value (Dapr before ETags) reads without an ETag.
    let legacy = unique("legacy");
    let _: () = raw.set(format!("orders||{legacy}"), r#""old""#).unwrap();
    assert_eq!(sidecar.get(&legacy).await, (200, r#""old""#.into(), None));

    // plughost's TTL is a Redis expiry, as daprd's EXPIRE; a delete removes the hash.
    let short = unique("short");
    let ttl = serde_json::json!([{"key": short, "value": 1, "metadata": {"ttlInSeconds": "100"}}]);
    assert_eq!(sidecar.save(ttl).await, 204);
    let pttl: i64 = raw.pttl(format!("orders||{short}")).unwrap();
    assert!(pttl > 90_000 && pttl <= 100_000, "PTTL {pttl}");
    let response = sidecar.http.delete(sidecar.url(&format!("/v1.0/state/store/{short}"))).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let exists: bool = raw.exists(format!("orders||{short}")).unwrap();
    assert!(!exists);

    sidecar.api.stop();
    sidecar.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_entries_are_shared_with_daprd() {
    let server = redis_server::shared();
    let sidecar = Sidecar::start(server).await;
    let mut raw = server.connection();
    let topic = unique("orders");

    // plughost publishes: Dapr's fields `data` (the CloudEvent) and `metadata`.
    let response = sidecar
        .http
        .post(sidecar.url(&format!("/v1.0/publish/broker/{topic}?metadata.priority=high")))
        .header("content-type", "application/json")
        .body(r#"{"id": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    let entries: redis::streams::StreamRangeReply = raw.xrange_all(&topic).unwrap();
    assert_eq!(entries.ids.len(), 1);
    let fields = &entries.ids[0].map;
    let data: Vec<u8> = redis::from_redis_value_ref(&fields["data"]).unwrap();
    let event: serde_json::Value = serde_json::from_slice(&data).unwrap();
    assert_eq!(event["data"], serde_json::json!({"id": 1}), "{event}");
    assert_eq!(event["topic"], topic.as_str());
    let metadata: String = redis::from_redis_value_ref(&fields["metadata"]).unwrap();
    let metadata: Metadata = serde_json::from_str(&metadata).expect("metadata is a JSON object of strings");
    assert_eq!(metadata.get("priority").map(String::as_str), Some("high"), "{metadata:?}");

    // daprd publishes (no content type field): plughost delivers data and metadata.
    let broker = sidecar.host.pubsub("broker").unwrap();
    let group = Metadata::from([(CONSUMER_ID.to_owned(), "orders".to_owned())]);
    let mut subscription = broker.subscribe(&topic, group).await.unwrap();
    let daprd_event = r#"{"specversion":"1.0","id":"e2","data":{"id":2}}"#;
    let _: String = raw.xadd(&topic, "*", &[("data", daprd_event), ("metadata", r#"{"k":"v"}"#)]).unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        let delivery = tokio::time::timeout(Duration::from_secs(20), subscription.next()).await.unwrap().unwrap();
        got.push((delivery.item.data.clone(), delivery.item.metadata.clone()));
        delivery.ack();
    }
    assert_eq!(got[0].0, data, "a new group starts at the stream's beginning, as Dapr's");
    assert_eq!(got[1].0, daprd_event.as_bytes());
    assert_eq!(got[1].1.get("k").map(String::as_str), Some("v"));
    // Acked with XACK (on its own task, so poll): nothing stays pending.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let pending: redis::streams::StreamPendingReply = raw.xpending(&topic, "orders").unwrap();
        if pending.count() == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{} still pending", pending.count());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    drop(subscription);
    sidecar.api.stop();
    sidecar.host.shutdown().await;
}

/// Something that is not Redis at the address (here a TCP echo, which is
/// also what a client connected to itself sees, as happens now and then when
/// nothing listens on a loopback port in the ephemeral range): init fails
/// naming the address, it does not take the echoed `PING` for an answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_against_a_server_that_is_not_redis_fails() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let echo = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let (mut reader, mut writer) = stream.split();
                let _ = tokio::io::copy(&mut reader, &mut writer).await;
            });
        }
    });
    for kind in ["state.redis", "pubsub.redis"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = ComponentSpec::new("echo", kind).with("redisHost", &address).with("readTimeout", "1s");
        let started =
            tokio::time::timeout(Duration::from_secs(30), Host::builder().data_dir(dir.path()).component(spec).build())
                .await
                .expect("init gives up within its timeout");
        let message = format!("{:#}", started.err().unwrap_or_else(|| panic!("{kind}: init took an echo for redis")));
        assert!(message.contains(&address) && message.contains("echo"), "{kind}: {message}");
    }
    echo.abort();
}

/// With no Redis listening, init fails and says where it looked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_without_redis_names_the_address() {
    let address = format!("127.0.0.1:{}", redis_server::free_port());
    for kind in ["state.redis", "pubsub.redis"] {
        let dir = tempfile::tempdir().unwrap();
        let spec = ComponentSpec::new("nowhere", kind).with("redisHost", &address);
        let started =
            tokio::time::timeout(Duration::from_secs(30), Host::builder().data_dir(dir.path()).component(spec).build())
                .await
                .expect("init gives up within its timeout");
        let message = format!("{:#}", started.err().expect("init fails"));
        assert!(message.contains(&address) && message.contains("nowhere"), "{kind}: {message}");
    }
    // With ignoreErrors the host starts without it, and the others work.
    let dir = tempfile::tempdir().unwrap();
    let mut broken = ComponentSpec::new("nowhere", "state.redis").with("redisHost", &address);
    broken.ignore_errors = true;
    let host = Host::builder()
        .data_dir(dir.path())
        .component(broken)
        .component(ComponentSpec::new("fine", "state.redis").with("redisHost", redis_server::shared().address()))
        .build()
        .await
        .unwrap();
    assert!(host.state("nowhere").is_err());
    host.state("fine").unwrap().ping().await.unwrap();
    host.shutdown().await;
}
