//! The live registry under load: state `GetState` latency through the
//! sidecar's gRPC API before, during and after moving the store between
//! modes (gRPC ⇄ WASM, the SDK's `file-state`) by editing its YAML, which
//! the host watches. "During" runs from the edit until the swap is visible
//! plus 200 ms; the handover holds calls for the drain plus one `init`, so
//! its p99 is the figure to read. Every call must succeed.
//!
//! `cargo bench --bench live_move` (release; `-- --quick` for a short run).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost::proto::common as common_pb;
use plughost::proto::runtime as rt;

fn file_state_binary() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("components");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--locked", "--release", "--bins", "-p", "file-state", "--manifest-path"])
        .arg(root.join("components/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building components/file-state failed");
    target.join("release/file-state")
}

fn yaml(type_name: &str, files: &Path) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: statestore\nspec:\n  type: {type_name}\n  version: v1\n  metadata:\n  - name: file\n    value: {}\n  - name: wasm.dirs\n    value: {}\n",
        files.join("state.log").display(),
        files.display()
    )
}

fn write(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (moves, phase) = if quick { (2, Duration::from_millis(500)) } else { (6, Duration::from_secs(2)) };
    let dir = tempfile::Builder::new().prefix("ph-").tempdir_in("/tmp").unwrap();
    let (components, files, sockets, wasm_dir) =
        (dir.path().join("c"), dir.path().join("f"), dir.path().join("s"), dir.path().join("w"));
    for folder in [&components, &files, &sockets, &wasm_dir] {
        std::fs::create_dir_all(folder).unwrap();
    }
    std::fs::copy(common::guest("file-state"), wasm_dir.join("file-wasm.wasm")).unwrap();
    let socket = sockets.join("file-grpc.sock");
    let _process = Killed(
        Command::new(file_state_binary())
            .arg("--socket")
            .arg(&socket)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting file-state"),
    );
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let file = components.join("statestore.yaml");
    write(&file, &yaml("state.file-grpc", &files));
    let host = plughost::Host::builder()
        .data_dir(dir.path().join("data"))
        .components_dir(&components)
        .wasm_dir(&wasm_dir)
        .socket_dir(&sockets)
        .build()
        .await
        .expect("starting plughost");
    let config = plughost::api::ApiConfig {
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let api = plughost::api::serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
    let mut client = rt::dapr_client::DaprClient::connect(format!("http://{}", api.grpc_addr())).await.unwrap();
    let item = common_pb::StateItem { key: "k".into(), value: vec![7; 48], ..Default::default() };
    client.save_state(rt::SaveStateRequest { store_name: "statestore".into(), states: vec![item] }).await.unwrap();

    // (when the call started, how long it took), from one sequential client.
    let samples: Arc<Mutex<Vec<(Instant, Duration)>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loader = {
        let (samples, stop) = (samples.clone(), stop.clone());
        tokio::spawn(async move {
            let request =
                rt::GetStateRequest { store_name: "statestore".into(), key: "k".into(), ..Default::default() };
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let started = Instant::now();
                let got = client.get_state(request.clone()).await.expect("a call failed during the moves");
                assert_eq!(got.into_inner().data.len(), 48);
                samples.lock().unwrap().push((started, started.elapsed()));
            }
        })
    };

    let generation = || host.components().iter().find(|c| c.name == "statestore").map_or(0, |c| c.generation);
    let mut windows = Vec::new(); // (before, during, after) as time ranges
    tokio::time::sleep(phase).await;
    for n in 0..moves {
        let type_name = if n % 2 == 0 { "state.file-wasm" } else { "state.file-grpc" };
        let before_start = Instant::now() - phase;
        let edit = Instant::now();
        let expected = generation() + 1;
        write(&file, &yaml(type_name, &files));
        while generation() < expected {
            assert!(edit.elapsed() < Duration::from_secs(60), "move {n} never applied");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let swapped = Instant::now() + Duration::from_millis(200);
        tokio::time::sleep(phase + Duration::from_millis(200)).await;
        windows.push(((before_start, edit), (edit, swapped), (swapped, Instant::now())));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    loader.await.unwrap();

    let samples = samples.lock().unwrap().clone();
    let mut phases = [
        common::Samples::new("before a move"),
        common::Samples::new("during (edit → swap + 200 ms)"),
        common::Samples::new("after a move"),
    ];
    for (before, during, after) in windows {
        for (i, (from, to)) in [before, during, after].into_iter().enumerate() {
            phases[i].per_call.extend(samples.iter().filter(|(at, _)| *at >= from && *at < to).map(|(_, took)| *took));
        }
    }
    println!(
        "sidecar gRPC GetState (48 B) while statestore moves gRPC ⇄ WASM {moves} times (file-state), one sequential client, 0 failed calls:"
    );
    for p in &phases {
        p.report();
    }
    let max = phases[1].per_call.iter().max().copied().unwrap_or_default();
    println!("longest call during a move: {:.3} ms", max.as_secs_f64() * 1000.0);
    api.stop();
    api.wait().await;
    host.shutdown().await;
}
