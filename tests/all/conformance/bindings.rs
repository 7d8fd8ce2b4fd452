//! Binding suites. Output bindings follow the storage contract of Dapr's
//! `bindings.localstorage` (`create` / `get` / `delete` / `list` keyed by the
//! `fileName` metadata), which every output binding fixture implements; input
//! bindings must emit events that the consumer answers.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use plughost::kinds::ComponentError;
use plughost::kinds::input_binding::InputBinding;
use plughost::kinds::output_binding::{InvokeRequest, OutputBinding};

const WAIT: Duration = Duration::from_secs(20);

pub async fn lists_operations(binding: Arc<dyn OutputBinding>) {
    binding.ping().await.unwrap();
    let ops: HashSet<String> = binding.features().await.unwrap().into_iter().collect();
    for wanted in ["create", "get", "delete", "list"] {
        assert!(ops.contains(wanted), "missing operation {wanted} in {ops:?}");
    }
}

pub async fn create_get_list_delete(binding: Arc<dyn OutputBinding>) {
    let created = binding
        .invoke(InvokeRequest::new("create", b"\x00payload\xff".to_vec()).with("fileName", "a.bin"))
        .await
        .unwrap();
    assert_eq!(created.metadata.get("fileName").map(String::as_str), Some("a.bin"));
    let got = binding.invoke(InvokeRequest::new("get", Vec::new()).with("fileName", "a.bin")).await.unwrap();
    assert_eq!(got.data, b"\x00payload\xff");

    binding.invoke(InvokeRequest::new("create", "second").with("fileName", "b.txt")).await.unwrap();
    let listed = binding.invoke(InvokeRequest::new("list", Vec::new())).await.unwrap();
    let names: Vec<String> = serde_json::from_slice(&listed.data).unwrap();
    assert_eq!(names, ["a.bin", "b.txt"]);

    binding.invoke(InvokeRequest::new("delete", Vec::new()).with("fileName", "a.bin")).await.unwrap();
    let err = binding.invoke(InvokeRequest::new("get", Vec::new()).with("fileName", "a.bin")).await.unwrap_err();
    assert!(matches!(err, ComponentError::NotFound(_)), "{err:?}");
}

pub async fn create_without_name_makes_one(binding: Arc<dyn OutputBinding>) {
    let created = binding.invoke(InvokeRequest::new("create", "anonymous")).await.unwrap();
    let name = created.metadata.get("fileName").expect("a generated name").clone();
    let got = binding.invoke(InvokeRequest::new("get", Vec::new()).with("fileName", &name)).await.unwrap();
    assert_eq!(got.data, b"anonymous");
}

pub async fn errors(binding: Arc<dyn OutputBinding>) {
    let err = binding.invoke(InvokeRequest::new("explode", Vec::new())).await.unwrap_err();
    assert!(matches!(&err, ComponentError::NotSupported(m) if m.contains("explode")), "{err:?}");
    let err =
        binding.invoke(InvokeRequest::new("delete", Vec::new()).with("fileName", "never-created")).await.unwrap_err();
    assert!(matches!(err, ComponentError::NotFound(_)), "{err:?}");
    let err = binding.invoke(InvokeRequest::new("get", Vec::new())).await.unwrap_err();
    assert!(matches!(err, ComponentError::InvalidArgument(_)), "missing fileName: {err:?}");
    for escape in ["../outside", "/etc/passwd", "a/b", ".."] {
        let err = binding.invoke(InvokeRequest::new("create", "x").with("fileName", escape)).await.unwrap_err();
        assert!(matches!(err, ComponentError::InvalidArgument(_)), "{escape}: {err:?}");
    }
}

pub async fn events_are_answered(binding: Arc<dyn InputBinding>) {
    binding.ping().await.unwrap();
    let mut events = binding.read().await.unwrap();
    let mut ids = HashSet::new();
    for i in 0..4 {
        let d = tokio::time::timeout(WAIT, events.next()).await.expect("an event in time").expect("stream open");
        assert!(ids.insert(d.item.id.clone()), "event ids are distinct");
        match i % 2 {
            0 => d.ack_with(b"handled".to_vec()),
            _ => d.nack("handler failed"), // the stream goes on after an error
        }
    }
    drop(events); // stops reading; must not disturb the binding
    binding.ping().await.unwrap();
    let mut again = binding.read().await.unwrap();
    let d = tokio::time::timeout(WAIT, again.next()).await.expect("reading again works").unwrap();
    d.ack();
}

macro_rules! binding_suite {
    ($name:ident, $make:expr; $($test:ident),*) => {
        mod $name {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $test() {
                    let fixture = $make.await;
                    super::$test(fixture.component.clone()).await;
                }
            )*
        }
    };
}

macro_rules! output_binding_suite {
    ($name:ident, $make:expr) => {
        binding_suite!($name, $make; lists_operations, create_get_list_delete, create_without_name_makes_one, errors);
    };
}

macro_rules! input_binding_suite {
    ($name:ident, $make:expr) => {
        binding_suite!($name, $make; events_are_answered);
    };
}

output_binding_suite!(localstorage, crate::support::localstorage());
input_binding_suite!(cron, crate::support::cron());
output_binding_suite!(wasm_output, crate::support::wasm_output_binding());
input_binding_suite!(wasm_input, crate::support::wasm_input_binding());
output_binding_suite!(grpc_rust_output, crate::support::grpc_output_binding());
input_binding_suite!(grpc_rust_input, crate::support::grpc_input_binding());
