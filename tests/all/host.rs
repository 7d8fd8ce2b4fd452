//! The embedding API: builder, lookups, init failures and timeouts,
//! `ignoreErrors`, secret references, persistence across restarts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use plughost::component::{Factory, Instance, Lifecycle, Mode, Status};
use plughost::config::{ComponentSpec, MetadataItem, MetadataValue};
use plughost::kinds::secret_store::FileSecretStore;
use plughost::kinds::state::{DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation};
use plughost::kinds::{ComponentError, Metadata, Result};
use plughost::{Error, Host};

/// A state store whose `init` sleeps, or fails, as told.
struct Stubborn {
    sleep: Duration,
    fail: bool,
}

#[async_trait::async_trait]
impl Lifecycle for Stubborn {
    async fn init(&self, _metadata: Metadata) -> Result<()> {
        tokio::time::sleep(self.sleep).await;
        if self.fail { Err(ComponentError::internal("backend refused the connection")) } else { Ok(()) }
    }
    async fn features(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl StateStore for Stubborn {
    async fn get(&self, _: GetRequest) -> Result<Option<StateItem>> {
        Ok(None)
    }
    async fn set(&self, _: SetRequest) -> Result<()> {
        Ok(())
    }
    async fn delete(&self, _: DeleteRequest) -> Result<()> {
        Ok(())
    }
    async fn transact(&self, _: Vec<TransactionOperation>, _: Metadata) -> Result<()> {
        Err(ComponentError::NotSupported("transactions".into()))
    }
}

fn stubborn(sleep: Duration, fail: bool) -> Factory {
    Factory::new(
        Mode::Embedded,
        "test",
        move |_| async move { Ok(Instance::state(Arc::new(Stubborn { sleep, fail }))) },
    )
}

#[tokio::test]
async fn init_timeout_stops_start_up() {
    let dir = tempfile::tempdir().unwrap();
    let spec =
        ComponentSpec { init_timeout: Duration::from_millis(200), ..ComponentSpec::new("slow", "state.stubborn") };
    let started = Instant::now();
    let result = Host::builder()
        .data_dir(dir.path())
        .factory("state.stubborn", stubborn(Duration::from_secs(60), false))
        .component(spec)
        .build()
        .await;
    match result {
        Err(Error::InitTimeout { name, after, .. }) => {
            assert_eq!(name, "slow");
            assert_eq!(after, Duration::from_millis(200));
        }
        Err(other) => panic!("expected a timeout, got {other}"),
        Ok(_) => panic!("expected a timeout, host started"),
    }
    assert!(started.elapsed() < Duration::from_secs(30), "did not wait for the hung init");
}

#[tokio::test]
async fn failed_init_names_the_component_unless_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let err = Host::builder()
        .data_dir(dir.path())
        .factory("state.stubborn", stubborn(Duration::ZERO, true))
        .component(ComponentSpec::new("broken", "state.stubborn"))
        .build()
        .await
        .err()
        .expect("init failure is fatal");
    let text = err.to_string();
    assert!(text.contains("`broken`") && text.contains("backend refused the connection"), "{text}");

    let host = Host::builder()
        .data_dir(dir.path())
        .factory("state.stubborn", stubborn(Duration::ZERO, true))
        .component(ComponentSpec { ignore_errors: true, ..ComponentSpec::new("broken", "state.stubborn") })
        .component(ComponentSpec::new("good", "state.in-memory"))
        .build()
        .await
        .expect("ignoreErrors lets the host start");
    assert!(host.state("good").is_ok());
    assert!(host.state("broken").is_err(), "a skipped component is not served");
    let broken = host.components().iter().find(|c| c.name == "broken").unwrap().clone();
    assert!(
        matches!(&broken.status, Status::Failed(reason) if reason.contains("backend refused")),
        "{:?}",
        broken.status
    );
}

/// A cron schedule past the longest duration is refused at init, naming the
/// component and the schedule, instead of overflowing (a panic in debug
/// builds, a wrapped interval in release builds).
#[tokio::test]
async fn cron_schedule_too_long_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let schedule = "@every 99999999999999999h";
    let err = Host::builder()
        .data_dir(dir.path())
        .component(ComponentSpec::new("ticker", "bindings.cron").with("schedule", schedule))
        .build()
        .await
        .err()
        .expect("the schedule is refused");
    let text = err.to_string();
    assert!(text.contains("`ticker`") && text.contains(schedule) && text.contains("too long"), "{text}");
}

#[tokio::test]
async fn unknown_type_lists_known_types() {
    let dir = tempfile::tempdir().unwrap();
    let err = Host::builder()
        .data_dir(dir.path())
        .component(ComponentSpec::new("x", "state.mongodb"))
        .build()
        .await
        .err()
        .unwrap();
    let text = err.to_string();
    assert!(text.contains("unknown type `state.mongodb`") && text.contains("state.sqlite"), "{text}");
}

