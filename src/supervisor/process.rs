//! One supervised process: start, readiness, watching, restarts, stop.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::Child;
use tokio::sync::{Notify, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::logs::{self, Tail};
use super::settings::ProcessSettings;
use super::spawn;
use crate::kinds::ComponentKind;
use crate::pluggable::discovery;

/// Where a supervised process is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Spawned, its socket not answering yet.
    Starting,
    /// Serving its socket.
    Running,
    /// Exited or stopped answering; waiting before the next start.
    Backoff,
    /// Gave up: more consecutive failures than `maxRestarts`.
    Failed,
    /// Stopped by plughost.
    Stopped,
}

impl ProcessState {
    /// Lower-case name for listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Backoff => "backoff",
            Self::Failed => "failed",
            Self::Stopped => "stopped",
        }
    }
}

/// What a supervised process is doing, for listings and tests.
#[derive(Debug, Clone)]
pub struct ProcessInfo {
    /// The component that declared it.
    pub component: String,
    /// The socket it serves.
    pub socket: std::path::PathBuf,
    /// Its state.
    pub state: ProcessState,
    /// The PID of the current run, while it runs.
    pub pid: Option<u32>,
    /// Starts after the first.
    pub restarts: u64,
    /// Consecutive failures (reset after `healthyAfter` of uptime).
    pub failures: u32,
    /// Why the last run ended or failed to start.
    pub last_error: Option<String>,
}

/// Why a run ended.
enum End {
    /// Asked to stop: do not restart.
    Stop,
    /// A failure: restart per policy.
    Failed(String),
}

pub(super) struct Supervised {
    pub settings: ProcessSettings,
    info: Mutex<ProcessInfo>,
    /// Bumped on every change of `info`.
    pub changes: watch::Sender<()>,
    /// `true` once the host stops.
    stop: watch::Sender<bool>,
    /// Restart the current run now (admin).
    restart: Notify,
    tail: Arc<Tail>,
}

/// A started run: the child and the tasks draining its pipes.
struct Run {
    child: Child,
    pumps: Vec<JoinHandle<()>>,
}

impl Supervised {
    pub fn new(settings: ProcessSettings) -> Arc<Self> {
        let info = ProcessInfo {
            component: settings.component.clone(),
            socket: settings.socket.clone(),
            state: ProcessState::Starting,
            pid: None,
            restarts: 0,
            failures: 0,
            last_error: None,
        };
        Arc::new(Self {
            settings,
            info: Mutex::new(info),
            changes: watch::Sender::new(()),
            stop: watch::Sender::new(false),
            restart: Notify::new(),
            tail: Arc::default(),
        })
    }

    pub fn info(&self) -> ProcessInfo {
        self.info.lock().expect("process info lock").clone()
    }

    fn update(&self, change: impl FnOnce(&mut ProcessInfo)) {
        change(&mut self.info.lock().expect("process info lock"));
        self.changes.send_replace(());
    }

