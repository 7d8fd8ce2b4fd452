//! Running one configured WASM component: its instance(s), the deadline and
//! memory cap of every call, and recovery from traps.
//!
//! A component keeps its state in guest memory, so by default it gets **one
//! long-lived instance** and its calls are serialized (a mutex).
//!
//! A running guest yields to tokio on every epoch tick (10 ms), and traps at
//! the first tick after its call's deadline. A call that yields (or waits in
//! a host call) continues on plughost's own guest runtime, at a lower
//! priority, so a busy guest holds the caller's thread (the sidecar API's) for
//! at most one tick (see [`super::offload`]). Deadlines are wall-clock and start
//! when the call is made: the wait for a busy instance counts, so a call
//! queued behind runaway calls fails at its own deadline instead of after
//! theirs, and at most [`MAX_QUEUED_CALLS`] calls wait per component (one
//! more fails at once with `ResourceExhausted`). A call whose caller goes away while the
//! guest is suspended (the future is dropped) leaves the store mid-call;
//! the slot guard then drops that instance, so the next call gets a fresh one
//! instead of wasmtime's "cannot enter component instance". A component
//! that declares `wasm.stateless: "true"` may get `wasm.instances: N`
//! instances for parallel calls. Every call runs under an epoch deadline
//! (`wasm.callTimeout`) and a memory cap (`wasm.maxMemory`), plus a host-side
//! timeout for a guest blocked inside a host call, which epochs cannot
//! interrupt. A trap (deadline, stack overflow, memory exhaustion, panic)
//! fails only that call, with an error naming the component and the cause;
//! the store is then poisoned, so the instance is dropped, and the next call
//! gets a fresh instance, re-initialised with the same metadata.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tokio::sync::{Mutex, OwnedMutexGuard};
use wasmtime::component::InstancePre;
use wasmtime::{Store, Trap, UpdateDeadline};

use super::LoadedComponent;
use super::bindings::WitError;
use super::engine::{Reservation, Slots, is_pool_exhausted};
use super::exports::Exports;
use super::host_state::HostState;
use super::settings::WasmSettings;
use crate::kinds::{ComponentError, ComponentKind, Metadata};

/// Extra time the host-side timeout allows beyond the epoch deadline, so a
/// guest running WASM code is stopped by its epoch (a clean trap) and the
/// host timeout only catches guests stuck in a host call.
const HOST_TIMEOUT_GRACE: Duration = Duration::from_millis(500);

/// Most calls one component may have waiting for a busy instance; one more
/// fails at once with [`ComponentError::ResourceExhausted`] (503 / gRPC
/// `RESOURCE_EXHAUSTED`) instead of queueing.
pub const MAX_QUEUED_CALLS: usize = 256;

/// What the host calls on a guest: implemented by [`Exports`], one
/// instance with every interface the component exports.
pub(crate) trait Guest: Sized + Send + Sync + 'static {
    /// The typed `InstancePre` of the world (export types checked once).
    type Pre: Clone + Send + Sync + 'static;

    /// Checks that `pre` exports the world with the right types.
    fn pre(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Pre>;

    /// A new instance in `store`.
    fn instantiate<'a>(pre: &'a Self::Pre, store: &'a mut Store<HostState>) -> BoxFuture<'a, wasmtime::Result<Self>>;

    /// The world's `lifecycle.init`.
    #[allow(clippy::ptr_arg, reason = "the generated `call_init` takes `&Vec`")]
    fn init<'a>(&'a self, store: &'a mut Store<HostState>, metadata: &'a Vec<(String, String)>) -> Call<'a, ()>;

    /// The world's `lifecycle.features`.
    fn features<'a>(&'a self, store: &'a mut Store<HostState>) -> Call<'a, Vec<String>>;

    /// The world's `lifecycle.ping`.
    fn ping<'a>(&'a self, store: &'a mut Store<HostState>) -> Call<'a, ()>;
}

