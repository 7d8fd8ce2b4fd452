//! WASM guests for the tests: built from `components/` once per test
//! process (not by a `build.rs`, which would run for every embedder).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Every Rust guest crate under `components/`.
pub const GUESTS: &[&str] = &[
    "wasm-state",
    "wasm-pubsub",
    "wasm-output-binding",
    "wasm-input-binding",
    "wasm-bindings-loop",
    "wasm-secret-store",
    "wasm-state-loop",
    "wasm-state-memory-bomb",
    "wasm-state-trap",
    "wasm-state-recursion",
    "wasm-wrong-world",
    "wasm-bad-import",
    "wasm-state-probe",
    // Built with the Rust SDK; their gRPC builds: `super::sdk`.
    "file-state",
    "broker",
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where builds of `components/` go: beside the host's own target
/// directory (a separate one, so no cargo lock is shared with the `cargo
/// test` running us), so CI's cached target directory keeps them warm too.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from).join("components")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// The built guest `crate_name` (a crate under `components/`).
///
/// The first call builds every guest with `cargo build --release --target
/// wasm32-wasip2`; later calls are free. A failed build fails the test
/// loudly: the WASM tests are never skipped.
pub fn guest(crate_name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let out = BUILT.get_or_init(|| {
        let mut command = cargo();
        // `--lib`: the SDK examples also have a (native-only) gRPC binary.
        command.args(["build", "--release", "--lib", "--target", "wasm32-wasip2", "--manifest-path"]);
        command.arg(root().join("components/Cargo.toml")).arg("--target-dir").arg(target_dir());
        for name in GUESTS {
            command.args(["-p", name]);
        }
        let status = command.status().expect("running cargo for components/");
        assert!(
            status.success(),
            "building the WASM guests failed; is the wasm32-wasip2 target installed? (scripts/test.sh installs it)"
        );
        target_dir().join("wasm32-wasip2/release")
    });
    let path = out.join(format!("{}.wasm", crate_name.replace('-', "_")));
    assert!(path.exists(), "no guest {crate_name:?} (expected {})", path.display());
    path
}

/// `python3` with the repository's Python SDK (`components/sdk/python`) first on
/// its path, so the tests run the SDK in this checkout, installed or not.
pub fn python() -> Command {
    let mut command = Command::new("python3");
    command.env("PYTHONPATH", root().join("components/sdk/python"));
    command
}

/// Builds `<module>:<class>` of the Python project `dir` (relative to `components/`) into
/// `out` with the SDK's `build` command (componentize-py).
pub fn python_build(dir: &str, target: &str, out: PathBuf) -> PathBuf {
    let status = python()
        .args(["-m", "plughost_component", "build", target, "-o"])
        .arg(&out)
        .arg("--path")
        .arg(root().join("components").join(dir))
        .status()
        .expect("running python3 -m plughost_component build");
    assert!(
        status.success(),
        "building {target} of components/{dir} failed; is componentize-py installed? (scripts/test.sh installs it)"
    );
    out
}

/// The Python state store example (`components/python-state`, on the Python SDK)
/// as a WASM component, built once per test process.
pub fn python_state() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| python_build("python-state", "store:MemoryStore", target_dir().join("python-state.wasm")))
        .clone()
}

/// The JavaScript state store (`components/js-state`, componentize-js) as a WASM
/// component, built once per test process.
pub fn js_state() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let out = target_dir().join("js-state.wasm");
            let script = root().join("components/js-state/build.sh");
            let status = Command::new("bash").arg(&script).arg(&out).status().expect("running build.sh");
            assert!(
                status.success(),
                "{} failed; are its npm packages installed? (scripts/test.sh runs npm ci there)",
                script.display()
            );
            out
        })
        .clone()
}

/// A fresh directory holding a copy of each `(file name, built guest)`.
pub fn wasm_dir(files: &[(&str, PathBuf)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, source) in files {
        std::fs::copy(source, dir.path().join(name)).expect("copying a guest");
    }
    dir
}