    /// Asks the supervision loop to stop the process and end.
    pub fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Asks for a restart of the running process.
    pub fn restart(&self) {
        self.restart.notify_one();
    }

    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// Runs the process until stopped or given up; `first` learns how the
    /// first start went.
    pub async fn supervise(self: Arc<Self>, first: oneshot::Sender<Result<(), String>>) {
        let mut first = Some(first);
        let name = self.settings.component.clone();
        let mut stop = self.stop.subscribe();
        loop {
            if self.stopping() {
                break;
            }
            self.update(|i| (i.state, i.pid) = (ProcessState::Starting, None));
            let end = match self.start().await {
                Err(reason) => End::Failed(reason),
                Ok(mut run) => {
                    if let Some(first) = first.take() {
                        let _ = first.send(Ok(()));
                    }
                    let end = self.watch(&mut run).await;
                    self.terminate(run).await;
                    end
                }
            };
            let reason = match end {
                End::Stop => break,
                End::Failed(reason) => reason,
            };
            if let Some(first) = first.take() {
                let _ = first.send(Err(reason.clone()));
            }
            if self.stopping() {
                break;
            }
            let failures = {
                let mut info = self.info.lock().expect("process info lock");
                info.failures += 1;
                info.last_error = Some(reason.clone());
                info.pid = None;
                info.failures
            };
            if failures > self.settings.max_restarts {
                tracing::error!(
                    component = %name,
                    "component process failed {failures} times in a row; giving up (maxRestarts {}): {reason}",
                    self.settings.max_restarts
                );
                self.update(|i| i.state = ProcessState::Failed);
                return;
            }
            let delay = backoff(self.settings.min_backoff, self.settings.max_backoff, failures);
            tracing::warn!(component = %name, "component process: {reason}; restarting in {delay:?} (failure {failures})");
            self.update(|i| i.state = ProcessState::Backoff);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stopped(&mut stop) => break,
            }
            self.update(|i| i.restarts += 1);
            crate::metrics::global().process_restarted(&name);
        }
        self.update(|i| (i.state, i.pid) = (ProcessState::Stopped, None));
    }

    /// Checks, spawns, and waits until the socket answers reflection with a
    /// service of the component's kind.
    async fn start(&self) -> Result<Run, String> {
        let settings = &self.settings;
        spawn::verify(settings).await?;
        clear_stale_socket(&settings.socket).await?;
        self.tail.clear();
        let mut child = spawn::spawn(spawn::command(settings))
            .await
            .map_err(|e| format!("cannot start {}: {e}", spawn::describe(settings)))?;
        let mut pumps = Vec::new();
        if let Some(out) = child.stdout.take() {
            pumps.push(tokio::spawn(logs::pump(settings.component.clone(), "stdout", out, self.tail.clone())));
        }
        if let Some(err) = child.stderr.take() {
            pumps.push(tokio::spawn(logs::pump(settings.component.clone(), "stderr", err, self.tail.clone())));
        }
        let pid = child.id();
        self.update(|i| i.pid = pid);
        tracing::info!(
            component = %settings.component,
            pid,
            "started component process `{}`",
            spawn::describe(settings)
        );
        let mut run = Run { child, pumps };
        match self.ready(&mut run).await {
            Ok(()) => {
                tracing::info!(component = %settings.component, pid, socket = %settings.socket.display(), "component process ready");
                self.update(|i| i.state = ProcessState::Running);
                Ok(run)
            }
            Err(reason) => {
                self.terminate(run).await;
                Err(format!("{reason}{}", self.tail.render()))
            }
        }
    }

    async fn ready(&self, run: &mut Run) -> Result<(), String> {
        let settings = &self.settings;
        let deadline = Instant::now() + settings.start_timeout;
        let mut last = "the socket was never created".to_owned();
        loop {
            if tokio::fs::symlink_metadata(&settings.socket).await.is_ok() {
                let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_secs(2));
                match discovery::probe(&settings.socket, left.max(Duration::from_millis(100)), &own_child()).await {
                    Ok(services) => return check_protocol(&settings.socket, &services),
                    Err(reason) => last = reason,
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "did not serve {} within {:?} (startTimeout; last check: {last})",
                    settings.socket.display(),
                    settings.start_timeout
                ));
            }
            tokio::select! {
                status = run.child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    self.drain(run).await;
                    return Err(format!("exited ({status}) before serving {}", settings.socket.display()));
                }
                () = tokio::time::sleep(Duration::from_millis(50)) => {}
            }
        }
    }

    /// Watches a running process: its exit, its socket (asked every
    /// `probeInterval`), stop and restart requests; resets the failure count
    /// after `healthyAfter`.
    async fn watch(&self, run: &mut Run) -> End {
        let settings = &self.settings;
        let mut stop = self.stop.subscribe();
        let healthy_at = Instant::now() + settings.healthy_after;
        let mut healthy = false;
        let mut probes = tokio::time::interval_at(Instant::now() + settings.probe_interval, settings.probe_interval);
        let mut misses = 0;
        loop {
            tokio::select! {
                status = run.child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    self.drain(run).await;
                    return End::Failed(format!("exited ({status}){}", self.tail.render()));
                }
                () = stopped(&mut stop) => return End::Stop,
                () = self.restart.notified() => return End::Failed("restart requested".to_owned()),
                () = tokio::time::sleep_until(healthy_at), if !healthy => {
                    healthy = true;
                    self.update(|i| i.failures = 0);
                }
                _ = probes.tick() => {
                    let timeout = settings.probe_interval.min(Duration::from_secs(2));
                    match discovery::probe(&settings.socket, timeout, &own_child()).await {
                        Ok(_) => misses = 0,
                        Err(reason) => {
                            misses += 1;
                            tracing::warn!(component = %settings.component, "component process did not answer a probe ({misses}/{}): {reason}", settings.probe_failures);
                            if misses >= settings.probe_failures {
                                return End::Failed(format!("stopped answering on {} ({reason})", settings.socket.display()));
                            }
                        }
                    }
                }
            }
        }
    }

    /// Stops a run: SIGTERM (and SIGCONT, for a stopped process), then
    /// SIGKILL after `stopTimeout`; reaps it, drains its output, removes its
    /// socket.
    async fn terminate(&self, mut run: Run) {
        let settings = &self.settings;
        if matches!(run.child.try_wait(), Ok(None)) {
            spawn::signal(&run.child, libc::SIGTERM);
            spawn::signal(&run.child, libc::SIGCONT);
            if tokio::time::timeout(settings.stop_timeout, run.child.wait()).await.is_err() {
                tracing::warn!(
                    component = %settings.component,
                    "component process did not stop within {:?} (stopTimeout); killing it",
                    settings.stop_timeout
                );
                let _ = run.child.kill().await;
            }
        }
        let _ = run.child.wait().await;
        self.drain(&mut run).await;
        let _ = clear_stale_socket(&settings.socket).await;
    }

    /// Waits (briefly) for the pipes to reach EOF, so the tail is complete.
    async fn drain(&self, run: &mut Run) {
        for pump in run.pumps.drain(..) {
            let abort = pump.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), pump).await.is_err() {
                // A grandchild still holds the pipe: stop reading it.
                abort.abort();
            }
        }
    }
}

