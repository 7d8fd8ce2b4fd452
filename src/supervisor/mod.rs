//! Supervised component processes: plughost starts the process that serves a
//! gRPC component's socket, watches it, restarts it, and never leaves it
//! behind.
//!
//! A Component declares its process in `metadata.annotations` (daprd ignores
//! annotations, so the same YAML still works with daprd and a hand-started
//! process):
//!
//! ```yaml
//! metadata:
//!   name: orders
//!   annotations:
//!     plughost.io/command: ./bin/grpc-components      # relative to this file
//!     plughost.io/args: '["state", "--socket", "{socket}"]'
//!     plughost.io/maxRestarts: "5"
//! spec:
//!   type: state.orders        # the process serves <sockets dir>/orders.sock
//! ```
//!
//! * [`settings`](ProcessSettings): the annotations, with their defaults.
//! * `spawn`: forking so the process dies with plughost (`PR_SET_PDEATHSIG`
//!   from one long-lived thread), a clean environment, the SHA-256 pin.
//! * `process`: one process's life: start, ready when its socket answers
//!   reflection with a `dapr.proto.components.v1` service of its kind,
//!   probes, restarts with exponential backoff and a budget, stop (SIGTERM,
//!   grace period, SIGKILL, reap, socket removed).
//! * `logs`: stdout and stderr into `tracing`, line by line, bounded.
//!
//! While a process is down, calls to its component fail at once
//! (`Unavailable`); once it serves again, the component's link reconnects,
//! replays `Init` and re-opens its streams (`pluggable::link`).

mod logs;
mod process;
mod settings;
mod spawn;

use std::sync::Arc;

use futures::future::join_all;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use logs::{LINES_PER_SECOND, MAX_LINE, TAIL_LINES};
pub use process::{ProcessInfo, ProcessState};
pub use settings::{ANNOTATION_PREFIX, ANNOTATIONS, COMMAND, ProcessSettings};

/// The supervised processes of a host.
#[derive(Default)]
pub struct Supervisor {
    processes: Vec<(Arc<process::Supervised>, JoinHandle<()>)>,
}

impl Supervisor {
    /// Starts every process at once and waits until each is ready or its
    /// first start failed (then it keeps retrying in the background, per
    /// its restart policy). Returns the first-start error of each component
    /// whose process failed, with the tail of the process's output.
    pub async fn start(settings: Vec<ProcessSettings>) -> (Self, Vec<(String, String)>) {
        let mut supervisor = Self::default();
        let mut firsts = Vec::new();
        for settings in settings {
            let supervised = process::Supervised::new(settings);
            let (first, answer) = oneshot::channel();
            let task = tokio::spawn(supervised.clone().supervise(first));
            firsts.push((supervised.settings.component.clone(), answer));
            supervisor.processes.push((supervised, task));
        }
        let mut failed = Vec::new();
        for (component, result) in join_all(firsts.into_iter().map(|(c, a)| async move { (c, a.await) })).await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(reason)) => failed.push((component, reason)),
                Err(_) => failed.push((component, "the supervision task ended".to_owned())),
            }
        }
        (supervisor, failed)
    }

    /// Every supervised process.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.processes.iter().map(|(p, _)| p.info()).collect()
    }

    /// The process declared by `component`.
    pub fn process(&self, component: &str) -> Option<ProcessInfo> {
        self.find(component).map(|p| p.info())
    }

    fn find(&self, component: &str) -> Option<&Arc<process::Supervised>> {
        self.processes.iter().map(|(p, _)| p).find(|p| p.settings.component == component)
    }

    /// Restarts `component`'s process now (counted as a restart); `false`
    /// if it has none.
    pub fn restart(&self, component: &str) -> bool {
        self.find(component).map(|p| p.restart()).is_some()
    }

    /// Waits until `component`'s process info satisfies `condition`.
    pub async fn wait_for(&self, component: &str, condition: impl Fn(&ProcessInfo) -> bool) -> Option<ProcessInfo> {
        let process = self.find(component)?;
        let mut changes = process.changes.subscribe();
        loop {
            let info = process.info();
            if condition(&info) {
                return Some(info);
            }
            changes.changed().await.ok()?;
        }
    }

    /// A shared handle on every process, for the admin API.
    pub fn handle(&self) -> Processes {
        Processes(self.processes.iter().map(|(p, _)| p.clone()).collect())
    }

    /// Stops every process (SIGTERM, `stopTimeout`, SIGKILL), all at once,
    /// and waits until each is reaped and its socket removed.
    pub async fn shutdown(mut self) {
        let processes = std::mem::take(&mut self.processes);
        for (process, _) in &processes {
            process.stop();
        }
        join_all(processes.into_iter().map(|(_, task)| task)).await;
    }
}

/// The supervised processes, shared (the [`Supervisor`] owns their tasks
/// and stops them; this only looks and asks for restarts).
#[derive(Clone, Default)]
pub struct Processes(Vec<Arc<process::Supervised>>);

impl Processes {
    /// The process declared by `component`.
    pub fn process(&self, component: &str) -> Option<ProcessInfo> {
        self.0.iter().find(|p| p.settings.component == component).map(|p| p.info())
    }

    /// Restarts `component`'s process now (counted as a restart); `false`
    /// if it has none.
    pub fn restart(&self, component: &str) -> bool {
        self.0.iter().find(|p| p.settings.component == component).map(|p| p.restart()).is_some()
    }
}

impl Drop for Supervisor {
    /// Without `shutdown` (a host dropped, not shut down): the tasks end and
    /// drop their children, which are then SIGKILLed (`kill_on_drop`) and
    /// reaped by tokio.
    fn drop(&mut self) {
        for (process, task) in &self.processes {
            process.stop();
            task.abort();
        }
    }
}
