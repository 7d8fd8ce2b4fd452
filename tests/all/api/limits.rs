//! What one client can hold on the sidecar API (checklist 44, 45, 52, 58):
//! HTTP/2 stream limits on both APIs, half-sent headers, bodies and gRPC
//! messages, oversized headers, `TCP_NODELAY` on accepted connections, and
//! the small contract gaps (oversized gRPC answers, an empty topic, a key
//! that is not UTF-8). Raw sockets speak HTTP/1.1 and HTTP/2 frames where a
//! well-behaved client library would not misbehave on purpose.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use plughost::proto::common;
use plughost::proto::runtime as rt;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tonic::Code;

use super::Served;

/// A raw HTTP/2 connection (prior knowledge, no TLS).
struct H2 {
    stream: TcpStream,
}

/// One frame: type, flags, stream id, payload.
type Frame = (u8, u8, u32, Vec<u8>);

const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const GOAWAY: u8 = 7;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

impl H2 {
    /// Connects and sends the preface and empty SETTINGS.
    async fn connect(addr: SocketAddr) -> Self {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n").await.unwrap();
        let mut h2 = Self { stream };
        h2.send(SETTINGS, 0, 0, &[]).await;
        h2
    }

    async fn send(&mut self, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
        self.stream.write_all(&frame(kind, flags, stream, payload)).await.unwrap();
    }

    /// The next frame, or `None` at EOF or after `limit`.
    async fn read(&mut self, limit: Duration) -> Option<Frame> {
        let read = async {
            let mut head = [0u8; 9];
            self.stream.read_exact(&mut head).await.ok()?;
            let len = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0; len];
            self.stream.read_exact(&mut payload).await.ok()?;
            let id = u32::from_be_bytes([head[5], head[6], head[7], head[8]]) & 0x7fff_ffff;
            Some((head[3], head[4], id, payload))
        };
        tokio::time::timeout(limit, read).await.ok().flatten()
    }

    /// Reads until `wanted` matches a frame; `None` if the connection ends or
    /// `limit` passes first.
    async fn until(&mut self, limit: Duration, wanted: impl Fn(&Frame) -> bool) -> Option<Frame> {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let frame = self.read(left).await?;
            if wanted(&frame) {
                return Some(frame);
            }
        }
    }

    /// The server's first SETTINGS, as (id, value) pairs.
    async fn server_settings(&mut self) -> Vec<(u16, u32)> {
        let (_, _, _, payload) = self
            .until(Duration::from_secs(10), |(kind, flags, ..)| *kind == SETTINGS && flags & 1 == 0)
            .await
            .expect("the server's SETTINGS");
        payload
            .chunks(6)
            .map(|c| (u16::from_be_bytes([c[0], c[1]]), u32::from_be_bytes([c[2], c[3], c[4], c[5]])))
            .collect()
    }

    /// Opens stream `id` with a gRPC `GetState` request's headers, no body.
    async fn open_get_state(&mut self, id: u32) {
        self.send(HEADERS, END_HEADERS, id, &grpc_headers("/dapr.proto.runtime.v1.Dapr/GetState")).await;
    }
}

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len()).unwrap().to_be_bytes();
    let mut bytes = vec![len[1], len[2], len[3], kind, flags];
    bytes.extend_from_slice(&stream.to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// HPACK "literal without indexing, new name" for every header: no table.
fn grpc_headers(path: &str) -> Vec<u8> {
    let mut block = Vec::new();
    for (name, value) in [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ] {
        block.push(0);
        for text in [name, value] {
            block.push(u8::try_from(text.len()).unwrap());
            block.extend_from_slice(text.as_bytes());
        }
    }
    block
}

const MAX_CONCURRENT_STREAMS: u16 = 0x3;
const MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// Both APIs advertise a stream limit and a header list limit, and the gRPC
/// API refuses the stream beyond it (before: no limit was advertised, and a
/// client holding unfinished streams grew the process to 700 MB).
#[tokio::test]
async fn both_apis_limit_concurrent_streams_per_connection() {
    let served = Served::start(|_| {}).await;
    let limits = plughost::api::ApiLimits::default();
    for addr in [served.api.grpc_addr(), served.api.http_addr()] {
        let settings = H2::connect(addr).await.server_settings().await;
        assert!(settings.contains(&(MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams)), "{addr}: {settings:?}");
        assert!(settings.contains(&(MAX_HEADER_LIST_SIZE, limits.max_header_size)), "{addr}: {settings:?}");
    }

    let mut h2 = H2::connect(served.api.grpc_addr()).await;
    let over = 2 * limits.max_concurrent_streams + 1; // stream ids are odd: this is the limit + 1st
    for id in (1..=over).step_by(2) {
        h2.open_get_state(id).await;
    }
    let refused = h2.until(Duration::from_secs(10), |(kind, _, id, _)| *kind == RST_STREAM && *id == over).await;
    let (_, _, _, code) = refused.expect("the stream over the limit is refused");
    assert_eq!(code, 7u32.to_be_bytes(), "REFUSED_STREAM");
    // The connection itself still serves.
    let mut c = grpc_client(&served).await;
    c.get_state(get("k")).await.unwrap();
    served.stop().await;
}

/// Streams opened and reset at once ("rapid reset") close the connection
/// with `ENHANCE_YOUR_CALM` instead of costing the server work per stream.
#[tokio::test]
async fn rapid_reset_closes_the_connection() {
    let served = Served::start(|_| {}).await;
    let mut h2 = H2::connect(served.api.grpc_addr()).await;
    let mut burst = Vec::new();
    for id in (1..2000u32).step_by(2) {
        burst.extend(frame(HEADERS, END_HEADERS, id, &grpc_headers("/dapr.proto.runtime.v1.Dapr/GetState")));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes())); // CANCEL
    }
    // The server may close the connection while the burst is still going.
    let _ = h2.stream.write_all(&burst).await;
    let goaway = h2.until(Duration::from_secs(10), |(kind, ..)| *kind == GOAWAY).await;
    let (_, _, _, payload) = goaway.expect("a GOAWAY");
    assert_eq!(payload[4..8], 0xbu32.to_be_bytes(), "ENHANCE_YOUR_CALM");
    let mut c = grpc_client(&served).await;
    c.get_state(get("k")).await.unwrap();
    served.stop().await;
}