/// Validates at load time that `pre` exports every interface of `kinds`
/// (and the lifecycle), so a component missing one fails then and not on
/// its first call.
pub(crate) fn check_exports(pre: &InstancePre<HostState>, kinds: &[ComponentKind]) -> anyhow::Result<()> {
    let exports = <Exports as Guest>::pre(pre).map_err(|e| anyhow::anyhow!("exports with the wrong shape: {e:#}"))?;
    for kind in kinds {
        if !exports.has(*kind) {
            anyhow::bail!("does not export {}", super::export_name(*kind));
        }
    }
    Ok(())
}

/// Runs a pump task until it ends on its own or `closing` turns true (the
/// component was closed at shutdown); dropping the pump ends its stream.
pub(crate) fn spawn_until_closed(
    closing: &tokio::sync::watch::Sender<bool>,
    pump: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let mut closing = closing.subscribe();
    tokio::spawn(async move {
        tokio::select! {
            () = pump => {}
            _ = closing.wait_for(|closed| *closed) => {}
        }
    });
}

/// `tokio::time::timeout_at` that only registers its timer if the call does
/// not finish on its first poll. Most guest calls never suspend, and a wheel
/// entry per call would be a measurable part of a microsecond call; a call
/// that suspends (a host call, an epoch yield) gets the timer then, still
/// ending at the call's own deadline.
struct LazyTimeout<'a, T> {
    call: Call<'a, T>,
    until: Instant,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<'a, T> LazyTimeout<'a, T> {
    fn new(call: Call<'a, T>, until: Instant) -> Self {
        Self { call, until, timer: None }
    }
}

/// The call's deadline passed while it was suspended.
struct Elapsed;

impl<T> std::future::Future for LazyTimeout<'_, T> {
    type Output = Result<wasmtime::Result<Result<T, WitError>>, Elapsed>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<Self::Output> {
        use std::task::Poll;
        if let Poll::Ready(outcome) = self.call.as_mut().poll(cx) {
            return Poll::Ready(Ok(outcome));
        }
        let until = self.until.into();
        let timer = self.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(until)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Runs `call`, turning a panic (of a host function called by the guest)
/// into its message.
async fn contained<F: std::future::Future>(call: F) -> Result<F::Output, String> {
    use futures::FutureExt as _;
    std::panic::AssertUnwindSafe(call).catch_unwind().await.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned())
    })
}

/// The `cause` label of an instance dropped after `trap`.
fn recycle_cause(trap: &wasmtime::Error) -> &'static str {
    match trap.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => "deadline",
        Some(Trap::OutOfFuel) => "fuel",
        _ => "trap",
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// An instance slot held for one call. If the call's future is dropped
/// before the call finished (its caller went away), the instance is dropped
/// too: its store is stuck mid-call and could not be entered again.
struct SlotGuard<G> {
    slot: OwnedMutexGuard<Option<Live<G>>>,
    finished: bool,
}

impl<G> Drop for SlotGuard<G> {
    fn drop(&mut self) {
        if !self.finished {
            *self.slot = None;
        }
    }
}

struct Live<G> {
    store: Store<HostState>,
    guest: G,
}

/// One instance slot; a call owns it (an owned guard) while it runs, so the
/// call can move to the guest runtime (see [`super::offload`]).
type Slot<G> = Arc<Mutex<Option<Live<G>>>>;

struct Configured<G: Guest> {
    name: String,
    engine: wasmtime::Engine,
    /// This component's slots in the instance pool.
    _reservation: Reservation,
    settings: WasmSettings,
    guest_metadata: Vec<(String, String)>,
    pre: G::Pre,
    slots: Vec<Slot<G>>,
}

/// The instance(s) of one configured component.
pub(crate) struct Instances<G: Guest> {
    name: String,
    loaded: Arc<LoadedComponent>,
    configured: OnceLock<Arc<Configured<G>>>,
    next: AtomicUsize,
    /// Calls waiting for a busy instance now.
    waiting: AtomicUsize,
}

