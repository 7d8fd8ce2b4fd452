//! The Python project templates (`templates/python/`, the convention of
//! `templates/README.md`): every kind rendered into a temporary folder, its own
//! smoke test run (`python3 -m unittest`: the class, then over gRPC); the state
//! project built to WASM with its `build.sh` and loaded by plughost both ways.
//!
//! The rendering here follows the template convention (placeholders in names and
//! contents, `.tmpl` dropped); `plughost new --lang python` writes the same files.

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

fn render(kind: &str, type_prefix: &str, name: &str, out: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let camel: String = name.split('-').map(|part| part[..1].to_uppercase() + &part[1..]).collect();
    let values = [
        ("name", name.to_owned()),
        ("snake_name", name.replace('-', "_")),
        ("camel_name", camel),
        ("kind", kind.to_owned()),
        ("type_prefix", type_prefix.to_owned()),
        ("world", format!("{kind}-component")),
        ("repo", repo.display().to_string()),
        ("wit_dir", repo.join("wit").display().to_string()),
        ("sdk_dir", repo.join("components/sdk/python").display().to_string()),
    ];
    let fill = |text: &str| {
        let mut text = text.to_owned();
        for (key, value) in &values {
            text = text.replace(&format!("{{{{{key}}}}}"), value);
        }
        assert!(!text.contains("{{"), "unknown placeholder left in {text}");
        text
    };
    for part in ["_common", kind] {
        let base = repo.join("templates/python").join(part);
        let mut stack = vec![base.clone()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = fill(&path.strip_prefix(&base).unwrap().display().to_string());
                let target = out.join(relative.strip_suffix(".tmpl").unwrap_or(&relative));
                std::fs::create_dir_all(target.parent().unwrap()).unwrap();
                std::fs::write(&target, fill(&std::fs::read_to_string(&path).unwrap())).unwrap();
            }
        }
    }
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
        render(kind, prefix, &name, &project);
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
