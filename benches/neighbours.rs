//! Checklist 59: does a runaway WASM guest slow its neighbours?
//!
//! `plughost run` with two components: `statestore` (`state.in-memory`, a
//! healthy built-in) and `spin` (the `wasm-state-loop` guest, whose `get` of
//! `boom` spins until its deadline; 1 s deadline, one instance unless
//! `--instances N`, so one call spins at a time as in the issue). The load
//! bench's open loop (1,000 requests/s over 16 connections, latency from each
//! request's intended send time) reads `statestore` over each sidecar API,
//! first alone, then while 4 clients keep calling `spin`'s `boom` (each call
//! spins for its whole deadline and answers 504, then the client calls again).
//! The ratio of the two p90s is the figure.
//!
//! ```sh
//! cargo bench --bench neighbours --profile dev                  # this build
//! cargo bench --bench neighbours --profile dev -- --compare OLD # and another plughost binary, same run
//! ```
//!
//! Options: `--duration SECS` (per phase, default 10), `--compare PATH`,
//! `--instances N` (instances of the runaway guest: up to 4 spin at once).

#[allow(dead_code, reason = "the load bench's generator; this bench uses its open loop only")]
#[path = "load/load.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use load::{Api, Call, Op, Outcome};

/// Clients calling the runaway guest at once (the ones that find no free
/// instance wait, and their wait counts against the deadline).
const RUNAWAYS: usize = 4;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `wasm-state-loop` guest, built where the tests build it.
fn loop_guest() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let target = target.join("components");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--locked", "--release", "--target", "wasm32-wasip2", "-p", "wasm-state-loop"])
        .arg("--manifest-path")
        .arg(root().join("components/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo for components/");
    assert!(status.success(), "building wasm-state-loop failed");
    target.join("wasm32-wasip2/release/wasm_state_loop.wasm")
}

fn components(instances: usize) -> String {
    format!(
        r#"
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: statestore
spec:
  type: state.in-memory
  version: v1
---
apiVersion: dapr.io/v1alpha1
kind: Component
metadata:
  name: spin
spec:
  type: state.spin
  version: v1
  metadata:
    - name: keyPrefix
      value: none
    - name: wasm.stateless
      value: "true"
    - name: wasm.instances
      value: "{instances}"
    - name: wasm.callTimeout
      value: 1s
"#
    )
}

