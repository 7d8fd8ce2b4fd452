//! The secret store suite. Every fixture holds the secret `CONFORMANCE_SECRET`
//! with the value `s3cret` (for the env store, `.cargo/config.toml` sets it).

use std::sync::Arc;

use plughost::kinds::secret_store::{Secret, SecretStore};
use plughost::kinds::{ComponentError, Metadata};

pub async fn get(store: Arc<dyn SecretStore>) {
    store.ping().await.unwrap();
    let secret = store.get("CONFORMANCE_SECRET", Metadata::new()).await.unwrap();
    assert_eq!(secret, Secret::from([("CONFORMANCE_SECRET".to_owned(), "s3cret".to_owned())]));
}

pub async fn missing_key(store: Arc<dyn SecretStore>) {
    let err = store.get("NO_SUCH_SECRET_ANYWHERE", Metadata::new()).await.unwrap_err();
    assert!(matches!(&err, ComponentError::NotFound(m) if m.contains("NO_SUCH_SECRET_ANYWHERE")), "{err:?}");
}

pub async fn bulk_get(store: Arc<dyn SecretStore>) {
    let all = store.bulk_get(Metadata::new()).await.unwrap();
    assert_eq!(
        all.get("CONFORMANCE_SECRET").and_then(|s| s.get("CONFORMANCE_SECRET")).map(String::as_str),
        Some("s3cret")
    );
    for (name, secret) in &all {
        assert!(!secret.is_empty(), "secret {name} has values");
    }
}

macro_rules! secret_store_suite {
    ($name:ident, $make:expr) => {
        mod $name {
            secret_store_suite!(@tests $make; get, missing_key, bulk_get);
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

secret_store_suite!(env, crate::support::env_secrets());
secret_store_suite!(file, crate::support::file_secrets());
secret_store_suite!(wasm, crate::support::wasm_secrets());
secret_store_suite!(grpc_rust, crate::support::grpc_secrets());
