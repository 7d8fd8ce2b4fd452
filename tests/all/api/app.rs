//! The app channel with the official Dapr SDKs' app sides, real processes:
//! `plughost run --app-port P [--app-protocol grpc] -- python3 <app>` starts
//! a FastAPI app (`dapr-ext-fastapi`) or a gRPC app (`dapr-ext-grpc`), and
//! `tests/sdk/app_scenario.py` publishes with the `dapr` client SDK and reads
//! what the app saw: SUCCESS / RETRY / error / DROP answers, dead letters,
//! routing rules (declarative for the HTTP app, programmatic for gRPC),
//! scopes, a raw payload, a cron input binding, and 1,000 messages over three
//! topics. Every app kind in every component mode must give
//! `tests/sdk/app_expected.json`. Then: health checks pause and resume
//! delivery, an app restarted mid-stream loses nothing, an app that never
//! opens its port is reported, `--app-max-concurrency` bounds the calls, and
//! `plughost run -- <command>` passes the environment, signals and exit
//! status.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::TOKEN;
use crate::support::sidecar::{self, Components, RunningSidecar, sdk_script};

#[derive(Clone, Copy)]
enum AppKind {
    Http,
    Grpc,
}

impl AppKind {
    fn app_id(self) -> &'static str {
        match self {
            AppKind::Http => "app-http",
            AppKind::Grpc => "app-grpc",
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            AppKind::Http => "http",
            AppKind::Grpc => "grpc",
        }
    }

    fn script(self) -> PathBuf {
        sdk_script(match self {
            AppKind::Http => "app_fastapi.py",
            AppKind::Grpc => "app_grpc.py",
        })
    }
}

/// A port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Adds to the components folder: a cron input binding `tick` (every
/// second) and two declarative subscriptions, one with routing rules scoped
/// to the HTTP app and one scoped to another app.
fn add_app_documents(dir: &Path, pubsub: &str) {
    let yaml = format!(
        r#"apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: tick
spec:
  type: bindings.cron
  version: v1
  metadata:
    - name: schedule
      value: "@every 1s"
---
apiVersion: dapr.io/v2alpha1
kind: Subscription
metadata:
  name: stock
spec:
  pubsubname: {pubsub}
  topic: stock
  routes:
    rules:
      - match: 'event.data.kind == "restock"'
        path: /restock
    default: /stock
scopes: [app-http]
---
apiVersion: dapr.io/v1alpha1
kind: Subscription
metadata:
  name: hidden
spec:
  pubsubname: {pubsub}
  topic: hidden
  route: /hidden
scopes: [someone-else]
"#
    );
    std::fs::write(dir.join("app.yaml"), yaml).unwrap();
}

/// `plughost run` with the app as its child; returns the sidecar and the
/// app's record file.
fn start_with_app(components: &Components, kind: AppKind, extra: &[&str]) -> (RunningSidecar, PathBuf) {
    let record = components.dir.path().join(format!("{}.jsonl", kind.app_id()));
    let port = free_port().to_string();
    let record_env = format!("APP_RECORD={}", record.display());
    let pubsub_env = format!("PUBSUB={}", components.names.pubsub);
    let script = kind.script();
    let mut args = vec!["--app-id", kind.app_id(), "--app-port", &port, "--app-protocol", kind.protocol()];
    args.extend(["--api-token", TOKEN]);
    args.extend(extra);
    args.extend(["--", "env", &record_env, &pubsub_env, "python3", script.to_str().unwrap()]);
    (RunningSidecar::start(components, &args), record)
}

