//! The official `dapr` Python SDK against `plughost run`, once per component
//! mode: `tests/sdk/scenario.py` saves, reads and deletes state with ETags (a
//! stale one fails), runs transactions, publishes and receives through a
//! streaming subscription (ack, retry, raw payload, bulk), invokes an output
//! binding and reads secrets. Every mode must give exactly the results in
//! `tests/sdk/expected.json`, so all modes give identical results.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TOKEN;
use crate::support::sidecar::{self, Components, RunningSidecar, sdk_script};

/// Runs the scenario against `components` (the sidecar started with an API
/// token, which the SDK sends from `DAPR_API_TOKEN`) and returns its output.
fn scenario(components: &Components) -> Value {
    let mut sidecar = RunningSidecar::start(components, &["--api-token", TOKEN, "--app-id", "sdk-app"]);
    let names = &components.names;
    let mut child = Command::new("python3")
        .arg(sdk_script("scenario.py"))
        .args(["--store", &names.store, "--pubsub", &names.pubsub])
        .args(["--binding", &names.binding, "--secret-store", &names.secret_store])
        .envs(sidecar.sdk_env())
        .env("DAPR_API_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(180) {
            child.kill().ok();
            panic!("the SDK scenario did not finish within 180 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        sidecar.drain_log();
        let hint = if stderr.contains("No module named 'dapr'") {
            "\n(the dapr package is missing: ./scripts/test.sh installs components/requirements.txt)"
        } else {
            ""
        };
        panic!("the SDK scenario failed{hint}:\n{stderr}\nplughost's log:\n{}", sidecar.log.join("\n"));
    }
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!("the scenario printed no JSON ({e}):\n{}\n{stderr}", String::from_utf8_lossy(&output.stdout))
    })
}

/// Checks `result` against `tests/sdk/expected.json`, and the components the
/// metadata API reported against `types`.
fn check(mut result: Value, types: &[(&str, &str)]) {
    let metadata = result.as_object_mut().unwrap().remove("metadata").expect("metadata in the output");
    assert_eq!(metadata["app_id"], "sdk-app");
    let listed: Vec<(String, String)> = serde_json::from_value(metadata["components"].clone()).unwrap();
    let expected_types: Vec<(String, String)> = types.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect();
    assert_eq!(listed, expected_types);
    let expected: Value = serde_json::from_str(&std::fs::read_to_string(sdk_script("expected.json")).unwrap()).unwrap();
    if result != expected {
        panic!(
            "the SDK scenario's results differ from tests/sdk/expected.json:\n{}",
            serde_json::to_string_pretty(&result).unwrap()
        );
    }
}

#[test]
fn builtin_components() {
    let result = scenario(&sidecar::builtin());
    let types = [
        ("broker", "pubsub.in-memory"),
        ("files", "bindings.localstorage"),
        ("store", "state.sqlite"),
        ("vault", "secretstores.local.file"),
    ];
    check(result, &types);
}

#[test]
fn wasm_components() {
    let result = scenario(&sidecar::wasm());
    let types = [
        ("broker", "pubsub.queue"),
        ("files", "bindings.blobs"),
        ("store", "state.kv"),
        ("vault", "secretstores.keys"),
    ];
    check(result, &types);
}

#[test]
fn grpc_components() {
    let result = scenario(&sidecar::grpc());
    let types = [
        ("broker", "pubsub.queue"),
        ("files", "bindings.blobs"),
        ("store", "state.kv"),
        ("vault", "secretstores.keys"),
    ];
    check(result, &types);
}