#[tokio::test]
async fn duplicate_names_across_kinds_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let err = Host::builder()
        .data_dir(dir.path())
        .component(ComponentSpec::new("same", "state.in-memory"))
        .component(ComponentSpec::new("same", "pubsub.in-memory"))
        .build()
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("duplicate component name `same`"), "{err}");
}

#[tokio::test]
async fn secret_key_refs_are_resolved_from_the_named_store() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets.json");
    std::fs::write(&secrets, r#"{"db": {"file": "from-secret.db"}}"#).unwrap();
    let mut store = ComponentSpec::new("store", "state.sqlite");
    store.secret_store = Some("vault".into());
    store.metadata.push(MetadataItem {
        name: "connectionString".into(),
        value: MetadataValue::SecretRef { secret: "db:file".into(), key: "db:file".into() },
    });
    let host = Host::builder()
        .data_dir(dir.path().join("data"))
        .component(store) // listed first: secret stores still start first
        .component(
            ComponentSpec::new("vault", "secretstores.local.file").with("secretsFile", secrets.to_str().unwrap()),
        )
        .build()
        .await
        .unwrap();
    host.state("store").unwrap().set(SetRequest::new("k", "v")).await.unwrap();
    assert!(dir.path().join("data/from-secret.db").exists(), "the connection string came from the secret");

    let mut missing = ComponentSpec::new("other", "state.sqlite");
    missing.metadata.push(MetadataItem {
        name: "password".into(),
        value: MetadataValue::SecretRef { secret: "x".into(), key: "x".into() },
    });
    let err = Host::builder().data_dir(dir.path()).component(missing).build().await.err().unwrap();
    assert!(err.to_string().contains("no auth.secretStore"), "{err}");
}

#[tokio::test]
async fn embedded_defaults_persist_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder().data_dir(dir.path()).embedded_defaults().build().await.unwrap();
    let components = host.components();
    let names: Vec<_> = components.iter().map(|c| (c.name.as_str(), c.type_name.as_str())).collect();
    assert_eq!(names, [("statestore", "state.sqlite"), ("pubsub", "pubsub.in-memory")]);
    let store = host.state("statestore").unwrap();
    store.set(SetRequest::new("survivor", "still here")).await.unwrap();
    let etag = store.get(GetRequest::new("survivor")).await.unwrap().unwrap().etag.unwrap();
    store.set(SetRequest::new("gone", "x")).await.unwrap();
    store.delete(DeleteRequest::new("gone")).await.unwrap();
    drop(store);
    host.shutdown().await;

    let host = Host::builder().data_dir(dir.path()).embedded_defaults().build().await.unwrap();
    let store = host.state("statestore").unwrap();
    let item = store.get(GetRequest::new("survivor")).await.unwrap().expect("written before the restart");
    assert_eq!(item.data, b"still here");
    assert_eq!(item.etag.as_deref(), Some(etag.as_str()), "ETags survive too");
    // ETags are never reissued after a restart.
    store.set(SetRequest::new("fresh", "y")).await.unwrap();
    let fresh = store.get(GetRequest::new("fresh")).await.unwrap().unwrap().etag.unwrap();
    assert!(fresh.parse::<u64>().unwrap() > etag.parse::<u64>().unwrap() + 1, "{fresh} vs {etag}");
    host.shutdown().await;
}

#[tokio::test]
async fn file_secret_store_flattens_and_reports_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, crate::support::SECRETS_JSON).unwrap();
    use plughost::kinds::secret_store::SecretStore;
    let store = FileSecretStore::new();
    store.init(Metadata::from([("secretsFile".into(), path.to_str().unwrap().into())])).await.unwrap();
    assert_eq!(store.get("db:password", Metadata::new()).await.unwrap()["db:password"], "pw");
    assert_eq!(store.get("db:port", Metadata::new()).await.unwrap()["db:port"], "5432");

    let multi = FileSecretStore::new();
    let metadata = Metadata::from([
        ("secretsFile".into(), path.to_str().unwrap().into()),
        ("multiValued".into(), "true".into()),
        ("nestedSeparator".into(), ".".into()),
    ]);
    multi.init(metadata).await.unwrap();
    let db = multi.get("db", Metadata::new()).await.unwrap();
    assert_eq!((db["password"].as_str(), db["port"].as_str()), ("pw", "5432"));

    std::fs::write(&path, "{\n  \"a\": 1,\n  oops\n}").unwrap();
    let err = FileSecretStore::new()
        .init(Metadata::from([("secretsFile".into(), path.to_str().unwrap().into())]))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("line 3"), "{err}");
}

#[tokio::test]
async fn shutdown_ends_builtin_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let host = Host::builder().data_dir(dir.path()).embedded_defaults().build().await.unwrap();
    let mut messages = host.pubsub("pubsub").unwrap().subscribe("t", Metadata::new()).await.unwrap();
    host.shutdown().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), messages.next()).await.expect("the subscription ends");
    assert!(ended.is_none());
}