/// Counts one waiting call while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A call into the guest: borrows the instance and its store for the call.
pub(crate) type Call<'a, T> = BoxFuture<'a, wasmtime::Result<Result<T, WitError>>>;

impl<G: Guest> Instances<G> {
    pub(crate) fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self {
            name: name.to_owned(),
            loaded,
            configured: OnceLock::new(),
            next: AtomicUsize::new(0),
            waiting: AtomicUsize::new(0),
        }
    }

    /// The guest's `lifecycle.features`.
    pub(crate) async fn features(&self) -> Result<Vec<String>, ComponentError> {
        self.call("features", |g, s| g.features(s)).await
    }

    /// The guest's `lifecycle.ping`.
    pub(crate) async fn ping(&self) -> Result<(), ComponentError> {
        self.call("ping", |g, s| g.ping(s)).await
    }

    /// The configured name, for errors.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    /// The component's settings (after `init`).
    pub(crate) fn settings(&self) -> Option<&WasmSettings> {
        self.configured.get().map(|c| &c.settings)
    }

    /// Reads the settings from `metadata`, then creates and initialises every
    /// instance, so a component that cannot start fails here.
    pub(crate) async fn init(&self, metadata: Metadata) -> Result<(), ComponentError> {
        let (settings, guest) = WasmSettings::from_metadata(metadata)?;
        let fuel = settings.fuel.is_some();
        let runtime = if fuel { super::fuel_runtime() } else { super::runtime() };
        let runtime = runtime.map_err(|e| ComponentError::internal(format!("{e:#}")))?;
        let shape = &self.loaded.shape;
        let each = Slots {
            component_instances: 1,
            core_instances: to_u32(shape.core_instances),
            memories: to_u32(shape.memories),
            tables: to_u32(shape.tables),
        };
        let reservation =
            runtime.pool.reserve(&self.name, to_u32(settings.instances), each).map_err(ComponentError::invalid)?;
        let untyped = self.loaded.pre(fuel).await.map_err(|e| ComponentError::internal(format!("{e:#}")))?;
        let engine = untyped.component().engine().clone();
        let pre = G::pre(untyped).map_err(|e| ComponentError::internal(format!("{e:#}")))?;
        let slots = (0..settings.instances).map(|_| Arc::new(Mutex::new(None))).collect();
        let guest_metadata = super::to_wit(&guest);
        let name = self.name.clone();
        let configured = Configured { name, engine, _reservation: reservation, settings, guest_metadata, pre, slots };
        self.configured.set(Arc::new(configured)).map_err(|_| ComponentError::internal("init called twice"))?;
        let configured = self.configured.get().expect("just set");
        for slot in &configured.slots {
            let deadline = Instant::now() + configured.settings.call_timeout;
            *slot.lock().await = Some(configured.fresh(deadline).await?);
        }
        Ok(())
    }

    /// Runs `call` on an instance (replacing a dropped one first), under the
    /// deadline, which starts now: waiting for a busy instance counts, and
    /// the call is refused if too many are waiting already. Any trap drops
    /// the instance.
    pub(crate) async fn call<T: Send + 'static>(
        &self,
        operation: &'static str,
        call: impl for<'a> FnOnce(&'a G, &'a mut Store<HostState>) -> Call<'a, T> + Send + 'static,
    ) -> Result<T, ComponentError> {
        self.run(operation, true, call).await
    }

    /// [`Self::call`] for the host's own bookkeeping (acks, pulls, closing a
    /// reader): it waits for the instance as long as it takes, is never
    /// refused, and its deadline starts once it has the instance, because
    /// a lost ack would strand a message in the guest.
    pub(crate) async fn call_internal<T: Send + 'static>(
        &self,
        operation: &'static str,
        call: impl for<'a> FnOnce(&'a G, &'a mut Store<HostState>) -> Call<'a, T> + Send + 'static,
    ) -> Result<T, ComponentError> {
        self.run(operation, false, call).await
    }

    async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        bounded: bool,
        call: impl for<'a> FnOnce(&'a G, &'a mut Store<HostState>) -> Call<'a, T> + Send + 'static,
    ) -> Result<T, ComponentError> {
        let configured = self
            .configured
            .get()
            .ok_or_else(|| ComponentError::internal(format!("component `{}` used before init", self.name)))?;
        let timeout = configured.settings.call_timeout;
        let started = Instant::now();
        let slot = if bounded {
            self.pick(configured, started + timeout).await?
        } else {
            self.pick_unbounded(configured).await
        };
        // A bounded call's deadline counts from its start, an internal one's
        // from now.
        let deadline = if bounded { started } else { Instant::now() } + timeout;
        let slot = SlotGuard { slot, finished: false };
        super::offload::run(Box::pin(configured.clone().execute(slot, operation, deadline, call))).await
    }

    /// A free instance if there is one (`Ok`), else the index of the next
    /// in turn (`Err`).
    fn try_pick(&self, configured: &Configured<G>) -> Result<OwnedMutexGuard<Option<Live<G>>>, usize> {
        let n = configured.slots.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        for i in 0..n {
            if let Ok(guard) = configured.slots[(start + i) % n].clone().try_lock_owned() {
                return Ok(guard);
            }
        }
        Err(start % n)
    }

    /// A free instance, or the next in turn once it is free, however long.
    async fn pick_unbounded(&self, configured: &Configured<G>) -> OwnedMutexGuard<Option<Live<G>>> {
        match self.try_pick(configured) {
            Ok(guard) => guard,
            Err(next) => configured.slots[next].clone().lock_owned().await,
        }
    }

    /// A free instance if there is one, else the next in turn once it is
    /// free: at most until `deadline`, and only if fewer than
    /// [`MAX_QUEUED_CALLS`] calls are waiting already.
    async fn pick(
        &self,
        configured: &Configured<G>,
        deadline: Instant,
    ) -> Result<OwnedMutexGuard<Option<Live<G>>>, ComponentError> {
        let next = match self.try_pick(configured) {
            Ok(guard) => return Ok(guard),
            Err(next) => next,
        };
        let _waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= MAX_QUEUED_CALLS {
            return Err(ComponentError::ResourceExhausted {
                component: self.name.clone(),
                reason: format!("{MAX_QUEUED_CALLS} calls are already waiting for an instance"),
            });
        }
        match tokio::time::timeout_at(deadline.into(), configured.slots[next].clone().lock_owned()).await {
            Ok(guard) => Ok(guard),
            Err(_) => Err(deadline_error(&self.name, configured.settings.call_timeout)),
        }
    }
}

