//! T2 of the performance guide: the host tax on the WASM path.
//!
//! State get/set of 64 B and 1 KiB values on the `wasm-state` guest, three
//! ways, interleaved in one process so the ratios come from one run:
//!
//! * `plughost`: through the registry (`Arc<dyn StateStore>` →
//!   `WasmStateStore` → instance mutex, deadline, guest call);
//! * `direct`: the same component called through its own bindgen bindings
//!   on an engine with the same settings, no plughost in between;
//! * `native`: the built-in `state.in-memory`, for scale.
//!
//! Run: `cargo bench --bench wasm_state`.

mod common;

use std::sync::Arc;

use common::{Samples, sample};
use plughost::config::ComponentSpec;
use plughost::kinds::state::{GetRequest, SetRequest, StateStore};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod direct {
    wasmtime::component::bindgen!({ path: "wit", world: "state-component", exports: { default: async } });
}
use direct::exports::plughost::components::state as wit;

struct Bare {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for Bare {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView { ctx: &mut self.wasi, table: &mut self.table }
    }
}

impl direct::plughost::components::log::Host for Bare {
    fn log(&mut self, _: direct::plughost::components::log::Level, _: String) {}
}

/// The guest, instantiated and initialised without plughost, on an engine
/// configured as plughost's is (concurrency support off, epochs on).
async fn direct_instance(path: &std::path::Path) -> (Store<Bare>, direct::StateComponent) {
    let mut config = Config::new();
    config.concurrency_support(false);
    config.wasm_component_model_async(false);
    config.epoch_interruption(true);
    let engine = Engine::new(&config).unwrap();
    let component = Component::from_file(&engine, path).unwrap();
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
    direct::plughost::components::log::add_to_linker::<Bare, HasSelf<Bare>>(&mut linker, |s| s).unwrap();
    let mut store = Store::new(&engine, Bare { wasi: WasiCtx::builder().build(), table: ResourceTable::new() });
    store.set_epoch_deadline(u64::MAX / 2);
    let pre = direct::StateComponentPre::new(linker.instantiate_pre(&component).unwrap()).unwrap();
    let bindings = pre.instantiate_async(&mut store).await.unwrap();
    bindings.plughost_components_lifecycle().call_init(&mut store, &Vec::new()).await.unwrap().unwrap();
    (store, bindings)
}

fn options() -> wit::StateOptions {
    wit::StateOptions { concurrency: wit::Concurrency::Unspecified, consistency: wit::Consistency::Unspecified }
}

const BATCH: u32 = 200;
const SAMPLES: usize = 300;
const WARMUP: usize = 20;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let path = common::guest("wasm-state");
    let wasm_dir = tempfile::tempdir().unwrap();
    std::fs::copy(&path, wasm_dir.path().join("bench.wasm")).unwrap();
    let data = tempfile::tempdir().unwrap();
    let host = plughost::Host::builder()
        .data_dir(data.path())
        .wasm_dir(wasm_dir.path())
        .component(ComponentSpec::new("wasm", "state.bench"))
        .component(ComponentSpec::new("native", "state.in-memory"))
        .build()
        .await
        .expect("starting plughost");
    let plughost_store: Arc<dyn StateStore> = host.state("wasm").unwrap();
    let native_store: Arc<dyn StateStore> = host.state("native").unwrap();
    let (mut store, bindings) = direct_instance(&path).await;
    let state = bindings.plughost_components_state();

    println!("wasm state store, per call (batches of {BATCH}, {SAMPLES} samples after {WARMUP} warm-up)");
    let mut table = Vec::new();
    for size in [64usize, 1024] {
        let value = vec![0xA5u8; size];
        let key = format!("key-{size}");
        for op in ["set", "get"] {
            let mut runs = [
                Samples::new(format!("{op} {size:>4} B  plughost (registry -> wasm)")),
                Samples::new(format!("{op} {size:>4} B  direct (bindgen, no plughost)")),
                Samples::new(format!("{op} {size:>4} B  native state.in-memory")),
            ];
            for round in 0..WARMUP + SAMPLES {
                // Interleave the three paths round by round.
                let mut scratch = Samples::new("");
                for (i, samples) in runs.iter_mut().enumerate() {
                    let target = if round < WARMUP { &mut scratch } else { samples };
                    match (i, op) {
                        (0, "set") => {
                            sample(target, BATCH, || async {
                                plughost_store.set(SetRequest::new(&key, value.clone())).await.unwrap()
                            })
                            .await
                        }
                        (0, _) => {
                            sample(target, BATCH, || async {
                                std::hint::black_box(plughost_store.get(GetRequest::new(&key)).await.unwrap());
                            })
                            .await
                        }
                        (1, "set") => {
                            let started = std::time::Instant::now();
                            for _ in 0..BATCH {
                                let request = wit::SetRequest {
                                    key: key.clone(),
                                    value: value.clone(),
                                    etag: None,
                                    metadata: Vec::new(),
                                    options: options(),
                                    content_type: None,
                                };
                                state.call_set(&mut store, &request).await.unwrap().unwrap();
                            }
                            target.per_call.push(started.elapsed() / BATCH);
                        }
                        (1, _) => {
                            let started = std::time::Instant::now();
                            for _ in 0..BATCH {
                                let request = wit::GetRequest {
                                    key: key.clone(),
                                    metadata: Vec::new(),
                                    consistency: wit::Consistency::Unspecified,
                                };
                                std::hint::black_box(state.call_get(&mut store, &request).await.unwrap().unwrap());
                            }
                            target.per_call.push(started.elapsed() / BATCH);
                        }
                        (_, "set") => {
                            sample(target, BATCH, || async {
                                native_store.set(SetRequest::new(&key, value.clone())).await.unwrap()
                            })
                            .await
                        }
                        (_, _) => {
                            sample(target, BATCH, || async {
                                std::hint::black_box(native_store.get(GetRequest::new(&key)).await.unwrap());
                            })
                            .await
                        }
                    }
                }
            }
            for samples in &runs {
                samples.report();
            }
            let ratio = runs[0].percentile(0.5).as_secs_f64() / runs[1].percentile(0.5).as_secs_f64();
            println!("  -> plughost / direct p50 ratio: {ratio:.2}x (target <= 1.3x)\n");
            table.push((op, size, runs[0].percentile(0.5), runs[1].percentile(0.5), runs[2].percentile(0.5), ratio));
        }
    }
    println!("| op | value | plughost p50 | direct p50 | native p50 | plughost / direct |");
    println!("|---|---|---|---|---|---|");
    for (op, size, p, d, n, ratio) in table {
        let us = |x: std::time::Duration| x.as_nanos() as f64 / 1000.0;
        println!("| {op} | {size} B | {:.2} µs | {:.2} µs | {:.3} µs | {ratio:.2}× |", us(p), us(d), us(n));
    }
    host.shutdown().await;
}
