//! `plughost run` serving the sidecar API: the start-up line, a busy port,
//! shutdown through the API, the non-loopback warning, bad flags.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::support::sidecar::{self, RunningSidecar};

/// One HTTP/1.1 request; returns the status line.
fn http(addr: SocketAddr, method: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).ok();
    response.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn run_reports_ports_and_components_and_stops_on_shutdown() {
    let components = sidecar::builtin();
    let mut sidecar = RunningSidecar::start(&components, &["--app-id", "orders"]);
    let line = sidecar.log.last().unwrap().clone();
    let ports = format!("gRPC API on port {}, HTTP API on port {}", sidecar.grpc.port(), sidecar.http.port());
    assert!(line.contains(&ports), "{line}");
    assert!(line.contains("app_id=orders"), "{line}");
    for component in [
        "store (state.sqlite, builtin)",
        "broker (pubsub.in-memory, builtin)",
        "vault (secretstores.local.file, builtin)",
    ] {
        assert!(line.contains(component), "{component} missing in {line}");
    }
    assert!(sidecar.grpc.ip().is_loopback() && sidecar.http.ip().is_loopback(), "loopback by default");
    assert!(!sidecar.log.join("\n").contains("beyond loopback"));
    assert!(http(sidecar.http, "GET", "/v1.0/healthz/outbound").contains("204"));
    assert!(http(sidecar.http, "POST", "/v1.0/shutdown").contains("204"));
    assert!(sidecar.wait_exit(Duration::from_secs(30)), "exits 0 after a shutdown request");
}

#[test]
fn a_busy_port_stops_start_up_with_a_clear_error() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let components = sidecar::builtin();
    let output = Command::new(env!("CARGO_BIN_EXE_plughost"))
        .args(["run", "--dapr-grpc-port", "0", "--dapr-http-port", &port, "--components"])
        .arg(components.dir.path())
        .arg("--data-dir")
        .arg(components.dir.path().join("data"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("cannot listen on 127.0.0.1:{port} for the HTTP API")), "{stderr}");
}

#[test]
fn listening_beyond_loopback_without_a_token_warns() {
    let components = sidecar::builtin();
    let sidecar = RunningSidecar::start(&components, &["--listen-address", "0.0.0.0"]);
    let log = sidecar.log.join("\n");
    assert!(log.contains("beyond loopback, without an API token"), "{log}");
    let other = sidecar::builtin();
    let with_token = RunningSidecar::start(&other, &["--listen-address", "0.0.0.0", "--api-token", "t"]);
    assert!(!with_token.log.join("\n").contains("beyond loopback"));
}

#[test]
fn max_body_size_takes_units() {
    let output = Command::new(env!("CARGO_BIN_EXE_plughost")).args(["run", "--max-body-size", "4MB"]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown unit `MB`"), "{stderr}");
    let help = Command::new(env!("CARGO_BIN_EXE_plughost")).args(["run", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in [
        "--app-id",
        "--dapr-grpc-port",
        "[default: 50001]",
        "--dapr-http-port",
        "[default: 3500]",
        "--api-token",
        "DAPR_API_TOKEN",
        "--max-body-size",
        "[default: 4Mi]",
        "--listen-address",
        "[default: 127.0.0.1]",
    ] {
        assert!(help.contains(flag), "{flag} missing in --help:\n{help}");
    }
}
