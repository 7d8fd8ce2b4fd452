//! Integration tests, one binary (one link of the wasmtime-heavy crate).
//!
//! * `conformance`: one suite per component kind, written once against the
//!   trait and run against every implementation (one line each).
//! * `host`: the embedding API, init timeouts, ignoreErrors, persistence.
//! * `cli`: the `plughost` binary, including the data-driven `tests/cases/`.
//! * `grpc`: gRPC mode: socket discovery, late sockets, component processes
//!   killed and restarted, health, headers and deadlines on the wire.
//! * `resiliency`: `kind: Resiliency` policies on real gRPC components.
//! * `health`: the periodic probe of every component and where it shows.
//! * `supervisor`: component processes plughost starts, restarts and stops
//!   (`plughost.io/command`), with the reliability guide's section D.
//! * `sdk`: components built with the Rust SDK (`components/sdk/rust`) over
//!   real sockets; `scaffold`: `plughost new` projects built and tested.
//! * `api`: the sidecar API over HTTP and gRPC, and the Dapr Python SDK
//!   against `plughost run` in every component mode.
//! * `deadlines`: deadlines of gRPC and WASM component calls, queueing
//!   included.
//! * `python_sdk`: the Python component SDK's gRPC runtime over real sockets.
//! * `python_template`: the Python project templates, rendered, smoke-tested, run both ways.
//! * `redis`: `state.redis` / `pubsub.redis` data compatibility with daprd,
//!   and three `plughost run` instances on one real redis-server.
//! * `ops`: the admin API and `components` CLI against a running plughost,
//!   per-operation and pub/sub metrics scraped, W3C trace context reaching
//!   a gRPC component.
//! * `trust`: sockets of other users, planted and tampered artifacts,
//!   pathological `.wasm` files, pool capacity.

mod api;
mod cli;
mod conformance;
mod deadlines;
mod grpc;
mod health;
mod host;
mod live;
mod ops;
mod python_sdk;
mod python_template;
mod redis;
mod resiliency;
mod scaffold;
mod sdk;
mod supervisor;
mod support;
mod trust;
mod wasm;
