//! The bench's table (Markdown, for README) and its verdict on the targets
//! of issue 15, each against a baseline or a figure from the same run.

use std::fmt::Write as _;
use std::path::Path;

use crate::Options;
use crate::load::{Api, Op};
use crate::memory::Memory;
use crate::procs::RunResult;

const BASELINE: &str = "no-op baseline (hyper/tonic)";
const DEFAULTS: &str = "embedded defaults (state.sqlite)";

/// Prints one row as soon as it is measured.
pub fn print_row(r: &RunResult) {
    println!(
        "  p50 {:.3} ms  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  rate {:.0}/s  errors {}  {:.0} mCPU  RSS {:.1} MiB  closed {:.0}/s{}",
        r.open.ms(0.5),
        r.open.ms(0.9),
        r.open.ms(0.99),
        r.open.ms(0.999),
        r.open.rate(),
        r.open.errors + r.closed.errors,
        r.mcpu,
        r.rss_mib,
        r.closed.rate(),
        r.open
            .first_error
            .as_ref()
            .or(r.closed.first_error.as_ref())
            .map(|e| format!("  first error: {e}"))
            .unwrap_or_default(),
    );
}

fn api_name(api: Api) -> &'static str {
    match api {
        Api::Http => "HTTP",
        Api::Grpc => "gRPC",
    }
}

fn baseline<'a>(results: &'a [RunResult], r: &RunResult) -> Option<&'a RunResult> {
    results.iter().find(|b| b.target == BASELINE && b.api == r.api && b.op == r.op)
}

/// The Markdown table of every row, with what each adds over the baseline.
pub fn table(options: &Options, results: &[RunResult]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "`cargo bench --bench load{}`: {} QPS over {} connections for {:.0} s per row (open loop, latency from the \
         intended send time), then {:.0} s closed loop; the load generator runs on the same 2 cores. Latencies in ms.\n",
        if options.quick { " -- --quick" } else { "" },
        options.rate,
        options.conns,
        options.duration.as_secs_f64(),
        options.closed_duration.as_secs_f64(),
    );
    out.push_str(
        "| target | API | op | p50 | p90 | p99 | p99.9 | added p90 / p99 | rate | errors | sidecar mCPU | RSS MiB | closed-loop req/s | delivery p50 / p99 |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for r in results.iter().filter(|r| r.target != DEFAULTS) {
        let added = match baseline(results, r) {
            Some(b) if r.target != BASELINE => {
                format!("{:+.3} / {:+.3}", r.open.ms(0.9) - b.open.ms(0.9), r.open.ms(0.99) - b.open.ms(0.99))
            }
            _ => "–".into(),
        };
        let mcpu = match r.component_mcpu {
            Some(c) => format!("{:.0} (+{c:.0} in the component)", r.mcpu),
            None => format!("{:.0}", r.mcpu),
        };
        let delivery = match &r.delivery {
            Some(d) if r.delivered_all => format!("{:.3} / {:.3}", d.ms(0.5), d.ms(0.99)),
            Some(d) => format!("{:.3} / {:.3} (**{} not delivered**)", d.ms(0.5), d.ms(0.99), r.open.ok - d.ok),
            None => "–".into(),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {added} | {:.0} | {} | {mcpu} | {:.1} | {:.0} | {delivery} |",
            r.target,
            api_name(r.api),
            r.op.name(),
            r.open.ms(0.5),
            r.open.ms(0.9),
            r.open.ms(0.99),
            r.open.ms(0.999),
            r.open.rate(),
            r.open.errors + r.closed.errors,
            r.rss_mib,
            r.closed.rate(),
        );
    }
    if let Some(d) = results.iter().find(|r| r.target == DEFAULTS) {
        let _ = writeln!(
            out,
            "\nEmbedded defaults (`plughost run` with no components folder): ready in {:.0} ms (median of 5 starts), \
             RSS {:.1} MiB and {:.0} mCPU under the same HTTP get load on `statestore`.",
            d.closed.elapsed.as_secs_f64() * 1000.0,
            d.rss_mib,
            d.mcpu
        );
    }
    out
}

/// The memory paragraph: RSS with N idle WASM components, and per instance.
pub fn memory(memory: &Memory) -> String {
    let points: Vec<String> = memory
        .points
        .iter()
        .map(|p| {
            format!(
                "{} → {:.1} MiB ({:.1} MiB of it guest linear memory)",
                p.instances,
                p.rss_kib as f64 / 1024.0,
                p.guest_kib as f64 / 1024.0
            )
        })
        .collect();
    format!(
        "\nIdle WASM components (N `wasm-state` components, one instance each; RSS from `/proc/<pid>/smaps` a second \
         after ready): {}. Per instance: **{:.1} KiB beyond its guest memory** (plus {:.1} KiB of resident guest \
         linear memory).\n",
        points.join("; "),
        memory.host_kib_per_instance(),
        memory.guest_kib_per_instance()
    )
}