/// A gRPC request message that never arrives whole is answered (the stream
/// ends) after the body read timeout, instead of holding its buffer forever.
#[tokio::test]
async fn a_grpc_message_that_never_arrives_whole_times_out() {
    let served = Served::start(|c| c.limits.body_read_timeout = Duration::from_millis(500)).await;
    let mut h2 = H2::connect(served.api.grpc_addr()).await;
    for (id, data) in [(1u32, &[][..]), (3, &[0, 0, 0, 4, 0, b'x'][..])] {
        // Stream 1: headers only; stream 3: 1 byte of a 1024-byte message.
        h2.open_get_state(id).await;
        if !data.is_empty() {
            h2.send(DATA, 0, id, data).await;
        }
    }
    let started = Instant::now();
    let mut ended = Vec::new();
    while ended.len() < 2 {
        let end = h2.until(Duration::from_secs(10), |(kind, flags, id, _)| {
            *id != 0 && !ended.contains(id) && (*kind == RST_STREAM || (*kind == HEADERS && flags & END_STREAM != 0))
        });
        let (_, _, id, _) = end.await.unwrap_or_else(|| panic!("streams still open after 10 s: ended {ended:?}"));
        ended.push(id);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    served.stop().await;
}

async fn raw_http(addr: SocketAddr, request: &[u8], limit: Duration) -> (String, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(limit, stream.read_to_end(&mut answer)).await.is_ok();
    (String::from_utf8_lossy(&answer).into_owned(), closed)
}

/// An HTTP/1 client that sends half its headers, or half its body, loses its
/// connection after the read timeout (before: it kept it forever).
#[tokio::test]
async fn half_sent_http_requests_are_cut_off() {
    let served = Served::start(|c| {
        c.limits.header_read_timeout = Duration::from_millis(500);
        c.limits.body_read_timeout = Duration::from_millis(500);
    })
    .await;
    let addr = served.api.http_addr();
    let (answer, closed) = raw_http(addr, b"GET /v1.0/healthz HTTP/1.1\r\nhost: x\r\n", Duration::from_secs(5)).await;
    assert!(closed, "half-sent headers: the connection is still open after 5 s ({answer:?})");

    let half_body = b"POST /v1.0/state/store HTTP/1.1\r\nhost: x\r\ncontent-length: 100\r\n\r\n[{\"key\":";
    let (answer, closed) = raw_http(addr, half_body, Duration::from_secs(5)).await;
    assert!(closed, "half-sent body: the connection is still open after 5 s ({answer:?})");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("ERR_MALFORMED_REQUEST"), "{answer}");

    // An idle keep-alive connection is closed too, a complete request served.
    let (answer, closed) =
        raw_http(addr, b"GET /v1.0/healthz HTTP/1.1\r\nhost: x\r\n\r\n", Duration::from_secs(5)).await;
    assert!(closed && answer.starts_with("HTTP/1.1 204"), "{answer}");
    served.stop().await;
}