/// `binary run` on free ports with [`COMPONENTS`]; its HTTP and gRPC API.
fn start(binary: &Path, dir: &Path) -> (Killed, SocketAddr, SocketAddr) {
    let mut child = Command::new(binary)
        .env("RUST_LOG", "warn,plughost=info")
        .env_remove("DAPR_API_TOKEN")
        .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", "0", "--metrics-port", "0"])
        .arg("--components")
        .arg(dir.join("components"))
        .arg("--wasm-dir")
        .arg(dir.join("wasm"))
        .arg("--data-dir")
        .arg(dir.join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting plughost");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("plughost running") => break line,
            Some(Ok(_)) => {}
            _ => panic!("{} exited before it was ready", binary.display()),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let port = |name: &str| -> u16 {
        let start = line.find(name).unwrap_or_else(|| panic!("no {name:?} in {line:?}")) + name.len();
        line[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (grpc, http) = (port("gRPC API on port "), port("HTTP API on port "));
    (Killed(child), ([127, 0, 0, 1], http).into(), ([127, 0, 0, 1], grpc).into())
}

async fn http(addr: SocketAddr, method: &str, path: &str, body: &str) -> u16 {
    let stream = tokio::net::TcpStream::connect(addr).await.expect("connecting");
    let (mut send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(connection);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap();
    let response = send.send_request(request).await.expect("request");
    let status = response.status().as_u16();
    let _ = response.into_body().collect().await;
    status
}

/// Clients that call `spin`'s `boom` back to back until `stop`; counts the
/// answers (504 once the deadline hits).
fn runaways(addr: SocketAddr, stop: Arc<AtomicBool>, answered: Arc<AtomicU64>) -> Vec<tokio::task::JoinHandle<()>> {
    (0..RUNAWAYS)
        .map(|_| {
            let (stop, answered) = (stop.clone(), answered.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let status = http(addr, "GET", "/v1.0/state/spin/boom", "").await;
                    assert_eq!(status, 504, "a runaway call answered {status}, not its deadline");
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect()
}

fn cells(o: &Outcome) -> String {
    format!("{:.3} / {:.3} / {:.3}", o.ms(0.5), o.ms(0.9), o.ms(0.99))
}

async fn measure(label: &str, binary: &Path, dir: &Path, duration: Duration) -> Vec<String> {
    let (_plughost, http_addr, grpc_addr) = start(binary, dir);
    let value = load::VALUE;
    assert_eq!(
        http(http_addr, "POST", "/v1.0/state/statestore", &format!(r#"[{{"key":"bench-key","value":{value}}}]"#)).await,
        204
    );
    let mut rows = Vec::new();
    for (api, addr, name) in [(Api::Http, http_addr, "HTTP"), (Api::Grpc, grpc_addr, "gRPC")] {
        let call = Call { api, op: Op::Get, component: "statestore".into(), addr };
        // Warm-up, not counted: first connections, lazy set-up.
        load::open_loop(&call, 1000, 16, Duration::from_secs(1)).await;
        let quiet = load::open_loop(&call, 1000, 16, duration).await;
        let (stop, answered) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let spinning = runaways(http_addr, stop.clone(), answered.clone());
        tokio::time::sleep(Duration::from_millis(200)).await;
        let noisy = load::open_loop(&call, 1000, 16, duration).await;
        stop.store(true, Ordering::Relaxed);
        for task in spinning {
            task.await.expect("a runaway client");
        }
        let errors = quiet.errors + noisy.errors;
        rows.push(format!(
            "| {label} | {name} | {} | {} | {:.1}× | {} | {errors} |",
            cells(&quiet),
            cells(&noisy),
            noisy.ms(0.9) / quiet.ms(0.9),
            answered.load(Ordering::Relaxed),
        ));
        if let Some(e) = noisy.first_error.or(quiet.first_error) {
            eprintln!("{label} {name}: first error: {e}");
        }
    }
    rows
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut duration = Duration::from_secs(10);
    let mut instances = 1;
    let mut binaries = vec![("this build".to_owned(), PathBuf::from(env!("CARGO_BIN_EXE_plughost")))];
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--duration" => duration = Duration::from_secs_f64(args.next().expect("--duration SECS").parse().unwrap()),
            "--instances" => instances = args.next().expect("--instances N").parse().unwrap(),
            "--compare" => {
                let path = PathBuf::from(args.next().expect("--compare PATH"));
                binaries.insert(0, (format!("`{}`", path.display()), path));
            }
            _ => {}
        }
    }
    let dir = tempfile::tempdir().unwrap();
    for sub in ["components", "wasm", "data"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("components/all.yaml"), components(instances)).unwrap();
    std::fs::copy(loop_guest(), dir.path().join("wasm/spin.wasm")).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    println!(
        "`cargo bench --bench neighbours`: state.in-memory get, 1000 QPS over 16 connections for {duration:?} per phase \
         (open loop), alone and next to {RUNAWAYS} clients calling a guest that spins to its 1 s deadline ({instances} instance(s), so \
         {spinning} spin at once). Latencies in ms.\n",
        spinning = instances.min(RUNAWAYS)
    );
    println!(
        "| plughost | API | alone p50 / p90 / p99 | next to the runaway guest p50 / p90 / p99 | p90 ratio | runaway calls answered | errors |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (label, binary) in &binaries {
        for row in runtime.block_on(measure(label, binary, dir.path(), duration)) {
            println!("{row}");
        }
    }
}
