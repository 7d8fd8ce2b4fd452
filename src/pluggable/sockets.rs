//! The socket folder, watched: what [`discovery`](super::discovery) found in
//! it, kept up to date while the host runs.
//!
//! The host scans once before starting components, then every
//! [`GrpcOptions::watch_interval`]. A socket is asked again when it is
//! re-created (new inode or mtime), and a socket that failed is asked again
//! after [`RETRY_FAILED`]; each problem is logged once per reason. Component
//! types are only ever added: a socket that disappears keeps its types, so
//! a component whose process restarts on the same path is reconnected (see
//! `link`), not forgotten.
//!
//! Trust (see [`trust`]): a folder that others may write to, or that another
//! user owns, is refused (nothing in it is probed), and every probe checks
//! who serves the socket.
//!
//! Late sockets: a configured component whose type is not known yet, but
//! could come from a socket, calls [`SocketDirectory::wait_for`], which
//! returns as soon as a scan registers that type (dapr/dapr#6180: daprd
//! never sees a socket created after its start-up).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::discovery::{self, Candidate};
use super::{GrpcOptions, trust};
use crate::kinds::ComponentKind;

/// How long a socket that could not be used waits before it is asked again
/// (unless it is re-created sooner).
pub const RETRY_FAILED: Duration = Duration::from_secs(5);

/// What a scan learned about the folder.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SocketReport {
    /// The folder.
    pub dir: PathBuf,
    /// Sockets serving components: path and the types registered for it.
    pub components: Vec<(PathBuf, Vec<String>)>,
    /// Entries that are not usable components: path and why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// The socket serving one component type.
#[derive(Debug, Clone)]
pub struct Provider {
    /// The socket.
    pub socket: PathBuf,
    /// The kinds behind one type: one, or input and output for `bindings.*`.
    pub kinds: Vec<ComponentKind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    Component(Vec<String>),
    Skipped(String),
}

#[derive(Debug)]
struct Entry {
    identity: Option<(u64, u64, i64)>,
    outcome: Outcome,
    probed: Instant,
}

#[derive(Default)]
struct DirState {
    entries: BTreeMap<PathBuf, Entry>,
    types: BTreeMap<String, Provider>,
    unreadable: Option<String>,
    /// Why the folder is not safe to take sockets from (see `trust`).
    unsafe_dir: Option<String>,
}

/// A watched socket folder and the component types its sockets provide.
pub struct SocketDirectory {
    dir: PathBuf,
    options: GrpcOptions,
    state: Mutex<DirState>,
    changes: watch::Sender<()>,
}

