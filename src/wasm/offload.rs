//! Where guest code runs: a call starts on the caller's thread, and moves to
//! plughost's own guest runtime the first time it suspends (checklist 59).
//!
//! Almost every guest call finishes within its first poll (microseconds), and
//! a hop to another thread would cost more than the call; those stay where
//! they are. A call that suspends has either reached an epoch tick (it has
//! run up to [`EPOCH_TICK`](super::engine::EPOCH_TICK) already: a busy or
//! runaway guest) or is waiting in a host call. Before, such a call stayed on
//! the sidecar API's tokio runtime, and a runaway guest held one of its
//! worker threads 10 ms at a time: the API's I/O waited behind it (a healthy
//! built-in store's p90 went from 0.76 ms to 4.3 ms next to one spinning
//! guest). Now the rest of the call runs on the guest runtime's threads, which
//! the kernel preempts and which run at a lower priority ([`GUEST_NICE`]),
//! so the API's threads stay free for I/O and get the CPU first.
//!
//! A moved call keeps its semantics: its caller awaits it, and if the caller
//! goes away the call is aborted (dropped at its next suspension, which drops
//! its instance, see `instances::SlotGuard`). A panic in it reaches the caller.

use std::future::Future;
use std::pin::Pin;
use std::sync::OnceLock;
use std::task::{Context, Poll};

/// Worker threads of the guest runtime. Two, like the API's runtime on the
/// 2-core machines plughost is measured on: runaway guests of several
/// components share them, and never the API's threads.
pub const GUEST_THREADS: usize = 2;

/// The name of the guest runtime's threads (shown by `top -H`, and checked
/// by the tests).
pub const GUEST_THREAD_NAME: &str = "plughost-wasm";

/// The nice value of the guest runtime's threads (the API's threads keep
/// 0). A runaway guest spins flat out until its deadline; at equal priority
/// the kernel shares the cores equally between it and the API's threads, and
/// a couple of them starved the API of CPU on a 2-core machine. At nice 10 a
/// spinning thread weighs about a tenth of an API thread: the API's I/O runs
/// first, and the guest has every cycle the API does not use.
pub const GUEST_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`GUEST_NICE`] (on Linux the nice
/// value is per thread).
fn lower_priority() {
    // SAFETY: plain system calls on the calling thread; no memory is shared.
    let failed = unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, GUEST_NICE) != 0
    };
    if failed {
        tracing::debug!("cannot lower the WASM guest thread's priority: {}", std::io::Error::last_os_error());
    }
}

/// The guest runtime, started on first use and kept for the life of the
/// process.
fn guest_runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(GUEST_THREADS)
            .thread_name(GUEST_THREAD_NAME)
            .on_thread_start(lower_priority)
            .enable_all()
            .build()
            .expect("starting the WASM guest runtime")
    })
}

/// A guest call: owns everything it touches, so it can change threads.
pub(crate) type GuestCall<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs `call`: its first poll here, the rest (if any) on the guest runtime.
pub(crate) async fn run<T: Send + 'static>(mut call: GuestCall<T>) -> T {
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    if let Poll::Ready(done) = first {
        return done;
    }
    // The rest of the call keeps the caller's span (its trace context, the
    // component's name) on the guest runtime's threads.
    let call = tracing::instrument::WithSubscriber::with_current_subscriber(tracing::Instrument::instrument(
        call,
        tracing::Span::current(),
    ));
    let moved = Aborting(guest_runtime().spawn(call));
    match moved.await {
        Ok(done) => done,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Only the guest runtime shutting down cancels a call, and it never
        // shuts down.
        Err(e) => panic!("a WASM guest call was cancelled: {e}"),
    }
}

/// A task aborted when its handle is dropped (its caller went away).
struct Aborting<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Aborting<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Aborting<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thread_name() -> String {
        std::thread::current().name().unwrap_or_default().to_owned()
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_call_that_finishes_at_once_stays_and_one_that_suspends_moves() {
        let here = thread_name();
        assert_eq!(run(Box::pin(async { thread_name() })).await, here);
        let after = run(Box::pin(async {
            tokio::task::yield_now().await;
            thread_name()
        }))
        .await;
        assert_eq!(after, GUEST_THREAD_NAME);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_dropped_caller_aborts_the_moved_call() {
        let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
        let call = run(Box::pin(async move {
            let _tell = dropped_tx;
            std::future::pending::<()>().await;
        }));
        assert!(tokio::time::timeout(std::time::Duration::from_millis(20), call).await.is_err());
        // The sender is dropped with the aborted call.
        assert!(dropped_rx.await.is_err());
    }
}
