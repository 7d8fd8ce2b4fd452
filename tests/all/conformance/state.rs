//! The state store suite, after Dapr's state conformance tests.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use plughost::kinds::state::{
    Concurrency, DeleteRequest, GetRequest, SetRequest, StateOptions, StateStore, TTL_EXPIRE_TIME, TTL_IN_SECONDS,
    TransactionOperation, features,
};
use plughost::kinds::{ComponentError, Metadata};

/// A key no other test uses, so suites may share a store.
fn key(test: &str) -> String {
    format!("{test}-{}", uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!("{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

async fn value(store: &dyn StateStore, key: &str) -> Option<Vec<u8>> {
    store.get(GetRequest::new(key)).await.unwrap().map(|item| item.data)
}

async fn etag(store: &dyn StateStore, key: &str) -> String {
    store.get(GetRequest::new(key)).await.unwrap().expect("key exists").etag.expect("stored values have an etag")
}

fn first_write() -> StateOptions {
    StateOptions { concurrency: Concurrency::FirstWrite, ..Default::default() }
}

pub async fn ping_and_features(store: Arc<dyn StateStore>) {
    store.ping().await.unwrap();
    let features = store.features().await.unwrap();
    for wanted in [features::ETAG, features::TRANSACTIONAL, features::TTL] {
        assert!(features.iter().any(|f| f == wanted), "missing feature {wanted} in {features:?}");
    }
}

pub async fn set_get_delete(store: Arc<dyn StateStore>) {
    let k = key("sgd");
    store.set(SetRequest::new(&k, "v1")).await.unwrap();
    assert_eq!(value(&*store, &k).await.as_deref(), Some(&b"v1"[..]));
    store.set(SetRequest::new(&k, "v2")).await.unwrap();
    assert_eq!(value(&*store, &k).await.as_deref(), Some(&b"v2"[..]));
    store.delete(DeleteRequest::new(&k)).await.unwrap();
    assert_eq!(value(&*store, &k).await, None);
}

pub async fn missing_key(store: Arc<dyn StateStore>) {
    let k = key("missing");
    assert_eq!(store.get(GetRequest::new(&k)).await.unwrap(), None);
    // Deleting a key that was never written is not an error.
    store.delete(DeleteRequest::new(&k)).await.unwrap();
}

pub async fn bulk(store: Arc<dyn StateStore>) {
    let keys: Vec<String> = (0..5).map(|i| key(&format!("bulk{i}"))).collect();
    let writes = keys[..3].iter().map(|k| SetRequest::new(k, format!("value of {k}"))).collect();
    store.bulk_set(writes).await.unwrap();
    let items = store.bulk_get(keys.iter().map(GetRequest::new).collect()).await.unwrap();
    assert_eq!(items.len(), 5);
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item.key, keys[i]);
        assert_eq!(item.error, None);
        match item.item.as_ref() {
            Some(found) if i < 3 => {
                assert_eq!(found.data, format!("value of {}", keys[i]).into_bytes());
                assert!(found.etag.as_deref().is_some_and(|e| !e.is_empty()), "bulk get returns etags");
            }
            None if i >= 3 => {}
            other => panic!("item {i}: {other:?}"),
        }
    }
    store.bulk_delete(keys[..2].iter().map(DeleteRequest::new).collect()).await.unwrap();
    assert_eq!(value(&*store, &keys[0]).await, None);
    assert_eq!(value(&*store, &keys[1]).await, None);
    assert!(value(&*store, &keys[2]).await.is_some());
}

pub async fn bulk_set_reports_exactly_the_failed_key(store: Arc<dyn StateStore>) {
    let (a, b, c) = (key("bsa"), key("bsb"), key("bsc"));
    store.set(SetRequest::new(&b, "old")).await.unwrap();
    let writes =
        vec![SetRequest::new(&a, "a"), SetRequest::new(&b, "new").with_etag("999999999"), SetRequest::new(&c, "c")];
    match store.bulk_set(writes).await {
        Err(ComponentError::Bulk(failed)) => {
            assert_eq!(failed.len(), 1, "{failed:?}");
            assert_eq!(failed[0].0, b);
            assert!(matches!(failed[0].1, ComponentError::EtagMismatch { .. }), "{:?}", failed[0].1);
        }
        other => panic!("expected a bulk error for `{b}`, got {other:?}"),
    }
    assert_eq!(value(&*store, &a).await.as_deref(), Some(&b"a"[..]));
    assert_eq!(value(&*store, &b).await.as_deref(), Some(&b"old"[..]));
    assert_eq!(value(&*store, &c).await.as_deref(), Some(&b"c"[..]));
}

pub async fn etag_rules(store: Arc<dyn StateStore>) {
    let k = key("etag");
    store.set(SetRequest::new(&k, "one")).await.unwrap();
    let first = etag(&*store, &k).await;
    assert!(!first.is_empty());

    // Right ETag: accepted, and the ETag changes.
    store.set(SetRequest::new(&k, "two").with_etag(&first)).await.unwrap();
    let second = etag(&*store, &k).await;
    assert_ne!(first, second);

    // Stale ETag: mismatch, value unchanged.
    let err = store.set(SetRequest::new(&k, "three").with_etag(&first)).await.unwrap_err();
    assert!(matches!(&err, ComponentError::EtagMismatch { key, .. } if *key == k), "{err:?}");
    assert_eq!(value(&*store, &k).await.as_deref(), Some(&b"two"[..]));

    // Garbage ETag: invalid, not mismatch.
    let err = store.set(SetRequest::new(&k, "four").with_etag("not-an-etag")).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagInvalid { .. }), "{err:?}");

    // ETag on a key that does not exist: mismatch.
    let err = store.set(SetRequest::new(key("etag-new"), "x").with_etag(&second)).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagMismatch { .. }), "{err:?}");

    // Delete with a stale ETag fails; with the current one it succeeds.
    let err = store.delete(DeleteRequest { etag: Some(first), ..DeleteRequest::new(&k) }).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagMismatch { .. }), "{err:?}");
    store.delete(DeleteRequest { etag: Some(second), ..DeleteRequest::new(&k) }).await.unwrap();
    assert_eq!(value(&*store, &k).await, None);
}

