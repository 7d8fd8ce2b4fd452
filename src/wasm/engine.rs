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

/// What the pooling allocator holds, sized together: every limit is the
/// number of component instances times what one component instance may
/// take, so the pool really holds [`Pool::COMPONENT_INSTANCES`] instances of
/// the largest component it accepts (wasmtime's defaults of 1000 core
/// instances, memories and tables each capped plughost at ~330 instances of
/// a Rust component, which has three core instances).
#[derive(Debug)]
pub struct Pool {
    used: std::sync::Mutex<Slots>,
}

/// Pool slots: per component instance, or in use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slots {
    /// Component instances.
    pub component_instances: u32,
    /// Core module instances.
    pub core_instances: u32,
    /// Linear memories.
    pub memories: u32,
    /// Tables.
    pub tables: u32,
}

impl Pool {
    /// Component instances the pool holds (every `wasm.instances` of every
    /// configured component together).
    pub const COMPONENT_INSTANCES: u32 = 1000;
    /// Most a single component instance may take.
    pub const PER_COMPONENT: Slots = Slots { component_instances: 1, core_instances: 16, memories: 2, tables: 8 };

    /// The pool's totals.
    pub const fn total() -> Slots {
        Self::total_for(Self::COMPONENT_INSTANCES)
    }

    /// The totals of a pool of `n` component instances.
    const fn total_for(n: u32) -> Slots {
        let per = Self::PER_COMPONENT;
        Slots {
            component_instances: n,
            core_instances: n * per.core_instances,
            memories: n * per.memories,
            tables: n * per.tables,
        }
    }

    fn new() -> Self {
        Self { used: std::sync::Mutex::new(Slots::default()) }
    }

    /// Reserves `count` instances of a component that takes `each`, or says
    /// why they do not fit; released when the reservation is dropped.
    pub fn reserve(&'static self, component: &str, count: u32, each: Slots) -> Result<Reservation, String> {
        let per = Self::PER_COMPONENT;
        for (what, needs, cap) in [
            ("core instances", each.core_instances, per.core_instances),
            ("memories", each.memories, per.memories),
            ("tables", each.tables, per.tables),
        ] {
            if needs > cap {
                return Err(format!(
                    "component `{component}` has {needs} {what} per instance; plughost's pool allows {cap}"
                ));
            }
        }
        let wanted = Slots {
            component_instances: count,
            core_instances: count.saturating_mul(each.core_instances),
            memories: count.saturating_mul(each.memories),
            tables: count.saturating_mul(each.tables),
        };
        let total = Self::total();
        let mut used = self.used.lock().expect("pool lock");
        for (what, used, wanted, total) in [
            ("component instances", used.component_instances, wanted.component_instances, total.component_instances),
            ("core instances", used.core_instances, wanted.core_instances, total.core_instances),
            ("memories", used.memories, wanted.memories, total.memories),
            ("tables", used.tables, wanted.tables, total.tables),
        ] {
            if used.saturating_add(wanted) > total {
                return Err(format!(
                    "component `{component}` needs {wanted} {what} for {count} instance(s) (wasm.instances), but \
                     the WASM instance pool has {} of {total} left: lower wasm.instances, or run fewer WASM \
                     components in this process",
                    total - used
                ));
            }
        }
        used.component_instances += wanted.component_instances;
        used.core_instances += wanted.core_instances;
        used.memories += wanted.memories;
        used.tables += wanted.tables;
        Ok(Reservation { pool: self, slots: wanted })
    }
}

/// Pool slots held by one configured component; given back on drop.
#[derive(Debug)]
pub struct Reservation {
    pool: &'static Pool,
    slots: Slots,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut used = self.pool.used.lock().expect("pool lock");
        used.component_instances -= self.slots.component_instances;
        used.core_instances -= self.slots.core_instances;
        used.memories -= self.slots.memories;
        used.tables -= self.slots.tables;
    }
}

/// Whether `error` is the pooling allocator running out of slots (a
/// capacity problem: unavailable for now, not a fault of the component).
pub fn is_pool_exhausted(error: &wasmtime::Error) -> bool {
    error.is::<wasmtime::PoolConcurrencyLimitError>()
        || error.chain().any(|e| e.downcast_ref::<wasmtime::PoolConcurrencyLimitError>().is_some())
}

/// The shared engine and linker.
pub struct Runtime {
    /// Compiles and runs every component.
    pub engine: Engine,
    /// WASI p2 (deny-by-default contexts) plus plughost's `log` import.
    pub linker: Linker<HostState>,
    /// Whether instances come from the pooling allocator.
    pub pooling: bool,
    /// The pool's accounting (also kept without pooling: the same limits
    /// then bound memory).
    pub pool: Pool,
}

fn config(pooling: bool, fuel: bool) -> Config {
    config_sized(pooling, fuel, Pool::COMPONENT_INSTANCES)
}

/// [`config`] with a pool of `instances` component instances.
fn config_sized(pooling: bool, fuel: bool, instances: u32) -> Config {
    let mut config = Config::new();
    config.consume_fuel(fuel);
    config.concurrency_support(false);
    config.wasm_component_model_async(false);
    config.epoch_interruption(true);
    config.max_wasm_stack(512 << 10);
    // Pool slots are reused across components: zero a fiber stack before
    // its next user (defence in depth; memories and tables are zeroed anyway).
    config.async_stack_zeroing(true);
    if pooling {
        let mut pool = PoolingAllocationConfig::new();
        let (total, per) = (Pool::total_for(instances), Pool::PER_COMPONENT);
        pool.total_component_instances(total.component_instances);
        pool.total_core_instances(total.core_instances);
        pool.total_memories(total.memories);
        pool.total_tables(total.tables);
        pool.total_stacks(total.component_instances);
        pool.max_core_instances_per_component(per.core_instances);
        pool.max_memories_per_component(per.memories);
        pool.max_tables_per_component(per.tables);
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
    Ok(Runtime { engine, linker, pooling, pool: Pool::new() })
}

/// An engine configured like plughost's whose pool holds a single
/// component instance, so every instance reuses the same slot (for the
/// tests that one tenant never sees another's data).
#[cfg(test)]
pub(crate) fn one_slot_engine() -> Engine {
    Engine::new(&config_sized(true, false, 1)).expect("an engine with a one-instance pool")
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
