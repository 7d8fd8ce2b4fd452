//! [`Host`]: configuration → factories → initialised components → registry.

mod reload;
mod start;

use reload::{Config, Reloader};
use start::{Started, Types};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::component::{ComponentInfo, Factories, Factory, Health, Instance, Mode, Status, modes};
use crate::config::{self, ComponentSpec, Origin};
use crate::error::{Error, Result};
use crate::health::HealthOptions;
use crate::kinds::input_binding::InputBinding;
use crate::kinds::output_binding::OutputBinding;
use crate::kinds::pubsub::PubSub;
use crate::kinds::secret_store::SecretStore;
use crate::kinds::state::StateStore;
use crate::kinds::{ComponentKind, Metadata};
use crate::ops::Ops;
use crate::pluggable::{GrpcOptions, SocketDirectory, SocketReport};
use crate::registry::{Registry, RegistryBuilder, RegistryError};
use crate::resiliency::Resiliency;
use crate::supervisor::{ProcessInfo, ProcessSettings, Supervisor};

/// How long `shutdown` waits for each component to close.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// A running set of components.
///
/// ```no_run
/// # async fn demo() -> plughost::Result<()> {
/// let host = plughost::Host::builder().components_dir("./components").build().await?;
/// let store = host.state("statestore")?;
/// # Ok(()) }
/// ```
pub struct Host {
    registry: Registry,
    data_dir: PathBuf,
    skipped_wasm: Vec<(PathBuf, String)>,
    sockets: Option<Arc<SocketDirectory>>,
    /// The component processes plughost started (`plughost.io/command`).
    supervisor: Option<Supervisor>,
    /// Applies configuration changes while the host runs.
    reloader: Arc<Reloader>,
    /// Scans the socket folder while the host lives.
    _watcher: Option<AbortOnDrop<()>>,
    /// Watches the components and WASM folders, and retries components
    /// waiting for a socket, while the host lives.
    _followers: Vec<AbortOnDrop<()>>,
    /// Probes every component's health while the host lives.
    _prober: AbortOnDrop<()>,
    /// Per-component switches and metrics, the admin API's view.
    ops: Arc<Ops>,
}

/// Reloads a [`Host`] from another task; see [`Host::reload`].
#[derive(Clone)]
pub struct ReloadHandle(Arc<Reloader>);

impl ReloadHandle {
    /// The same as [`Host::reload`].
    pub async fn reload(&self) -> Result<()> {
        self.0.reload_all().await
    }
}