impl<G: Guest> Configured<G> {
    /// Gives a metered store its per-call fuel budget.
    fn refuel(&self, store: &mut Store<HostState>) -> Result<(), ComponentError> {
        match self.settings.fuel {
            Some(fuel) => store.set_fuel(fuel).map_err(|e| ComponentError::internal(format!("setting fuel: {e:#}"))),
            None => Ok(()),
        }
    }

    /// Arms the deadline of the next call into `store`: the epoch callback
    /// runs on the next tick and on every tick after it, and traps once
    /// `deadline` has passed.
    fn arm(store: &mut Store<HostState>, deadline: Instant) {
        store.data_mut().deadline = deadline;
        store.set_epoch_deadline(1);
    }

    /// A new, initialised instance, made before `deadline`.
    async fn fresh(&self, deadline: Instant) -> Result<Live<G>, ComponentError> {
        let state =
            HostState::new(&self.name, &self.settings).map_err(|e| ComponentError::invalid(format!("{e:#}")))?;
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        // Every tick: yield to tokio, or trap once the call's time is up.
        store.epoch_deadline_callback(|store| {
            if Instant::now() >= store.data().deadline {
                return Err(Trap::Interrupt.into());
            }
            Ok(UpdateDeadline::Yield(1))
        });
        let timeout = self.settings.call_timeout;
        let host_deadline = (deadline + HOST_TIMEOUT_GRACE).into();
        self.refuel(&mut store)?;
        Self::arm(&mut store, deadline);
        let instantiated = contained(tokio::time::timeout_at(host_deadline, G::instantiate(&self.pre, &mut store)))
            .await
            .map_err(|panic| panicked(&self.name, "instantiate", &panic))?;
        let guest = match instantiated {
            Ok(Ok(guest)) => guest,
            Ok(Err(e)) => return Err(trap_error(&self.name, Some(&self.settings), "instantiate", e)),
            Err(_) => return Err(deadline_error(&self.name, timeout)),
        };
        self.refuel(&mut store)?;
        Self::arm(&mut store, deadline);
        let initialised =
            contained(tokio::time::timeout_at(host_deadline, guest.init(&mut store, &self.guest_metadata)))
                .await
                .map_err(|panic| panicked(&self.name, "init", &panic))?;
        match initialised {
            Ok(Ok(Ok(()))) => Ok(Live { store, guest }),
            Ok(Ok(Err(e))) => Err(ComponentError::from(e)),
            Ok(Err(e)) => Err(trap_error(&self.name, Some(&self.settings), "init", e)),
            Err(_) => Err(deadline_error(&self.name, timeout)),
        }
    }

