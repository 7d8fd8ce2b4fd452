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
//! * [`component`]: the component model — the [`Lifecycle`](component::Lifecycle)
//!   every component has, [`Instance`](component::Instance), factories,
//!   health, and the table of modes (which adapter serves each kind in each
//!   mode).
//! * [`registry`]: the running components by name, one typed map per kind.
//! * [`config`]: Dapr Component YAML.
//! * [`resiliency`]: Dapr `kind: Resiliency` policies (timeouts, retries,
//!   circuit breakers) around every component's outbound calls.
//! * [`wasm`]: loading `.wasm` components (one `Engine`, a precompiled cache,
//!   kinds read from exports) and running them isolated.
//! * [`pluggable`]: Dapr pluggable components over Unix sockets (the gRPC
//!   mode): socket discovery through reflection, a watched socket folder,
//!   connections that reconnect and replay `Init`, acked streams, and the
//!   one [`GrpcLifecycle`](pluggable::GrpcLifecycle) of all five services.
//! * [`proto`]: the generated code of Dapr's protocols, both roles (the
//!   components plughost calls, the sidecar API apps call).
//! * [`api`]: the Dapr-compatible sidecar API (gRPC and HTTP) over a
//!   [`Registry`]: key prefixing, CloudEvents, errors, API token, limits.
//! * [`metrics`]: Prometheus metrics (`--metrics-port`).
//! * [`health`]: the periodic health probe of every component, every mode.
//! * [`ops`]: what operators see and do per component: the decorator
//!   counting every call, the admin API (list, reload, disable/enable,
//!   restart a process), W3C trace context.
//! * [`supervisor`]: component processes plughost starts, restarts and
//!   stops (`plughost.io/command` annotations).
//! * [`units`]: the one duration parser (Go's) and the one size parser.
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
mod builtins;
pub mod component;
pub mod config;
mod error;
pub mod health;
mod host;
pub mod kinds;
pub mod live;
pub mod metrics;
pub mod ops;
pub mod pluggable;
pub mod proto;
pub mod registry;
pub mod resiliency;
pub mod supervisor;
pub mod units;
pub mod wasm;

// What an embedder needs, at the root: the host, the component model, the
// configuration and the errors. Each kind's trait and request types are in
// `kinds::<kind>`; the modules hold the rest.
pub use component::{ComponentInfo, Factory, FactoryContext, Instance, Kinds, Lifecycle, Mode, Status};
pub use config::ComponentSpec;
pub use error::{Error, Result};
pub use health::HealthOptions;
pub use host::{Host, HostBuilder, ReloadHandle, default_data_dir};
pub use kinds::{ComponentError, ComponentKind, Metadata};
pub use registry::{Registry, RegistryError};