/// A task that ends with its owner.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Host {
    /// Starts describing a host.
    pub fn builder() -> HostBuilder {
        HostBuilder::new()
    }

    /// Every serving component, by kind and name.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The directory where persistent components keep their files.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Every configured component, serving or not, with its generation.
    pub fn components(&self) -> Vec<ComponentInfo> {
        self.registry.components()
    }

    /// Re-reads the components and WASM folders and applies what changed
    /// (what a watched folder's edit or `SIGHUP` does): new components
    /// start, edited ones are replaced with no failed call, removed ones
    /// stop. An invalid components folder changes nothing and is the error;
    /// a component that fails to start again keeps its running instance.
    pub async fn reload(&self) -> Result<()> {
        self.reloader.reload_all().await
    }

    /// A handle that reloads this host from another task (e.g. on `SIGHUP`).
    pub fn reload_handle(&self) -> ReloadHandle {
        ReloadHandle(self.reloader.clone())
    }

    /// Replaces the component named like `spec` (or adds it) by `spec`: the
    /// new instance is made and initialised first, then swapped in; calls
    /// running on the old one finish before it is closed. On error the old
    /// one keeps serving.
    pub async fn replace(&self, spec: ComponentSpec) -> Result<()> {
        self.reloader.replace(spec).await
    }

    /// The `.wasm` files of the WASM directory that could not be used, each
    /// with the reason (they were skipped; the others loaded).
    pub fn skipped_wasm(&self) -> &[(PathBuf, String)] {
        &self.skipped_wasm
    }

    /// What the socket folder holds so far (components found, entries
    /// skipped and why), if socket discovery is on.
    pub fn sockets(&self) -> Option<SocketReport> {
        self.sockets.as_ref().map(|s| s.report())
    }

    /// The component processes plughost supervises (declared with
    /// `plughost.io/command`), if any.
    pub fn supervisor(&self) -> Option<&Supervisor> {
        self.supervisor.as_ref()
    }

    /// Per-component switches, metrics and processes (see [`crate::ops`]).
    pub fn ops(&self) -> &Arc<Ops> {
        &self.ops
    }

    /// What each supervised component process is doing.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.supervisor.as_ref().map(Supervisor::processes).unwrap_or_default()
    }

    /// The state store named `name`.
    pub fn state(&self, name: &str) -> Result<Arc<dyn StateStore>, RegistryError> {
        self.registry.state(name)
    }

    /// The pub/sub component named `name`.
    pub fn pubsub(&self, name: &str) -> Result<Arc<dyn PubSub>, RegistryError> {
        self.registry.pubsub(name)
    }

    /// The input binding named `name`.
    pub fn input_binding(&self, name: &str) -> Result<Arc<dyn InputBinding>, RegistryError> {
        self.registry.input_binding(name)
    }

    /// The output binding named `name`.
    pub fn output_binding(&self, name: &str) -> Result<Arc<dyn OutputBinding>, RegistryError> {
        self.registry.output_binding(name)
    }

    /// The secret store named `name`.
    pub fn secret_store(&self, name: &str) -> Result<Arc<dyn SecretStore>, RegistryError> {
        self.registry.secret_store(name)
    }

    /// Closes every serving component, newest first, each bounded by a few
    /// seconds; errors are logged, not returned, so one stuck component does
    /// not keep the others open.
    pub async fn shutdown(self) {
        drop(self._followers);
        drop(self._watcher);
        drop(self._prober);
        for info in self.registry.components().iter().rev().filter(|i| i.status == Status::Ready) {
            let name = info.name.as_str();
            let Some(lifecycle) = self.registry.lifecycle(name) else { continue };
            match tokio::time::timeout(CLOSE_TIMEOUT, lifecycle.close()).await {
                Ok(Ok(())) => tracing::debug!(component = name, "closed"),
                Ok(Err(e)) => tracing::warn!(component = name, "close failed: {e}"),
                Err(_) => tracing::warn!(component = name, "close did not finish within {CLOSE_TIMEOUT:?}"),
            }
        }
        // Processes last: their components are closed, so nothing is acked
        // or nacked on a stream that is going away.
        if let Some(supervisor) = self.supervisor {
            supervisor.shutdown().await;
        }
    }
}

/// Describes a [`Host`]: where components come from, where data goes.
pub struct HostBuilder {
    components_dir: Option<PathBuf>,
    wasm_dir: Option<PathBuf>,
    data_dir: PathBuf,
    specs: Vec<ComponentSpec>,
    instances: Vec<(String, Instance)>,
    factories: Factories,
    embedded_defaults: bool,
    resiliency: Resiliency,
    socket_dir: Option<PathBuf>,
    grpc: GrpcOptions,
    health: HealthOptions,
    watch: bool,
}

impl Default for HostBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// `$XDG_DATA_HOME/plughost`, else `~/.local/share/plughost`, else `./.plughost`.
pub fn default_data_dir() -> PathBuf {
    let from_env = |var: &str| std::env::var_os(var).filter(|v| !v.is_empty()).map(PathBuf::from);
    from_env("XDG_DATA_HOME")
        .map(|d| d.join("plughost"))
        .or_else(|| from_env("HOME").map(|h| h.join(".local/share/plughost")))
        .unwrap_or_else(|| PathBuf::from(".plughost"))
}

impl HostBuilder {
    /// A builder with every built-in type registered and no components.
    pub fn new() -> Self {
        let mut factories = Factories::default();
        crate::builtins::register(&mut factories);
        Self {
            components_dir: None,
            wasm_dir: None,
            data_dir: default_data_dir(),
            specs: Vec::new(),
            instances: Vec::new(),
            factories,
            embedded_defaults: false,
            resiliency: Resiliency::default(),
            socket_dir: None,
            grpc: GrpcOptions::default(),
            health: HealthOptions::default(),
            watch: true,
        }
    }

