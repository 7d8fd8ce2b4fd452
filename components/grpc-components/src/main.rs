//! `grpc-components`: Dapr pluggable components written with tonic, one kind
//! per process, each serving one Unix socket with server reflection (v1 and
//! v1alpha, listing only the services it serves), exactly as a component
//! built with Dapr's Go or .NET SDK would.
//!
//! ```text
//! grpc-components <state|pubsub|input-binding|output-binding|secret-store>
//!                 --socket PATH [--data-dir DIR] [--exit-on-stdin-eof]
//! ```
//!
//! * `state`: `StateStore` + `TransactionalStateStore` over the shared
//!   `state-logic` crate (the WASM state guest runs the same code).
//! * `pubsub`: consumer groups (`consumerID`), at-least-once; with
//!   `--data-dir` the queues of named groups survive a restart.
//! * `input-binding`: an event every `interval` (metadata, default `100ms`).
//! * `output-binding`: `create` / `get` / `delete` / `list` files under
//!   `rootPath` (metadata), keyed by `fileName`.
//! * `secret-store`: the secrets given as init metadata `secret.<NAME>`.
//!
//! One instance per `x-component-instance` header, as Dapr's SDKs keep them;
//! every call except `Init` on an instance that was not initialised fails with
//! `FAILED_PRECONDITION`, so a host that forgets to replay `Init` after a
//! restart notices at once.

#[cfg(not(target_family = "wasm"))]
mod common;
#[cfg(not(target_family = "wasm"))]
mod input;
#[cfg(not(target_family = "wasm"))]
mod output;
#[cfg(not(target_family = "wasm"))]
mod pb;
#[cfg(not(target_family = "wasm"))]
mod pubsub;
#[cfg(not(target_family = "wasm"))]
mod secrets;
#[cfg(not(target_family = "wasm"))]
mod serve;
#[cfg(not(target_family = "wasm"))]
mod state;

#[cfg(not(target_family = "wasm"))]
fn main() -> std::process::ExitCode {
    serve::main()
}

/// Native only: see `Cargo.toml`.
#[cfg(target_family = "wasm")]
fn main() {}
