//! The processes of a bench run (plughost, its gRPC components, the no-op
//! baseline), what they cost (CPU, RSS, from /proc), and the run itself:
//! every target × API × operation, one after another.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plughost::proto::runtime as rt;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;

use crate::Options;
use crate::load::{self, Api, Call, Op, Outcome};

/// A child process, killed (and reaped) when dropped.
pub struct Process {
    child: Child,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

/// CPU time (user + system) a process has used so far.
pub fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ") ".
    let fields: Vec<&str> = stat.rsplit_once(") ").map(|(_, rest)| rest.split(' ').collect()).unwrap_or_default();
    let ticks: u64 = [11, 12].iter().filter_map(|&i| fields.get(i)?.parse::<u64>().ok()).sum();
    Duration::from_secs_f64(ticks as f64 / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        let out = Command::new("getconf").arg("CLK_TCK").output().ok();
        out.and_then(|o| String::from_utf8(o.stdout).ok()?.trim().parse().ok()).unwrap_or(100.0)
    })
}

/// Resident set size in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Builds of `components/` go where the tests put them, so CI has them warm.
pub fn components_target() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from).join("components")
}

fn cargo_build(args: &[&str]) {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--locked", "--release"])
        .args(args)
        .arg("--manifest-path")
        .arg(root().join("components/Cargo.toml"))
        .arg("--target-dir")
        .arg(components_target())
        .status()
        .expect("running cargo for components/");
    assert!(status.success(), "building components/ ({args:?}) failed");
}