    /// Discovers Dapr pluggable components on the Unix sockets in `dir`
    /// (off unless set; [`crate::pluggable::discovery::default_socket_dir`] is
    /// daprd's choice): a socket `orders.sock` serving
    /// `dapr.proto.components.v1.StateStore` becomes type `state.orders`.
    /// The folder stays watched: a component whose type is not known yet
    /// waits, up to its `initTimeout`, for a socket that provides it.
    pub fn socket_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.socket_dir = Some(dir.into());
        self
    }

    /// Timeouts and limits of gRPC mode.
    pub fn grpc_options(mut self, options: GrpcOptions) -> Self {
        self.grpc = options;
        self
    }

    /// How often and how patiently every component is probed for its
    /// health (see [`crate::health`]).
    pub fn health_options(mut self, options: HealthOptions) -> Self {
        self.health = options;
        self
    }

    /// Whether the components and WASM folders are watched, so edits apply
    /// while the host runs (on by default; [`Host::reload`] works either way).
    pub fn watch(mut self, watch: bool) -> Self {
        self.watch = watch;
        self
    }

    /// Loads every Dapr Component YAML file in `dir`.
    pub fn components_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.components_dir = Some(dir.into());
        self
    }

    /// Loads every `*.wasm` component in `dir` and registers a type
    /// `<kind>.<file stem>` for each kind it exports. Compiled code is cached
    /// under the data directory (`wasm-cache/`), so later starts do not
    /// compile again.
    pub fn wasm_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.wasm_dir = Some(dir.into());
        self
    }

    /// Where persistent components (`state.sqlite`, ...) keep their files.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = dir.into();
        self
    }

    /// Adds a component defined in code, as if it came from a YAML file.
    pub fn component(mut self, spec: ComponentSpec) -> Self {
        self.specs.push(spec);
        self
    }

    /// Adds the embedded defaults `plughost run` starts with: a `statestore`
    /// on `state.sqlite` and a `pubsub` on `pubsub.in-memory`.
    pub fn embedded_defaults(mut self) -> Self {
        self.embedded_defaults = true;
        self
    }

    /// Adds resiliency policies, as if read from a `kind: Resiliency`
    /// document of the components directory (which may add more).
    pub fn resiliency(mut self, resiliency: Resiliency) -> Self {
        self.resiliency.merge(resiliency);
        self
    }

    /// Adds a ready-made instance under `name`; it is initialised with empty
    /// metadata like any other component.
    pub fn instance(mut self, name: impl Into<String>, instance: Instance) -> Self {
        self.instances.push((name.into(), instance));
        self
    }

    /// Adds a ready-made state store under `name`.
    pub fn state(self, name: impl Into<String>, store: Arc<dyn StateStore>) -> Self {
        self.instance(name, Instance::state(store))
    }

    /// Adds a ready-made pub/sub component under `name`.
    pub fn pubsub(self, name: impl Into<String>, pubsub: Arc<dyn PubSub>) -> Self {
        self.instance(name, Instance::pubsub(pubsub))
    }

    /// Registers (or replaces) the factory for component type `type_name`.
    pub fn factory(mut self, type_name: &str, factory: Factory) -> Self {
        self.factories.insert(type_name, factory);
        self
    }

    /// Every component type this builder can make, sorted.
    pub fn type_names(&self) -> Vec<String> {
        self.factories.type_names().map(str::to_owned).collect()
    }

    /// Reads the configuration, makes and initialises every component, and
    /// returns the running host. Fails on the first component that cannot
    /// start unless it has `ignoreErrors: true`.
    ///
    /// The phases, in order: [`load_wasm_types`] (compiles in the
    /// background), [`collect_specs`], [`claim_names`], [`start_processes`],
    /// [`scan_sockets`] and [`wait_for_late_sockets`], [`start_order`],
    /// [`start_all`], [`finish_compiles`].
    pub async fn build(mut self) -> Result<Host> {
        let (mut skipped_wasm, compiling) = match &self.wasm_dir {
            Some(dir) => load_wasm_types(&mut self.factories, dir, &self.data_dir).await?,
            None => (Vec::new(), Vec::new()),
        };
        let compiling_types: Vec<String> = compiling.iter().flat_map(|p| p.types.iter().cloned()).collect();
        let in_code = self.specs.clone();
        let (mut specs, resiliency) =
            collect_specs(self.embedded_defaults, self.components_dir.as_deref(), self.specs, self.resiliency)?;
        let instance_names: Vec<&str> = self.instances.iter().map(|(name, _)| name.as_str()).collect();
        let mut builder = claim_names(&specs, &instance_names)?;
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|error| Error::DataDir { path: self.data_dir.clone(), error })?;

        let (supervisor, process_failures) = start_processes(&specs, self.socket_dir.as_deref()).await?;
        let ops = Ops::new(supervisor.as_ref().map(Supervisor::handle).unwrap_or_default());
        let sockets = match &self.socket_dir {
            Some(dir) => Some(scan_sockets(dir, &self.grpc, &self.factories).await),
            None => None,
        };
        let watcher = sockets.as_ref().map(|s| AbortOnDrop(tokio::spawn(s.clone().watch())));
        let waits = match &sockets {
            Some(sockets) => wait_for_late_sockets(&specs, sockets, &self.factories),
            None => HashMap::new(),
        };
        start_order(&mut specs, &waits, &compiling_types);
        let mut configured: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        configured.extend(instance_names.iter().copied());
        for (name, origin) in resiliency.unknown_targets(&configured) {
            tracing::warn!("{origin}: resiliency target `{name}` names no configured component");
        }

        let types = Types { factories: &self.factories, sockets: sockets.as_ref(), grpc: &self.grpc, waits };
        let context = StartContext { data_dir: &self.data_dir, resiliency: &resiliency, ops: &ops, process_failures };
        if let Err(error) = start_all(&specs, self.instances, types, &context, &mut builder).await {
            if let Some(supervisor) = supervisor {
                supervisor.shutdown().await;
            }
            return Err(error);
        }
        let registry = builder.build();
        let wasm_files = finish_compiles(compiling, &mut skipped_wasm).await;
        let prober = AbortOnDrop(tokio::spawn(crate::health::run(registry.clone(), self.health)));
        let watched: Vec<PathBuf> = [&self.components_dir, &self.wasm_dir].into_iter().flatten().cloned().collect();
        let config = Config {
            factories: self.factories,
            sockets: sockets.clone(),
            grpc: self.grpc,
            data_dir: self.data_dir.clone(),
            resiliency,
            ops: ops.clone(),
            components_dir: self.components_dir,
            wasm_dir: self.wasm_dir,
            embedded_defaults: self.embedded_defaults,
            in_code,
            applied: specs.into_iter().map(|spec| (spec.name.clone(), spec)).collect(),
            wasm_files,
        };
        let reloader = Reloader::new(registry.clone(), config);
        let reloading = Arc::downgrade(&reloader);
        ops.set_reloader(Arc::new(move |name: String| {
            let reloader = reloading.upgrade();
            Box::pin(async move {
                match reloader {
                    Some(reloader) => reloader.reload_one(&name).await.map_err(|e| e.to_string()),
                    None => Err("the host is shutting down".to_owned()),
                }
            })
        }));
        let mut followers = Vec::new();
        if !watched.is_empty() && self.watch {
            followers.push(AbortOnDrop(tokio::spawn(reload::watch(reloader.clone(), watched))));
        }
        if let Some(sockets) = &sockets {
            followers.push(AbortOnDrop(tokio::spawn(reload::follow_sockets(reloader.clone(), sockets.clone()))));
        }
        Ok(Host {
            registry,
            data_dir: self.data_dir,
            skipped_wasm,
            sockets,
            supervisor,
            reloader,
            _watcher: watcher,
            _followers: followers,
            _prober: prober,
            ops,
        })
    }
}

