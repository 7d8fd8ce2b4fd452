//! `plughost new`: every Rust template is generated into a temporary folder,
//! built for both modes and its own smoke test run (`cargo test`); the state
//! project is then loaded by plughost both ways. The builds share the SDK
//! examples' target folder and lock file, so only the new crate compiles.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::state::{GetRequest, SetRequest};

use crate::support::{grpc, wasm};

const KINDS: &[&str] = &["state", "pubsub", "input-binding", "output-binding", "secret-store"];

fn plughost_new(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_plughost")).arg("new").args(args).output().unwrap()
}

fn cargo(project: &Path, args: &[&str]) {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(args)
        .arg("--manifest-path")
        .arg(project.join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", wasm::target_dir())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "cargo {args:?} failed for the project generated in {}", project.display());
}

/// Generates `name` of `kind`, builds both modes, runs its smoke test.
fn generate_and_build(root: &Path, name: &str, kind: &str) -> PathBuf {
    let project = root.join(name);
    let out = plughost_new(&[name, "--kind", kind, "--lang", "rust", "--dir", project.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
    for needed in ["cargo build --release\n", "cargo build --release --target wasm32-wasip2 --lib", "type: "] {
        assert!(readme.contains(needed), "README of {kind} lacks {needed:?}");
    }
    // The lock file of components/: the same dependency versions as the SDK
    // examples, so their build artifacts are reused.
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("components/Cargo.lock");
    std::fs::copy(lock, project.join("Cargo.lock")).unwrap();
    cargo(&project, &["build", "--release"]);
    cargo(&project, &["build", "--release", "--target", "wasm32-wasip2", "--lib"]);
    cargo(&project, &["test", "--release"]);
    project
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_rust_projects_build_and_pass_their_smoke_tests() {
    let root = grpc::short_tempdir();
    for kind in KINDS {
        generate_and_build(root.path(), &format!("demo-{kind}"), kind);
    }
    let built = wasm::target_dir();

    // The state project, in plughost: WASM mode from --wasm-dir...
    let wasm_dir = wasm::wasm_dir(&[("demo-state.wasm", built.join("wasm32-wasip2/release/demo_state.wasm"))]);
    let spec = || ComponentSpec::new("demo", "state.demo-state");
    let host = Host::builder().data_dir(root.path().join("data")).wasm_dir(wasm_dir.path()).component(spec());
    let host = host.build().await.unwrap();
    let store = host.state("demo").unwrap();
    store.set(SetRequest::new("k", "from wasm")).await.unwrap();
    assert_eq!(store.get(GetRequest::new("k")).await.unwrap().unwrap().data, b"from wasm");
    host.shutdown().await;

    // ...and gRPC mode, found through reflection on its socket.
    let sockets = root.path().join("sockets");
    std::fs::create_dir_all(&sockets).unwrap();
    let mut process = Command::new(built.join("release/demo-state"))
        .env("DAPR_COMPONENTS_SOCKETS_FOLDER", &sockets)
        .env_remove("DAPR_COMPONENT_SOCKETS_FOLDER")
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let host = Host::builder().data_dir(root.path().join("data")).socket_dir(&sockets).component(spec());
    let host = host.build().await;
    let result = async {
        let store = host.as_ref().map_err(|e| e.to_string())?.state("demo").map_err(|e| e.to_string())?;
        store.set(SetRequest::new("k", "from grpc")).await.map_err(|e| e.to_string())?;
        store.get(GetRequest::new("k")).await.map_err(|e| e.to_string())
    }
    .await;
    process.kill().ok();
    process.wait().ok();
    assert_eq!(result.unwrap().unwrap().data, b"from grpc");
}

#[test]
fn plughost_new_refuses_bad_requests() {
    let root = grpc::short_tempdir();
    let kind = plughost_new(&["x", "--kind", "queue", "--lang", "rust", "--dir", root.path().to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&kind.stderr).contains("unknown kind `queue`"), "{kind:?}");
    std::fs::write(root.path().join("keep.txt"), "mine").unwrap();
    let taken = plughost_new(&["x", "--kind", "state", "--lang", "rust", "--dir", root.path().to_str().unwrap()]);
    assert!(!taken.status.success());
    assert!(String::from_utf8_lossy(&taken.stderr).contains("exists and is not empty"), "{taken:?}");
    assert_eq!(std::fs::read_to_string(root.path().join("keep.txt")).unwrap(), "mine", "nothing overwritten");
}
