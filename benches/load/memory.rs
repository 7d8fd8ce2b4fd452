//! Memory per idle WASM component instance, beyond its guest memory (issue
//! 15, item 3; target ≤ 64 KiB).
//!
//! `plughost run` starts with N components of one small WASM type (the
//! `wasm-state` guest, one long-lived instance each) for N = 1, 50 and 200;
//! once it is ready and has been idle for a second, its RSS and the resident
//! part of the guests' linear memories are read from `/proc/<pid>/smaps`.
//! The figure is the growth of RSS minus guest memory from the smallest N to
//! the largest, divided by the instances added: everything plughost holds
//! per instance (store, instance, WASI context, tables, registry entry,
//! tasks), and none of what the guest itself keeps in its memory.
//!
//! A linear memory is recognised by its layout, the same with or without the
//! pooling allocator: its accessible pages (anonymous, or wasmtime's
//! copy-on-write `memfd:wasm-memory-image`) are followed at once by the rest
//! of its reservation, an inaccessible (`---p`) mapping of at least 1 GiB.
//! Nothing else in the process is laid out that way (the table pool, thread
//! stacks and fiber stacks have guard pages of a few KiB or MiB).

use std::path::Path;
use std::time::Duration;

use crate::Options;
use crate::procs::{components_target, start_plughost};

/// RSS of plughost with `instances` idle WASM components.
#[derive(Debug, Clone, Copy)]
pub struct Point {
    pub instances: usize,
    pub rss_kib: u64,
    /// The resident part of the guests' linear memories.
    pub guest_kib: u64,
}

impl Point {
    /// What the host holds: RSS minus guest linear memory.
    pub fn host_kib(&self) -> u64 {
        self.rss_kib.saturating_sub(self.guest_kib)
    }
}

/// The points of one run, smallest N first.
#[derive(Debug, Clone)]
pub struct Memory {
    pub points: Vec<Point>,
}

impl Memory {
    /// KiB per instance beyond its guest memory, from the first point to the last.
    pub fn host_kib_per_instance(&self) -> f64 {
        let (first, last) = (self.points[0], self.points[self.points.len() - 1]);
        (last.host_kib() as f64 - first.host_kib() as f64) / (last.instances - first.instances) as f64
    }

    /// KiB of resident guest memory per instance, over the same span.
    pub fn guest_kib_per_instance(&self) -> f64 {
        let (first, last) = (self.points[0], self.points[self.points.len() - 1]);
        (last.guest_kib as f64 - first.guest_kib as f64) / (last.instances - first.instances) as f64
    }
}

/// Measures N = 1, 50, 200 (1, 10, 40 in quick mode) with the `wasm-state`
/// guest [`crate::procs::run_all`] built.
pub fn measure(options: &Options) -> Memory {
    println!("measuring memory per idle WASM component instance ...");
    let guest = components_target().join("wasm32-wasip2/release/wasm_state.wasm");
    let dir = tempfile::Builder::new().prefix("ph-memory-").tempdir_in("/tmp").expect("tempdir");
    let counts: &[usize] = if options.quick { &[1, 10, 40] } else { &[1, 50, 200] };
    let points = counts.iter().map(|&n| point(n, &guest, &dir.path().join(format!("n{n}")))).collect();
    Memory { points }
}

fn point(instances: usize, guest: &Path, dir: &Path) -> Point {
    let (wasm, yaml, data) = (dir.join("wasm"), dir.join("components"), dir.join("data"));
    for d in [&wasm, &yaml] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(guest, wasm.join("kv.wasm")).unwrap();
    let documents: Vec<String> = (0..instances)
        .map(|i| {
            format!(
                "apiVersion: dapr.io/v1alpha1\nkind: Component\nmetadata:\n  name: kv{i}\nspec:\n  type: state.kv\n  \
                 version: v1\n  metadata: []\n"
            )
        })
        .collect();
    std::fs::write(yaml.join("components.yaml"), documents.join("---\n")).unwrap();
    let args: Vec<&std::ffi::OsStr> = vec![
        "--components".as_ref(),
        yaml.as_os_str(),
        "--wasm-dir".as_ref(),
        wasm.as_os_str(),
        "--data-dir".as_ref(),
        data.as_os_str(),
    ];
    let (process, ..) = start_plughost(&args);
    std::thread::sleep(Duration::from_secs(1));
    let smaps = std::fs::read_to_string(format!("/proc/{}/smaps", process.pid())).expect("reading smaps");
    let (rss_kib, guest_kib) = resident(&smaps);
    let point = Point { instances, rss_kib, guest_kib };
    println!(
        "  {instances} WASM components: RSS {rss_kib} KiB, guest linear memory {guest_kib} KiB, host {} KiB",
        point.host_kib()
    );
    point
}

/// One mapping of `/proc/<pid>/smaps`.
struct Mapping {
    start: u64,
    end: u64,
    inaccessible: bool,
    rss_kib: u64,
}

/// (all resident KiB, resident KiB of WASM linear memories) of an smaps text.
fn resident(smaps: &str) -> (u64, u64) {
    let mut mappings: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or_default();
        if let Some((start, end)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
        {
            let inaccessible = fields.next() == Some("---p");
            mappings.push(Mapping { start, end, inaccessible, rss_kib: 0 });
        } else if first == "Rss:"
            && let Some(last) = mappings.last_mut()
        {
            last.rss_kib = fields.next().and_then(|v| v.parse().ok()).unwrap_or(0);
        }
    }
    mappings.sort_by_key(|m| m.start);
    let total = mappings.iter().map(|m| m.rss_kib).sum();
    // Accessible mappings since the last gap or inaccessible one; they are a
    // linear memory's pages if its reservation follows at once.
    let (mut guest, mut pending, mut previous_end) = (0, 0, 0);
    for m in &mappings {
        if m.start != previous_end {
            pending = 0;
        }
        if m.inaccessible {
            if m.end - m.start >= 1 << 30 {
                guest += pending;
            }
            pending = 0;
        } else {
            pending += m.rss_kib;
        }
        previous_end = m.end;
    }
    (total, guest)
}