/// Headers over the limit: 431 over HTTP, an error over gRPC; both servers
/// keep serving.
#[tokio::test]
async fn oversized_headers_are_refused() {
    let served = Served::start(|_| {}).await;
    let big = "x".repeat(plughost::api::ApiLimits::default().max_header_size as usize + 1024);
    let http = reqwest::Client::new();
    let url = format!("{}/v1.0/healthz", served.http());
    let refused = http.get(&url).header("x-big", &big).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(http.get(&url).send().await.unwrap().status(), StatusCode::NO_CONTENT);

    let mut c = grpc_client(&served).await;
    let mut request = tonic::Request::new(get("k"));
    request.metadata_mut().insert("x-big", big.parse().unwrap());
    assert!(c.get_state(request).await.is_err(), "metadata over the limit is refused");
    let mut c = grpc_client(&served).await;
    c.get_state(get("k")).await.unwrap();
    served.stop().await;
}

/// Every accepted connection of both APIs has `TCP_NODELAY` (checked on the
/// server's own socket, in this process). Without it, Nagle held the end of
/// every small gRPC answer until the client's delayed ACK: ~40 ms per call.
#[tokio::test]
async fn accepted_connections_have_tcp_nodelay() {
    let served = Served::start(|_| {}).await;
    for addr in [served.api.grpc_addr(), served.api.http_addr()] {
        let mut h2 = H2::connect(addr).await;
        h2.server_settings().await; // accepted and served
        let client = h2.stream.local_addr().unwrap();
        assert_eq!(server_side_nodelay(addr, client), Some(true), "{addr}");
    }
    served.stop().await;
}

/// `TCP_NODELAY` of this process's socket bound to `local` and connected to
/// `peer`, found among its open file descriptors.
fn server_side_nodelay(local: SocketAddr, peer: SocketAddr) -> Option<bool> {
    use std::os::fd::FromRawFd as _;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let is_socket = std::fs::read_link(entry.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:"));
        let Some(fd) = entry.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else { continue };
        if !is_socket {
            continue;
        }
        // Borrowed only to ask the kernel about it: never closed here.
        let socket = std::mem::ManuallyDrop::new(unsafe { std::net::TcpStream::from_raw_fd(fd) });
        if socket.local_addr().ok() == Some(local) && socket.peer_addr().ok() == Some(peer) {
            return socket.nodelay().ok();
        }
    }
    None
}

/// A behaviour check of the same: sequential 1 KB `GetState`s over one
/// connection stay far below the delayed-ACK timer (50 calls at ~40 ms each
/// took 2 s; a generous bound of half that).
#[tokio::test]
async fn sequential_grpc_gets_do_not_stall() {
    let served = Served::start(|_| {}).await;
    let mut c = grpc_client(&served).await;
    let value = vec![b'v'; 1024];
    let item = common::StateItem { key: "k".into(), value: value.clone(), ..Default::default() };
    c.save_state(rt::SaveStateRequest { store_name: "store".into(), states: vec![item] }).await.unwrap();
    c.get_state(get("k")).await.unwrap(); // warm
    let started = Instant::now();
    for _ in 0..50 {
        assert_eq!(c.get_state(get("k")).await.unwrap().into_inner().data, value);
    }
    let took = started.elapsed();
    assert!(took < Duration::from_secs(1), "50 sequential GetState took {took:?}");
    served.stop().await;
}

type Client = rt::dapr_client::DaprClient<tonic::transport::Channel>;

async fn grpc_client(served: &Served) -> Client {
    let channel = tonic::transport::Channel::from_shared(served.grpc()).unwrap().connect().await.unwrap();
    rt::dapr_client::DaprClient::new(channel)
}

fn get(key: &str) -> rt::GetStateRequest {
    rt::GetStateRequest { store_name: "store".into(), key: key.into(), ..Default::default() }
}

/// An answer over the message limit is `RESOURCE_EXHAUSTED` (tonic says
/// `OUT_OF_RANGE`), and the connection keeps serving.
#[tokio::test]
async fn a_grpc_answer_over_the_limit_is_resource_exhausted() {
    let served = Served::start(|c| c.max_body = 4096).await;
    let mut c = grpc_client(&served).await;
    let keys: Vec<String> = (0..4).map(|i| format!("k{i}")).collect();
    for key in &keys {
        let item = common::StateItem { key: key.clone(), value: vec![b'v'; 2000], ..Default::default() };
        c.save_state(rt::SaveStateRequest { store_name: "store".into(), states: vec![item] }).await.unwrap();
    }
    let bulk = rt::GetBulkStateRequest { store_name: "store".into(), keys, ..Default::default() };
    let refused = c.get_bulk_state(bulk).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(c.get_state(get("k0")).await.unwrap().into_inner().data.len(), 2000);
    served.stop().await;
}

