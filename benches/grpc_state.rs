//! T3 of the performance guide: the host tax on the gRPC path, and T1, the
//! benefit of moving a component to WASM.
//!
//! State get/set of 64 B and 1 KiB values on `components/file-state`, a
//! state store written once with the Rust SDK (`components/sdk/rust`) that
//! keeps its data in a file, interleaved in blocks in one process so the
//! ratios come from one run:
//!
//! * `plughost`: its gRPC build (a separate process on a Unix socket)
//!   through the registry (`Arc<dyn StateStore>` → `GrpcStateStore` → link →
//!   tonic, with the `x-component-instance` interceptor, a `grpc-timeout` and
//!   a local deadline on every call);
//! * `plain tonic`: the generated tonic client on its own `unix://` channel
//!   to the same socket and the same component instance, nothing else;
//! * `wasm`: the same source built for wasm32-wasip2, in process through the
//!   registry, its file in a granted WASI directory: the same component
//!   moved from gRPC to WASM.
//!
//! Both sides run current-thread tokio runtimes (performance guide 5.5).
//! Each call is timed on its own (microsecond scale). Run:
//! `cargo bench --bench grpc_state` (release).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use plughost::config::ComponentSpec;
use plughost::kinds::state::{GetRequest, SetRequest, StateStore};
use plughost::proto::components as pb;
use tonic::transport::{Channel, Endpoint};

const BLOCK: usize = 100;
const BLOCKS: usize = 100; // per path and case: 10,000 timed calls
const WARMUP_BLOCKS: usize = 10;

