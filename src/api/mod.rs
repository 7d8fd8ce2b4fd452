//! The Dapr-compatible sidecar API: `dapr.proto.runtime.v1.Dapr` over gRPC
//! (default port 50001) and Dapr's HTTP routes (default port 3500), serving
//! the components of a [`Registry`], so the official Dapr SDKs work against
//! `plughost run`.
//!
//! * [`sidecar`]: what both APIs do, in plughost's types (one function per
//!   call); [`grpc`] and [`http`] only translate requests and answers.
//! * [`errors`]: the one mapping from errors to gRPC codes, HTTP statuses and
//!   Dapr's `errorCode`s.
//! * `lenient`: JSON read with Go's leniency, as daprd reads it.
//! * [`state_keys`]: Dapr's `<app-id>||<key>` prefixing; [`cloudevents`]: the
//!   envelope on publish; [`auth`]: the optional `dapr-api-token`.
//! * [`limits`]: what one client may hold (streams, resets, header size,
//!   read timeouts), set on both servers with `TCP_NODELAY`.
//!
//! [`serve`] binds both listeners and returns an [`ApiHandle`]; tests bind
//! port 0 and read the addresses back. [`grpc::routes`] and
//! [`http::router`] build the servers as values.
//!
//! ```no_run
//! # async fn demo(registry: plughost::Registry) -> anyhow::Result<()> {
//! use plughost::api::{ApiConfig, serve};
//! let config = ApiConfig { app_id: "orders".into(), ..ApiConfig::default() };
//! let api = serve(registry, config, async { tokio::signal::ctrl_c().await.ok(); }).await?;
//! println!("gRPC on {}, HTTP on {}", api.grpc_addr(), api.http_addr());
//! api.wait().await;
//! # Ok(()) }
//! ```

pub mod auth;
pub mod cloudevents;
mod connections;
pub mod errors;
pub mod grpc;
pub mod http;
pub(crate) mod lenient;
pub mod limits;
pub mod sidecar;
pub mod state_keys;
pub(crate) mod subscribe;

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::Registry;
pub use limits::ApiLimits;
pub use sidecar::Sidecar;

/// Dapr's default gRPC API port.
pub const DEFAULT_GRPC_PORT: u16 = 50001;
/// Dapr's default HTTP API port.
pub const DEFAULT_HTTP_PORT: u16 = 3500;
/// Dapr's default request size limit: 4 MiB.
pub const DEFAULT_MAX_BODY: usize = 4 << 20;
/// How long [`ApiHandle::wait`] lets open calls finish after a stop.
const GRACE: Duration = Duration::from_secs(10);

/// How the sidecar API is served.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// The app id: the state key prefix, the CloudEvent `source`, the
    /// default consumer group of subscriptions.
    pub app_id: String,
    /// The namespace, for `keyPrefix: namespace` (empty: none).
    pub namespace: String,
    /// Where the gRPC API listens (port 0: any free port).
    pub grpc_addr: SocketAddr,
    /// Where the HTTP API listens (port 0: any free port).
    pub http_addr: SocketAddr,
    /// If set, every call but the health routes must carry it in
    /// `dapr-api-token`.
    pub token: Option<String>,
    /// The largest request accepted, in bytes (HTTP body, gRPC message); also
    /// the largest gRPC answer sent.
    pub max_body: usize,
    /// Streams, resets, header size and read timeouts per connection.
    pub limits: ApiLimits,
    /// The host's admin handle ([`crate::Host::ops`]): with it, the admin
    /// routes (`/v1.0-plughost/...`, see `crate::ops::admin`) act on it;
    /// without, they answer 501.
    pub admin: Option<Arc<crate::ops::Ops>>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        let loopback = IpAddr::V4(Ipv4Addr::LOCALHOST);
        Self {
            app_id: "plughost".to_owned(),
            namespace: String::new(),
            grpc_addr: SocketAddr::new(loopback, DEFAULT_GRPC_PORT),
            http_addr: SocketAddr::new(loopback, DEFAULT_HTTP_PORT),
            token: None,
            max_body: DEFAULT_MAX_BODY,
            limits: ApiLimits::default(),
            admin: None,
        }
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A listener could not be bound.
    #[error("cannot listen on {addr} for the {api} API: {source}")]
    Bind {
        /// `gRPC` or `HTTP`.
        api: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The running API servers.
pub struct ApiHandle {
    sidecar: Arc<Sidecar>,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    servers: Vec<(&'static str, tokio::task::JoinHandle<Result<(), String>>)>,
}

impl ApiHandle {
    /// Where the gRPC API listens.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// Where the HTTP API listens.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The shared sidecar state.
    pub fn sidecar(&self) -> &Arc<Sidecar> {
        &self.sidecar
    }

    /// Asks both servers to stop; [`Self::wait`] then returns.
    pub fn stop(&self) {
        self.sidecar.request_shutdown();
    }

    /// Waits until a stop is requested (the shutdown future given to
    /// [`serve`], [`Self::stop`], the `Shutdown` RPC or `POST
    /// /v1.0/shutdown`), then until both servers have finished their open
    /// calls (at most a few seconds; streaming subscriptions end at once).
    pub async fn wait(self) {
        self.sidecar.stopping().await;
        for (api, mut server) in self.servers {
            match tokio::time::timeout(GRACE, &mut server).await {
                Ok(Ok(Ok(()))) => tracing::debug!("{api} API stopped"),
                Ok(Ok(Err(e))) => tracing::warn!("{api} API failed: {e}"),
                Ok(Err(e)) => tracing::warn!("{api} API task failed: {e}"),
                Err(_) => {
                    tracing::warn!("{api} API still had open calls after {GRACE:?}; closing them");
                    server.abort();
                }
            }
        }
    }
}

async fn bind(api: &'static str, addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr).await.map_err(|source| ServeError::Bind { api, addr, source })
}

/// Serves the sidecar API over `registry` until `shutdown` resolves or a
/// client asks for shutdown. Both listeners are bound before this returns.
pub async fn serve(
    registry: Registry,
    config: ApiConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<ApiHandle, ServeError> {
    let grpc_listener = bind("gRPC", config.grpc_addr).await?;
    let http_listener = bind("HTTP", config.http_addr).await?;
    let grpc_addr = grpc_listener.local_addr().map_err(|source| ServeError::Bind {
        api: "gRPC",
        addr: config.grpc_addr,
        source,
    })?;
    let http_addr = http_listener.local_addr().map_err(|source| ServeError::Bind {
        api: "HTTP",
        addr: config.http_addr,
        source,
    })?;
    let token_set = config.token.as_deref().is_some_and(|t| !t.is_empty());
    for addr in [grpc_addr, http_addr] {
        if !addr.ip().is_loopback() && !token_set {
            tracing::warn!(
                "the sidecar API listens on {addr}, beyond loopback, without an API token: anyone who can reach \
                 it can use every component (set --api-token or DAPR_API_TOKEN)"
            );
        }
    }
    let sidecar = Sidecar::new(registry, config);
    let waiter = sidecar.clone();
    tokio::spawn(async move {
        tokio::select! {
            () = shutdown => waiter.request_shutdown(),
            () = waiter.stopping() => {}
        }
    });
    let cap = connections::ConnectionCap::new(sidecar.config().limits.max_connections);
    let grpc = tokio::spawn(grpc::serve(sidecar.clone(), grpc_listener, cap.clone()));
    let http = tokio::spawn(http::serve(sidecar.clone(), http_listener, cap));
    Ok(ApiHandle { sidecar, grpc_addr, http_addr, servers: vec![("gRPC", grpc), ("HTTP", http)] })
}
