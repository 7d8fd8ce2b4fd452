//! Fixture: `wasm-state`, except that `get` of a key starting with `probe:`
//! tries a WASI capability and answers with what happened, so the host's
//! tests can check that WASI is deny-by-default and that grants work:
//!
//! * `probe:env:NAME`: the value of environment variable NAME;
//! * `probe:read:PATH`: the contents of the file at PATH;
//! * `probe:connect:ADDR`: `connected` if a TCP connection to ADDR opens;
//! * `probe:sleep:MS`: sleeps MS milliseconds (suspended in a WASI clock
//!   call, so the host can cancel it), then answers `slept`.
//!
//! Denied (or failed) probes answer `denied: <reason>`.

use state_guest::Error;

struct Probe;

fn outcome(result: Result<Vec<u8>, String>) -> Vec<u8> {
    result.unwrap_or_else(|reason| format!("denied: {reason}").into_bytes())
}

impl state_guest::Behaviour for Probe {
    fn answer_get(key: &str) -> Option<Result<Vec<u8>, Error>> {
        let probe = key.strip_prefix("probe:")?;
        let result = if let Some(name) = probe.strip_prefix("env:") {
            std::env::var(name).map(String::into_bytes).map_err(|e| e.to_string())
        } else if let Some(path) = probe.strip_prefix("read:") {
            std::fs::read(path).map_err(|e| e.to_string())
        } else if let Some(ms) = probe.strip_prefix("sleep:") {
            let ms: u64 = ms.parse().unwrap_or(0);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(b"slept".to_vec())
        } else if let Some(addr) = probe.strip_prefix("connect:") {
            std::net::TcpStream::connect(addr).map(|_| b"connected".to_vec()).map_err(|e| e.to_string())
        } else {
            return Some(Err(Error::InvalidArgument(format!("unknown probe `{probe}`"))));
        };
        Some(Ok(outcome(result)))
    }
}

type Component = state_guest::StateComponent<Probe>;

state_guest::export!(Component);
