//! One configured component's connection to its socket.
//!
//! # Why a custom connector
//!
//! tonic's `Channel` reconnects by itself when its connection drops. For a
//! Dapr component that is wrong: a component process that died and came back
//! has lost its instances, so a call that tonic quietly routed to the new
//! process would reach an instance that was never initialised. So each
//! [`Link`] generation is a channel over **exactly one** Unix socket
//! connection: the connector refuses to dial a second time, and the socket is
//! wrapped so that its end (EOF or an I/O error, seen at once on a Unix
//! socket when the peer dies) marks the link down. A supervisor task then
//! dials a new generation with capped exponential backoff, replays every
//! registered `Init` (and `Features` / `ListOperations`) on it, and only then
//! publishes it; streams re-open on the new generation (see `stream`).
//! While the link is down every call fails at once with
//! [`ComponentError::Unavailable`] naming the component, instead of hanging.
//!
//! The same supervisor pings the component every
//! [`GrpcOptions::ping_interval`] and keeps its [`Health`] up to date (never
//! before `Init`, as the protocol requires).

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::UnixStream;
use tokio::sync::{Notify, watch};
use tonic::Status;
use tonic::metadata::AsciiMetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

use super::{GrpcOptions, INSTANCE_HEADER, status};
use crate::component::Health;
use crate::kinds::{ComponentError, ComponentKind, Metadata};

/// The metadata key of a component's own call deadline (see
/// [`Link::take_settings`]); it is not passed on to the component.
pub const CALL_TIMEOUT_KEY: &str = "grpc.callTimeout";

/// Longest `grpc.callTimeout` accepted.
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A channel to one component's socket, with its name on every call.
pub type ComponentChannel = InterceptedService<Channel, ComponentName>;

/// The interceptor that adds `x-component-instance: <name>` to every unary
/// call and every stream, `Init` included (spec A5), and the trace context
/// of the sidecar call it serves, if any (`crate::ops::trace`).
#[derive(Debug, Clone)]
pub struct ComponentName(AsciiMetadataValue);

impl ComponentName {
    /// Validates `name` once as a metadata value.
    pub fn new(name: &str) -> Result<Self, ComponentError> {
        AsciiMetadataValue::try_from(name).map(Self).map_err(|_| {
            ComponentError::invalid(format!(
                "component name `{name}` cannot travel in the {INSTANCE_HEADER} header (printable ASCII only)"
            ))
        })
    }
}

impl Interceptor for ComponentName {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert(INSTANCE_HEADER, self.0.clone());
        crate::ops::trace::inject(request.metadata_mut());
        Ok(request)
    }
}

/// One step replayed on a new connection, or a liveness probe: takes the
/// channel and the deadline to send.
pub(crate) type HookFn =
    Box<dyn Fn(ComponentChannel, Duration) -> BoxFuture<'static, Result<(), Status>> + Send + Sync>;

/// What one kind's adapter registers with its link: how to initialise it
/// again after a reconnection, and how to ping it.
pub(crate) struct Hook {
    /// The kind, for logs.
    pub kind: ComponentKind,
    /// `Init` with the component's metadata.
    pub init: HookFn,
    /// What follows `Init` (`Features`, `ListOperations`): refreshes the
    /// adapter's cached answer. Tolerates `UNIMPLEMENTED` itself.
    pub refresh: HookFn,
    /// `Ping`.
    pub ping: HookFn,
}

#[derive(Clone)]
enum State {
    /// Not dialed yet: before the first `Init`.
    Idle,
    /// Serving on this connection.
    Up { generation: u64, channel: ComponentChannel },
    /// The connection `generation` was lost; the supervisor is reconnecting.
    Down { generation: u64, reason: String },
    /// Closed by the host.
    Closed,
}

struct Shared {
    name: String,
    socket: PathBuf,
    header: ComponentName,
    options: GrpcOptions,
    /// The deadline of every call: [`GrpcOptions::call_timeout`], or the
    /// component's own `grpc.callTimeout` (set at its first `Init`).
    call_timeout: Mutex<Duration>,
    health: Health,
    state: Mutex<State>,
    /// Bumped on every state change (streams wait on it).
    changes: watch::Sender<()>,
    /// Wakes the supervisor.
    wake: Arc<Notify>,
    hooks: Mutex<Vec<Arc<Hook>>>,
    generations: AtomicU64,
    supervised: AtomicBool,
    first_dial: tokio::sync::Mutex<()>,
}