/// The spawned no-op server: this bench binary with [`crate::baseline::ARG`].
fn start_baseline() -> (Process, SocketAddr, SocketAddr) {
    let mut child = Command::new(std::env::current_exe().expect("current exe"))
        .arg(crate::baseline::ARG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the baseline server");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).expect("baseline ports");
    let port = |name: &str| -> u16 {
        let start = line.find(name).unwrap_or_else(|| panic!("no {name} in {line:?}")) + name.len();
        line[start..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let (http, grpc) = (port("http="), port("grpc="));
    (Process { child }, ([127, 0, 0, 1], http).into(), ([127, 0, 0, 1], grpc).into())
}

/// `plughost run` on free ports; returns it once it logged its ports, and
/// how long that took.
pub fn start_plughost(extra: &[&std::ffi::OsStr]) -> (Process, SocketAddr, SocketAddr, Duration) {
    let started = Instant::now();
    let mut child = Command::new(plughost_binary())
        .env("RUST_LOG", "info")
        .env_remove("DAPR_API_TOKEN")
        .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", "0", "--metrics-port", "0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting plughost");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut log = Vec::new();
    let line = loop {
        match lines.next() {
            Some(Ok(line)) if line.contains("plughost running") => break line,
            Some(Ok(line)) => log.push(line),
            _ => panic!("plughost exited before it was ready:\n{}", log.join("\n")),
        }
    };
    let ready = started.elapsed();
    // Keep draining stderr so plughost never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let port = |name: &str| -> u16 {
        let start = line.find(name).unwrap_or_else(|| panic!("no {name:?} in {line:?}")) + name.len();
        line[start..].split(|c: char| !c.is_ascii_digit()).next().unwrap().parse().unwrap()
    };
    let (grpc, http) = (port("gRPC API on port "), port("HTTP API on port "));
    (Process { child }, ([127, 0, 0, 1], http).into(), ([127, 0, 0, 1], grpc).into(), ready)
}

/// The plughost binary under load: this build's, or `PLUGHOST_BIN` (to
/// compare two builds with the same bench).
fn plughost_binary() -> PathBuf {
    std::env::var_os("PLUGHOST_BIN").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_plughost")), PathBuf::from)
}

fn start_component(binary: &Path, kind: &str, socket: &Path) -> Process {
    let child = Command::new(binary)
        .arg(kind)
        .arg("--socket")
        .arg(socket)
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting grpc-components");
    let started = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(started.elapsed() < Duration::from_secs(30), "{} never listened", socket.display());
        std::thread::sleep(Duration::from_millis(10));
    }
    Process { child }
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub target: &'static str,
    pub api: Api,
    pub op: Op,
    pub open: Outcome,
    pub closed: Outcome,
    /// The sidecar's CPU during the open loop, in thousandths of a core.
    pub mcpu: f64,
    /// A gRPC component's own CPU during the open loop.
    pub component_mcpu: Option<f64>,
    pub rss_mib: f64,
    /// Publish → streaming-subscriber latency of the open loop's events.
    pub delivery: Option<Outcome>,
    pub delivered_all: bool,
}

/// One thing the load is pointed at: a component of a sidecar.
struct Target {
    name: &'static str,
    component: &'static str,
    ops: &'static [Op],
    baseline: bool,
    component_pid: Option<u32>,
}

const STATE_OPS: &[Op] = &[Op::Get, Op::Save];
const PUBSUB_OPS: &[Op] = &[Op::Publish];

/// Builds the WASM guests the bench loads.
pub fn build_guests() {
    cargo_build(&["--target", "wasm32-wasip2", "-p", "wasm-state", "-p", "wasm-pubsub"]);
}

/// Runs everything; the rows come back in report order.
pub async fn run_all(options: &Options) -> Vec<RunResult> {
    load::epoch();
    cargo_build(&["-p", "grpc-components"]);
    build_guests();
    let components = components_target();
    let dir = tempfile::Builder::new().prefix("ph-load-").tempdir_in("/tmp").expect("tempdir");
    let (sockets, wasm, yaml) = (dir.path().join("s"), dir.path().join("wasm"), dir.path().join("components"));
    for d in [&sockets, &wasm, &yaml] {
        std::fs::create_dir(d).unwrap();
    }
    let binary = components.join("release/grpc-components");
    let state_svc = start_component(&binary, "state", &sockets.join("kvsvc.sock"));
    let pubsub_svc = start_component(&binary, "pubsub", &sockets.join("queuesvc.sock"));
    let guests = components.join("wasm32-wasip2/release");
    std::fs::copy(guests.join("wasm_state.wasm"), wasm.join("kv.wasm")).unwrap();
    std::fs::copy(guests.join("wasm_pubsub.wasm"), wasm.join("queue.wasm")).unwrap();
    let documents: Vec<String> = [
        ("memory", "state.in-memory"),
        ("sqlite", "state.sqlite"),
        ("wasm", "state.kv"),
        ("grpc", "state.kvsvc"),
        ("pubsub-memory", "pubsub.in-memory"),
        ("pubsub-wasm", "pubsub.queue"),
        ("pubsub-grpc", "pubsub.queuesvc"),
    ]
    .iter()
    .map(|(name, ty)| {
        format!("apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {ty}\n  version: v1\n  metadata: []\n")
    })
    .collect();
    std::fs::write(yaml.join("components.yaml"), documents.join("---\n")).unwrap();

    let (baseline, base_http, base_grpc) = start_baseline();
    let data = dir.path().join("data");
    let args: Vec<&std::ffi::OsStr> = vec![
        "--components".as_ref(),
        yaml.as_os_str(),
        "--wasm-dir".as_ref(),
        wasm.as_os_str(),
        "--sockets-dir".as_ref(),
        sockets.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let (plughost, http, grpc, _) = start_plughost(&args);

    let targets = [
        Target {
            name: "no-op baseline (hyper/tonic)",
            component: "-",
            ops: STATE_OPS,
            baseline: true,
            component_pid: None,
        },
        Target { name: "state.in-memory", component: "memory", ops: STATE_OPS, baseline: false, component_pid: None },
        Target { name: "state.sqlite", component: "sqlite", ops: STATE_OPS, baseline: false, component_pid: None },
        Target {
            name: "WASM state (wasm-state)",
            component: "wasm",
            ops: STATE_OPS,
            baseline: false,
            component_pid: None,
        },
        Target {
            name: "gRPC state (grpc-components, UDS)",
            component: "grpc",
            ops: STATE_OPS,
            baseline: false,
            component_pid: Some(state_svc.pid()),
        },
        Target {
            name: "no-op baseline (hyper/tonic)",
            component: "-",
            ops: PUBSUB_OPS,
            baseline: true,
            component_pid: None,
        },
        Target {
            name: "pubsub.in-memory",
            component: "pubsub-memory",
            ops: PUBSUB_OPS,
            baseline: false,
            component_pid: None,
        },
        Target {
            name: "WASM pub/sub (wasm-pubsub)",
            component: "pubsub-wasm",
            ops: PUBSUB_OPS,
            baseline: false,
            component_pid: None,
        },
        Target {
            name: "gRPC pub/sub (grpc-components, UDS)",
            component: "pubsub-grpc",
            ops: PUBSUB_OPS,
            baseline: false,
            component_pid: Some(pubsub_svc.pid()),
        },
    ];
    let mut results = Vec::new();
    for target in &targets {
        if options.only.as_deref().is_some_and(|only| !target.name.contains(only) && !target.baseline) {
            continue;
        }
        let pid = if target.baseline { baseline.pid() } else { plughost.pid() };
        for &op in target.ops {
            for api in [Api::Http, Api::Grpc] {
                let named = |filter: &Option<String>, name: &str| filter.as_deref().is_none_or(|f| f == name);
                if !named(&options.op, op.name()) || !named(&options.api, api.name()) {
                    continue;
                }
                let addr = match (target.baseline, api) {
                    (true, Api::Http) => base_http,
                    (true, Api::Grpc) => base_grpc,
                    (false, Api::Http) => http,
                    (false, Api::Grpc) => grpc,
                };
                let call = Call { api, op, component: target.component.to_owned(), addr };
                if op == Op::Get && !target.baseline {
                    seed(http, target.component).await;
                }
                let subscriber = match (op, target.baseline) {
                    (Op::Publish, false) => Some(Subscriber::start(grpc, target.component).await),
                    _ => None,
                };
                println!("running {} / {api:?} / {op:?} ...", target.name);
                // Warm up connections and caches, untimed.
                load::open_loop(&call, options.rate, options.conns, Duration::from_millis(500)).await;
                if let Some(s) = &subscriber {
                    s.drain_and_reset().await;
                }
                let (cpu, comp_cpu) = (cpu_time(pid), target.component_pid.map(cpu_time));
                let open = load::open_loop(&call, options.rate, options.conns, options.duration).await;
                let secs = open.elapsed.as_secs_f64();
                let mcpu = (cpu_time(pid) - cpu).as_secs_f64() / secs * 1000.0;
                let component_mcpu = target
                    .component_pid
                    .zip(comp_cpu)
                    .map(|(p, before)| (cpu_time(p) - before).as_secs_f64() / secs * 1000.0);
                let (delivery, delivered_all) = match &subscriber {
                    Some(s) => {
                        let (outcome, all) = s.collect(open.ok).await;
                        (Some(outcome), all)
                    }
                    None => (None, true),
                };
                let rss_mib = rss_mib(pid);
                let closed = load::closed_loop(&call, options.conns, options.closed_duration).await;
                if let Some(s) = subscriber {
                    s.stop().await;
                }
                let row = RunResult {
                    target: target.name,
                    api,
                    op,
                    open,
                    closed,
                    mcpu,
                    component_mcpu,
                    rss_mib,
                    delivery,
                    delivered_all,
                };
                crate::report::print_row(&row);
                results.push(row);
            }
        }
    }
    drop((plughost, baseline, state_svc, pubsub_svc));
    results.extend(defaults_row(options, dir.path()).await);
    results
}

/// Writes the value every get reads (through HTTP: the same store and key
/// prefix serve both APIs).
async fn seed(http: SocketAddr, component: &str) {
    let body = format!(r#"[{{"key":"bench-key","value":{}}}]"#, load::VALUE);
    let url = format!("http://{http}/v1.0/state/{component}");
    let response = reqwest::Client::new().post(url).body(body).send().await.expect("seeding");
    assert!(response.status().is_success(), "seeding {component}: {}", response.status());
}

/// The embedded defaults (`plughost run` with no components folder): how
/// long to ready (median of 5 starts) and RSS after a short get load on
/// `statestore` (state.sqlite).
async fn defaults_row(options: &Options, dir: &Path) -> Option<RunResult> {
    if !options.everything() {
        return None;
    }
    let data = dir.join("defaults");
    let mut starts = Vec::new();
    let mut last = None;
    for _ in 0..5 {
        let args: Vec<&std::ffi::OsStr> = vec!["--data-dir".as_ref(), data.as_os_str()];
        let (process, http, _, ready) = start_plughost(&args);
        starts.push(ready);
        last = Some((process, http));
    }
    starts.sort();
    let (process, http) = last.unwrap();
    let call = Call { api: Api::Http, op: Op::Get, component: "statestore".into(), addr: http };
    seed(http, "statestore").await;
    let cpu = cpu_time(process.pid());
    let open = load::open_loop(&call, options.rate, options.conns, options.duration.min(Duration::from_secs(10))).await;
    let mcpu = (cpu_time(process.pid()) - cpu).as_secs_f64() / open.elapsed.as_secs_f64() * 1000.0;
    let rss = rss_mib(process.pid());
    let mut closed = load::closed_loop(&call, options.conns, Duration::from_millis(1)).await;
    // The closed-loop column of this row is the start-up time instead.
    closed.elapsed = starts[starts.len() / 2];
    Some(RunResult {
        target: "embedded defaults (state.sqlite)",
        api: Api::Http,
        op: Op::Get,
        open,
        closed,
        mcpu,
        component_mcpu: None,
        rss_mib: rss,
        delivery: None,
        delivered_all: true,
    })
}

/// A streaming subscription (SubscribeTopicEventsAlpha1) on topic `bench`
/// that acks everything and times the open loop's events from their
/// intended send time to their arrival.
struct Subscriber {
    state: Arc<Mutex<Delivered>>,
    task: tokio::task::JoinHandle<()>,
}

struct Delivered {
    latency: Outcome,
    open_events: u64,
}

impl Subscriber {
    async fn start(grpc: SocketAddr, pubsub: &str) -> Subscriber {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let initial = rt::SubscribeTopicEventsRequestInitialAlpha1 {
            pubsub_name: pubsub.into(),
            topic: "bench".into(),
            ..Default::default()
        };
        tx.send(rt::SubscribeTopicEventsRequestAlpha1 {
            subscribe_topic_events_request_type: Some(Incoming::InitialRequest(initial)),
        })
        .unwrap();
        let mut client = rt::dapr_client::DaprClient::connect(format!("http://{grpc}")).await.expect("subscriber");
        let mut stream = client
            .subscribe_topic_events_alpha1(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
            .await
            .expect("subscribing")
            .into_inner();
        let state = Arc::new(Mutex::new(Delivered { latency: Outcome::new(), open_events: 0 }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok(Some(message)) = stream.message().await {
                let Some(Outgoing::EventMessage(event)) = message.subscribe_topic_events_response_type else {
                    continue;
                };
                let arrived = Instant::now();
                if let Some((n, sent)) = stamp(&event.data)
                    && n < 1 << 40
                {
                    let mut state = shared.lock().unwrap();
                    state.open_events += 1;
                    let took = arrived.saturating_duration_since(load::epoch() + sent);
                    state.latency.record_ok(took);
                }
                let processed = rt::SubscribeTopicEventsRequestProcessedAlpha1 {
                    id: event.id,
                    status: Some(rt::TopicEventResponse { status: 0 }),
                };
                let ack = Incoming::EventProcessed(processed);
                if tx
                    .send(rt::SubscribeTopicEventsRequestAlpha1 { subscribe_topic_events_request_type: Some(ack) })
                    .is_err()
                {
                    break;
                }
            }
        });
        Subscriber { state, task }
    }

    /// Waits for the warm-up's events to arrive, then forgets them.
    async fn drain_and_reset(&self) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut state = self.state.lock().unwrap();
        state.latency = Outcome::new();
        state.open_events = 0;
    }

    /// Waits (up to 30 s) until `published` open-loop events arrived.
    async fn collect(&self, published: u64) -> (Outcome, bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let done = self.state.lock().unwrap().open_events >= published;
            if done || Instant::now() > deadline {
                let state = self.state.lock().unwrap();
                return (state.latency.clone(), done);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// `(n, sent)` of a bench event, whether delivered raw or inside a
/// CloudEvent's `data`.
fn stamp(data: &[u8]) -> Option<(u64, Duration)> {
    let value: serde_json::Value = serde_json::from_slice(data).ok()?;
    let event = if value.get("sent").is_some() { &value } else { value.get("data")? };
    let n = event.get("n")?.as_u64()?;
    let sent = event.get("sent")?.as_u64()?;
    Some((n, Duration::from_nanos(sent)))
}