/// Dapr's JSON errors where axum answered a bare 404 or plain text.
#[tokio::test]
async fn empty_topics_and_undecodable_keys_get_json_errors() {
    let served = Served::start(|_| {}).await;
    let http = reqwest::Client::new();
    for path in ["/v1.0/publish/pubsub/", "/v1.0/publish/bulk/pubsub/"] {
        let response = http.post(format!("{}{path}", served.http())).body("{}").send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert_eq!((status, body["errorCode"].as_str()), (StatusCode::NOT_FOUND, Some("ERR_TOPIC_NAME_EMPTY")));
    }
    let response = http.post(format!("{}/v1.0/publish/nope/", served.http())).send().await.unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errorCode"], "ERR_PUBSUB_NOT_FOUND");

    for path in ["/v1.0/state/store/%FF%FE", "/v1.0/secrets/vault/%C3%28"] {
        let response = http.get(format!("{}{path}", served.http())).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap_or_else(|e| panic!("{path}: not JSON: {e}"));
        assert_eq!((status, body["errorCode"].as_str()), (StatusCode::BAD_REQUEST, Some("ERR_MALFORMED_REQUEST")));
        assert!(body["message"].as_str().unwrap().contains("invalid"), "{body}");
    }
    served.stop().await;
}

/// One `GET /v1.0/healthz` on a keep-alive connection: its status line, or
/// `None` if nothing came within `limit`.
async fn healthz(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    stream.write_all(b"GET /v1.0/healthz HTTP/1.1\r\nhost: x\r\n\r\n").await.ok()?;
    let read = async {
        let mut got = Vec::new();
        let mut chunk = [0u8; 1024];
        // healthz answers 204 with no body: the head is the whole answer.
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            got.extend_from_slice(&chunk[..n]);
        }
        Some(String::from_utf8_lossy(&got).lines().next().unwrap_or_default().to_owned())
    };
    tokio::time::timeout(limit, read).await.ok().flatten()
}

/// Open file descriptors of process `pid`.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// A global cap on the sidecar API's connections (HTTP and gRPC together):
/// with `--max-api-connections 4` and four served connections, 100 more
/// connections are not accepted (plughost's file descriptors do not grow
/// with them; before, every one was accepted and held), a waiting one gets
/// no answer, a gRPC call waits too, and the served connections keep
/// working; once a served connection closes, a waiting one is served.
#[tokio::test]
async fn connections_over_the_global_cap_wait_and_the_served_ones_keep_working() {
    use crate::support::sidecar::{RunningSidecar, builtin};
    let components = builtin();
    let sidecar = RunningSidecar::start(&components, &["--max-api-connections", "4"]);
    let (http, grpc) = (sidecar.http, sidecar.grpc);
    let answer = Duration::from_secs(10);
    let mut served = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(http).await.unwrap();
        assert_eq!(healthz(&mut stream, answer).await.as_deref(), Some("HTTP/1.1 204 No Content"));
        served.push(stream);
    }
    let fds = open_fds(sidecar.pid());

    // 100: within the kernel's listen backlog (often 128), so every connect
    // completes at once (past it, connects hang), and all this stays well
    // within the 10 s after which idle served connections are closed.
    let mut waiting = Vec::new();
    for _ in 0..100 {
        waiting.push(TcpStream::connect(http).await.unwrap());
    }
    let grew = open_fds(sidecar.pid()).saturating_sub(fds);
    assert!(grew < 20, "plughost holds {grew} more descriptors for {} waiting connections", waiting.len());
    assert_eq!(
        healthz(&mut waiting[0], Duration::from_millis(500)).await,
        None,
        "a connection over the cap was served"
    );
    let mut grpc_call = tokio::spawn(async move {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{grpc}")).unwrap().connect_lazy();
        let mut client = rt::dapr_client::DaprClient::new(channel);
        client.get_metadata(rt::GetMetadataRequest::default()).await.map(|_| ())
    });
    assert!(tokio::time::timeout(Duration::from_millis(500), &mut grpc_call).await.is_err(), "gRPC was served");
    for stream in &mut served {
        assert_eq!(healthz(stream, answer).await.as_deref(), Some("HTTP/1.1 204 No Content"));
    }

    // Free every slot: the waiting connections are served in turn (the first
    // one has its request sent already), the gRPC call too.
    drop(served);
    drop(waiting.split_off(1));
    let mut first = waiting.pop().unwrap();
    let read = async {
        let mut chunk = [0u8; 256];
        let n = first.read(&mut chunk).await.unwrap();
        String::from_utf8_lossy(&chunk[..n]).lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(tokio::time::timeout(Duration::from_secs(30), read).await.unwrap(), "HTTP/1.1 204 No Content");
    tokio::time::timeout(Duration::from_secs(30), grpc_call).await.unwrap().unwrap().unwrap();
}
