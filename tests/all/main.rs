//! Integration tests, one binary (one link of the wasmtime-heavy crate).
//!
//! * `conformance`: one suite per component kind, written once against the
//!   trait and run against every implementation (one line each).
//! * `host`: the embedding API, init timeouts, ignoreErrors, persistence.
//! * `cli`: the `plughost` binary, including the data-driven `tests/cases/`.
//! * `grpc`: gRPC mode: socket discovery, late sockets, component processes
//!   killed and restarted, health, headers and deadlines on the wire.
//! * `api`: the sidecar API over HTTP and gRPC, and the Dapr Python SDK
//!   against `plughost run` in every component mode.
//! * `trust`: sockets of other users, planted and tampered artifacts,
//!   pathological `.wasm` files, pool capacity.

mod api;
mod cli;
mod conformance;
mod grpc;
mod host;
mod support;
mod trust;
mod wasm;
