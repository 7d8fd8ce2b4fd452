//! Load generation: open loop at a fixed rate (latency from each request's
//! intended send time, so stalls are not hidden) and closed loop for the
//! maximum rate, over N connections of either sidecar API.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use plughost::proto::runtime as rt;
use rt::dapr_client::DaprClient;
use tonic::transport::{Channel, Endpoint};

/// Which sidecar API a run goes through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Http,
    Grpc,
}

impl Api {
    /// `http` or `grpc`, as `--api` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Api::Http => "http",
            Api::Grpc => "grpc",
        }
    }
}

/// One operation of the bench.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Save,
    Publish,
}

impl Op {
    /// `get`, `save` or `publish`, as `--op` takes it and the table shows it.
    pub fn name(self) -> &'static str {
        match self {
            Op::Get => "get",
            Op::Save => "save",
            Op::Publish => "publish",
        }
    }
}

/// What to call: the operation, the component and where the API listens.
#[derive(Debug, Clone)]
pub struct Call {
    pub api: Api,
    pub op: Op,
    pub component: String,
    pub addr: SocketAddr,
}

/// Latencies (µs) and counts of one run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub latency: Histogram<u64>,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub elapsed: Duration,
}

impl Outcome {
    /// No requests yet.
    pub fn new() -> Self {
        Outcome {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds"),
            ok: 0,
            errors: 0,
            first_error: None,
            elapsed: Duration::ZERO,
        }
    }

    fn merge(&mut self, other: Outcome) {
        self.latency.add(&other.latency).expect("same histogram bounds");
        self.ok += other.ok;
        self.errors += other.errors;
        self.first_error = self.first_error.take().or(other.first_error);
    }

    /// Counts one success that took `took`.
    pub fn record_ok(&mut self, took: Duration) {
        self.ok += 1;
        self.latency.saturating_record(took.as_micros().max(1) as u64);
    }

    /// Achieved rate of successful requests.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// A percentile in milliseconds.
    pub fn ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }
}

/// The instant send times are counted from (shared with the subscriber).
pub fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// The value every save writes and every get reads: 48 bytes of JSON.
pub const VALUE: &str = "\"0123456789abcdef0123456789abcdef0123456789abc\"";