/// Resolves once the host stops (the guard `wait_for` returns is not
/// `Send`, so it must not live in a `select!`).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// `min * 2^(failures-1)`, at most `max`.
fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    min.saturating_mul(1u32 << failures.saturating_sub(1).min(20)).min(max)
}

/// A socket serving nothing of the component's protocol is refused, naming
/// what it serves and what plughost speaks.
fn check_protocol(socket: &Path, services: &[String]) -> Result<(), String> {
    if !discovery::kinds_of(services).is_empty() {
        return Ok(());
    }
    let ours: Vec<&str> = ComponentKind::ALL.iter().map(|k| k.grpc_service()).collect();
    let theirs: Vec<&str> =
        services.iter().map(String::as_str).filter(|s| !s.starts_with("grpc.reflection.")).collect();
    Err(format!(
        "{} serves {} but no service of the protocol plughost speaks (dapr.proto.components.v1: {})",
        socket.display(),
        if theirs.is_empty() { "nothing but reflection".to_owned() } else { theirs.join(", ") },
        ours.join(", ")
    ))
}

/// Removes a socket file nobody answers on (a run that was killed); refuses
/// to take over one a live server answers on.
async fn clear_stale_socket(socket: &Path) -> Result<(), String> {
    if tokio::fs::symlink_metadata(socket).await.is_err() {
        return Ok(());
    }
    match tokio::net::UnixStream::connect(socket).await {
        Ok(_) => Err(format!("a process plughost did not start already serves {}", socket.display())),
        Err(_) => tokio::fs::remove_file(socket)
            .await
            .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
            .map_err(|e| format!("cannot remove the stale socket {}: {e}", socket.display())),
    }
}

/// How the supervisor dials its own child's socket: the default trust rules
/// (no symlink, served by plughost's own uid), which a child plughost
/// started itself always meets.
fn own_child() -> crate::pluggable::GrpcOptions {
    crate::pluggable::GrpcOptions::default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (Duration::from_millis(200), Duration::from_secs(5));
        let delays: Vec<u128> = (1..=7).map(|f| backoff(min, max, f).as_millis()).collect();
        assert_eq!(delays, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(backoff(min, max, u32::MAX), max);
    }

    #[test]
    fn other_protocol_versions_are_named() {
        let services = ["grpc.reflection.v1.ServerReflection".to_owned(), "dapr.proto.components.v2.StateStore".into()];
        let err = check_protocol(Path::new("/s/s.sock"), &services).unwrap_err();
        assert!(err.contains("serves dapr.proto.components.v2.StateStore"), "{err}");
        assert!(err.contains("dapr.proto.components.v1.StateStore"), "{err}");
    }
}