impl std::fmt::Debug for SocketDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SocketDirectory").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl SocketDirectory {
    /// A folder not scanned yet.
    pub fn new(dir: impl Into<PathBuf>, options: GrpcOptions) -> Arc<Self> {
        Arc::new(Self { dir: dir.into(), options, state: Mutex::default(), changes: watch::Sender::new(()) })
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Looks at every entry that is new, re-created, or due for a retry;
    /// sockets are asked concurrently, each within the probe deadline.
    pub async fn scan(&self) {
        if !self.folder_is_safe() {
            return;
        }
        let candidates = match discovery::list_candidates(&self.dir) {
            Ok(candidates) => candidates,
            Err(e) => {
                let reason = format!("cannot read socket folder {}: {e}", self.dir.display());
                let mut state = self.state.lock().expect("sockets lock");
                if state.unreadable.as_ref() != Some(&reason) {
                    tracing::warn!("{reason}");
                    state.unreadable = Some(reason);
                }
                return;
            }
        };
        let now = Instant::now();
        let mut to_probe = Vec::new();
        {
            let mut state = self.state.lock().expect("sockets lock");
            state.unreadable = None;
            let present: HashSet<&Path> = candidates.iter().map(Candidate::path).collect();
            state.entries.retain(|path, _| present.contains(path.as_path()));
            for candidate in &candidates {
                match candidate {
                    Candidate::Other { path, what } => {
                        if !state.entries.contains_key(path) {
                            let reason = format!("not a socket ({what})");
                            tracing::warn!(path = %path.display(), "skipped: {reason}");
                            let entry = Entry { identity: None, outcome: Outcome::Skipped(reason), probed: now };
                            state.entries.insert(path.clone(), entry);
                        }
                    }
                    Candidate::Socket { path, identity } => {
                        let due = match state.entries.get(path) {
                            Some(entry) if entry.identity == Some(*identity) => {
                                matches!(entry.outcome, Outcome::Skipped(_))
                                    && now.duration_since(entry.probed) >= RETRY_FAILED
                            }
                            _ => true,
                        };
                        if due {
                            to_probe.push((path.clone(), *identity));
                        }
                    }
                }
            }
        }
        let (deadline, options) = (self.options.probe_timeout, &self.options);
        let probes = to_probe.into_iter().map(|(path, identity)| async move {
            let result = discovery::probe(&path, deadline, options).await;
            (path, identity, result)
        });
        let results = futures::future::join_all(probes).await;
        let mut added = false;
        let mut state = self.state.lock().expect("sockets lock");
        for (path, identity, result) in results {
            let outcome = match result {
                Ok(services) => self.register(&mut state, &path, &services, &mut added),
                Err(reason) => Outcome::Skipped(reason),
            };
            let unchanged = state.entries.get(&path).is_some_and(|e| e.outcome == outcome);
            if !unchanged {
                match &outcome {
                    Outcome::Component(types) => {
                        tracing::info!(socket = %path.display(), "discovered component types {}", types.join(", "));
                    }
                    Outcome::Skipped(reason) => tracing::warn!(socket = %path.display(), "skipped: {reason}"),
                }
            }
            state.entries.insert(path, Entry { identity: Some(identity), outcome, probed: Instant::now() });
        }
        drop(state);
        if added {
            self.changes.send_replace(());
        }
    }

    /// Checks the folder's owner and permissions (see [`trust::check_dir`]);
    /// logs each new problem once: refused, or a loud warning when
    /// [`GrpcOptions::allow_shared_socket_dir`] is set.
    fn folder_is_safe(&self) -> bool {
        let problem = trust::check_dir(&self.dir, &self.options).err();
        let mut state = self.state.lock().expect("sockets lock");
        if state.unsafe_dir != problem {
            if let Some(problem) = &problem {
                if self.options.allow_shared_socket_dir {
                    tracing::error!("INSECURE: {problem}; used anyway because shared socket folders are allowed");
                } else {
                    tracing::error!("{problem}; no socket in it is used");
                }
            }
            state.unsafe_dir = problem;
        }
        state.unsafe_dir.is_none() || self.options.allow_shared_socket_dir
    }

    /// Why the folder is refused, if it is.
    pub fn refused(&self) -> Option<String> {
        let state = self.state.lock().expect("sockets lock");
        state.unsafe_dir.clone().filter(|_| !self.options.allow_shared_socket_dir)
    }

    /// Registers the types `services` provide on `path`.
    fn register(&self, state: &mut DirState, path: &Path, services: &[String], added: &mut bool) -> Outcome {
        let kinds = discovery::kinds_of(services);
        let Some(name) = discovery::component_name(path) else {
            return Outcome::Skipped("the socket's file name is not valid UTF-8".to_owned());
        };
        if kinds.is_empty() {
            return Outcome::Skipped(format!(
                "serves none of Dapr's component services (it serves: {})",
                if services.is_empty() { "nothing".to_owned() } else { services.join(", ") }
            ));
        }
        let mut types = Vec::new();
        for kind in kinds {
            let type_name = format!("{}.{name}", kind.type_prefix());
            match state.types.get_mut(&type_name) {
                Some(provider) if provider.socket != path => {
                    tracing::warn!(
                        socket = %path.display(),
                        "`{type_name}` is already provided by {}; ignored here",
                        provider.socket.display()
                    );
                    continue;
                }
                Some(provider) => {
                    if !provider.kinds.contains(&kind) {
                        provider.kinds.push(kind);
                    }
                }
                None => {
                    state.types.insert(type_name.clone(), Provider { socket: path.to_owned(), kinds: vec![kind] });
                    *added = true;
                }
            }
            if !types.contains(&type_name) {
                types.push(type_name);
            }
        }
        Outcome::Component(types)
    }

    /// Scans every [`GrpcOptions::watch_interval`] until the task is aborted
    /// (the host does that on shutdown or drop).
    pub async fn watch(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.options.watch_interval).await;
            self.scan().await;
        }
    }

    /// Whether a socket could ever provide `type_name` (it has a kind prefix:
    /// `state.`, `pubsub.`, `bindings.`, `secretstores.`).
    pub fn could_provide(type_name: &str) -> bool {
        !ComponentKind::of_type(type_name).is_empty()
    }

    /// Waits until a scan registers `type_name`, at most `deadline`; `true`
    /// if it did.
    pub async fn wait_for(self: Arc<Self>, type_name: String, deadline: Duration) -> bool {
        let mut changes = self.changes.subscribe();
        let wait = async {
            loop {
                if self.state.lock().expect("sockets lock").types.contains_key(&type_name) {
                    return;
                }
                if changes.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::time::timeout(deadline, wait).await.is_ok()
    }

    /// Every type registered so far, sorted.
    pub fn type_names(&self) -> Vec<String> {
        self.state.lock().expect("sockets lock").types.keys().cloned().collect()
    }

    /// What the scans found so far.
    pub fn report(&self) -> SocketReport {
        let state = self.state.lock().expect("sockets lock");
        let mut report = SocketReport { dir: self.dir.clone(), ..SocketReport::default() };
        if let Some(reason) = state.unsafe_dir.clone().filter(|_| !self.options.allow_shared_socket_dir) {
            report.skipped.push((self.dir.clone(), reason));
        }
        for (path, entry) in &state.entries {
            match &entry.outcome {
                Outcome::Component(types) => report.components.push((path.clone(), types.clone())),
                Outcome::Skipped(reason) => report.skipped.push((path.clone(), reason.clone())),
            }
        }
        report
    }

    /// Notified after every scan that registered new types.
    pub fn changes(&self) -> watch::Receiver<()> {
        self.changes.subscribe()
    }

    /// The socket providing `type_name`, if one does.
    pub fn provider(&self, type_name: &str) -> Option<Provider> {
        self.state.lock().expect("sockets lock").types.get(&type_name.to_lowercase()).cloned()
    }
}