    /// Runs `call` on the instance in `slot` (made first if it was dropped),
    /// until `deadline`. Owns what it uses, so it may change threads.
    async fn execute<T>(
        self: Arc<Self>,
        mut slot: SlotGuard<G>,
        operation: &'static str,
        deadline: Instant,
        call: impl for<'a> FnOnce(&'a G, &'a mut Store<HostState>) -> Call<'a, T>,
    ) -> Result<T, ComponentError> {
        if slot.slot.is_none() {
            *slot.slot = Some(self.fresh(deadline).await?);
        }
        let live = slot.slot.as_mut().expect("filled above");
        self.refuel(&mut live.store)?;
        Self::arm(&mut live.store, deadline);
        let outcome =
            contained(LazyTimeout::new(call(&live.guest, &mut live.store), deadline + HOST_TIMEOUT_GRACE)).await;
        slot.finished = true;
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(panic) => {
                *slot.slot = None;
                crate::metrics::global().wasm_recycled(&self.name, "panic");
                return Err(panicked(&self.name, operation, &panic));
            }
        };
        match outcome {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(e))) => Err(wit_error(&self.name, e)),
            Ok(Err(trap)) => {
                *slot.slot = None;
                crate::metrics::global().wasm_recycled(&self.name, recycle_cause(&trap));
                Err(trap_error(&self.name, Some(&self.settings), operation, trap))
            }
            Err(_) => {
                // Stuck in a host call: the future is dropped, and so is the
                // instance, which may be mid-way through anything.
                *slot.slot = None;
                crate::metrics::global().wasm_recycled(&self.name, "deadline");
                Err(deadline_error(&self.name, self.settings.call_timeout))
            }
        }
    }
}

/// A host function panicked during `operation`: the panic is stopped
/// at this call (wasmtime resumes it in the caller), and the instance,
/// stopped mid-call, is dropped.
fn panicked(name: &str, operation: &str, panic: &str) -> ComponentError {
    tracing::error!(component = %name, operation, "a host function panicked: {panic}; replacing the instance");
    ComponentError::Internal(format!(
        "component `{name}` failed in `{operation}`: a host function panicked ({panic}) (instance replaced)"
    ))
}

fn deadline_error(name: &str, after: Duration) -> ComponentError {
    crate::metrics::global().wasm_deadline(name);
    ComponentError::DeadlineExceeded { component: name.to_owned(), after }
}

fn wit_error(name: &str, error: WitError) -> ComponentError {
    match ComponentError::from(error) {
        ComponentError::Unavailable { reason, .. } => {
            ComponentError::Unavailable { component: name.to_owned(), reason }
        }
        other => other,
    }
}