/// Runs `tests/sdk/<script>` with `args` against `sidecar`; its JSON output.
fn drive(sidecar: &mut RunningSidecar, script: &str, args: &[&str]) -> Value {
    let mut child = Command::new("python3")
        .arg(sdk_script(script))
        .args(args)
        .envs(sidecar.sdk_env())
        .env("DAPR_API_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running python3");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(240) {
            child.kill().ok();
            sidecar.drain_log();
            panic!("{script} did not finish within 240 s; plughost's log:\n{}", sidecar.log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    if !output.status.success() {
        sidecar.drain_log();
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("No module named") {
            "\n(a Python package is missing: ./scripts/test.sh installs components/requirements.txt)"
        } else {
            ""
        };
        panic!("{script} failed{hint}:\n{stderr}\nplughost's (and the app's) log:\n{}", sidecar.log.join("\n"));
    }
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{}", String::from_utf8_lossy(&output.stdout)))
}

fn scenario(components: Components, kind: AppKind, extra: &[&str]) {
    add_app_documents(components.dir.path(), &components.names.pubsub);
    let (mut sidecar, record) = start_with_app(&components, kind, extra);
    let result = drive(
        &mut sidecar,
        "app_scenario.py",
        &["--pubsub", &components.names.pubsub, "--record", record.to_str().unwrap()],
    );
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(sdk_script("app_expected.json")).unwrap()).unwrap();
    if result != expected {
        panic!(
            "the {} app's results differ from tests/sdk/app_expected.json:\n{}",
            kind.protocol(),
            serde_json::to_string_pretty(&result).unwrap()
        );
    }
}

#[test]
fn http_app_builtin_components() {
    scenario(sidecar::builtin(), AppKind::Http, &[]);
}

#[test]
fn http_app_wasm_components() {
    scenario(sidecar::wasm(), AppKind::Http, &[]);
}

#[test]
fn http_app_grpc_components() {
    scenario(sidecar::grpc(), AppKind::Http, &[]);
}

/// With health checks on: the gRPC app starts unhealthy and is delivered to
/// only after `AppCallbackHealthCheck/HealthCheck` answers.
#[test]
fn grpc_app_builtin_components() {
    let health = ["--enable-app-health-check", "--app-health-probe-interval", "1"];
    scenario(sidecar::builtin(), AppKind::Grpc, &health);
}

#[test]
fn grpc_app_wasm_components() {
    scenario(sidecar::wasm(), AppKind::Grpc, &[]);
}

#[test]
fn grpc_app_grpc_components() {
    scenario(sidecar::grpc(), AppKind::Grpc, &[]);
}

/// The numbers of the `orders` messages the app answered SUCCESS.
fn handled(record: &Path) -> std::collections::BTreeSet<i64> {
    let text = std::fs::read_to_string(record).unwrap_or_default();
    text.lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|r| r["topic"] == "orders" && r["outcome"] == "SUCCESS")
        .filter_map(|r| r["n"].as_i64())
        .collect()
}