pub async fn etag_race(store: Arc<dyn StateStore>) {
    let k = key("race");
    store.set(SetRequest::new(&k, "start")).await.unwrap();
    let tag = etag(&*store, &k).await;
    let writers: Vec<_> = (0..50)
        .map(|i| {
            let store = store.clone();
            let request =
                SetRequest { options: first_write(), ..SetRequest::new(&k, format!("writer {i}")).with_etag(&tag) };
            tokio::spawn(async move { store.set(request).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (i, writer) in writers.into_iter().enumerate() {
        match writer.await.unwrap() {
            Ok(()) => winners.push(i),
            Err(ComponentError::EtagMismatch { .. }) => {}
            Err(other) => panic!("writer {i}: unexpected {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one writer wins, got {winners:?}");
    assert_eq!(value(&*store, &k).await, Some(format!("writer {}", winners[0]).into_bytes()));
}

pub async fn first_write_needs_etag(store: Arc<dyn StateStore>) {
    let k = key("fw");
    let create = SetRequest { options: first_write(), ..SetRequest::new(&k, "created") };
    store.set(create.clone()).await.unwrap();
    let err = store.set(SetRequest { value: b"again".to_vec(), ..create }).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagMismatch { .. }), "{err:?}");
    assert_eq!(value(&*store, &k).await.as_deref(), Some(&b"created"[..]));
}

pub async fn last_write_wins(store: Arc<dyn StateStore>) {
    let k = key("lw");
    let last = StateOptions { concurrency: Concurrency::LastWrite, ..Default::default() };
    for v in ["a", "b", "c"] {
        store.set(SetRequest { options: last, ..SetRequest::new(&k, v) }).await.unwrap();
    }
    assert_eq!(value(&*store, &k).await.as_deref(), Some(&b"c"[..]));
}

fn with_ttl(request: SetRequest, ttl: &str) -> SetRequest {
    let mut request = request;
    request.metadata.insert(TTL_IN_SECONDS.into(), ttl.into());
    request
}

pub async fn ttl(store: Arc<dyn StateStore>) {
    let k = key("ttl");
    let err = store.set(with_ttl(SetRequest::new(&k, "x"), "foo")).await.unwrap_err();
    assert!(matches!(err, ComponentError::InvalidArgument(_)), "{err:?}");

    let before = time::OffsetDateTime::now_utc();
    store.set(with_ttl(SetRequest::new(&k, "short-lived"), "1")).await.unwrap();
    let item = store.get(GetRequest::new(&k)).await.unwrap().expect("readable at once");
    let expires = item.metadata.get(TTL_EXPIRE_TIME).expect("ttlExpireTime is reported");
    let expires = time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339).unwrap();
    let delta = expires - before;
    assert!(
        delta >= time::Duration::milliseconds(900) && delta <= time::Duration::milliseconds(1600),
        "expiry {delta} after write"
    );

    // Bulk get reports the expiry too.
    let bulk = store.bulk_get(vec![GetRequest::new(&k)]).await.unwrap();
    assert!(bulk[0].item.as_ref().unwrap().metadata.contains_key(TTL_EXPIRE_TIME));

    // Gone once expired (polled, so a slow machine only makes it slower).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while value(&*store, &k).await.is_some() {
        assert!(std::time::Instant::now() < deadline, "value did not expire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // -1 means no expiry; no TTL means no ttlExpireTime.
    store.set(with_ttl(SetRequest::new(&k, "forever"), "-1")).await.unwrap();
    let item = store.get(GetRequest::new(&k)).await.unwrap().unwrap();
    assert!(!item.metadata.contains_key(TTL_EXPIRE_TIME), "{:?}", item.metadata);
}

pub async fn transaction_order(store: Arc<dyn StateStore>) {
    let (existing, fresh, missing) = (key("tx-existing"), key("tx-fresh"), key("tx-missing"));
    store.set(SetRequest::new(&existing, "before")).await.unwrap();
    let ops = vec![
        TransactionOperation::Delete(DeleteRequest::new(&existing)),
        TransactionOperation::Set(SetRequest::new(&fresh, "first")),
        TransactionOperation::Delete(DeleteRequest::new(&fresh)),
        TransactionOperation::Set(SetRequest::new(&fresh, "second")),
        TransactionOperation::Delete(DeleteRequest::new(&missing)),
        TransactionOperation::Set(SetRequest::new(&existing, "after")),
    ];
    store.transact(ops, Metadata::new()).await.unwrap();
    assert_eq!(value(&*store, &existing).await.as_deref(), Some(&b"after"[..]));
    assert_eq!(value(&*store, &fresh).await.as_deref(), Some(&b"second"[..]));
    assert_eq!(value(&*store, &missing).await, None);
}

pub async fn transaction_rolls_back(store: Arc<dyn StateStore>) {
    let (a, b) = (key("rb-a"), key("rb-b"));
    store.set(SetRequest::new(&a, "a0")).await.unwrap();
    let ops = vec![
        TransactionOperation::Set(SetRequest::new(&a, "a1")),
        TransactionOperation::Set(SetRequest::new(&b, "b1")),
        TransactionOperation::Set(SetRequest::new(&a, "a2").with_etag("123456789")),
    ];
    let err = store.transact(ops, Metadata::new()).await.unwrap_err();
    assert!(matches!(err, ComponentError::EtagMismatch { .. }), "{err:?}");
    assert_eq!(value(&*store, &a).await.as_deref(), Some(&b"a0"[..]), "first write rolled back");
    assert_eq!(value(&*store, &b).await, None, "second write rolled back");
}

pub async fn content_type_and_metadata(store: Arc<dyn StateStore>) {
    let k = key("ct");
    let mut request = SetRequest::new(&k, r#"{"a":1}"#);
    request.content_type = Some("application/json".into());
    request.metadata.insert("contentType".into(), "application/json".into());
    store.set(request).await.unwrap();
    let item = store.get(GetRequest::new(&k)).await.unwrap().unwrap();
    assert_eq!(item.content_type.as_deref(), Some("application/json"));
    assert_eq!(item.data, br#"{"a":1}"#);
    // Without one, none comes back.
    store.set(SetRequest::new(&k, "plain")).await.unwrap();
    assert_eq!(store.get(GetRequest::new(&k)).await.unwrap().unwrap().content_type, None);
}

pub async fn binary_values(store: Arc<dyn StateStore>) {
    let k = key("bin");
    let all_bytes: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
    store.set(SetRequest::new(&k, all_bytes.clone())).await.unwrap();
    assert_eq!(value(&*store, &k).await, Some(all_bytes));
    store.set(SetRequest::new(&k, vec![0x01])).await.unwrap();
    assert_eq!(value(&*store, &k).await, Some(vec![0x01]));
}

pub async fn one_mib_values(store: Arc<dyn StateStore>) {
    let k = key("big");
    let big: Vec<u8> = (0..1 << 20).map(|i: u32| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    store.set(SetRequest::new(&k, big.clone())).await.unwrap();
    assert!(value(&*store, &k).await == Some(big), "1 MiB value round-trips");
}

pub async fn unicode_keys(store: Arc<dyn StateStore>) {
    let keys = ["ключ", "键/値", "emoji-🔑", "spaces and\ttabs", "a||b", "ǅ-\u{301}"];
    let mut seen = HashSet::new();
    for (i, k) in keys.iter().enumerate() {
        let k = format!("{k}-{}", uuid_like());
        store.set(SetRequest::new(&k, format!("v{i}"))).await.unwrap();
        seen.insert(k);
    }
    for (i, k) in seen.iter().enumerate() {
        assert!(value(&*store, k).await.is_some(), "key {i} {k:?} reads back");
    }
}

/// Runs every state behaviour against the store made by `$make` (an async
/// expression giving something that derefs to the store's `Arc`).
macro_rules! state_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            state_suite!(@tests $make;
                ping_and_features, set_get_delete, missing_key, bulk, bulk_set_reports_exactly_the_failed_key,
                etag_rules, etag_race, first_write_needs_etag, last_write_wins, ttl, transaction_order,
                transaction_rolls_back, content_type_and_metadata, binary_values, one_mib_values, unicode_keys);
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

state_suite!(in_memory, crate::support::builtin_state("state.in-memory"));
state_suite!(sqlite, crate::support::builtin_state("state.sqlite"));
state_suite!(redis, crate::support::redis_state());
state_suite!(wasm, crate::support::wasm_state("wasm-state"));
state_suite!(python_wasm, crate::support::python_wasm_state());
state_suite!(js_wasm, crate::support::js_wasm_state());
state_suite!(grpc_rust, crate::support::grpc_state(crate::support::grpc::Program::Rust("state")));
state_suite!(grpc_python, crate::support::grpc_state(crate::support::grpc::Program::PythonState));
state_suite!(sdk_file_grpc, crate::support::sdk::file_state_grpc());
state_suite!(sdk_file_wasm, crate::support::sdk::file_state_wasm());