/// A `.wasm` file compiling in the background: its types are registered.
struct Pending {
    path: PathBuf,
    types: Vec<String>,
    compiling: modes::Compiling,
}

/// Phase 1: registers the types of every `.wasm` in `dir` from the cheap
/// checks before compiling (size, header, [`crate::wasm::prescan`]), and
/// compiles them in the background, one at a time, so the other components
/// start meanwhile; a component of a compiling type waits for its compile
/// when it is made. Returns the files refused by the checks, with why, and
/// the compiles under way.
async fn load_wasm_types(
    factories: &mut Factories,
    dir: &Path,
    data_dir: &Path,
) -> Result<(Vec<(PathBuf, String)>, Vec<Pending>)> {
    use futures::FutureExt as _;
    let loader = crate::wasm::WasmLoader::new(Some(data_dir.join("wasm-cache"))).map_err(Error::Wasm)?;
    let paths = crate::wasm::wasm_files(dir).map_err(Error::Wasm)?;
    // One compile at a time: compiling is the memory- and CPU-heavy part.
    let one_at_a_time = Arc::new(tokio::sync::Semaphore::new(1));
    let (mut skipped, mut pending) = (Vec::new(), Vec::new());
    for path in paths {
        let kinds = match loader.scan(&path).await {
            Ok(kinds) => kinds,
            Err(e) => {
                tracing::warn!(path = %path.display(), "skipping WASM file: {e:#}");
                skipped.push((path, format!("{e:#}")));
                continue;
            }
        };
        let (loader, file, permits) = (loader.clone(), path.clone(), one_at_a_time.clone());
        let compile = tokio::spawn(async move {
            let _turn = permits.acquire_owned().await;
            let loaded = loader.load(&file).await;
            match &loaded {
                Ok(c) => {
                    tracing::info!(path = %file.display(), kinds = ?c.kinds, source = ?c.source, "WASM component loaded")
                }
                Err(e) => tracing::warn!(path = %file.display(), "skipping WASM file: {e:#}"),
            }
            loaded.map_err(|e| format!("{e:#}"))
        });
        let compiling: futures::future::BoxFuture<'static, std::result::Result<_, String>> =
            Box::pin(async move { compile.await.map_err(|e| format!("compiling stopped: {e}"))? });
        let compiling = compiling.shared();
        let stem = path.file_stem().map(|s| s.to_string_lossy().to_lowercase()).unwrap_or_default();
        let mut types = Vec::new();
        for (type_name, factory) in modes::wasm_types_compiling(&path, &stem, &kinds, compiling.clone()) {
            factories.insert(&type_name, factory);
            types.push(type_name);
        }
        pending.push(Pending { path, types, compiling });
    }
    Ok((skipped, pending))
}

