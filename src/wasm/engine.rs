//! The one `Engine` and `Linker` every WASM component in the process shares,
//! with the settings the performance guide measured: component-model
//! concurrency support off (sync calls 2-4x faster), the pooling allocator
//! (instantiation in microseconds, so a trapped instance is cheap to
//! replace), and epoch interruption driven by one ticker thread.

use std::sync::OnceLock;
use std::time::Duration;

use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

use super::host_state::HostState;

/// How often the epoch advances: a busy guest yields to tokio this often, and
/// traps at the first tick after its call's (wall-clock) deadline.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Largest linear memory any component may be granted (`wasm.maxMemory`).
pub const MAX_MEMORY_CAP: usize = 4 << 30;

/// The shared engine and linker.
pub struct Runtime {
    /// Compiles and runs every component.
    pub engine: Engine,
    /// WASI p2 (deny-by-default contexts) plus plughost's `log` import.
    pub linker: Linker<HostState>,
    /// Whether instances come from the pooling allocator.
    pub pooling: bool,
}

fn config(pooling: bool, fuel: bool) -> Config {
    let mut config = Config::new();
    config.consume_fuel(fuel);
    config.concurrency_support(false);
    config.wasm_component_model_async(false);
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        pool.total_component_instances(1000);
        pool.max_memory_size(MAX_MEMORY_CAP);
        // Interpreters compiled to WASM (CPython via componentize-py) have
        // large function tables and several core modules.
        pool.table_elements(200_000);
        pool.max_tables_per_module(4);
        pool.max_memories_per_module(2);
        pool.max_core_instance_size(8 << 20);
        pool.max_component_instance_size(8 << 20);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn build(fuel: bool) -> Result<Runtime, String> {
    let (engine, pooling) = match Engine::new(&config(true, fuel)) {
        Ok(engine) => (engine, true),
        Err(e) => {
            // Pooling reserves address space up front; some hosts refuse.
            tracing::warn!("pooling allocator unavailable ({e}); instantiating on demand");
            (Engine::new(&config(false, fuel)).map_err(|e| format!("creating the WASM engine: {e}"))?, false)
        }
    };
    let mut linker = Linker::new(&engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("linking WASI: {e}"))?;
    super::bindings::log::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(&mut linker, |s| s)
        .map_err(|e| format!("linking plughost:components/log: {e}"))?;
    let ticker = engine.weak();
    std::thread::Builder::new()
        .name("plughost-epoch".into())
        .spawn(move || {
            while let Some(engine) = ticker.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map_err(|e| format!("starting the epoch ticker: {e}"))?;
    Ok(Runtime { engine, linker, pooling })
}

/// The process-wide runtime, built on first use.
pub fn runtime() -> anyhow::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME.get_or_init(|| build(false)).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}

/// A second runtime whose engine meters fuel, built only when a component
/// asks for `wasm.fuel`. Fuel accounting slows every call by 20-35 %, so the
/// components that do not ask for it never pay for it.
pub fn fuel_runtime() -> anyhow::Result<&'static Runtime> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME.get_or_init(|| build(true)).as_ref().map_err(|e| anyhow::anyhow!("{e}"))
}
