//! Components built with the Rust SDK (`components/sdk/rust`): the examples
//! `file-state` and `broker`, each in both modes from the same source. The
//! WASM builds come with the other guests ([`super::wasm::guest`]); the
//! native (gRPC) builds are made here, once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use plughost::kinds::pubsub::PubSub;
use plughost::kinds::state::StateStore;

use super::{Fixture, grpc, host_with_wasm, wasm};

/// The SDK-built crates with a gRPC binary: the examples, and a fixture
/// whose `get` of `boom` panics.
pub const EXAMPLES: &[&str] = &["file-state", "broker", "sdk-state-panic"];

/// The native binary of the SDK example `name` (its gRPC mode), built once
/// per test process with the other examples.
pub fn binary(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
        command.args(["build", "--locked", "--release", "--bins", "--manifest-path"]);
        command.arg(root.join("components/Cargo.toml")).arg("--target-dir").arg(wasm::target_dir());
        for example in EXAMPLES {
            command.args(["-p", example]);
        }
        let status = command.status().expect("running cargo for components/");
        assert!(status.success(), "building the SDK examples {EXAMPLES:?} failed");
        wasm::target_dir().join("release")
    });
    let path = dir.join(name);
    assert!(path.exists(), "no SDK example binary {name:?} (expected {})", path.display());
    path
}

/// The file-state store as a gRPC component, its data file in the fixture's
/// folder.
pub async fn file_state_grpc() -> Fixture<dyn StateStore> {
    let (host, process, dir) = super::grpc_host(grpc::Program::Sdk("file-state"), "state", |dir, spec| {
        spec.with("file", dir.join("files/state.log").to_str().unwrap())
    })
    .await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

/// The same source built for wasm32-wasip2, its data file in a granted
/// WASI directory.
pub async fn file_state_wasm() -> Fixture<dyn StateStore> {
    let wasm_dir = wasm::wasm_dir(&[("guest.wasm", wasm::guest("file-state"))]);
    let (host, dir) = host_with_wasm("state.guest", Some(wasm_dir.path()), |dir, spec| {
        let files = dir.join("files");
        std::fs::create_dir_all(&files).unwrap();
        spec.with("file", files.join("state.log").to_str().unwrap()).with("wasm.dirs", files.to_str().unwrap())
    })
    .await;
    Fixture { component: host.state("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}

/// The broker as a gRPC component.
pub async fn broker_grpc() -> Fixture<dyn PubSub> {
    let (host, process, dir) = super::grpc_host(grpc::Program::Sdk("broker"), "pubsub", |_, spec| spec).await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: Some(process), _dir: dir }
}

/// The same source built for wasm32-wasip2.
pub async fn broker_wasm() -> Fixture<dyn PubSub> {
    let (host, dir) = super::wasm_host("pubsub", wasm::guest("broker"), &[]).await;
    Fixture { component: host.pubsub("under-test").unwrap(), _host: host, _process: None, _dir: dir }
}