/// Phase 8: waits for the compiles still under way (components of their
/// types waited already); a failed one is reported as skipped (a component
/// of its types fails to start with the compile's error). Returns each
/// loaded file's content hash and types, for reloads.
async fn finish_compiles(
    pending: Vec<Pending>,
    skipped: &mut Vec<(PathBuf, String)>,
) -> HashMap<PathBuf, ([u8; 32], Vec<String>)> {
    let mut files = HashMap::new();
    for Pending { path, types, compiling } in pending {
        match compiling.await {
            Ok(_) => {
                if let Ok(hash) = reload::file_hash(&path) {
                    files.insert(path, (hash, types));
                }
            }
            Err(reason) => skipped.push((path, reason)),
        }
    }
    skipped.sort();
    files
}

/// Phase 2: the component specs (embedded defaults, the components folder,
/// those given in code) and the resiliency policies.
#[allow(clippy::result_large_err, reason = "the host's public error, on the start-up path only")]
fn collect_specs(
    embedded_defaults: bool,
    components_dir: Option<&Path>,
    in_code: Vec<ComponentSpec>,
    mut resiliency: Resiliency,
) -> Result<(Vec<ComponentSpec>, Resiliency)> {
    let mut specs = Vec::new();
    if embedded_defaults {
        for (name, type_name) in [("statestore", "state.sqlite"), ("pubsub", "pubsub.in-memory")] {
            specs.push(ComponentSpec { origin: Origin::Default, ..ComponentSpec::new(name, type_name) });
        }
    }
    if let Some(dir) = components_dir {
        let config = config::load_config(dir)?;
        specs.extend(config.components);
        resiliency.merge(config.resiliency);
    }
    specs.extend(in_code);
    Ok((specs, resiliency))
}

