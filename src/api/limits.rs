//! What one client can hold on the sidecar API, on both servers.
//!
//! Without these, one local client could hold memory and connections
//! forever: unfinished HTTP/2 streams (tonic advertises no
//! `MAX_CONCURRENT_STREAMS` unless told), streams opened and reset at once
//! ("rapid reset"), HTTP/1 connections that send half a header or half a
//! body and then wait. Every accepted TCP connection also gets
//! `TCP_NODELAY`: without it, Nagle's algorithm held the second write of a
//! small gRPC answer until the client's delayed ACK (~40 ms per call).
//!
//! | limit | default | applies to |
//! |---|---|---|
//! | [`ApiLimits::max_connections`] | 512 | open connections of both APIs together (more wait in the listen backlog) |
//! | [`ApiLimits::max_concurrent_streams`] | 100 | HTTP/2 streams per connection (gRPC; HTTP when spoken over h2) |
//! | [`ApiLimits::max_pending_reset_streams`] | 20 | streams a client may reset before the server saw them |
//! | [`ApiLimits::max_local_error_reset_streams`] | 256 | streams the server may have to reset for a client's errors |
//! | [`ApiLimits::max_header_size`] | 16 KiB | one request's headers / gRPC metadata (larger: 431 or an HTTP/2 error) |
//! | [`ApiLimits::header_read_timeout`] | 10 s | receiving an HTTP/1 request's headers (and an idle keep-alive connection) |
//! | [`ApiLimits::body_read_timeout`] | 30 s | receiving a whole HTTP request body (408) or gRPC request message (`DEADLINE_EXCEEDED`) |
//! | [`ApiLimits::keepalive_interval`] | 30 s | HTTP/2 PING to an idle connection; no answer within 20 s closes it |
//!
//! The largest request body and gRPC message either way is
//! [`ApiConfig::max_body`](super::ApiConfig::max_body) (4 MiB, Dapr's
//! `--max-body-size`): a gRPC answer over it fails with `RESOURCE_EXHAUSTED`.

use std::time::Duration;

/// Per-connection limits and timeouts of the sidecar API (see the module
/// docs for what each bounds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLimits {
    /// Connections both APIs together may have open; more wait in the
    /// kernel's listen backlog until one closes (see `connections.rs`).
    /// Below the usual limit of 1024 file descriptors, which components and
    /// sockets share.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open at once (advertised as
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`; the HTTP/2 spec recommends at
    /// least 100).
    pub max_concurrent_streams: u32,
    /// Streams a client may open and reset before the server accepted them
    /// (the "rapid reset" attack); above it the connection is closed with
    /// `ENHANCE_YOUR_CALM`.
    pub max_pending_reset_streams: usize,
    /// Streams the server may reset because of a client's protocol errors
    /// before it closes the connection.
    pub max_local_error_reset_streams: usize,
    /// Largest header block of one request, in bytes (HTTP/1 read buffer
    /// and HTTP/2 `SETTINGS_MAX_HEADER_LIST_SIZE`).
    pub max_header_size: u32,
    /// Time allowed to receive an HTTP/1 request's headers; also how long
    /// an idle keep-alive connection stays open.
    pub header_read_timeout: Duration,
    /// Time allowed to receive a whole HTTP request body, or a whole gRPC
    /// request message once its first byte arrived (the first message of a
    /// call is timed from the call's start).
    pub body_read_timeout: Duration,
    /// Interval of HTTP/2 keep-alive PINGs; a connection that does not
    /// answer one within 20 s is closed.
    pub keepalive_interval: Duration,
}

/// How long an HTTP/2 keep-alive PING may stay unanswered.
pub(crate) const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            max_connections: 512,
            max_concurrent_streams: 100,
            max_pending_reset_streams: 20,
            max_local_error_reset_streams: 256,
            max_header_size: 16 << 10,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(30),
        }
    }
}
