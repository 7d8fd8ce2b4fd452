//! The HTTP API with a plain HTTP client: Dapr's routes, JSON shapes, status
//! codes and error bodies; the token; the body limit.

use plughost::kinds::Metadata;
use plughost::kinds::state::GetRequest;
use reqwest::StatusCode;
use serde_json::{Value, json};

use super::{Served, TOKEN};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The JSON error body's `errorCode`.
async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.expect("a JSON error body");
    (status, body["errorCode"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn state_round_trip_with_etags() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let save = |body: Value| c.post(format!("{http}/v1.0/state/store")).json(&body).send();
    let saved = save(json!([{"key": "order", "value": {"item": "tea"}}])).await.unwrap();
    assert_eq!(saved.status(), StatusCode::NO_CONTENT);

    let read = c.get(format!("{http}/v1.0/state/store/order")).send().await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    let etag = read.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(read.headers()["content-type"], "application/json");
    assert_eq!(read.text().await.unwrap(), r#"{"item":"tea"}"#);

    let updated = save(json!([{"key": "order", "value": "coffee", "etag": etag}])).await.unwrap();
    assert_eq!(updated.status(), StatusCode::NO_CONTENT);
    // A JSON string is stored as JSON text, quotes and all (as daprd does).
    let read = c.get(format!("{http}/v1.0/state/store/order")).send().await.unwrap();
    let current = read.headers()["etag"].to_str().unwrap().to_owned();
    assert_ne!(current, etag);
    assert_eq!(read.text().await.unwrap(), r#""coffee""#);

    let stale = save(json!([{"key": "order", "value": "x", "etag": etag}])).await.unwrap();
    assert_eq!(error_code(stale).await, (StatusCode::CONFLICT, "ERR_STATE_SAVE".to_owned()));
    let delete = |etag: &str| c.delete(format!("{http}/v1.0/state/store/order")).header("If-Match", etag).send();
    let stale = delete(&etag).await.unwrap();
    assert_eq!(error_code(stale).await, (StatusCode::CONFLICT, "ERR_STATE_DELETE".to_owned()));
    assert_eq!(delete(&current).await.unwrap().status(), StatusCode::NO_CONTENT);
    let gone = c.get(format!("{http}/v1.0/state/store/order")).send().await.unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT, "a missing key is 204");
    served.stop().await;
}

#[tokio::test]
async fn state_errors_follow_dapr() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let unknown = c.post(format!("{http}/v1.0/state/nope")).json(&json!([{"key": "k", "value": 1}])).send();
    assert_eq!(error_code(unknown.await.unwrap()).await, (StatusCode::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND".into()));
    let unknown = c.get(format!("{http}/v1.0/state/nope/k")).send().await.unwrap();
    assert_eq!(error_code(unknown).await, (StatusCode::BAD_REQUEST, "ERR_STATE_STORE_NOT_FOUND".into()));
    let malformed = c.post(format!("{http}/v1.0/state/store")).body("[{not json").send().await.unwrap();
    assert_eq!(error_code(malformed).await, (StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST".into()));
    let separator = c.post(format!("{http}/v1.0/state/store")).json(&json!([{"key": "a||b", "value": 1}])).send();
    assert_eq!(error_code(separator.await.unwrap()).await, (StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST".into()));
    let body = json!({"operations": [{"operation": "merge", "request": {"key": "k"}}]});
    let operation = c.post(format!("{http}/v1.0/state/store/transaction")).json(&body).send().await.unwrap();
    assert_eq!(error_code(operation).await, (StatusCode::BAD_REQUEST, "ERR_NOT_SUPPORTED_STATE_OPERATION".into()));
    served.stop().await;
}

#[tokio::test]
async fn bulk_transaction_and_key_prefixes() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let body = json!([{"key": "a", "value": {"n": 1}}, {"key": "b", "value": "two"}]);
    assert_eq!(c.post(format!("{http}/v1.0/state/store")).json(&body).send().await.unwrap().status(), 204);
    let body = json!({"operations": [
        {"operation": "upsert", "request": {"key": "c", "value": 3}},
        {"operation": "delete", "request": {"key": "b"}},
    ]});
    let transaction = c.post(format!("{http}/v1.0/state/store/transaction")).json(&body).send().await.unwrap();
    assert_eq!(transaction.status(), StatusCode::NO_CONTENT);
    let bulk = c.post(format!("{http}/v1.0/state/store/bulk")).json(&json!({"keys": ["a", "b", "c"]})).send();
    let items: Value = bulk.await.unwrap().json().await.unwrap();
    let items = items.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!((&items[0]["key"], &items[0]["data"]), (&json!("a"), &json!({"n": 1})));
    assert!(items[0]["etag"].is_string());
    assert_eq!(items[1], json!({"key": "b"}), "a missing key has no data");
    assert_eq!(items[2]["data"], json!(3));

    // What the components see: `<app-id>||<key>`, or the bare key with `keyPrefix: none`.
    let store = served.host.state("store").unwrap();
    assert!(store.get(GetRequest::new("myapp||a")).await.unwrap().is_some());
    assert!(store.get(GetRequest::new("a")).await.unwrap().is_none());
    let body = json!([{"key": "k", "value": 1}]);
    assert_eq!(c.post(format!("{http}/v1.0/state/plain")).json(&body).send().await.unwrap().status(), 204);
    assert!(served.host.state("plain").unwrap().get(GetRequest::new("k")).await.unwrap().is_some());
    served.stop().await;
}

#[tokio::test]
async fn publish_wraps_in_a_cloudevent_unless_raw() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let pubsub = served.host.pubsub("pubsub").unwrap();
    let mut subscription = pubsub.subscribe("orders/eu", Metadata::new()).await.unwrap();

    let published = c
        .post(format!("{http}/v1.0/publish/pubsub/orders/eu?metadata.cloudevent.subject=s1"))
        .header("content-type", "application/json")
        .body(r#"{"order": 7}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(published.status(), StatusCode::NO_CONTENT);
    let delivery = subscription.next().await.unwrap();
    assert_eq!(delivery.item.content_type.as_deref(), Some("application/cloudevents+json"));
    let event: Value = serde_json::from_slice(&delivery.item.data).unwrap();
    assert_eq!(event["data"], json!({"order": 7}));
    assert_eq!(event["datacontenttype"], "application/json");
    assert_eq!((event["source"].as_str(), event["type"].as_str()), (Some("myapp"), Some("com.dapr.event.sent")));
    assert_eq!((event["topic"].as_str(), event["pubsubname"].as_str()), (Some("orders/eu"), Some("pubsub")));
    assert_eq!((event["specversion"].as_str(), event["subject"].as_str()), (Some("1.0"), Some("s1")));
    assert!(event["id"].as_str().is_some_and(|id| !id.is_empty()) && event["time"].is_string());
    delivery.ack();

    let raw = c.post(format!("{http}/v1.0/publish/pubsub/orders/eu?metadata.rawPayload=true")).body("raw!").send();
    assert_eq!(raw.await.unwrap().status(), StatusCode::NO_CONTENT);
    let delivery = subscription.next().await.unwrap();
    assert_eq!(delivery.item.data, b"raw!");
    assert_eq!(delivery.item.metadata.get("rawPayload").map(String::as_str), Some("true"));
    delivery.ack();

    let unknown = c.post(format!("{http}/v1.0/publish/nope/orders")).body("x").send().await.unwrap();
    assert_eq!(error_code(unknown).await, (StatusCode::NOT_FOUND, "ERR_PUBSUB_NOT_FOUND".into()));

    let entries = json!([
        {"entryId": "1", "event": "first", "contentType": "text/plain"},
        {"entryId": "2", "event": {"n": 2}, "contentType": "application/json"},
    ]);
    let bulk = c.post(format!("{http}/v1.0/publish/bulk/pubsub/orders/eu")).json(&entries).send().await.unwrap();
    assert_eq!(bulk.status(), StatusCode::NO_CONTENT);
    let mut data = Vec::new();
    for _ in 0..2 {
        let delivery = subscription.next().await.unwrap();
        let event: Value = serde_json::from_slice(&delivery.item.data).unwrap();
        data.push(event["data"].clone());
        delivery.ack();
    }
    assert_eq!(data, [json!("first"), json!({"n": 2})]);
    served.stop().await;
}

#[tokio::test]
async fn bindings_and_secrets() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let invoke = |body: Value| c.post(format!("{http}/v1.0/bindings/files")).json(&body).send();
    let created = invoke(json!({"operation": "create", "data": {"hello": "file"}, "metadata": {"fileName": "a.json"}}));
    let created = created.await.unwrap();
    assert_eq!(created.status(), StatusCode::NO_CONTENT);
    assert_eq!(created.headers()["metadata.filename"], "a.json");
    let read = invoke(json!({"operation": "get", "metadata": {"fileName": "a.json"}})).await.unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    assert_eq!(read.text().await.unwrap(), r#"{"hello":"file"}"#);
    let list: Value = invoke(json!({"operation": "list"})).await.unwrap().json().await.unwrap();
    assert_eq!(list, json!(["a.json"]));
    let missing = invoke(json!({"operation": "get", "metadata": {"fileName": "nope"}})).await.unwrap();
    assert_eq!(error_code(missing).await, (StatusCode::NOT_FOUND, "ERR_INVOKE_OUTPUT_BINDING".into()));
    let unknown = c.post(format!("{http}/v1.0/bindings/nope")).json(&json!({"operation": "get"})).send();
    assert_eq!(
        error_code(unknown.await.unwrap()).await,
        (StatusCode::INTERNAL_SERVER_ERROR, "ERR_INVOKE_OUTPUT_BINDING".into())
    );

    let secret: Value = c.get(format!("{http}/v1.0/secrets/vault/api-key")).send().await.unwrap().json().await.unwrap();
    assert_eq!(secret, json!({"api-key": "s3cret"}));
    let bulk: Value = c.get(format!("{http}/v1.0/secrets/vault/bulk")).send().await.unwrap().json().await.unwrap();
    assert_eq!(bulk, json!({"api-key": {"api-key": "s3cret"}, "db:password": {"db:password": "pw"}}));
    let unknown = c.get(format!("{http}/v1.0/secrets/nope/api-key")).send().await.unwrap();
    assert_eq!(error_code(unknown).await, (StatusCode::UNAUTHORIZED, "ERR_SECRET_STORE_NOT_FOUND".into()));
    let missing = c.get(format!("{http}/v1.0/secrets/vault/nope")).send().await.unwrap();
    assert_eq!(error_code(missing).await, (StatusCode::NOT_FOUND, "ERR_SECRET_GET".into()));
    served.stop().await;
}

#[tokio::test]
async fn health_metadata_and_shutdown() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    for route in ["/v1.0/healthz", "/v1.0/healthz/outbound", "/v1.0/healthz?appid=myapp"] {
        assert_eq!(c.get(format!("{http}{route}")).send().await.unwrap().status(), StatusCode::NO_CONTENT, "{route}");
    }
    let wrong = c.get(format!("{http}/v1.0/healthz?appid=other")).send().await.unwrap();
    assert_eq!(error_code(wrong).await.1, "ERR_HEALTH_APPID_NOT_MATCH");

    let put = c.put(format!("{http}/v1.0/metadata/owner")).body("team-a").send().await.unwrap();
    assert_eq!(put.status(), StatusCode::NO_CONTENT);
    let metadata: Value = c.get(format!("{http}/v1.0/metadata")).send().await.unwrap().json().await.unwrap();
    assert_eq!(metadata["id"], "myapp");
    assert_eq!(metadata["extended"]["owner"], "team-a");
    let store = metadata["components"].as_array().unwrap().iter().find(|c| c["name"] == "store").unwrap();
    assert_eq!(store["type"], "state.in-memory");
    assert_eq!(store["version"], "v1");
    assert_eq!(store["mode"], "builtin");
    assert_eq!(store["capabilities"], json!(["ETAG", "TRANSACTIONAL", "TTL", "ACTOR"]));
    let files = metadata["components"].as_array().unwrap().iter().find(|c| c["name"] == "files").unwrap();
    assert_eq!(files["capabilities"], json!(["OUTPUT_BINDING"]));

    let shutdown = c.post(format!("{http}/v1.0/shutdown")).send().await.unwrap();
    assert_eq!(shutdown.status(), StatusCode::NO_CONTENT);
    let Served { api, host, .. } = served;
    tokio::time::timeout(std::time::Duration::from_secs(15), api.wait()).await.expect("shutdown stops the API");
    host.shutdown().await;
}

/// Every protected route, with a body where it takes one.
fn protected_routes() -> Vec<(reqwest::Method, &'static str, &'static str)> {
    use reqwest::Method;
    vec![
        (Method::POST, "/v1.0/state/store", r#"[{"key":"k","value":1}]"#),
        (Method::GET, "/v1.0/state/store/k", ""),
        (Method::DELETE, "/v1.0/state/store/k", ""),
        (Method::POST, "/v1.0/state/store/bulk", r#"{"keys":["k"]}"#),
        (Method::POST, "/v1.0/state/store/transaction", r#"{"operations":[]}"#),
        (Method::POST, "/v1.0/publish/pubsub/t", "x"),
        (Method::POST, "/v1.0/publish/bulk/pubsub/t", "[]"),
        (Method::POST, "/v1.0/bindings/files", r#"{"operation":"list"}"#),
        (Method::GET, "/v1.0/secrets/vault/api-key", ""),
        (Method::GET, "/v1.0/secrets/vault/bulk", ""),
        (Method::GET, "/v1.0/metadata", ""),
        (Method::PUT, "/v1.0/metadata/k", "v"),
        (Method::POST, "/v1.0/shutdown", ""),
    ]
}

#[tokio::test]
async fn token_is_required_everywhere_but_health() {
    let served = Served::start(|config| config.token = Some(TOKEN.into())).await;
    let (http, c) = (served.http(), client());
    for (method, route, body) in protected_routes() {
        for token in [None, Some("wrong"), Some("s3cret-t0ke"), Some("")] {
            let mut request = c.request(method.clone(), format!("{http}{route}")).body(body);
            if let Some(token) = token {
                request = request.header("dapr-api-token", token);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{method} {route} with {token:?}");
            assert_eq!(response.text().await.unwrap(), "invalid api token");
        }
    }
    // The token in the query string is not a token.
    let query = c.get(format!("{http}/v1.0/metadata?dapr-api-token={TOKEN}")).send().await.unwrap();
    assert_eq!(query.status(), StatusCode::UNAUTHORIZED);
    for route in ["/v1.0/healthz", "/v1.0/healthz/outbound"] {
        assert_eq!(c.get(format!("{http}{route}")).send().await.unwrap().status(), StatusCode::NO_CONTENT);
    }
    // With the token, every route is served (shutdown last: it stops the API).
    for (method, route, body) in protected_routes() {
        let response =
            c.request(method.clone(), format!("{http}{route}")).header("dapr-api-token", TOKEN).body(body).send();
        let status = response.await.unwrap().status();
        assert!(status.is_success(), "{method} {route}: {status}");
    }
    let Served { api, host, .. } = served;
    tokio::time::timeout(std::time::Duration::from_secs(15), api.wait()).await.unwrap();
    host.shutdown().await;
}

#[tokio::test]
async fn body_over_the_limit_is_refused_and_the_server_keeps_serving() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let limit = plughost::api::DEFAULT_MAX_BODY;
    assert_eq!(limit, 4 * 1024 * 1024);
    let publish = |size: usize| {
        c.post(format!("{http}/v1.0/publish/pubsub/big?metadata.rawPayload=true")).body(vec![b'x'; size]).send()
    };
    let too_big = publish(limit + 1).await.unwrap();
    let (status, code) = error_code(too_big).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "ERR_REQUEST_TOO_LARGE"));
    // Also without a Content-Length (chunked), so the limit is on the bytes read.
    let chunks = futures::stream::iter((0..5).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1 << 20])));
    let chunked = c.post(format!("{http}/v1.0/state/store")).body(reqwest::Body::wrap_stream(chunks)).send();
    assert_eq!(chunked.await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);

    assert_eq!(publish(limit).await.unwrap().status(), StatusCode::NO_CONTENT, "exactly the limit is accepted");
    let after = c.post(format!("{http}/v1.0/state/store")).json(&json!([{"key": "k", "value": 1}])).send();
    assert_eq!(after.await.unwrap().status(), StatusCode::NO_CONTENT);
    let read = c.get(format!("{http}/v1.0/state/store/k")).send().await.unwrap();
    assert_eq!(read.text().await.unwrap(), "1");
    served.stop().await;
}

#[tokio::test]
async fn the_limit_is_configurable() {
    let served = Served::start(|config| config.max_body = 1024).await;
    let (http, c) = (served.http(), client());
    let over = c.post(format!("{http}/v1.0/publish/pubsub/t")).body(vec![b'x'; 1025]).send().await.unwrap();
    assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let under = c.post(format!("{http}/v1.0/publish/pubsub/t")).body(vec![b'x'; 1024]).send().await.unwrap();
    assert_eq!(under.status(), StatusCode::NO_CONTENT);
    served.stop().await;
}

#[tokio::test]
async fn etag_contention_has_exactly_one_winner() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let save = |value: Value, etag: Option<String>| {
        let item = match etag {
            Some(etag) => json!([{"key": "counter", "value": value, "etag": etag}]),
            None => json!([{"key": "counter", "value": value}]),
        };
        c.post(format!("{http}/v1.0/state/store")).json(&item).send()
    };
    save(json!(0), None).await.unwrap();
    for round in 1..=5 {
        let read = c.get(format!("{http}/v1.0/state/store/counter")).send().await.unwrap();
        let etag = read.headers()["etag"].to_str().unwrap().to_owned();
        let writers = (0..20).map(|writer| save(json!(round * 100 + writer), Some(etag.clone())));
        let statuses: Vec<StatusCode> =
            futures::future::join_all(writers).await.into_iter().map(|r| r.unwrap().status()).collect();
        let won = statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count();
        let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
        assert_eq!((won, conflicts), (1, 19), "round {round}: {statuses:?}");
    }
    served.stop().await;
}

/// daprd reads bodies with Go's `encoding/json`: `null` means empty and field
/// names match case-insensitively, on every route. Each row is a request
/// daprd accepts (and plughost once refused with `ERR_MALFORMED_REQUEST`).
#[tokio::test]
async fn json_bodies_are_read_as_leniently_as_daprd() {
    let served = Served::start(|_| {}).await;
    let (http, c) = (served.http(), client());
    let pubsub = served.host.pubsub("pubsub").unwrap();
    let mut subscription = pubsub.subscribe("lenient", Metadata::new()).await.unwrap();
    let rows: Vec<(&str, String, Value)> = vec![
        ("metadata null", format!("{http}/v1.0/state/store"), json!([{"key": "a", "value": 1, "metadata": null}])),
        ("Key", format!("{http}/v1.0/state/store"), json!([{"Key": "b", "Value": 2, "ETag": null, "Options": null}])),
        (
            "null options fields",
            format!("{http}/v1.0/state/store"),
            json!([{"KEY": "c", "value": 3, "options": {"concurrency": null}}]),
        ),
        (
            "transaction with null metadata",
            format!("{http}/v1.0/state/store/transaction"),
            json!({"Operations": [{"Operation": "upsert", "Request": {"Key": "d", "value": 4, "metadata": null}}], "metadata": null}),
        ),
        (
            "bulk get with null metadata",
            format!("{http}/v1.0/state/store/bulk"),
            json!({"KEYS": ["a"], "metadata": null}),
        ),
        (
            "entryID",
            format!("{http}/v1.0/publish/bulk/pubsub/lenient"),
            json!([{"entryID": "1", "event": "x", "ContentType": "text/plain", "metadata": null}]),
        ),
        (
            "binding",
            format!("{http}/v1.0/bindings/files"),
            json!({"Operation": "list", "data": null, "metadata": null}),
        ),
    ];
    for (name, url, body) in rows {
        let response = c.post(&url).json(&body).send().await.unwrap();
        let status = response.status();
        assert!(status.is_success(), "{name}: {status} {}", response.text().await.unwrap());
    }
    for (key, value) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
        let read = c.get(format!("{http}/v1.0/state/store/{key}")).send().await.unwrap();
        assert_eq!(read.text().await.unwrap(), value, "key {key}");
    }
    let delivery = subscription.next().await.unwrap();
    let event: Value = serde_json::from_slice(&delivery.item.data).unwrap();
    assert_eq!((event["data"].as_str(), event["datacontenttype"].as_str()), (Some("x"), Some("text/plain")));
    delivery.ack();
    // Wrong types are still refused.
    let wrong = c.post(format!("{http}/v1.0/state/store")).json(&json!([{"key": 1, "value": 1}])).send().await.unwrap();
    assert_eq!(error_code(wrong).await, (StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST".into()));
    served.stop().await;
}
