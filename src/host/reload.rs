//! Live reload: the running host follows its configuration.
//!
//! [`Reloader::reload_all`] re-reads the WASM folder and the components
//! folder and applies the difference: a new YAML document adds a component,
//! an edited one replaces it, a removed one removes it; a `.wasm` whose
//! content changed rebuilds every component of its types. A replacement is
//! always: make and `init` the new instance → switch the component's slot →
//! let calls still running on the old one finish (bounded by
//! [`DRAIN_TIMEOUT`]) → `close` the old one. If anything before the switch
//! fails, the old instance keeps serving and the error is logged and shown
//! in the component's listing. An invalid components folder changes nothing.
//!
//! Triggers: the folders are watched ([`watch`], debounced), `SIGHUP` (in
//! `main`), a socket that appears for a component still waiting for its type,
//! and the embedding API ([`Host::reload`](super::Host::reload),
//! [`Host::replace`](super::Host::replace)).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::start::{self, Prepared, Started, Types};
use crate::component::{Factories, Instance, Mode, modes};
use crate::config::{ComponentSpec, Origin};
use crate::error::{Error, Result};
use crate::pluggable::{GrpcOptions, SocketDirectory};
use crate::registry::Registry;
use crate::resiliency::Resiliency;
use crate::wasm::WasmLoader;

/// How long calls still running on a replaced instance may take before it
/// is closed anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// How long the folder watcher waits for a burst of file events to settle.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What reloads change, behind one lock: one reload at a time.
pub(crate) struct Config {
    pub(crate) factories: Factories,
    pub(crate) sockets: Option<Arc<SocketDirectory>>,
    pub(crate) grpc: GrpcOptions,
    pub(crate) data_dir: PathBuf,
    pub(crate) resiliency: Resiliency,
    pub(crate) ops: Arc<crate::ops::Ops>,
    pub(crate) components_dir: Option<PathBuf>,
    pub(crate) wasm_dir: Option<PathBuf>,
    pub(crate) embedded_defaults: bool,
    /// Specs given in code (`HostBuilder::component`), kept on every reload.
    pub(crate) in_code: Vec<ComponentSpec>,
    /// The spec each configured component runs with (serving or failed).
    pub(crate) applied: BTreeMap<String, ComponentSpec>,
    /// Each loaded `.wasm`: its content hash and the types it gave.
    pub(crate) wasm_files: HashMap<PathBuf, ([u8; 32], Vec<String>)>,
}

/// Applies configuration changes to a running registry.
pub(crate) struct Reloader {
    registry: Registry,
    config: tokio::sync::Mutex<Config>,
}

/// The content hash of a `.wasm` file (which decides whether it changed).
pub(crate) fn file_hash(path: &Path) -> std::io::Result<[u8; 32]> {
    Ok(Sha256::digest(std::fs::read(path)?).into())
}

/// Whether two specs define the same component (where they are written
/// does not count: an edit elsewhere in the file moves the line).
fn same(a: &ComponentSpec, b: &ComponentSpec) -> bool {
    let plain = |s: &ComponentSpec| ComponentSpec { origin: Origin::Code, ..s.clone() };
    plain(a) == plain(b)
}

impl Reloader {
    pub(crate) fn new(registry: Registry, config: Config) -> Arc<Self> {
        Arc::new(Self { registry, config: tokio::sync::Mutex::new(config) })
    }

    /// Re-reads both folders and applies what changed. Errors of single
    /// components are logged and shown in their listing; the error returned
    /// is an invalid components folder (nothing changed then).
    pub(crate) async fn reload_all(&self) -> Result<()> {
        let mut config = self.config.lock().await;
        let rebuilt = self.reload_wasm(&mut config).await;
        // The same reading, checks and order as at start-up.
        let read = super::collect_specs(
            config.embedded_defaults,
            config.components_dir.as_deref(),
            config.in_code.clone(),
            Resiliency::default(),
        );
        let checked = match read {
            Ok((specs, _)) => super::claim_names(&specs, &[]).map(|_| specs),
            Err(error) => Err(error),
        };
        let mut specs = match checked {
            Ok(specs) => specs,
            Err(error) => {
                tracing::error!("reload refused, nothing changed: {error}");
                return Err(error);
            }
        };
        super::start_order(&mut specs, &HashMap::new(), &[]);
        let removed: Vec<String> =
            config.applied.keys().filter(|name| !specs.iter().any(|s| &s.name == *name)).cloned().collect();
        for name in removed {
            config.applied.remove(&name);
            self.remove(&name).await;
        }
        for spec in specs {
            let changed = match config.applied.get(&spec.name) {
                None => true,
                Some(old) => !same(old, &spec) || rebuilt.contains(&spec.type_name),
            };
            let waiting = self.registry.slot(&spec.name).is_none();
            if changed || waiting {
                let _ = self.apply(&mut config, spec).await; // logged and listed by `apply`
            }
        }
        Ok(())
    }

