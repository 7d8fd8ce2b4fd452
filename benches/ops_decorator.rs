//! The operator decorator's cost per call (`src/ops/observe.rs`: the
//! enable switch, per-operation counters and latency histogram): `get` on
//! `state.in-memory` as the host registers it (decorated) against the same
//! type used directly, interleaved in one run, as a ratio.
//!
//! ```sh
//! cargo bench --bench ops_decorator
//! ```
use std::sync::Arc;
use std::time::Instant;

use plughost::config::ComponentSpec;
use plughost::kinds::Metadata;
use plughost::kinds::state::{GetRequest, MemoryStateStore, SetRequest, StateStore};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(dir.path())
        .component(ComponentSpec::new("kv", "state.in-memory"))
        .build()
        .await
        .unwrap();
    let wrapped = host.state("kv").unwrap();
    let plain: Arc<dyn StateStore> = Arc::new(MemoryStateStore::new());
    plain.init(Metadata::new()).await.unwrap();
    for s in [&wrapped, &plain] {
        s.set(SetRequest::new("k", "v")).await.unwrap();
    }
    const N: u32 = 200_000;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..15 {
        for (store, out) in [(&plain, &mut a), (&wrapped, &mut b)] {
            let t = Instant::now();
            for _ in 0..N {
                std::hint::black_box(store.get(GetRequest::new("k")).await.unwrap());
            }
            out.push(t.elapsed().as_nanos() as f64 / f64::from(N));
        }
    }
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (ma, mb) = (a[a.len() / 2], b[b.len() / 2]);
    println!(
        "get on state.in-memory, median of 15 rounds of {N}: plain {ma:.0} ns, decorated {mb:.0} ns, +{:.0} ns ({:.2}x)",
        mb - ma,
        mb / ma
    );
}