/// One connection's client, kept for the whole run (keep-alive).
enum Client {
    Http(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    Grpc(DaprClient<Channel>),
}

impl Client {
    async fn connect(api: Api, addr: SocketAddr) -> anyhow::Result<Client> {
        Ok(match api {
            Api::Http => {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (send, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
                tokio::spawn(connection);
                Client::Http(send)
            }
            Api::Grpc => {
                let channel = Endpoint::from_shared(format!("http://{addr}"))?.tcp_nodelay(true).connect().await?;
                Client::Grpc(DaprClient::new(channel))
            }
        })
    }

    /// Sends request number `n` of connection `conn`.
    async fn call(&mut self, call: &Call, conn: usize, n: u64, sent: Duration) -> anyhow::Result<()> {
        match self {
            Client::Http(send) => {
                let (method, path, body) = match call.op {
                    Op::Get => ("GET", format!("/v1.0/state/{}/bench-key", call.component), String::new()),
                    Op::Save => (
                        "POST",
                        format!("/v1.0/state/{}", call.component),
                        format!(r#"[{{"key":"bench-{conn}","value":{VALUE}}}]"#),
                    ),
                    Op::Publish => ("POST", format!("/v1.0/publish/{}/bench", call.component), event(conn, n, sent)),
                };
                let request = hyper::Request::builder()
                    .method(method)
                    .uri(path)
                    .header("host", "localhost")
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from(body)))?;
                send.ready().await?;
                let response = send.send_request(request).await?;
                let status = response.status();
                let body = response.into_body().collect().await?.to_bytes();
                anyhow::ensure!(status.is_success(), "HTTP {status}: {}", String::from_utf8_lossy(&body));
                if call.op == Op::Get {
                    anyhow::ensure!(body.len() == VALUE.len(), "got {} bytes, not the value", body.len());
                }
            }
            Client::Grpc(client) => match call.op {
                Op::Get => {
                    let request = rt::GetStateRequest {
                        store_name: call.component.clone(),
                        key: "bench-key".into(),
                        ..Default::default()
                    };
                    let data = client.get_state(request).await?.into_inner().data;
                    anyhow::ensure!(data.len() == VALUE.len(), "got {} bytes, not the value", data.len());
                }
                Op::Save => {
                    let item = plughost::proto::common::StateItem {
                        key: format!("bench-{conn}"),
                        value: VALUE.as_bytes().to_vec(),
                        ..Default::default()
                    };
                    let request = rt::SaveStateRequest { store_name: call.component.clone(), states: vec![item] };
                    client.save_state(request).await?;
                }
                Op::Publish => {
                    let request = rt::PublishEventRequest {
                        pubsub_name: call.component.clone(),
                        topic: "bench".into(),
                        data: event(conn, n, sent).into_bytes(),
                        data_content_type: "application/json".into(),
                        ..Default::default()
                    };
                    client.publish_event(request).await?;
                }
            },
        }
        Ok(())
    }
}

/// A published event: who sent it and when it was meant to leave (ns
/// since the bench started), so the subscriber can time its delivery.
fn event(conn: usize, n: u64, sent: Duration) -> String {
    format!(r#"{{"conn":{conn},"n":{n},"sent":{}}}"#, sent.as_nanos())
}

/// Open loop: `rate` requests per second in all, spread evenly over
/// `conns` connections, for `duration`. Each connection sends its requests
/// one after another (HTTP/1.1 keep-alive, or one HTTP/2 connection each);
/// a request that cannot leave on time leaves as soon as the previous one
/// returns, and its latency still counts from its intended time.
pub async fn open_loop(call: &Call, rate: u32, conns: usize, duration: Duration) -> Outcome {
    let interval = Duration::from_secs_f64(conns as f64 / f64::from(rate));
    let per_conn = (duration.as_secs_f64() / interval.as_secs_f64()).round() as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let call = Arc::new(call.clone());
    let mut tasks = Vec::new();
    for conn in 0..conns {
        let call = Arc::clone(&call);
        // Stagger the connections over one interval.
        let offset = interval.mul_f64(conn as f64 / conns as f64);
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::new();
            let mut client = match Client::connect(call.api, call.addr).await {
                Ok(client) => client,
                Err(e) => {
                    outcome.errors = per_conn;
                    outcome.first_error = Some(format!("connecting: {e:#}"));
                    return outcome;
                }
            };
            for n in 0..per_conn {
                let intended = start + offset + interval.mul_f64(n as f64);
                tokio::time::sleep_until(intended.into()).await;
                let result = client.call(&call, conn, n, intended - epoch()).await;
                record(&mut outcome, result, intended.elapsed());
            }
            outcome
        }));
    }
    let mut total = Outcome::new();
    for task in tasks {
        total.merge(task.await.expect("load task"));
    }
    total.elapsed = start.elapsed();
    total
}

/// Closed loop: every connection sends its next request as soon as the
/// previous one returns, for `duration`.
pub async fn closed_loop(call: &Call, conns: usize, duration: Duration) -> Outcome {
    let start = Instant::now();
    let call = Arc::new(call.clone());
    let mut tasks = Vec::new();
    for conn in 0..conns {
        let call = Arc::clone(&call);
        tasks.push(tokio::spawn(async move {
            let mut outcome = Outcome::new();
            let mut client = match Client::connect(call.api, call.addr).await {
                Ok(client) => client,
                Err(e) => {
                    outcome.errors = 1;
                    outcome.first_error = Some(format!("connecting: {e:#}"));
                    return outcome;
                }
            };
            let mut n = 1u64 << 40; // distinct from the open loop's numbers
            while start.elapsed() < duration {
                let sent = Instant::now();
                let result = client.call(&call, conn, n, sent - epoch()).await;
                record(&mut outcome, result, sent.elapsed());
                n += 1;
            }
            outcome
        }));
    }
    let mut total = Outcome::new();
    for task in tasks {
        total.merge(task.await.expect("load task"));
    }
    total.elapsed = start.elapsed();
    total
}

fn record(outcome: &mut Outcome, result: anyhow::Result<()>, took: Duration) {
    match result {
        Ok(()) => outcome.record_ok(took),
        Err(e) => {
            outcome.errors += 1;
            outcome.first_error.get_or_insert_with(|| format!("{e:#}"));
        }
    }
}
