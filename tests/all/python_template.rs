//! The Python project templates (`templates/python/`, the convention of
//! `templates/README.md`): every kind rendered into a temporary folder, its own
//! smoke test run (`python3 -m unittest`: the class, then over gRPC); the state
//! project built to WASM with its `build.sh` and loaded by plughost both ways.
//!
//! The projects are written by `plughost new --lang python`, as a user gets them.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use plughost::Host;
use plughost::config::ComponentSpec;
use plughost::kinds::state::{GetRequest, SetRequest};

use crate::support::{grpc, wasm};

const KINDS: &[(&str, &str)] = &[
    ("state", "state"),
    ("pubsub", "pubsub"),
    ("input-binding", "bindings"),
    ("output-binding", "bindings"),
    ("secret-store", "secretstores"),
];

/// `plughost new <name> --kind <kind> --lang python --dir <out>`, as a user runs it.
fn render(kind: &str, name: &str, out: &Path) {
    let output = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(["new", name, "--kind", kind, "--lang", "python", "--dir"])
        .arg(out)
        .output()
        .expect("running plughost new");
    assert!(
        output.status.success(),
        "plughost new {name} --kind {kind} --lang python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

fn run_in(project: &Path, command: &mut Command, what: &str) {
    let output = command.current_dir(project).stdin(Stdio::null()).output().unwrap();
    assert!(
        output.status.success(),
        "{what} failed in {}:\n{}\n{}",
        project.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_templates_pass_their_smoke_tests_and_the_state_one_runs_in_both_modes() {
    let root = grpc::short_tempdir();
    let mut state_project = PathBuf::new();
    for (kind, prefix) in KINDS {
        let name = format!("demo-{kind}");
        let project = root.path().join(&name);
        render(kind, &name, &project);
        let readme = std::fs::read_to_string(project.join("README.md")).unwrap();
        let needed = [
            format!("python3 {}.py", name.replace('-', "_")),
            "bash build.sh".to_owned(),
            format!("type: {prefix}.{name}"),
        ];
        for needed in needed {
            assert!(readme.contains(&needed), "README of {kind} lacks {needed:?}");
        }
        run_in(&project, wasm::python().args(["-m", "unittest"]), "python3 -m unittest");
        if *kind == "state" {
            state_project = project;
        }
    }

    // The state project in WASM mode: its build.sh, then plughost from --wasm-dir...
    let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("components/sdk/python");
    run_in(&state_project, Command::new("bash").arg("build.sh").env("PYTHONPATH", sdk), "bash build.sh");
    let wasm_dir = wasm::wasm_dir(&[("demo-state.wasm", state_project.join("demo-state.wasm"))]);
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
    let mut process = wasm::python()
        .arg(state_project.join("demo_state.py"))
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
