//! The Python component SDK (`components/sdk/python`): its gRPC runtime over real
//! sockets, driven by a real grpcio client (`tests/wire_test.py` there): state rules
//! and Dapr's error details, reflection, instances created by Init, bad input
//! (calls before Init, unknown instance, malformed bytes, a failing Init, a bug in
//! the component) answered with a status, the other four kinds, the socket life
//! cycle. The conformance suites run the SDK's state example in both modes.

use crate::support::wasm::python;

#[test]
fn python_sdk_grpc_runtime_over_real_sockets() {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("components/sdk/python/tests/wire_test.py");
    let output = python().arg(&script).output().expect("running python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}\n{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}

/// The SDK package carries copies of `wit/` and the component protos (so it works
/// outside this repository): they must stay identical to the originals.
#[test]
fn python_sdk_ships_the_repository_wit_and_protos() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("components/sdk/python/plughost_component/_data");
    for (original, copy) in [
        (root.join("wit"), data.join("wit")),
        (root.join("proto/dapr/proto/components/v1"), data.join("proto/dapr/proto/components/v1")),
    ] {
        let mut names: Vec<_> = std::fs::read_dir(&original).unwrap().map(|e| e.unwrap().file_name()).collect();
        names.sort();
        let mut copied: Vec<_> = std::fs::read_dir(&copy).unwrap().map(|e| e.unwrap().file_name()).collect();
        copied.sort();
        assert_eq!(names, copied, "{} and {} hold different files", original.display(), copy.display());
        for name in names {
            let (a, b) = (original.join(&name), copy.join(&name));
            assert!(
                std::fs::read(&a).unwrap() == std::fs::read(&b).unwrap(),
                "{} differs from {}: copy it over (cp {} {})",
                b.display(),
                a.display(),
                a.display(),
                b.display()
            );
        }
    }
}

/// The SDK's WASM runtime for the four other kinds: the fixtures of
/// `components/sdk/python/tests/kinds.py` built with componentize-py and driven
/// through plughost (pull/ack with a redelivered nack, an input event answered,
/// an invoke and its error, secrets and a missing one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_kinds_run_in_wasm() {
    use std::time::Duration;

    use plughost::Host;
    use plughost::config::ComponentSpec;
    use plughost::kinds::output_binding::InvokeRequest;
    use plughost::kinds::pubsub::PublishRequest;
    use plughost::kinds::{ComponentError, Metadata};

    use crate::support::wasm;

    let out = wasm::target_dir();
    let classes = [("Broker", "broker"), ("Ticker", "ticker"), ("Echo", "echo"), ("Secrets", "secrets")];
    let built: Vec<_> = std::thread::scope(|scope| {
        let builds: Vec<_> = classes
            .iter()
            .map(|(class, stem)| {
                let target = format!("kinds:{class}");
                let file = out.join(format!("python-sdk-{stem}.wasm"));
                scope.spawn(move || (format!("{stem}.wasm"), wasm::python_build("sdk/python/tests", &target, file)))
            })
            .collect();
        builds.into_iter().map(|b| b.join().unwrap()).collect()
    });
    let files: Vec<(&str, std::path::PathBuf)> = built.iter().map(|(n, p)| (n.as_str(), p.clone())).collect();
    let wasm_dir = wasm::wasm_dir(&files);
    let data = tempfile::tempdir().unwrap();
    let host = Host::builder()
        .data_dir(data.path())
        .wasm_dir(wasm_dir.path())
        .component(ComponentSpec::new("broker", "pubsub.broker"))
        .component(ComponentSpec::new("ticker", "bindings.ticker"))
        .component(ComponentSpec::new("echo", "bindings.echo").with("prefix", "> "))
        .component(ComponentSpec::new("secrets", "secretstores.secrets").with("secret.db", "pw"))
        .build()
        .await
        .unwrap();
    let wait = Duration::from_secs(30);

    let pubsub = host.pubsub("broker").unwrap();
    let mut sub = pubsub.subscribe("orders", Metadata::new()).await.unwrap();
    pubsub.publish(PublishRequest::new("orders", "one")).await.unwrap();
    let first = tokio::time::timeout(wait, sub.next()).await.unwrap().unwrap();
    assert_eq!(first.item.data, b"one");
    let id = first.item.id.clone();
    first.nack("try again");
    let again = tokio::time::timeout(wait, sub.next()).await.unwrap().unwrap();
    assert_eq!((again.item.id.as_str(), again.item.data.as_slice()), (id.as_str(), &b"one"[..]), "redelivered");
    again.ack();
    let err = pubsub.publish(PublishRequest::new("forbidden", "x")).await.unwrap_err();
    assert!(matches!(err, ComponentError::NotSupported(_)), "{err:?}");

    let mut events = host.input_binding("ticker").unwrap().read().await.unwrap();
    let event = tokio::time::timeout(wait, events.next()).await.unwrap().unwrap();
    assert_eq!(event.item.data, b"tick 0");
    event.ack_with(b"handled".to_vec());

    let echo = host.output_binding("echo").unwrap();
    assert_eq!(echo.invoke(InvokeRequest::new("echo", "hi")).await.unwrap().data, b"> hi");
    let err = echo.invoke(InvokeRequest::new("nope", "")).await.unwrap_err();
    assert!(matches!(err, ComponentError::NotSupported(_)), "{err:?}");

    let secrets = host.secret_store("secrets").unwrap();
    assert_eq!(secrets.get("db", Metadata::new()).await.unwrap().get("db").map(String::as_str), Some("pw"));
    let err = secrets.get("nope", Metadata::new()).await.unwrap_err();
    assert!(matches!(err, ComponentError::NotFound(_)), "{err:?}");
    host.shutdown().await;
}