fn wait_for_handled(record: &Path, count: usize, sidecar: &mut RunningSidecar) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while handled(record).len() < count {
        if Instant::now() > deadline {
            sidecar.drain_log();
            panic!("the app handled {} of {count} messages; log:\n{}", handled(record).len(), sidecar.log.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn publish_orders(sidecar: &RunningSidecar, numbers: std::ops::Range<i64>) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    let url = format!("http://{}/v1.0/publish/broker/orders", sidecar.http);
    runtime.block_on(async {
        for n in numbers {
            let body = serde_json::json!({"n": n, "act": "ok"});
            let response = client.post(&url).header("dapr-api-token", TOKEN).json(&body).send().await.unwrap();
            assert!(response.status().is_success(), "publish {n}: {}", response.status());
        }
    });
}

/// Health checks: while `/healthz` fails, nothing is delivered; when it
/// passes again, everything published meanwhile arrives.
#[test]
fn unhealthy_app_pauses_delivery_and_loses_nothing() {
    let components = sidecar::builtin();
    let flag = components.dir.path().join("unhealthy");
    let flag_env = format!("APP_UNHEALTHY={}", flag.display());
    let record = components.dir.path().join("record.jsonl");
    let record_env = format!("APP_RECORD={}", record.display());
    let port = free_port().to_string();
    let script = AppKind::Http.script();
    let args = [
        "--app-id",
        "app-http",
        "--app-port",
        &port,
        "--api-token",
        TOKEN,
        "--enable-app-health-check",
        "--app-health-probe-interval",
        "1",
        "--app-health-probe-timeout",
        "1000",
        "--app-health-threshold",
        "1",
        "--",
        "env",
        &record_env,
        &flag_env,
        "python3",
        script.to_str().unwrap(),
    ];
    let mut sidecar = RunningSidecar::start(&components, &args);
    sidecar.wait_for("app subscribed to broker/orders", Duration::from_secs(60));
    publish_orders(&sidecar, 0..5);
    wait_for_handled(&record, 5, &mut sidecar);

    // Only what is logged from now on counts (a probe may have timed out before).
    sidecar.drain_log();
    std::fs::write(&flag, "").unwrap();
    sidecar.wait_for("the app is unhealthy", Duration::from_secs(30));
    publish_orders(&sidecar, 5..25);
    // A few probe intervals: none of these may arrive while unhealthy.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(handled(&record).len(), 5, "delivered while the app was unhealthy");

    std::fs::remove_file(&flag).unwrap();
    sidecar.wait_for("the app is healthy", Duration::from_secs(30));
    wait_for_handled(&record, 25, &mut sidecar);
    assert_eq!(handled(&record), (0..25).collect());
}

/// `--app-max-concurrency 1`: one call at a time to the app, across all
/// subscriptions (three topics here, each with room for 32 in flight).
#[test]
fn max_concurrency_bounds_calls_to_the_app() {
    let components = sidecar::builtin();
    let (mut sidecar, record) = start_with_app(&components, AppKind::Http, &["--app-max-concurrency", "1"]);
    for _ in 0..3 {
        sidecar.wait_for("app subscribed to broker/load-", Duration::from_secs(60));
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = reqwest::Client::new();
    runtime.block_on(async {
        for n in 0..30 {
            let url = format!("http://{}/v1.0/publish/broker/load-{}", sidecar.http, ["a", "b", "c"][n % 3]);
            let body = serde_json::json!({"n": n, "act": "slow"});
            let response = client.post(&url).header("dapr-api-token", TOKEN).json(&body).send().await.unwrap();
            assert!(response.status().is_success(), "publish {n}: {}", response.status());
        }
    });
    let slow = |record: &Path| -> Vec<Value> {
        let text = std::fs::read_to_string(record).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()).filter(|r| r["at_once"].is_u64()).collect()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while slow(&record).len() < 30 {
        assert!(Instant::now() < deadline, "the app handled {} of 30 slow messages", slow(&record).len());
        std::thread::sleep(Duration::from_millis(50));
    }
    let most = slow(&record).iter().filter_map(|r| r["at_once"].as_u64()).max();
    assert_eq!(most, Some(1), "the app was called more than once at a time");
}

/// The app killed and started again mid-stream: every message still arrives.
#[test]
fn app_restarted_mid_stream_loses_nothing() {
    let components = sidecar::builtin();
    let record = components.dir.path().join("record.jsonl");
    let port = free_port();
    let app = |record: &Path| {
        Command::new("python3")
            .arg(AppKind::Http.script())
            .env("APP_PORT", port.to_string())
            .env("APP_RECORD", record)
            .env("PUBSUB", "broker")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    let port_arg = port.to_string();
    let mut sidecar =
        RunningSidecar::start(&components, &["--app-id", "app-http", "--app-port", &port_arg, "--api-token", TOKEN]);
    let mut first = app(&record);
    sidecar.wait_for("app subscribed to broker/orders", Duration::from_secs(60));
    publish_orders(&sidecar, 0..300);
    wait_for_handled(&record, 20, &mut sidecar);
    first.kill().unwrap();
    first.wait().unwrap();
    let mut second = app(&record);
    wait_for_handled(&record, 300, &mut sidecar);
    assert_eq!(handled(&record), (0..300).collect());
    second.kill().ok();
    second.wait().ok();
}

/// `--app-port` of an app that never listens: plughost keeps serving and
/// says, naming the address, that nothing is delivered.
#[test]
fn app_that_never_opens_its_port_is_reported() {
    let components = sidecar::builtin();
    let port = free_port().to_string();
    let mut sidecar = RunningSidecar::start(&components, &["--app-port", &port]);
    let line = sidecar.wait_for("the app has not opened its port", Duration::from_secs(60));
    assert!(line.contains(&format!("127.0.0.1:{port}")) && line.contains("--app-port"), "{line}");
}

/// `plughost run -- <command>`: the app gets the sidecar's environment,
/// plughost exits with the app's status, and SIGTERM reaches the app.
#[test]
fn run_starts_the_app_and_exits_with_its_status() {
    let components = sidecar::builtin();
    let check = "import os, sys; e = os.environ; \
                 ok = e['APP_ID'] == 'envapp' and e['APP_PORT'] == '1' and e['DAPR_API_TOKEN'] == 'tok' \
                 and int(e['DAPR_GRPC_PORT']) > 0 and int(e['DAPR_HTTP_PORT']) > 0; sys.exit(7 if ok else 1)";
    let status = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .env("DAPR_COMPONENTS_SOCKETS_FOLDER", "/nonexistent/plughost-test-sockets")
        .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", "0", "--app-id", "envapp", "--app-port", "1"])
        .args(["--api-token", "tok", "--data-dir"])
        .arg(components.dir.path().join("data"))
        .args(["--components"])
        .arg(components.dir.path())
        .args(["--", "python3", "-c", check])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(7), "the app's exit status, and its environment");

    // SIGTERM to plughost goes to the app (here `sleep`, which dies of it: 128 + 15).
    let mut sidecar = RunningSidecar::start(&components, &["--", "sleep", "60"]);
    sidecar.wait_for("started the app", Duration::from_secs(30));
    let pid = sidecar.pid().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    assert_eq!(sidecar.wait_code(Duration::from_secs(30)), Some(143));

    let refused = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(["run", "--app-port", "1", "--app-protocol", "grpcs"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--app-protocol grpcs is not supported"));
}