/// The connection of one configured component (one per component, as
/// daprd does), shared by the adapters of the kinds it provides. Cheap to
/// clone.
#[derive(Clone)]
pub struct Link(Arc<Shared>);

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").field("name", &self.0.name).field("socket", &self.0.socket).finish_non_exhaustive()
    }
}

impl Link {
    /// A link for component `name` to `socket`; nothing is dialed before
    /// the first `Init`. Its health goes to `health`.
    pub fn new(
        name: &str,
        socket: impl Into<PathBuf>,
        options: GrpcOptions,
        health: Health,
    ) -> Result<Self, ComponentError> {
        Ok(Self(Arc::new(Shared {
            name: name.to_owned(),
            socket: socket.into(),
            header: ComponentName::new(name)?,
            call_timeout: Mutex::new(options.call_timeout),
            options,
            health,
            state: Mutex::new(State::Idle),
            changes: watch::Sender::new(()),
            wake: Arc::new(Notify::new()),
            hooks: Mutex::new(Vec::new()),
            generations: AtomicU64::new(0),
            supervised: AtomicBool::new(false),
            first_dial: tokio::sync::Mutex::new(()),
        })))
    }

    /// The configured component name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The socket.
    pub fn socket(&self) -> &Path {
        &self.0.socket
    }

    /// Timeouts and limits.
    pub fn options(&self) -> &GrpcOptions {
        &self.0.options
    }

    /// The deadline of every call to this component (and of opening a
    /// stream).
    pub fn call_timeout(&self) -> Duration {
        *self.0.call_timeout.lock().expect("call timeout lock")
    }

    /// Takes plughost's own settings out of a component's metadata before
    /// it is sent in `Init`: today [`CALL_TIMEOUT_KEY`], a Go duration
    /// (`"30s"`, `"1500ms"`) overriding [`GrpcOptions::call_timeout`] for this
    /// component. A malformed value is an error naming the key.
    pub fn take_settings(&self, mut metadata: Metadata) -> Result<Metadata, ComponentError> {
        if let Some(value) = metadata.remove(CALL_TIMEOUT_KEY) {
            let timeout = crate::units::parse_duration(&value).ok().filter(|d| !d.is_zero() && *d <= MAX_CALL_TIMEOUT).ok_or_else(|| {
                ComponentError::invalid(format!(
                    "metadata `{CALL_TIMEOUT_KEY}` of component `{}`: cannot use `{value}` (a duration such as \"30s\", at most 24h)",
                    self.0.name
                ))
            })?;
            *self.0.call_timeout.lock().expect("call timeout lock") = timeout;
        }
        Ok(metadata)
    }

    /// The channel to call on now and its generation, or `Unavailable` at
    /// once while the component is down.
    pub fn channel(&self) -> Result<(ComponentChannel, u64), ComponentError> {
        match &*self.0.state.lock().expect("link state lock") {
            State::Up { generation, channel } => Ok((channel.clone(), *generation)),
            State::Down { reason, .. } => Err(self.0.unavailable(reason)),
            State::Idle => Err(self.0.unavailable("not initialised")),
            State::Closed => Err(self.0.unavailable("closed")),
        }
    }

    /// Maps a failed call's status (see `status`), and marks the link down
    /// if the status says the connection is gone.
    pub(crate) fn error(
        &self,
        status: &Status,
        generation: u64,
        key: Option<&str>,
        deadline: Duration,
    ) -> ComponentError {
        if status::is_transport(status) {
            self.0.lost(generation, &status::describe(status));
        }
        status::from_status(status, &status::CallContext { component: &self.0.name, deadline, key })
    }