fn find<'a>(results: &'a [RunResult], target: &str, api: Api, op: Op) -> Option<&'a RunResult> {
    results.iter().find(|r| r.target == target && r.api == api && r.op == op)
}

/// One line per target of issue 15: met, or missed by how much.
pub fn targets(results: &[RunResult], memory: Option<&Memory>) -> String {
    let mut out = String::from("Targets (issue 15), checked on this run:\n\n");
    let mut check = |what: String, value: f64, limit: f64, at_most: bool| {
        let met = if at_most { value <= limit } else { value >= limit };
        let verdict = if met { "met".to_owned() } else { format!("**missed** by {:.2}", (value - limit).abs()) };
        let _ = writeln!(out, "- {what}: {value:.2} (target {} {limit}): {verdict}", if at_most { "≤" } else { "≥" });
    };
    let errors: u64 = results.iter().map(|r| r.open.errors + r.closed.errors).sum();
    check("errors over every row".into(), errors as f64, 0.0, true);
    if let Some(d) = results.iter().find(|r| r.target == DEFAULTS) {
        check("RSS with the embedded defaults (MiB)".into(), d.rss_mib, 25.0, true);
        check("start-up to ready with the defaults (ms)".into(), d.closed.elapsed.as_secs_f64() * 1000.0, 50.0, true);
    }
    if let Some(memory) = memory {
        check(
            "RSS per idle WASM instance beyond its guest memory (KiB)".into(),
            memory.host_kib_per_instance(),
            64.0,
            true,
        );
    }
    for api in [Api::Http, Api::Grpc] {
        for target in ["state.in-memory", "WASM state (wasm-state)"] {
            let Some(r) = find(results, target, api, Op::Get) else { continue };
            let Some(b) = baseline(results, r) else { continue };
            let name = format!("{target} get over {}", api_name(api));
            check(format!("{name}: added p90 (ms)"), r.open.ms(0.9) - b.open.ms(0.9), 0.05, true);
            check(format!("{name}: added p99 (ms)"), r.open.ms(0.99) - b.open.ms(0.99), 0.15, true);
            check(format!("{name}: sidecar mCPU at the fixed rate"), r.mcpu, 60.0, true);
        }
        if let (Some(sqlite), Some(memory)) =
            (find(results, "state.sqlite", api, Op::Get), find(results, "state.in-memory", api, Op::Get))
        {
            let name = format!("state.sqlite get over {}", api_name(api));
            check(format!("{name}: sidecar mCPU"), sqlite.mcpu, 100.0, true);
            check(
                format!("{name}: closed-loop rate ÷ in-memory's"),
                sqlite.closed.rate() / memory.closed.rate(),
                0.8,
                false,
            );
        }
        if let (Some(wasm), Some(memory)) =
            (find(results, "WASM state (wasm-state)", api, Op::Get), find(results, "state.in-memory", api, Op::Get))
        {
            let name = format!("WASM get over {}", api_name(api));
            check(
                format!("{name}: closed-loop rate ÷ in-memory's"),
                wasm.closed.rate() / memory.closed.rate(),
                0.8,
                false,
            );
        }
    }
    // Issue 15 measured the gRPC store at 249 mCPU and 11.3k req/s (HTTP
    // get) before; the targets are 60 % of that CPU and 1.5× that rate.
    if let Some(r) = find(results, "gRPC state (grpc-components, UDS)", Api::Http, Op::Get) {
        check("gRPC store get over HTTP: sidecar mCPU (issue's figure 249)".into(), r.mcpu, 0.6 * 249.0, true);
        check(
            "gRPC store get over HTTP: closed-loop req/s (issue's figure 11.3k)".into(),
            r.closed.rate(),
            1.5 * 11_300.0,
            false,
        );
    }
    out
}

/// Replaces the part of README.md between the load-bench markers.
pub fn write_readme(text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).expect("reading README.md");
    let (start, end) = ("<!-- load-bench:start -->", "<!-- load-bench:end -->");
    let (Some(a), Some(b)) = (readme.find(start), readme.find(end)) else {
        eprintln!("README.md has no {start} / {end} markers; not written");
        return;
    };
    let updated = format!("{}{start}\n{text}\n{}", &readme[..a], &readme[b..]);
    std::fs::write(&path, updated).expect("writing README.md");
    println!("README.md updated");
}
