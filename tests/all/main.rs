//! Integration tests, one binary (one link of the wasmtime-heavy crate).
//!
//! * `conformance`: one suite per component kind, written once against the
//!   trait and run against every implementation (one line each).
//! * `host`: the embedding API, init timeouts, ignoreErrors, persistence.
//! * `cli`: the `plughost` binary, including the data-driven `tests/cases/`.
//! * `grpc`: gRPC mode: socket discovery, late sockets, component processes
//!   killed and restarted, health, headers and deadlines on the wire.

mod cli;
mod conformance;
mod grpc;
mod host;
mod support;
mod wasm;