/// Builds the gRPC build of `file-state` (release) like the tests do; exits
/// loudly if that fails.
fn component_binary() -> PathBuf {
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

struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn us(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1000.0
}

fn report(name: &str, samples: &mut [Duration]) -> Duration {
    samples.sort();
    println!(
        "{name:<40} n={:>6}  p50={:>8.2}us  p90={:>8.2}us  p99={:>8.2}us  min={:>8.2}us",
        samples.len(),
        us(percentile(samples, 0.5)),
        us(percentile(samples, 0.9)),
        us(percentile(samples, 0.99)),
        us(samples[0])
    );
    percentile(samples, 0.5)
}

/// The plain path: tonic's client, the header the component needs, nothing else.
struct Plain {
    client: pb::state_store_client::StateStoreClient<Channel>,
    instance: tonic::metadata::AsciiMetadataValue,
}

impl Plain {
    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut request = tonic::Request::new(message);
        request.metadata_mut().insert("x-component-instance", self.instance.clone());
        request
    }

    async fn set(&mut self, key: &str, value: &[u8]) {
        let message = pb::SetRequest { key: key.to_owned(), value: value.to_vec(), ..Default::default() };
        let request = self.request(message);
        self.client.set(request).await.unwrap();
    }

    async fn get(&mut self, key: &str) -> Vec<u8> {
        let request = self.request(pb::GetRequest { key: key.to_owned(), ..Default::default() });
        self.client.get(request).await.unwrap().into_inner().data
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let binary = component_binary();
    let dir = tempfile::Builder::new().prefix("ph-bench-").tempdir_in("/tmp").unwrap();
    let sockets = dir.path().join("s");
    std::fs::create_dir(&sockets).unwrap();
    let socket = sockets.join("bench.sock");
    let _component = Killed(
        Command::new(&binary)
            .arg("--socket")
            .arg(&socket)
            .arg("--exit-on-stdin-eof")
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting file-state"),
    );
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(&socket).is_err() {
        assert!(started.elapsed() < Duration::from_secs(20), "the component did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let wasm_dir = dir.path().join("wasm");
    std::fs::create_dir(&wasm_dir).unwrap();
    std::fs::copy(common::guest("file-state"), wasm_dir.join("logic.wasm")).unwrap();
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let file = |name: &str| files.join(name).to_str().unwrap().to_owned();
    let host = plughost::Host::builder()
        .data_dir(dir.path().join("data"))
        .socket_dir(&sockets)
        .wasm_dir(&wasm_dir)
        .component(ComponentSpec::new("bench", "state.bench").with("file", file("grpc.log")))
        .component(
            ComponentSpec::new("wasm", "state.logic")
                .with("file", file("wasm.log"))
                .with("wasm.dirs", files.to_str().unwrap()),
        )
        .build()
        .await
        .expect("starting plughost");
    let store: Arc<dyn StateStore> = host.state("bench").unwrap();
    let wasm: Arc<dyn StateStore> = host.state("wasm").unwrap();
    let channel = Endpoint::from_shared(format!("unix://{}", socket.display())).unwrap().connect().await.unwrap();
    let mut plain =
        Plain { client: pb::state_store_client::StateStoreClient::new(channel), instance: "bench".parse().unwrap() };

    println!(
        "gRPC state store over a Unix socket, per call; {} timed calls per path and case after {} warm-up, \
         interleaved in blocks of {BLOCK}",
        BLOCK * BLOCKS,
        BLOCK * WARMUP_BLOCKS
    );
    println!("client and component: current-thread tokio runtimes; file-state built with the SDK, opt-level 3\n");
    let mut table = Vec::new();
    for size in [64usize, 1024] {
        let value = vec![0xA5u8; size];
        let key = format!("key-{size}");
        store.set(SetRequest::new(&key, value.clone())).await.unwrap();
        wasm.set(SetRequest::new(&key, value.clone())).await.unwrap();
        for op in ["set", "get"] {
            let (mut ours, mut theirs, mut in_process) = (Vec::new(), Vec::new(), Vec::new());
            for block in 0..WARMUP_BLOCKS + BLOCKS {
                let keep = block >= WARMUP_BLOCKS;
                // Alternate the order, so no path always follows the same one.
                for path in if block % 2 == 0 { [0, 1, 2] } else { [2, 1, 0] } {
                    for _ in 0..BLOCK {
                        let started = Instant::now();
                        match (path, op) {
                            (0, "set") => store.set(SetRequest::new(&key, value.clone())).await.unwrap(),
                            (0, _) => {
                                std::hint::black_box(store.get(GetRequest::new(&key)).await.unwrap());
                            }
                            (1, "set") => plain.set(&key, &value).await,
                            (1, _) => {
                                std::hint::black_box(plain.get(&key).await);
                            }
                            (_, "set") => wasm.set(SetRequest::new(&key, value.clone())).await.unwrap(),
                            (_, _) => {
                                std::hint::black_box(wasm.get(GetRequest::new(&key)).await.unwrap());
                            }
                        }
                        let took = started.elapsed();
                        if keep {
                            [&mut ours, &mut theirs, &mut in_process][path].push(took);
                        }
                    }
                }
            }
            let a = report(&format!("{op} {size:>4} B  plughost (registry -> gRPC)"), &mut ours);
            let b = report(&format!("{op} {size:>4} B  plain tonic client"), &mut theirs);
            let c = report(&format!("{op} {size:>4} B  plughost (registry -> wasm)"), &mut in_process);
            let ratio = a.as_secs_f64() / b.as_secs_f64();
            let moved = a.as_secs_f64() / c.as_secs_f64();
            println!("  -> plughost / plain p50 ratio: {ratio:.2}x (target <= 1.2x)");
            println!("  -> gRPC / WASM p50 ratio: {moved:.0}x (expected >= 30x)\n");
            table.push((op, size, ours, theirs, in_process, ratio, moved));
        }
    }

    println!(
        "| op | value | plughost gRPC p50 / p90 / p99 (µs) | plain tonic p50 / p90 / p99 (µs) | plughost / plain | plughost WASM p50 / p90 / p99 (µs) | gRPC / WASM |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (op, size, ours, theirs, in_process, ratio, moved) in &table {
        let cell = |s: &Vec<Duration>| {
            format!("{:.2} / {:.2} / {:.2}", us(percentile(s, 0.5)), us(percentile(s, 0.9)), us(percentile(s, 0.99)))
        };
        println!(
            "| {op} | {size} B | {} | {} | {ratio:.2}× | {} | {moved:.0}× |",
            cell(ours),
            cell(theirs),
            cell(in_process)
        );
    }
    host.shutdown().await;
}