/// Names the component and the cause of a trap or host-side failure.
fn trap_error(name: &str, settings: Option<&WasmSettings>, operation: &str, error: wasmtime::Error) -> ComponentError {
    if is_pool_exhausted(&error) {
        tracing::warn!(component = %name, operation, "WASM instance pool exhausted: {error:#}");
        return ComponentError::Unavailable {
            component: name.to_owned(),
            reason: format!("the WASM instance pool is exhausted ({error:#}); try again later"),
        };
    }
    let cause = match error.downcast_ref::<Trap>() {
        Some(Trap::Interrupt) => {
            return deadline_error(name, settings.map_or(Duration::ZERO, |s| s.call_timeout));
        }
        Some(Trap::StackOverflow) => "stack overflow".to_owned(),
        Some(Trap::OutOfFuel) => {
            crate::metrics::global().wasm_out_of_fuel(name);
            "out of fuel".to_owned()
        }
        Some(trap) => format!("trap: {trap}"),
        None => {
            let text = format!("{error:#}");
            if text.contains("growing memory") || text.contains("memory size") {
                let cap = settings.map_or(0, |s| s.max_memory >> 20);
                format!("memory limit of {cap} MiB exceeded ({text})")
            } else {
                text
            }
        }
    };
    tracing::warn!(component = %name, operation, "{cause}; replacing the instance");
    ComponentError::Internal(format!("component `{name}` failed in `{operation}`: {cause} (instance replaced)"))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::atomic::AtomicU32;

    use wasmtime::component::{Linker, TypedFunc};

    use super::*;

    /// A component whose export `run` calls the host import `boom`.
    const CALLS_THE_HOST: &str = r#"
        (component
          (import "boom" (func $boom))
          (core func $boom_lowered (canon lower (func $boom)))
          (core module $m
            (import "host" "boom" (func $b))
            (func (export "run") call $b))
          (core instance $i (instantiate $m (with "host" (instance (export "boom" (func $boom_lowered))))))
          (func (export "run") (canon lift (core func $i "run"))))
    "#;

    /// [`CALLS_THE_HOST`] linked to `boom`, as a loaded component.
    fn calls_the_host(boom: fn()) -> Arc<LoadedComponent> {
        loaded(CALLS_THE_HOST, boom)
    }

    /// The component `wat` (exporting `run`), linked to `boom`.
    pub(crate) fn loaded(wat: &str, boom: fn()) -> Arc<LoadedComponent> {
        let runtime = crate::wasm::runtime().unwrap();
        let mut linker = Linker::<HostState>::new(&runtime.engine);
        linker
            .root()
            .func_wrap("boom", move |_, ()| {
                boom();
                Ok(())
            })
            .unwrap();
        let component = wasmtime::component::Component::new(&runtime.engine, wat).unwrap();
        Arc::new(LoadedComponent {
            path: "calls-the-host.wasm".into(),
            stem: "calls-the-host".into(),
            kinds: vec![ComponentKind::State],
            source: super::super::CompileSource::Compiled,
            shape: super::super::prescan::Shape { core_instances: 1, memories: 2, ..Default::default() },
            pre: linker.instantiate_pre(&component).unwrap(),
            fuel_pre: tokio::sync::OnceCell::new(),
            cache_dir: None,
        })
    }

    /// A guest whose `ping` calls `run`.
    pub(crate) struct CallsTheHost {
        run: TypedFunc<(), ()>,
    }

    impl Guest for CallsTheHost {
        type Pre = InstancePre<HostState>;

        fn pre(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
            Ok(pre.clone())
        }

        fn instantiate<'a>(
            pre: &'a Self::Pre,
            store: &'a mut Store<HostState>,
        ) -> BoxFuture<'a, wasmtime::Result<Self>> {
            Box::pin(async move {
                let instance = pre.instantiate_async(&mut *store).await?;
                Ok(Self { run: instance.get_typed_func(&mut *store, "run")? })
            })
        }

        fn init<'a>(&'a self, _: &'a mut Store<HostState>, _: &'a Vec<(String, String)>) -> Call<'a, ()> {
            Box::pin(async { Ok(Ok(())) })
        }

        fn features<'a>(&'a self, _: &'a mut Store<HostState>) -> Call<'a, Vec<String>> {
            Box::pin(async { Ok(Ok(Vec::new())) })
        }

        fn ping<'a>(&'a self, store: &'a mut Store<HostState>) -> Call<'a, ()> {
            Box::pin(async move { self.run.call_async(&mut *store, ()).await.map(Ok) })
        }
    }

    /// Checklist 9: a host import that panics fails only the call that hit
    /// it; the instance is replaced and the next call works.
    #[tokio::test]
    async fn a_panicking_host_import_is_contained_to_its_call() {
        static CALLS: AtomicU32 = AtomicU32::new(0);
        let instances = Instances::<CallsTheHost>::new(
            calls_the_host(|| {
                if CALLS.fetch_add(1, Ordering::SeqCst) == 0 {
                    panic!("injected host fault");
                }
            }),
            "panicky",
        );
        instances.init(Metadata::new()).await.unwrap();
        let err = instances.ping().await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("panicky") && text.contains("injected host fault"), "{text}");
        instances.ping().await.expect("the next call works, on a fresh instance");
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    }

    /// Checklist 11: running out of pool slots is "unavailable" (503), not
    /// an internal error.
    #[tokio::test]
    async fn pool_exhaustion_is_unavailable() {
        let mut pool = wasmtime::PoolingAllocationConfig::new();
        pool.total_component_instances(1);
        let mut config = wasmtime::Config::new();
        config.allocation_strategy(wasmtime::InstanceAllocationStrategy::Pooling(pool));
        let engine = wasmtime::Engine::new(&config).unwrap();
        let component = wasmtime::component::Component::new(&engine, "(component)").unwrap();
        let linker = Linker::<()>::new(&engine);
        let mut first = Store::new(&engine, ());
        let _held = linker.instantiate_async(&mut first, &component).await.unwrap();
        let mut second = Store::new(&engine, ());
        let exhausted = linker.instantiate_async(&mut second, &component).await.err().unwrap();
        assert!(is_pool_exhausted(&exhausted), "{exhausted:#}");
        let instances = Instances::<CallsTheHost>::new(calls_the_host(|| {}), "crowded");
        let err = trap_error(instances.name(), None, "instantiate", exhausted);
        assert!(
            matches!(&err, ComponentError::Unavailable { component, reason }
                if component == "crowded" && reason.contains("pool is exhausted")),
            "{err:?}"
        );
    }

    /// Checklist 5: `wasm.maxMemory` caps the sum of a component's memories,
    /// not each one: two memories of 1.6 MiB each break a 2 MiB cap.
    #[tokio::test]
    async fn the_memory_cap_is_for_all_memories_together() {
        const TWO_MEMORIES: &str = r#"
            (component
              (core module $m
                (memory $a 1)
                (memory $b 1)
                (func (export "run")
                  (drop (memory.grow $a (i32.const 24)))
                  (drop (memory.grow $b (i32.const 24)))))
              (core instance $i (instantiate $m))
              (func (export "run") (canon lift (core func $i "run"))))
        "#;
        let capped = |cap: &str| {
            let instances = Instances::<CallsTheHost>::new(loaded(TWO_MEMORIES, || {}), "two-memories");
            let metadata = Metadata::from([("wasm.maxMemory".to_owned(), cap.to_owned())]);
            async move {
                instances.init(metadata).await.unwrap();
                instances.ping().await
            }
        };
        let err = capped("2Mi").await.unwrap_err().to_string();
        assert!(err.contains("two-memories") && err.contains("memory limit of 2 MiB exceeded"), "{err}");
        capped("4Mi").await.expect("both memories fit 4 MiB together");
    }
}
