//! Dapr pluggable components over Unix sockets (plughost's gRPC *mode*):
//! components in other processes, speaking Dapr's pluggable component
//! protocol (`dapr.proto.components.v1`, generated in
//! [`proto::components`](crate::proto::components)). Not to be confused
//! with the sidecar's own gRPC API ([`crate::api`]), the other gRPC role.
//!
//! * [`GrpcLifecycle`]: `Init`, `Features`, `Ping`, close of one component,
//!   for every kind it serves, by method path (one implementation for all
//!   five services).
//! * [`discovery`]: which sockets a folder holds and what each one serves
//!   (server reflection, v1 then v1alpha), each step with a deadline.
//! * [`SocketDirectory`]: the watched socket folder; the component types it
//!   provides (`state.<socket stem>`, ...), including sockets that appear
//!   after start-up.
//! * `link`: one connection per configured component, with the
//!   `x-component-instance` header on every call, deadlines, fail-fast while
//!   the component is down, reconnection with capped backoff and `Init`
//!   replay, and a periodic `Ping` feeding the component's health.
//! * `status`: the one place a `tonic::Status` becomes a
//!   [`ComponentError`](crate::kinds::ComponentError).
//! * [`trust`]: only sockets of trusted uids, in a folder others cannot
//!   write to, never through a symbolic link; checked on every dial.
//! * `stream`: pub/sub `PullMessages` and input binding `Read` as acked
//!   [`Deliveries`](crate::kinds::Deliveries) that survive reconnections.
//!
//! The per-kind adapters live with their kinds (`GrpcStateStore` in
//! `kinds/state/grpc.rs`, ...); `component::modes` puts them on a
//! [`GrpcLifecycle`]. Nothing here imports an adapter or the registry.

pub mod discovery;
mod lifecycle;
mod link;
mod sockets;
pub(crate) mod status;
pub(crate) mod stream;
pub mod trust;

use std::time::Duration;

pub use lifecycle::GrpcLifecycle;
pub use link::{CALL_TIMEOUT_KEY, ComponentChannel, ComponentName, Link};
pub use sockets::{Provider, SocketDirectory, SocketReport};

/// The gRPC metadata header naming the configured component on every call
/// and stream, `Init` included (spec A5): the SDKs keep one instance per value.
pub const INSTANCE_HEADER: &str = "x-component-instance";

/// Timeouts and limits of gRPC mode. The defaults suit local sockets.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Dialing a socket (connect + HTTP/2 handshake).
    pub connect_timeout: Duration,
    /// Deadline of every unary call (sent as `grpc-timeout` and enforced
    /// locally, so a component that ignores it cannot hang the caller), and
    /// of opening a stream. A component may set its own with the metadata
    /// key `grpc.callTimeout` ([`CALL_TIMEOUT_KEY`]). A call past it fails
    /// with `DeadlineExceeded` and leaves the connection as it was.
    pub call_timeout: Duration,
    /// Deadline of an `Init` replayed after a reconnection (the first `Init`
    /// is bounded by the component's `initTimeout`, which is usually shorter).
    pub init_timeout: Duration,
    /// Discovery: connecting to one socket and listing its services.
    pub probe_timeout: Duration,
    /// How often each gRPC component is pinged for its health status.
    pub ping_interval: Duration,
    /// Deadline of one ping.
    pub ping_timeout: Duration,
    /// How often the socket folder is scanned for new sockets.
    pub watch_interval: Duration,
    /// Largest message either way. tonic's defaults are 4 MiB in and
    /// unlimited out; both are set explicitly on every client. 16 MiB leaves
    /// room for 1 MiB values in bulk calls, between local processes.
    pub max_message_size: usize,
    /// First delay between reconnection attempts; doubles up to
    /// [`Self::max_backoff`].
    pub min_backoff: Duration,
    /// Cap of the reconnection delay.
    pub max_backoff: Duration,
    /// Uids whose sockets are trusted besides plughost's own effective uid
    /// (see [`trust`]): a socket served by anyone else is refused on every
    /// dial.
    pub trusted_uids: Vec<u32>,
    /// Use a socket folder that others may write to (or that another user
    /// owns), with a loud warning, instead of refusing it.
    pub allow_shared_socket_dir: bool,
}

impl Default for GrpcOptions {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            call_timeout: Duration::from_secs(10),
            init_timeout: Duration::from_secs(60),
            probe_timeout: Duration::from_secs(2),
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(2),
            watch_interval: Duration::from_millis(500),
            max_message_size: 16 << 20,
            min_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            trusted_uids: Vec::new(),
            allow_shared_socket_dir: false,
        }
    }
}

/// A request carrying `message` with `timeout` as its `grpc-timeout`.
pub(crate) fn request<T>(message: T, timeout: Duration) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(timeout);
    request
}

/// Makes a generated client over a component channel with the message size
/// limit `$max` set both ways.
macro_rules! client {
    ($client:ty, $max:expr, $channel:expr) => {
        <$client>::new($channel).max_decoding_message_size($max).max_encoding_message_size($max)
    };
}
pub(crate) use client;
