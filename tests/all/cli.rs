//! The `plughost` binary, run as a user would.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn plughost() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_plughost"));
    command
        .env("RUST_LOG", "info")
        .env_remove("PLUGHOST_COMPONENTS")
        .env_remove("PLUGHOST_DATA_DIR")
        // Hermetic: not whatever sockets the machine has in /tmp.
        .env("DAPR_COMPONENTS_SOCKETS_FOLDER", "/nonexistent/plughost-test-sockets");
    command
}

/// Runs `command` to completion, killing it if it outlives `limit`.
fn output_within(mut command: Command, limit: Duration) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning plughost");
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("plughost still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

#[test]
fn bad_configurations_exit_non_zero_with_file_line_and_reason() {
    let mut ran = 0;
    for case in std::fs::read_dir(cases_dir()).unwrap() {
        let case = case.unwrap().path();
        if !case.is_dir() {
            continue;
        }
        let data = tempfile::tempdir().unwrap();
        let mut command = plughost();
        command.arg("run").arg("--components").arg(case.join("components")).arg("--data-dir").arg(data.path());
        let output = output_within(command, Duration::from_secs(60));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "case {}: plughost started anyway\n{stderr}", case.display());
        let expected = std::fs::read_to_string(case.join("expected.txt")).unwrap();
        for line in expected.lines().filter(|l| !l.is_empty()) {
            let count = stderr.matches(line).count();
            assert!(count > 0, "case {}: stderr lacks {line:?}:\n{stderr}", case.display());
            assert_eq!(count, 1, "case {}: {line:?} said {count} times:\n{stderr}", case.display());
        }
        ran += 1;
    }
    assert!(ran >= 4, "found only {ran} cases");
}

#[test]
fn components_list_shows_the_embedded_defaults() {
    let data = tempfile::tempdir().unwrap();
    let mut command = plughost();
    command.args(["components", "list", "--offline", "--data-dir"]).arg(data.path());
    let output = output_within(command, Duration::from_secs(60));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(rows[0], ["NAME", "KIND", "TYPE", "MODE", "GEN", "SWAPPED", "STATUS"]);
    assert!(rows.contains(&vec!["statestore", "state", "state.sqlite", "builtin", "1", "-", "ready"]), "{stdout}");
    assert!(rows.contains(&vec!["pubsub", "pubsub", "pubsub.in-memory", "builtin", "1", "-", "ready"]), "{stdout}");
}

#[test]
fn components_list_shows_ignored_failures() {
    let dir = tempfile::tempdir().unwrap();
    let components = dir.path().join("components");
    std::fs::create_dir(&components).unwrap();
    std::fs::write(
        components.join("c.yaml"),
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: flaky\nspec:\n  type: bindings.cron\n  ignoreErrors: true\n  metadata:\n    - name: schedule\n      value: \"*/5 * * * *\"\n---\napiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: files\nspec:\n  type: bindings.localstorage\n",
    )
    .unwrap();
    let mut command = plughost();
    command
        .args(["components", "list", "--offline", "--components"])
        .arg(&components)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let output = output_within(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let flaky = stdout.lines().find(|l| l.starts_with("flaky")).expect("flaky listed");
    assert!(flaky.contains("bindings.cron") && flaky.contains("failed:") && flaky.contains("*/5"), "{flaky}");
    let files = stdout.lines().find(|l| l.starts_with("files")).expect("files listed");
    assert!(files.contains("output-binding") && files.ends_with("ready"), "{files}");
}

/// Reads `child`'s stderr until a line contains `marker`; returns all lines read.
fn wait_for_line(child: &mut Child, marker: &str) -> Vec<String> {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => {
                let done = line.contains(marker);
                lines.push(line);
                if done {
                    return lines;
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(_) => break,
        }
    }
    child.kill().ok();
    panic!("no line with {marker:?}; got:\n{}", lines.join("\n"));
}

/// Kills the child if the test fails before it exits, so no `plughost run`
/// outlives the test (and holds the test runner's pipes open).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            self.0.kill().ok();
            self.0.wait().ok();
        }
    }
}