    /// One unary call: fails fast while down; otherwise runs `call` with the
    /// channel and the deadline to send, enforcing that deadline locally too.
    /// `key` names the state key in ETag errors.
    pub(crate) async fn call<T, Fut>(
        &self,
        key: Option<&str>,
        call: impl FnOnce(ComponentChannel, Duration) -> Fut,
    ) -> Result<T, ComponentError>
    where
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let (channel, generation) = self.channel()?;
        let deadline = self.call_timeout();
        let started = tokio::time::Instant::now();
        let past_deadline = || ComponentError::DeadlineExceeded { component: self.0.name.clone(), after: deadline };
        match tokio::time::timeout(deadline, call(channel, deadline)).await {
            Ok(Ok(response)) => Ok(response.into_inner()),
            // tonic servers answer a passed `grpc-timeout` with CANCELLED.
            Ok(Err(status)) if status.code() == tonic::Code::Cancelled && started.elapsed() >= deadline => {
                Err(past_deadline())
            }
            Ok(Err(status)) => Err(self.error(&status, generation, key, deadline)),
            Err(_) => Err(past_deadline()),
        }
    }

    /// The first `Init` of one kind: dials if this is the link's first, runs
    /// `hook.init`, and keeps the hook so every later connection replays it.
    pub(crate) async fn init(&self, hook: Hook) -> Result<(), ComponentError> {
        self.0.connect_first().await?;
        let hook = Arc::new(hook);
        self.0.hooks.lock().expect("hooks lock").push(hook.clone());
        let (channel, generation) = self.channel()?;
        let deadline = self.0.options.init_timeout;
        match tokio::time::timeout(deadline, (hook.init)(channel, deadline)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(status)) => Err(self.error(&status, generation, None, deadline)),
            Err(_) => Err(ComponentError::DeadlineExceeded { component: self.0.name.clone(), after: deadline }),
        }
    }

    /// Waits until the link is up (`true`) or closed (`false`).
    pub(crate) async fn wait_up(&self) -> bool {
        let mut changes = self.0.changes.subscribe();
        loop {
            match &*self.0.state.lock().expect("link state lock") {
                State::Up { .. } => return true,
                State::Closed => return false,
                State::Idle | State::Down { .. } => {}
            }
            if changes.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Resolves once the host closes the link.
    pub(crate) async fn closed(&self) {
        let mut changes = self.0.changes.subscribe();
        while !self.is_closed() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether the host closed the link.
    pub(crate) fn is_closed(&self) -> bool {
        matches!(&*self.0.state.lock().expect("link state lock"), State::Closed)
    }

    /// Stops everything: calls fail, streams end, the supervisor exits.
    pub fn close(&self) {
        self.0.set(State::Closed);
        self.0.wake.notify_one();
    }
}

impl Shared {
    fn unavailable(&self, reason: &str) -> ComponentError {
        ComponentError::Unavailable { component: self.name.clone(), reason: reason.to_owned() }
    }

    fn set(&self, state: State) {
        *self.state.lock().expect("link state lock") = state;
        self.changes.send_replace(());
    }

    /// The connection of `generation` is gone (EOF, I/O error, a transport
    /// error on a call): mark the link down and wake the supervisor. Stale
    /// generations (an old connection closing late) are ignored.
    fn lost(&self, generation: u64, reason: &str) {
        let mut state = self.state.lock().expect("link state lock");
        if !matches!(&*state, State::Up { generation: g, .. } if *g == generation) {
            return;
        }
        let reason = format!("connection lost ({reason})");
        tracing::warn!(component = %self.name, socket = %self.socket.display(), "{reason}; reconnecting");
        *state = State::Down { generation, reason: reason.clone() };
        drop(state);
        self.health.set_unavailable(reason);
        self.changes.send_replace(());
        self.wake.notify_one();
    }

    async fn connect_first(self: &Arc<Self>) -> Result<(), ComponentError> {
        let _one_at_a_time = self.first_dial.lock().await;
        match &*self.state.lock().expect("link state lock") {
            State::Idle => {}
            State::Up { .. } => return Ok(()),
            State::Down { reason, .. } => return Err(self.unavailable(reason)),
            State::Closed => return Err(self.unavailable("closed")),
        }
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let channel = self.dial(generation).await.map_err(|reason| self.unavailable(&reason))?;
        self.set(State::Up { generation, channel });
        self.health.set_ready();
        if !self.supervised.swap(true, Ordering::SeqCst) {
            tokio::spawn(supervise(Arc::downgrade(self), self.wake.clone()));
        }
        Ok(())
    }

    /// A channel over one new connection to the socket (see the module docs).
    async fn dial(self: &Arc<Self>, generation: u64) -> Result<ComponentChannel, String> {
        let weak = Arc::downgrade(self);
        let socket = self.socket.clone();
        let dialed = Arc::new(AtomicBool::new(false));
        let options = self.options.clone();
        let connector = tower::service_fn(move |_: Uri| {
            let (weak, socket, dialed, options) = (weak.clone(), socket.clone(), dialed.clone(), options.clone());
            async move {
                if dialed.swap(true, Ordering::SeqCst) {
                    if let Some(shared) = weak.upgrade() {
                        shared.lost(generation, "the connection closed");
                    }
                    return Err(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the connection to the component was lost; plughost reconnects and replays Init",
                    ));
                }
                let stream = super::trust::connect(&socket, &options).await?;
                let on_lost: OnLost = Box::new(move |reason| {
                    if let Some(shared) = weak.upgrade() {
                        shared.lost(generation, &reason);
                    }
                });
                Ok::<_, io::Error>(TokioIo::new(Watched { inner: stream, on_lost: Some(on_lost) }))
            }
        });
        let timeout = self.options.connect_timeout;
        // A component's status travels in headers: allow a large one (an
        // error message of 200 KB used to break the connection), up to the
        // message size limit.
        let max_headers = u32::try_from(self.options.max_message_size).unwrap_or(u32::MAX);
        let endpoint = Endpoint::from_static("http://component.sock")
            .connect_timeout(timeout)
            .http2_max_header_list_size(max_headers)
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(8 << 20));
        let channel = tokio::time::timeout(timeout, endpoint.connect_with_connector(connector))
            .await
            .map_err(|_| format!("connecting to {} took longer than {timeout:?}", self.socket.display()))?
            .map_err(|e| format!("cannot connect to {}: {}", self.socket.display(), status::error_chain(&e)))?;
        Ok(InterceptedService::new(channel, self.header.clone()))
    }

    /// Dials a new generation and replays every hook on it; publishes it
    /// only if all of them succeed.
    async fn reconnect(self: &Arc<Self>, down: u64) -> Result<(), String> {
        let generation = self.generations.fetch_add(1, Ordering::SeqCst) + 1;
        let channel = self.dial(generation).await?;
        let hooks = self.hooks.lock().expect("hooks lock").clone();
        let deadline = self.options.init_timeout;
        for hook in &hooks {
            for (step, run) in [("Init", &hook.init), ("Features", &hook.refresh)] {
                match tokio::time::timeout(deadline, run(channel.clone(), deadline)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(status)) => {
                        return Err(format!("replaying {} {step}: {}", hook.kind, status::describe(&status)));
                    }
                    Err(_) => return Err(format!("replaying {} {step}: no answer within {deadline:?}", hook.kind)),
                }
            }
        }
        let mut state = self.state.lock().expect("link state lock");
        if !matches!(&*state, State::Down { generation: g, .. } if *g == down) {
            return Ok(()); // closed meanwhile
        }
        *state = State::Up { generation, channel };
        drop(state);
        self.changes.send_replace(());
        self.health.set_ready();
        let kinds: Vec<&str> = hooks.iter().map(|h| h.kind.as_str()).collect();
        tracing::info!(component = %self.name, generation, "reconnected; replayed Init for {}", kinds.join(", "));
        Ok(())
    }

    /// Records why a reconnection attempt failed (logged when it changes).
    fn still_down(&self, down: u64, reason: String) {
        let mut state = self.state.lock().expect("link state lock");
        let State::Down { generation, reason: current } = &mut *state else { return };
        if *generation != down {
            return;
        }
        if *current != reason {
            tracing::warn!(component = %self.name, "still unavailable: {reason}; retrying with backoff");
            *current = reason.clone();
            drop(state);
            self.health.set_unavailable(reason);
        }
    }

    /// Pings every kind on `channel`; a transport failure marks the link
    /// down, any other failure only the health.
    async fn ping(&self, generation: u64, channel: ComponentChannel) {
        let hooks = self.hooks.lock().expect("hooks lock").clone();
        let deadline = self.options.ping_timeout;
        let mut problem = None;
        for hook in &hooks {
            match tokio::time::timeout(deadline, (hook.ping)(channel.clone(), deadline)).await {
                Ok(Ok(())) => {}
                Ok(Err(status)) if status::is_transport(&status) => {
                    self.lost(generation, &status::describe(&status));
                    return;
                }
                Ok(Err(status)) => {
                    problem = Some(format!("{} ping failed: {}", hook.kind, status::describe(&status)));
                    break;
                }
                Err(_) => {
                    problem = Some(format!("{} ping: no answer within {deadline:?}", hook.kind));
                    break;
                }
            }
        }
        if !matches!(&*self.state.lock().expect("link state lock"), State::Up { generation: g, .. } if *g == generation)
        {
            return;
        }
        let before = self.health.problem();
        match problem {
            None if before.is_some() => {
                tracing::info!(component = %self.name, "healthy again");
                self.health.set_ready();
            }
            Some(problem) if before.as_ref() != Some(&problem) => {
                tracing::warn!(component = %self.name, "{problem}");
                self.health.set_unavailable(problem);
            }
            _ => {}
        }
    }
}

