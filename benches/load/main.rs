//! Issue 15: the sidecar under steady load, as an app sees it.
//!
//! Dapr's perf-test shape: a fixed request rate (1,000 QPS) over 16
//! keep-alive connections for 60 s, open loop (each request has an intended
//! send time; its latency runs from that time, so a stall is charged to
//! every request it delayed: coordinated omission corrected, as wrk2 does),
//! then a closed loop over the same 16 connections for the maximum rate.
//! Every operation (state get, state save, publish; publish also timed to
//! its delivery on a streaming subscription) runs over both sidecar APIs
//! (HTTP and gRPC) against built-in, WASM and gRPC components, and the same
//! load runs against a no-op server on the same stack (hyper / tonic) in a
//! separate process, so "added latency" comes from one run.
//!
//! ```sh
//! cargo bench --bench load                      # full: 60 s per run, writes README
//! cargo bench --bench load -- --quick           # 2 s per run (CI runs this)
//! cargo bench --bench load -- --duration 20 --only sqlite
//! ```
//!
//! Options: `--quick`, `--duration SECS`, `--rate QPS`, `--conns N`,
//! `--only SUBSTRING` (targets whose name contains it; `--only memory`: the
//! memory figure alone), `--op get|save|publish`
//! and `--api http|grpc` (one path, to profile it), `--write-readme`
//! (default in full mode: replaces the table between the `load-bench`
//! markers of README.md). `PLUGHOST_BIN=path` loads another plughost
//! binary (to compare two builds).

mod baseline;
mod load;
mod memory;
mod procs;
mod report;

use std::time::Duration;

/// What one run of the bench does.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long each open-loop run lasts.
    pub duration: Duration,
    /// How long each closed-loop run lasts.
    pub closed_duration: Duration,
    /// Requests per second of the open loop, over all connections.
    pub rate: u32,
    /// Connections per run (HTTP/1.1 keep-alive or one HTTP/2 connection each).
    pub conns: usize,
    /// Only targets whose name contains this (the baselines always run).
    pub only: Option<String>,
    /// Only this operation (`get`, `save`, `publish`), to profile one path.
    pub op: Option<String>,
    /// Only this API (`http`, `grpc`).
    pub api: Option<String>,
    /// Whether to write the table into README.md.
    pub write_readme: bool,
    /// The short CI mode.
    pub quick: bool,
}

impl Options {
    /// Whether every target, operation and API runs (no filter).
    pub fn everything(&self) -> bool {
        self.only.is_none() && self.op.is_none() && self.api.is_none()
    }

    fn parse(args: &[String]) -> Self {
        let mut options = Options {
            duration: Duration::from_secs(60),
            closed_duration: Duration::from_secs(10),
            rate: 1000,
            conns: 16,
            only: None,
            op: None,
            api: None,
            write_readme: true,
            quick: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().unwrap_or_else(|| panic!("{name} needs a value")).clone();
            match arg.as_str() {
                "--quick" => {
                    options.quick = true;
                    options.duration = Duration::from_secs(2);
                    options.closed_duration = Duration::from_millis(500);
                    options.write_readme = false;
                }
                "--duration" => {
                    let secs: f64 = value("--duration").parse().expect("--duration SECS");
                    options.duration = Duration::from_secs_f64(secs);
                    options.closed_duration = Duration::from_secs_f64((secs / 6.0).clamp(1.0, 10.0));
                }
                "--rate" => options.rate = value("--rate").parse().expect("--rate QPS"),
                "--conns" => options.conns = value("--conns").parse().expect("--conns N"),
                "--only" => {
                    options.only = Some(value("--only"));
                    options.write_readme = false;
                }
                "--op" => {
                    options.op = Some(value("--op"));
                    options.write_readme = false;
                }
                "--api" => {
                    options.api = Some(value("--api"));
                    options.write_readme = false;
                }
                "--write-readme" => options.write_readme = true,
                "--no-write-readme" => options.write_readme = false,
                // `cargo bench` passes `--bench`; filters and other flags of
                // the libtest harness mean nothing here.
                _ => {}
            }
        }
        options
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(baseline::ARG) {
        baseline::serve();
        return;
    }
    let options = Options::parse(&args);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if options.only.as_deref() == Some("memory") {
        procs::build_guests();
        let memory = memory::measure(&options);
        println!("\n{}\n{}", report::memory(&memory), report::targets(&[], Some(&memory)));
        return;
    }
    let results = runtime.block_on(procs::run_all(&options));
    let memory = options.everything().then(|| memory::measure(&options));
    let mut table = report::table(&options, &results);
    if let Some(memory) = &memory {
        table.push_str(&report::memory(memory));
    }
    println!("\n{table}");
    let verdicts = report::targets(&results, memory.as_ref());
    println!("{verdicts}");
    if options.write_readme {
        report::write_readme(&format!("{table}\n{verdicts}"));
    }
    let errors: u64 = results.iter().map(|r| r.open.errors + r.closed.errors).sum();
    if errors > 0 {
        eprintln!("load bench: {errors} requests failed (see the errors column)");
        std::process::exit(1);
    }
}