#[test]
fn run_starts_on_the_defaults_and_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let child = plughost()
        .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", "0"])
        .arg("--data-dir")
        .arg(data.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let child = &mut child.0;
    let lines = wait_for_line(child, "plughost running");
    let log = lines.join("\n");
    assert!(log.contains("component=statestore") && log.contains("state.sqlite"), "{log}");
    assert!(log.contains("component=pubsub") && log.contains("pubsub.in-memory"), "{log}");
    assert!(data.path().join("statestore.db").exists(), "the sqlite file is created in the data dir");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "graceful shutdown exits 0, got {exit}");
}

fn component_yaml(name: &str, type_name: &str, init_timeout: &str) -> String {
    format!(
        "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: {name}\nspec:\n  type: {type_name}\n  version: v1\n  initTimeout: {init_timeout}\n"
    )
}

#[test]
fn components_list_shows_grpc_components() {
    use crate::support::grpc::{ComponentProcess, Program, short_tempdir};
    let dir = short_tempdir();
    let (sockets, components) = (dir.path().join("s"), dir.path().join("c"));
    std::fs::create_dir(&sockets).unwrap();
    std::fs::create_dir(&components).unwrap();
    let _kv = ComponentProcess::start(Program::Rust("state"), sockets.join("kv.sock"), dir.path().join("cdata"));
    std::fs::write(components.join("cache.yaml"), component_yaml("cache", "state.kv", "5s")).unwrap();
    std::fs::write(sockets.join("README"), "not a socket").unwrap();
    let mut command = plughost();
    command
        .args(["components", "list", "--offline", "--components"])
        .arg(&components)
        .arg("--sockets-dir")
        .arg(&sockets)
        .arg("--data-dir")
        .arg(dir.path().join("data"));
    let output = output_within(command, Duration::from_secs(60));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<Vec<&str>> = stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    assert!(rows.contains(&vec!["cache", "state", "state.kv", "grpc", "1", "-", "ready"]), "{stdout}");
    let skipped = format!("skipped {}: not a socket (a regular file)", sockets.join("README").display());
    assert!(stdout.lines().any(|l| l == skipped), "{stdout}");
}

#[test]
fn run_waits_for_a_late_socket_then_serves() {
    use crate::support::grpc::{ComponentProcess, Program, grpc_components_binary, short_tempdir};
    grpc_components_binary(); // built before the clock below starts
    let dir = short_tempdir();
    let (sockets, components) = (dir.path().join("s"), dir.path().join("c"));
    std::fs::create_dir(&sockets).unwrap();
    std::fs::create_dir(&components).unwrap();
    std::fs::write(components.join("late.yaml"), component_yaml("late", "state.later", "60s")).unwrap();
    let child = plughost()
        .arg("run")
        .arg("--components")
        .arg(&components)
        .arg("--sockets-dir")
        .arg(&sockets)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let wait_for = |marker: &str| {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        while Instant::now() < deadline {
            if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
                let found = line.contains(marker);
                seen.push(line);
                if found {
                    return seen;
                }
            }
        }
        panic!("no line with {marker:?}; got:\n{}", seen.join("\n"));
    };
    wait_for("waiting up to");
    let _later = ComponentProcess::start(Program::Rust("state"), sockets.join("later.sock"), dir.path().join("cdata"));
    let log = wait_for("plughost running").join("\n");
    assert!(log.contains("component=late") && log.contains("mode=\"grpc\""), "{log}");
    Command::new("kill").args(["-TERM", &child.0.id().to_string()]).status().unwrap();
    let started = Instant::now();
    while child.0.try_wait().unwrap().is_none() {
        assert!(started.elapsed() < Duration::from_secs(30), "did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}