    /// Replaces component `name` by a fresh instance of the spec it runs with
    /// (the admin API's reload).
    pub(crate) async fn reload_one(&self, name: &str) -> Result<()> {
        let mut config = self.config.lock().await;
        let spec = config.applied.get(name).cloned().ok_or_else(|| Error::Create {
            name: name.to_owned(),
            origin: Origin::Code,
            reason: anyhow::anyhow!("no such component"),
        })?;
        self.apply(&mut config, spec).await
    }

    /// Replaces (or adds) one component by `spec`; the error says why the old
    /// one, if any, keeps serving.
    pub(crate) async fn replace(&self, spec: ComponentSpec) -> Result<()> {
        let mut config = self.config.lock().await;
        config.in_code.retain(|s| s.name != spec.name);
        config.in_code.push(spec.clone());
        self.apply(&mut config, spec).await
    }

    /// Loads new and changed `.wasm` files; returns the types whose code
    /// changed (their components are rebuilt).
    async fn reload_wasm(&self, config: &mut Config) -> Vec<String> {
        let Some(dir) = config.wasm_dir.clone() else { return Vec::new() };
        let paths = match crate::wasm::wasm_files(&dir) {
            Ok(paths) => paths,
            Err(e) => {
                tracing::warn!("{e:#}");
                return Vec::new();
            }
        };
        for gone in config.wasm_files.keys().filter(|p| !paths.contains(p)) {
            tracing::warn!(path = %gone.display(), "WASM file removed; its running components keep running");
        }
        let loader = match WasmLoader::new(Some(config.data_dir.join("wasm-cache"))) {
            Ok(loader) => loader,
            Err(e) => {
                tracing::error!("WASM runtime: {e:#}");
                return Vec::new();
            }
        };
        let mut rebuilt = Vec::new();
        for path in paths {
            let Ok(hash) = file_hash(&path) else { continue };
            let known = config.wasm_files.get(&path).map(|(h, _)| *h);
            if known == Some(hash) {
                continue;
            }
            tracing::info!(path = %path.display(), "WASM file {}; compiling", if known.is_some() { "changed" } else { "added" });
            match loader.load(&path).await {
                Ok(component) => {
                    let mut types = Vec::new();
                    for (type_name, factory) in modes::wasm_types(&component) {
                        config.factories.insert(&type_name, factory);
                        types.push(type_name);
                    }
                    tracing::info!(path = %path.display(), types = %types.join(", "), "WASM file loaded");
                    if known.is_some() {
                        rebuilt.extend(types.iter().cloned());
                    }
                    config.wasm_files.insert(path, (hash, types));
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), "WASM file not loaded, components keep their code: {e:#}")
                }
            }
        }
        rebuilt
    }

    /// Makes `spec`'s component and swaps it in by a handover (see
    /// [`crate::live`]), or adds it. On failure nothing changes but the
    /// listing (a reload error, or a failed entry for a new component).
    async fn apply(&self, config: &mut Config, spec: ComponentSpec) -> Result<()> {
        let name = spec.name.clone();
        config.applied.insert(name.clone(), spec.clone());
        let prepared = match self.prepare(config, &spec).await {
            Ok(prepared) => prepared,
            Err((mode, error)) => return Err(self.failed(&spec, mode, error)),
        };
        let mode = prepared.mode;
        let Some(slot) = self.registry.slot(&name) else {
            return match prepared.init(&spec, &config.resiliency, &config.ops).await {
                Ok(Started { info, instance, key_prefix }) => {
                    self.registry.insert(info, instance, key_prefix);
                    tracing::info!(component = %name, mode = mode.as_str(), "added");
                    Ok(())
                }
                Err(error) => Err(self.failed(&spec, mode, error)),
            };
        };
        let old = slot.begin_handover();
        if !crate::live::drain(&old, 1, DRAIN_TIMEOUT).await {
            tracing::warn!(component = %name, "calls still running on the old instance after {DRAIN_TIMEOUT:?}");
        }
        match prepared.init(&spec, &config.resiliency, &config.ops).await {
            Ok(Started { info, instance, key_prefix }) => {
                self.registry.finish_handover(&slot, Some((info, instance, key_prefix)));
                self.registry.set_reload_error(&name, None);
                tracing::info!(component = %name, mode = mode.as_str(), generation = slot.generation(), "swapped in");
                close(&name, &old).await;
                Ok(())
            }
            Err(error) => {
                self.registry.finish_handover(&slot, None);
                Err(self.failed(&spec, mode, error))
            }
        }
    }

    /// Logs `error` and shows it in the listing: as a reload error if the
    /// component serves (it goes on as before), else as a failed entry.
    fn failed(&self, spec: &ComponentSpec, mode: Mode, error: Error) -> Error {
        match self.registry.slot(&spec.name) {
            Some(_) => {
                tracing::error!(component = %spec.name, "reload failed, the running instance keeps serving: {error}");
                self.registry.set_reload_error(&spec.name, Some(error.to_string()));
            }
            None => {
                tracing::error!(component = %spec.name, "not started: {error}");
                self.registry.add_failed(start::failed(spec, mode, &error));
            }
        }
        error
    }

    async fn prepare(&self, config: &Config, spec: &ComponentSpec) -> std::result::Result<Prepared, (Mode, Error)> {
        let mut types = Types {
            factories: &config.factories,
            sockets: config.sockets.as_ref(),
            grpc: &config.grpc,
            waits: HashMap::new(),
        };
        let factory = types.resolve(spec).await.map_err(|e| (Mode::Grpc, e))?;
        let registry = self.registry.clone();
        let secrets = move |name: &str| registry.secret_store(name);
        start::prepare(spec, &factory, &config.data_dir, &secrets).await.map_err(|e| (factory.mode, e))
    }

    async fn remove(&self, name: &str) {
        let Some(slot) = self.registry.remove(name) else {
            tracing::info!(component = name, "removed (it was not serving)");
            return;
        };
        let old = slot.begin_handover();
        if !crate::live::drain(&old, 1, DRAIN_TIMEOUT).await {
            tracing::warn!(component = name, "calls still running after {DRAIN_TIMEOUT:?}; closing it anyway");
        }
        slot.finish_handover(Some(crate::live::removed(name)));
        tracing::info!(component = name, "removed");
        close(name, &old).await;
    }
}