/// Phase 3: every name claimed before anything starts, so a duplicate is
/// reported first.
#[allow(clippy::result_large_err, reason = "the host's public error, on the start-up path only")]
fn claim_names(specs: &[ComponentSpec], instances: &[&str]) -> Result<RegistryBuilder> {
    let mut builder = Registry::builder();
    for spec in specs {
        builder.claim(&spec.name, &spec.origin)?;
    }
    for name in instances {
        builder.claim(name, &Origin::Code)?;
    }
    Ok(builder)
}

/// Phase 4: the supervised processes start before the socket folder is
/// scanned, so the types they serve are known (see `crate::supervisor`).
/// Returns the supervisor and, by component name, why its process did not
/// start.
async fn start_processes(
    specs: &[ComponentSpec],
    socket_dir: Option<&Path>,
) -> Result<(Option<Supervisor>, HashMap<String, String>)> {
    let processes = process_settings(specs, socket_dir).map_err(|e| *e)?;
    if processes.is_empty() {
        return Ok((None, HashMap::new()));
    }
    let declared = processes.iter().filter(|(c, p)| *c == p.component).map(|(_, p)| p.clone()).collect();
    let (supervisor, failed) = Supervisor::start(declared).await;
    let failures = processes
        .iter()
        .filter_map(|(component, p)| {
            let reason = failed.iter().find(|(declared, _)| *declared == p.component)?;
            Some((component.clone(), reason.1.clone()))
        })
        .collect();
    Ok((Some(supervisor), failures))
}

/// Phase 5: one scan of the socket folder before anything starts (it stays
/// watched afterwards).
async fn scan_sockets(dir: &Path, options: &GrpcOptions, factories: &Factories) -> Arc<SocketDirectory> {
    let sockets = SocketDirectory::new(dir, options.clone());
    sockets.scan().await;
    for type_name in sockets.type_names() {
        if factories.get(&type_name).is_some() {
            tracing::warn!("socket type `{type_name}` is shadowed by a built-in or embedded type");
        }
    }
    sockets
}

/// Phase 5b: components whose type a socket may still bring wait for it, all
/// at once, each up to its initTimeout (no start-up race: dapr/dapr#6180).
fn wait_for_late_sockets(
    specs: &[ComponentSpec],
    sockets: &Arc<SocketDirectory>,
    factories: &Factories,
) -> HashMap<String, AbortOnDrop<bool>> {
    let mut waits = HashMap::new();
    for spec in specs {
        let known = factories.get(&spec.type_name).is_some() || sockets.provider(&spec.type_name).is_some();
        if !known && SocketDirectory::could_provide(&spec.type_name) {
            tracing::info!(
                component = %spec.name,
                r#type = %spec.type_name,
                "waiting up to {:?} (initTimeout) for a socket in {} to provide the type",
                spec.init_timeout,
                sockets.dir().display()
            );
            let wait = sockets.clone().wait_for(spec.type_name.clone(), spec.init_timeout);
            waits.insert(spec.name.clone(), AbortOnDrop(tokio::spawn(wait)));
        }
    }
    waits
}

/// Phase 6: the start order. By kind ([`ComponentKind::start_rank`]: secret
/// stores first, as other components' `secretKeyRef`s read them); then the
/// components whose types are ready, so they do not wait behind a `.wasm`
/// still compiling or a socket that has not appeared yet; those come last.
fn start_order(specs: &mut [ComponentSpec], waits: &HashMap<String, AbortOnDrop<bool>>, compiling: &[String]) {
    specs.sort_by_key(|spec| {
        let rank = ComponentKind::of_type(&spec.type_name).iter().map(|k| k.start_rank()).min().unwrap_or(u8::MAX);
        (rank, compiling.contains(&spec.type_name), waits.contains_key(&spec.name))
    });
}

