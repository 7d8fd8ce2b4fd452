//! The sidecar API over the Redis built-ins, next to the embedded defaults,
//! in one run: gRPC `SaveState` / `GetState` on `state.redis` vs
//! `state.sqlite`, and `PublishEvent` on `pubsub.redis` vs
//! `pubsub.in-memory` (64 B values).
//!
//! * latency: one client, each call timed on its own, the four paths of an
//!   operation interleaved in blocks of 100 (5,000 timed calls per path after
//!   500 warm-up);
//! * throughput: 16 concurrent clients (one HTTP/2 connection each) for 3 s
//!   per path.
//!
//! Each Redis figure is followed by its ratio to the embedded default's in
//! the same run. redis-server (Debian's, `scripts/test.sh` installs it) runs
//! on a free loopback port with its defaults (no persistence), started and
//! stopped by the bench. Run: `cargo bench --bench redis_sidecar` (release);
//! `-- --quick` (CI: it only has to run) takes a few blocks and 0.5 s windows.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::Samples;
use plughost::Host;
use plughost::api::{ApiConfig, serve};
use plughost::config::ComponentSpec;
use plughost::proto::common as common_pb;
use plughost::proto::runtime as rt;
use rt::dapr_client::DaprClient;
use tonic::transport::Channel;

const BLOCK: usize = 100;
const CLIENTS: usize = 16;

/// How much to measure: the full run, or `--quick`.
#[derive(Clone, Copy)]
struct Plan {
    warmup_blocks: usize,
    blocks: usize,
    throughput_for: Duration,
}

impl Plan {
    fn from_args() -> Self {
        match std::env::args().any(|a| a == "--quick") {
            false => Self { warmup_blocks: 5, blocks: 50, throughput_for: Duration::from_secs(3) },
            true => Self { warmup_blocks: 1, blocks: 3, throughput_for: Duration::from_millis(500) },
        }
    }
}

struct RedisServer(Child);

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

fn start_redis() -> (RedisServer, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let dir = std::env::temp_dir();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (apt-get install redis-server)");
    let server = RedisServer(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (server, port)
}

/// One operation on one component through the gRPC API.
#[derive(Clone, Copy)]
enum Op {
    Set(&'static str),
    Get(&'static str),
    Publish(&'static str),
}

impl Op {
    fn name(self) -> String {
        match self {
            Op::Set(store) => format!("SaveState   {store}"),
            Op::Get(store) => format!("GetState    {store}"),
            Op::Publish(pubsub) => format!("PublishEvent {pubsub}"),
        }
    }

    async fn call(self, client: &mut DaprClient<Channel>, n: usize) {
        let value = vec![b'x'; 64];
        match self {
            Op::Set(store) => {
                let item = common_pb::StateItem { key: format!("k{}", n % 1000), value, ..Default::default() };
                let request = rt::SaveStateRequest { store_name: store.into(), states: vec![item] };
                client.save_state(request).await.unwrap();
            }
            Op::Get(store) => {
                let key = format!("k{}", n % 1000);
                let request = rt::GetStateRequest { store_name: store.into(), key, ..Default::default() };
                client.get_state(request).await.unwrap();
            }
            Op::Publish(pubsub) => {
                let request = rt::PublishEventRequest {
                    pubsub_name: pubsub.into(),
                    topic: "bench".into(),
                    data: value,
                    data_content_type: "text/plain".into(),
                    ..Default::default()
                };
                client.publish_event(request).await.unwrap();
            }
        }
    }
}

/// The Redis path and the embedded default's, interleaved by blocks; prints
/// both and the Redis/default ratios of p50 and p99.
async fn latency(client: &mut DaprClient<Channel>, plan: Plan, ops: [Op; 2]) {
    let mut samples: Vec<Samples> = ops.iter().map(|op| Samples::new(op.name())).collect();
    for block in 0..plan.warmup_blocks + plan.blocks {
        for (op, samples) in ops.iter().zip(&mut samples) {
            for i in 0..BLOCK {
                let started = Instant::now();
                op.call(client, block * BLOCK + i).await;
                if block >= plan.warmup_blocks {
                    samples.per_call.push(started.elapsed());
                }
            }
        }
    }
    samples.iter().for_each(Samples::report);
    let ratio = |q| samples[0].percentile(q).as_secs_f64() / samples[1].percentile(q).as_secs_f64();
    println!("{:<44} p50 {:.2}x  p99 {:.2}x", "  redis / embedded", ratio(0.5), ratio(0.99));
}

/// Calls per second of `op` from 16 concurrent clients.
async fn throughput(grpc: &str, plan: Plan, op: Op) -> f64 {
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        clients.push(DaprClient::connect(grpc.to_owned()).await.unwrap());
    }
    let started = Instant::now();
    let tasks = clients.into_iter().enumerate().map(|(c, mut client)| {
        tokio::spawn(async move {
            let mut calls = 0;
            while started.elapsed() < plan.throughput_for {
                op.call(&mut client, c * 100_000 + calls).await;
                calls += 1;
            }
            calls
        })
    });
    let calls: usize = futures::future::join_all(tasks).await.into_iter().map(Result::unwrap).sum();
    let rate = calls as f64 / started.elapsed().as_secs_f64();
    println!("{:<44} {CLIENTS} clients  {rate:>8.0} calls/s", op.name());
    rate
}

fn main() {
    let plan = Plan::from_args();
    let (_redis, port) = start_redis();
    let redis = format!("127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let host = Host::builder()
            .data_dir(dir.path())
            .component(ComponentSpec::new("redis", "state.redis").with("redisHost", &redis))
            .component(ComponentSpec::new("sqlite", "state.sqlite"))
            .component(
                ComponentSpec::new("streams", "pubsub.redis").with("redisHost", &redis).with("maxLenApprox", "10000"),
            )
            .component(ComponentSpec::new("memory", "pubsub.in-memory"))
            .build()
            .await
            .unwrap();
        let config = ApiConfig {
            grpc_addr: "127.0.0.1:0".parse().unwrap(),
            http_addr: "127.0.0.1:0".parse().unwrap(),
            ..ApiConfig::default()
        };
        let api = serve(host.registry().clone(), config, std::future::pending()).await.unwrap();
        let grpc = format!("http://{}", api.grpc_addr());
        let mut client = DaprClient::connect(grpc.clone()).await.unwrap();
        println!("latency, one client (64 B values):");
        let pairs = [
            [Op::Set("redis"), Op::Set("sqlite")],
            [Op::Get("redis"), Op::Get("sqlite")],
            [Op::Publish("streams"), Op::Publish("memory")],
        ];
        for pair in pairs {
            latency(&mut client, plan, pair).await;
        }
        println!("throughput:");
        for [redis, embedded] in pairs {
            let ratio = throughput(&grpc, plan, redis).await / throughput(&grpc, plan, embedded).await;
            println!("{:<44} {ratio:.2}x", "  redis / embedded");
        }
        api.stop();
        host.shutdown().await;
    });
}