/// Closes a replaced or removed instance (its calls have finished).
async fn close(name: &str, old: &Instance) {
    if let Err(e) = old.lifecycle.close().await {
        tracing::warn!(component = name, "closing the replaced instance: {e}");
    }
}

/// Starts watching `dirs` now (so no edit made after this returns is
/// missed) and returns the task that reloads after each burst of changes,
/// until it is aborted. A folder that cannot be watched is logged and left
/// alone.
pub(crate) fn watch(reloader: Arc<Reloader>, dirs: Vec<PathBuf>) -> impl std::future::Future<Output = ()> + Send {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let debouncer = notify_debouncer_mini::new_debouncer(DEBOUNCE, move |events| {
        let _ = tx.send(events);
    });
    let debouncer = match debouncer {
        Ok(mut debouncer) => {
            for dir in &dirs {
                if let Err(e) =
                    debouncer.watcher().watch(dir, notify_debouncer_mini::notify::RecursiveMode::NonRecursive)
                {
                    tracing::error!("cannot watch {}: {e}", dir.display());
                }
            }
            Some(debouncer)
        }
        Err(e) => {
            tracing::error!("cannot watch the configuration folders: {e}");
            None
        }
    };
    async move {
        let _watching = debouncer;
        while let Some(events) = rx.recv().await {
            match events {
                Ok(events) => {
                    let paths: Vec<String> = events.iter().map(|e| e.path.display().to_string()).collect();
                    tracing::info!("configuration changed ({}); reloading", paths.join(", "));
                    let _ = reloader.reload_all().await;
                }
                Err(e) => tracing::warn!("watching the configuration folders: {e}"),
            }
        }
    }
}

/// Whenever the socket folder registers new types, starts the configured
/// components that are still waiting for theirs (past their `initTimeout`
/// too: such a component is listed as failed until its socket appears).
pub(crate) async fn follow_sockets(reloader: Arc<Reloader>, sockets: Arc<SocketDirectory>) {
    let mut changes = sockets.changes();
    while changes.changed().await.is_ok() {
        reloader.start_waiting().await;
    }
}

impl Reloader {
    /// Starts every configured component that is not serving and whose type
    /// is now known.
    async fn start_waiting(&self) {
        let mut config = self.config.lock().await;
        let waiting: Vec<ComponentSpec> = config
            .applied
            .values()
            .filter(|spec| self.registry.slot(&spec.name).is_none())
            .filter(|spec| {
                config.factories.get(&spec.type_name).is_some()
                    || config.sockets.as_ref().is_some_and(|s| s.provider(&spec.type_name).is_some())
            })
            .cloned()
            .collect();
        for spec in waiting {
            tracing::info!(component = %spec.name, r#type = %spec.type_name, "its type appeared; starting it");
            let _ = self.apply(&mut config, spec).await;
        }
    }
}