/// What starting a component needs besides its spec.
struct StartContext<'a> {
    data_dir: &'a Path,
    resiliency: &'a Resiliency,
    ops: &'a Ops,
    /// Component name → why its process did not start.
    process_failures: HashMap<String, String>,
}

/// Phase 7: makes, initialises and registers every component in order,
/// then the instances given in code.
async fn start_all(
    specs: &[ComponentSpec],
    instances: Vec<(String, Instance)>,
    mut types: Types<'_>,
    context: &StartContext<'_>,
    builder: &mut RegistryBuilder,
) -> Result<()> {
    for spec in specs {
        if let Some(reason) = context.process_failures.get(&spec.name) {
            let reason = anyhow::anyhow!("its process did not start: {reason}");
            let error = Error::Create { name: spec.name.clone(), origin: spec.origin.clone(), reason };
            if !spec.ignore_errors {
                return Err(error);
            }
            tracing::warn!(component = %spec.name, "skipped (ignoreErrors): {error}");
            builder.add_failed(start::failed(spec, Mode::Grpc, &error));
            continue;
        }
        let factory = match types.resolve(spec).await {
            Ok(factory) => factory,
            // Listed as failed; the type may still come from a socket, and
            // the component then starts (see `reload::follow_sockets`).
            Err(error) if spec.ignore_errors => {
                tracing::warn!(component = %spec.name, "skipped (ignoreErrors): {error}");
                builder.add_failed(start::failed(spec, Mode::Grpc, &error));
                continue;
            }
            Err(error) => return Err(error),
        };
        let secrets = |name: &str| builder.secret_store(name);
        match start::make(spec, &factory, context.data_dir, context.resiliency, context.ops, &secrets).await {
            Ok(started) => register(builder, started),
            Err(error) if spec.ignore_errors => {
                tracing::warn!(component = %spec.name, "skipped (ignoreErrors): {error}");
                builder.add_failed(start::failed(spec, factory.mode, &error));
            }
            Err(error) => return Err(error),
        }
    }
    for (name, instance) in instances {
        let spec = ComponentSpec { origin: Origin::Code, ..ComponentSpec::new(&name, "embedded") };
        let (metadata, health) = (Metadata::new(), Health::default());
        let started =
            start::init(&spec, Mode::Embedded, instance, metadata, health, context.resiliency, context.ops).await?;
        register(builder, started);
    }
    Ok(())
}

fn register(builder: &mut RegistryBuilder, started: Started) {
    if let Some(prefix) = started.key_prefix {
        builder.set_state_key_prefix(&started.info.name, prefix);
    }
    builder.add(started.info, started.instance);
}

/// The processes the specs declare, each with the component that uses it;
/// components sharing a socket must declare the same process.
fn process_settings(
    specs: &[ComponentSpec],
    socket_dir: Option<&Path>,
) -> Result<Vec<(String, ProcessSettings)>, Box<Error>> {
    let mut found: Vec<(String, ProcessSettings)> = Vec::new();
    for spec in specs {
        let fail = |reason: String| {
            Box::new(Error::Create {
                name: spec.name.clone(),
                origin: spec.origin.clone(),
                reason: anyhow::Error::msg(reason),
            })
        };
        let Some(settings) = ProcessSettings::from_spec(spec, socket_dir).map_err(fail)? else { continue };
        if let Some((_, other)) = found.iter().find(|(_, p)| p.socket == settings.socket) {
            if !other.same_process(&settings) {
                return Err(fail(format!(
                    "component `{}` declares a different process for the same socket {}",
                    other.component,
                    settings.socket.display()
                )));
            }
            let shared = other.clone();
            found.push((spec.name.clone(), shared));
            continue;
        }
        found.push((spec.name.clone(), settings));
    }
    Ok(found)
}