/// Keeps a link alive: reconnects it with capped exponential backoff while it
/// is down, pings it while it is up. Exits once the link is closed or gone.
async fn supervise(weak: Weak<Shared>, wake: Arc<Notify>) {
    let mut backoff: Option<Duration> = None;
    loop {
        let woken = wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let Some(shared) = weak.upgrade() else { return };
        let state = shared.state.lock().expect("link state lock").clone();
        match state {
            State::Closed => return,
            State::Idle => {
                drop(shared);
                woken.await;
            }
            State::Up { generation, channel } => {
                backoff = None;
                let interval = shared.options.ping_interval;
                drop(shared);
                tokio::select! {
                    () = &mut woken => {}
                    () = tokio::time::sleep(interval) => {
                        if let Some(shared) = weak.upgrade() {
                            shared.ping(generation, channel).await;
                        }
                    }
                }
            }
            State::Down { generation, .. } => match shared.reconnect(generation).await {
                Ok(()) => backoff = None,
                Err(reason) => {
                    tracing::debug!(component = %shared.name, "reconnect attempt failed: {reason}");
                    shared.still_down(generation, reason);
                    let (min, max) = (shared.options.min_backoff, shared.options.max_backoff);
                    let delay = backoff.map_or(min, |b| (b * 2).min(max));
                    backoff = Some(delay);
                    drop(shared);
                    tokio::select! {
                        () = &mut woken => {}
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            },
        }
    }
}

type OnLost = Box<dyn FnOnce(String) + Send + Sync>;

/// A Unix stream that reports its end (EOF or an I/O error) once.
struct Watched {
    inner: UnixStream,
    on_lost: Option<OnLost>,
}

impl Watched {
    fn report(&mut self, reason: String) {
        if let Some(on_lost) = self.on_lost.take() {
            on_lost(reason);
        }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        match &polled {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                self.report("the component closed the connection".to_owned());
            }
            Poll::Ready(Err(e)) => self.report(format!("read: {e}")),
            _ => {}
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Err(e)) = &polled {
            let reason = format!("write: {e}");
            self.report(reason);
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Err(e)) = &polled {
            let reason = format!("write: {e}");
            self.report(reason);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_names_must_fit_a_header() {
        assert!(ComponentName::new("orders-store").is_ok());
        let err = ComponentName::new("bad\nname").unwrap_err();
        assert!(err.to_string().contains("x-component-instance"), "{err}");
    }

    #[tokio::test]
    async fn calls_before_init_fail_fast_naming_the_component() {
        let link = Link::new("orders", "/nonexistent/orders.sock", GrpcOptions::default(), Health::default()).unwrap();
        let err = link.channel().unwrap_err();
        assert_eq!(err, ComponentError::Unavailable { component: "orders".into(), reason: "not initialised".into() });
        // Init on a socket nobody serves fails at once, naming the socket.
        let hook = Hook {
            kind: ComponentKind::State,
            init: Box::new(|_, _| Box::pin(async { Ok(()) })),
            refresh: Box::new(|_, _| Box::pin(async { Ok(()) })),
            ping: Box::new(|_, _| Box::pin(async { Ok(()) })),
        };
        let err = link.init(hook).await.unwrap_err();
        assert!(
            matches!(&err, ComponentError::Unavailable { reason, .. } if reason.contains("/nonexistent/orders.sock")),
            "{err:?}"
        );
    }
}
