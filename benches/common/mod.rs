//! Shared bench helpers: building guests, percentiles, interleaved runs.
#![allow(dead_code, reason = "each bench binary uses a different subset")]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Builds the guest crate `name` from `components/` (release, wasm32-wasip2)
/// and returns its path. Exits the bench loudly if that fails.
pub fn guest(name: &str) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from).join("components");
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .args(["build", "--release", "--lib", "--target", "wasm32-wasip2", "-p", name, "--manifest-path"])
        .arg(root.join("components/Cargo.toml"))
        .arg("--target-dir")
        .arg(&target)
        .status()
        .expect("running cargo");
    assert!(status.success(), "building guest {name} failed");
    target.join(format!("wasm32-wasip2/release/{}.wasm", name.replace('-', "_")))
}

/// Per-call latency samples of one path.
pub struct Samples {
    pub name: String,
    pub per_call: Vec<Duration>,
}

impl Samples {
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), per_call: Vec::new() }
    }

    pub fn percentile(&self, q: f64) -> Duration {
        let mut sorted = self.per_call.clone();
        sorted.sort();
        sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
    }

    pub fn report(&self) {
        let us = |d: Duration| d.as_nanos() as f64 / 1000.0;
        println!(
            "{:<44} n={:>5}  p50={:>9.3}us  p90={:>9.3}us  p99={:>9.3}us",
            self.name,
            self.per_call.len(),
            us(self.percentile(0.5)),
            us(self.percentile(0.9)),
            us(self.percentile(0.99))
        );
    }
}

/// Times `batch` calls of `f` and records the mean per call as one sample.
pub async fn sample<F, Fut>(samples: &mut Samples, batch: u32, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let started = Instant::now();
    for _ in 0..batch {
        f().await;
    }
    samples.per_call.push(started.elapsed() / batch);
}
