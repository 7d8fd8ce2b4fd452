//! Host *components* in-process as WebAssembly components or out-of-process as
//! Dapr pluggable components (gRPC on Unix sockets), behind one trait per
//! component kind, so an application never knows where a component runs.
//!
//! # Layout
//!
//! * [`kinds`]: one module per component kind (`state`, `pubsub`,
//!   `input_binding`, `output_binding`, `secret_store`), each with its trait
//!   and its native implementations; [`kinds::ComponentError`] is the one error
//!   all of them return.
//! * [`registry`]: factories by component type, instances by name, one typed
//!   map per kind.
//! * [`config`]: Dapr Component YAML.
//! * [`resiliency`]: Dapr `kind: Resiliency` policies (timeouts, retries,
//!   circuit breakers) around every component's outbound calls.
//! * [`builtins`]: the native component types and their names.
//! * [`wasm`]: loading `.wasm` components (one `Engine`, a precompiled cache,
//!   kinds read from exports) and running them isolated.
//! * [`grpc`]: gRPC mode: Dapr's pluggable component protocol over Unix
//!   sockets (generated code in [`grpc::pb`]); socket discovery through
//!   reflection, a watched socket folder, connections that reconnect and
//!   replay `Init`, acked streams. The adapters (`GrpcStateStore`, ...) live
//!   with their kinds.
//! * [`api`]: the Dapr-compatible sidecar API (gRPC and HTTP) over a
//!   [`Registry`]: key prefixing, CloudEvents, errors, API token, limits.
//! * [`metrics`]: Prometheus metrics (`--metrics-port`).
//! * [`health`]: the periodic health probe of every component, every mode.
//! * [`ops`]: what operators see and do per component: the decorator
//!   counting every call, the admin API (list, reload, disable/enable,
//!   restart a process), W3C trace context.
//! * [`supervisor`]: component processes plughost starts, restarts and
//!   stops (`plughost.io/command` annotations).
//! * [`appchannel`]: the sidecar calling the app (`--app-port`): pub/sub
//!   messages to its routes, input binding events, health checks.
//! * [`Host`]: configuration → factories → `init` → [`Registry`], and shutdown.
//!
//! # Embedding
//!
//! ```no_run
//! use plughost::kinds::state::{GetRequest, SetRequest};
//! # async fn demo() -> anyhow::Result<()> {
//! let host = plughost::Host::builder().embedded_defaults().build().await?;
//! let store = host.state("statestore")?;
//! store.set(SetRequest::new("greeting", "hello")).await?;
//! assert_eq!(store.get(GetRequest::new("greeting")).await?.unwrap().data, b"hello");
//! host.shutdown().await;
//! # Ok(()) }
//! ```

pub mod api;
pub mod appchannel;
pub mod builtins;
pub mod config;
mod error;
pub mod grpc;
pub mod health;
mod host;
pub mod kinds;
pub mod metrics;
pub mod ops;
pub mod registry;
pub mod resiliency;
pub mod supervisor;
pub mod wasm;

pub use error::{Error, Result};
pub use host::{Host, HostBuilder, default_data_dir};
pub use registry::Registry;
