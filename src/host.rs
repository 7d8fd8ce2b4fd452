//! [`Host`]: configuration → factories → initialised components → registry.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{self, ComponentSpec, MetadataValue, Origin};
use crate::error::{Error, Result};
use crate::grpc::{GrpcOptions, SocketDirectory, SocketReport};
use crate::health::HealthOptions;
use crate::kinds::input_binding::InputBinding;
use crate::kinds::output_binding::OutputBinding;
use crate::kinds::pubsub::PubSub;
use crate::kinds::secret_store::SecretStore;
use crate::kinds::state::StateStore;
use crate::kinds::{ComponentError, ComponentKind, Metadata};
use crate::registry::{
    ComponentInfo, Factories, Factory, FactoryContext, Health, Instance, Mode, Registry, RegistryBuilder,
    RegistryError, Status,
};
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
    /// Scans the socket folder while the host lives.
    _watcher: Option<AbortOnDrop<()>>,
    /// Probes every component's health while the host lives.
    _prober: AbortOnDrop<()>,
    /// Per-component switches and metrics, the admin API's view.
    ops: Arc<crate::ops::Ops>,
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

    /// Every configured component, serving or not.
    pub fn components(&self) -> &[ComponentInfo] {
        self.registry.components()
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
    pub fn ops(&self) -> &Arc<crate::ops::Ops> {
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
        drop(self._watcher);
        drop(self._prober);
        for info in self.registry.components().iter().rev().filter(|i| i.status == Status::Ready) {
            let name = info.name.as_str();
            let closed = tokio::time::timeout(CLOSE_TIMEOUT, close(&self.registry, info)).await;
            match closed {
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

async fn close(registry: &Registry, info: &ComponentInfo) -> Result<(), ComponentError> {
    for kind in &info.kinds {
        let name = &info.name;
        match kind {
            ComponentKind::State => registry.state(name).map_err(ComponentError::internal)?.close().await?,
            ComponentKind::PubSub => registry.pubsub(name).map_err(ComponentError::internal)?.close().await?,
            ComponentKind::InputBinding => {
                registry.input_binding(name).map_err(ComponentError::internal)?.close().await?
            }
            ComponentKind::OutputBinding => {
                registry.output_binding(name).map_err(ComponentError::internal)?.close().await?
            }
            ComponentKind::SecretStore => {
                registry.secret_store(name).map_err(ComponentError::internal)?.close().await?
            }
        }
    }
    Ok(())
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
        }
    }

    /// Discovers Dapr pluggable components on the Unix sockets in `dir`
    /// (off unless set; [`crate::grpc::discovery::default_socket_dir`] is
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
        self.instance(name, Instance::State(store))
    }

    /// Adds a ready-made pub/sub component under `name`.
    pub fn pubsub(self, name: impl Into<String>, pubsub: Arc<dyn PubSub>) -> Self {
        self.instance(name, Instance::PubSub(pubsub))
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
    pub async fn build(mut self) -> Result<Host> {
        let mut skipped_wasm = Vec::new();
        if let Some(dir) = &self.wasm_dir {
            let loader = crate::wasm::WasmLoader::new(Some(self.data_dir.join("wasm-cache")))
                .map_err(|e| Error::Wasm(format!("{e:#}")))?;
            for (path, loaded) in loader.load_dir(dir).await.map_err(|e| Error::Wasm(format!("{e:#}")))? {
                match loaded {
                    Ok(component) => crate::wasm::register(&mut self.factories, component),
                    Err(e) => skipped_wasm.push((path, format!("{e:#}"))),
                }
            }
        }
        let mut specs = Vec::new();
        if self.embedded_defaults {
            for (name, type_name) in [("statestore", "state.sqlite"), ("pubsub", "pubsub.in-memory")] {
                specs.push(ComponentSpec { origin: Origin::Default, ..ComponentSpec::new(name, type_name) });
            }
        }
        let mut resiliency = self.resiliency;
        if let Some(dir) = &self.components_dir {
            let config = config::load_config(dir)?;
            specs.extend(config.components);
            resiliency.merge(config.resiliency);
        }
        specs.extend(self.specs);

        let mut builder = Registry::builder();
        // Names first, so a duplicate is reported before anything starts.
        for spec in &specs {
            builder.claim(&spec.name, &spec.origin)?;
        }
        for (name, _) in &self.instances {
            builder.claim(name, &Origin::Code)?;
        }
        std::fs::create_dir_all(&self.data_dir)
            .map_err(|error| Error::DataDir { path: self.data_dir.clone(), error })?;

        // Supervised processes start before the socket folder is scanned,
        // so the types they serve are known (see `crate::supervisor`).
        let processes = process_settings(&specs, self.socket_dir.as_deref()).map_err(|e| *e)?;
        let (supervisor, failed) = match processes.is_empty() {
            true => (None, Vec::new()),
            false => {
                let (supervisor, failed) = Supervisor::start(
                    processes.iter().filter(|(c, p)| *c == p.component).map(|(_, p)| p.clone()).collect(),
                )
                .await;
                (Some(supervisor), failed)
            }
        };
        let ops = crate::ops::Ops::new(supervisor.as_ref().map(Supervisor::handle).unwrap_or_default());
        // Component name → why its process did not start.
        let process_failures: HashMap<&str, String> = processes
            .iter()
            .filter_map(|(component, p)| {
                let reason = failed.iter().find(|(declared, _)| *declared == p.component)?;
                Some((component.as_str(), reason.1.clone()))
            })
            .collect();

        // Sockets: one scan before anything starts, then watched.
        let sockets = match &self.socket_dir {
            Some(dir) => {
                let sockets = SocketDirectory::new(dir, self.grpc.clone());
                sockets.scan().await;
                for type_name in sockets.type_names() {
                    if self.factories.get(&type_name).is_some() {
                        tracing::warn!("socket type `{type_name}` is shadowed by a built-in or embedded type");
                    }
                }
                Some(sockets)
            }
            None => None,
        };
        let watcher = sockets.as_ref().map(|s| AbortOnDrop(tokio::spawn(s.clone().watch())));
        let mut types = Types { factories: &self.factories, sockets: sockets.as_ref(), waits: HashMap::new() };
        // Components whose type a socket may still bring wait for it, all at
        // once, each up to its initTimeout (no start-up race: dapr/dapr#6180).
        if let Some(sockets) = &sockets {
            for spec in &specs {
                let known = self.factories.get(&spec.type_name).is_some() || sockets.factory(&spec.type_name).is_some();
                if !known && SocketDirectory::could_provide(&spec.type_name) {
                    tracing::info!(
                        component = %spec.name,
                        r#type = %spec.type_name,
                        "waiting up to {:?} (initTimeout) for a socket in {} to provide the type",
                        spec.init_timeout,
                        sockets.dir().display()
                    );
                    let wait = sockets.clone().wait_for(spec.type_name.clone(), spec.init_timeout);
                    types.waits.insert(spec.name.clone(), AbortOnDrop(tokio::spawn(wait)));
                }
            }
        }

        // Secret stores first: other components' `secretKeyRef`s read them.
        // Then the components whose types are known, so they do not wait
        // behind a socket that has not appeared yet; those come last.
        specs.sort_by_key(|spec| {
            let secret_store = spec.type_name.starts_with("secretstores.");
            (!secret_store, !secret_store && types.waits.contains_key(&spec.name))
        });
        let mut configured: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        configured.extend(self.instances.iter().map(|(name, _)| name.as_str()));
        for (name, origin) in resiliency.unknown_targets(&configured) {
            tracing::warn!("{origin}: resiliency target `{name}` names no configured component");
        }
        let started: Result<()> = async {
            for spec in &specs {
                if let Some(reason) = process_failures.get(spec.name.as_str()) {
                    let reason = format!("its process did not start: {reason}");
                    let error = Error::Create { name: spec.name.clone(), origin: spec.origin.clone(), reason };
                    if !spec.ignore_errors {
                        return Err(error);
                    }
                    tracing::warn!(component = %spec.name, "skipped (ignoreErrors): {error}");
                    let failed = Status::Failed(error.to_string());
                    builder.add_failed(info(spec, Mode::Grpc, Vec::new(), failed, Health::default(), Vec::new()));
                    continue;
                }
                start_spec(spec, &mut types, &self.data_dir, &resiliency, &ops, &mut builder).await?;
            }
            for (name, instance) in self.instances {
                let spec = ComponentSpec { origin: Origin::Code, ..ComponentSpec::new(&name, "embedded") };
                let (metadata, health) = (Metadata::new(), Health::default());
                start(&spec, Mode::Embedded, instance, metadata, health, &resiliency, &ops, &mut builder).await?;
            }
            Ok(())
        }
        .await;
        if let Err(error) = started {
            if let Some(supervisor) = supervisor {
                supervisor.shutdown().await;
            }
            return Err(error);
        }
        let registry = builder.build();
        let prober = AbortOnDrop(tokio::spawn(crate::health::run(registry.clone(), self.health)));
        Ok(Host {
            registry,
            data_dir: self.data_dir,
            skipped_wasm,
            sockets,
            supervisor,
            _watcher: watcher,
            _prober: prober,
            ops,
        })
    }
}

/// The processes the specs declare, each with the component that uses it;
/// components sharing a socket must declare the same process.
fn process_settings(
    specs: &[ComponentSpec],
    socket_dir: Option<&Path>,
) -> Result<Vec<(String, ProcessSettings)>, Box<Error>> {
    let mut found: Vec<(String, ProcessSettings)> = Vec::new();
    for spec in specs {
        let fail =
            |reason: String| Box::new(Error::Create { name: spec.name.clone(), origin: spec.origin.clone(), reason });
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

/// Where component types come from: factories (built-in, embedded) first,
/// then the socket folder, with the waits of components whose socket has
/// not appeared yet.
struct Types<'a> {
    factories: &'a Factories,
    sockets: Option<&'a Arc<SocketDirectory>>,
    waits: HashMap<String, AbortOnDrop<bool>>,
}

impl Types<'_> {
    async fn resolve(&mut self, spec: &ComponentSpec) -> Result<Factory> {
        if let Some(factory) = self.factories.get(&spec.type_name) {
            return Ok(factory.clone());
        }
        let mut waited = String::new();
        if let Some(sockets) = self.sockets {
            if let Some(mut wait) = self.waits.remove(&spec.name) {
                let _ = (&mut wait.0).await;
                waited = format!(
                    " (no socket in {} provided it within {:?}, the component's initTimeout{})",
                    sockets.dir().display(),
                    spec.init_timeout,
                    sockets.refused().map(|reason| format!("; {reason}")).unwrap_or_default()
                );
            }
            if let Some(factory) = sockets.factory(&spec.type_name) {
                return Ok(factory);
            }
        }
        let mut known: Vec<String> = self.factories.type_names().map(str::to_owned).collect();
        known.extend(self.sockets.map(|s| s.type_names()).unwrap_or_default());
        known.sort();
        Err(Error::UnknownType {
            name: spec.name.clone(),
            origin: spec.origin.clone(),
            type_name: spec.type_name.clone(),
            known: known.join(", "),
            waited,
        })
    }
}

/// Makes, initialises and registers one configured component.
async fn start_spec(
    spec: &ComponentSpec,
    types: &mut Types<'_>,
    data_dir: &Path,
    resiliency: &Resiliency,
    ops: &crate::ops::Ops,
    builder: &mut RegistryBuilder,
) -> Result<()> {
    let factory = types.resolve(spec).await?;
    if !matches!(spec.version.as_str(), "" | "v0" | "v1") {
        return Err(Error::UnknownVersion {
            name: spec.name.clone(),
            origin: spec.origin.clone(),
            type_name: spec.type_name.clone(),
            version: spec.version.clone(),
        });
    }
    let fail = |reason: String| Error::Create { name: spec.name.clone(), origin: spec.origin.clone(), reason };
    let metadata = resolve_metadata(spec, builder).await.map_err(fail)?;
    let health = Health::default();
    let context = FactoryContext { name: spec.name.clone(), data_dir: data_dir.to_owned(), health: health.clone() };
    let made = (factory.make)(context).await.map_err(|e| fail(format!("{e:#}")));
    let result = match made {
        Ok(instance) => start(spec, factory.mode, instance, metadata, health.clone(), resiliency, ops, builder)
            .await
            .inspect(|()| ops.set_source(&spec.name, &factory.source)),
        Err(e) => Err(e),
    };
    match result {
        Err(e) if spec.ignore_errors => {
            tracing::warn!(component = %spec.name, "skipped (ignoreErrors): {e}");
            let failed = Status::Failed(e.to_string());
            builder.add_failed(info(spec, factory.mode, Vec::new(), failed, health, Vec::new()));
            Ok(())
        }
        other => other,
    }
}

fn info(
    spec: &ComponentSpec,
    mode: Mode,
    kinds: Vec<ComponentKind>,
    status: Status,
    health: Health,
    features: Vec<String>,
) -> ComponentInfo {
    ComponentInfo {
        name: spec.name.clone(),
        kinds,
        type_name: spec.type_name.clone(),
        version: spec.version.clone(),
        mode,
        status,
        health,
        features,
        origin: spec.origin.clone(),
        key_prefix: None,
    }
}

/// Initialises `instance` within the spec's timeout and registers it,
/// wrapped in its resiliency policy and the operator's decorator: the one
/// place every mode gets them.
#[allow(clippy::too_many_arguments)]
async fn start(
    spec: &ComponentSpec,
    mode: Mode,
    instance: Instance,
    metadata: Metadata,
    health: Health,
    resiliency: &Resiliency,
    ops: &crate::ops::Ops,
    builder: &mut RegistryBuilder,
) -> Result<()> {
    let (name, origin) = (spec.name.clone(), spec.origin.clone());
    // Dapr matches the metadata name case-insensitively.
    let key_prefix = metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case("keyPrefix")).map(|(_, v)| v.clone());
    let features = match tokio::time::timeout(spec.init_timeout, init(&instance, metadata)).await {
        Ok(Ok(features)) => features,
        Ok(Err(source)) => {
            close_instance(&instance).await;
            return Err(Error::Init { name, origin, error: source });
        }
        Err(_) => {
            close_instance(&instance).await;
            return Err(Error::InitTimeout { name, origin, after: spec.init_timeout });
        }
    };
    let kinds = instance.kinds();
    let mut info = info(spec, mode, kinds.clone(), Status::Ready, health, features);
    info.key_prefix = key_prefix;
    tracing::info!(
        component = %spec.name,
        r#type = %spec.type_name,
        mode = mode.as_str(),
        kinds = ?kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "component ready"
    );
    builder.add(info, ops.wrap(&spec.name, mode, resiliency.wrap(&spec.name, instance)));
    Ok(())
}

/// Releases an instance that never started (a gRPC one holds a connection
/// and a supervisor task).
async fn close_instance(instance: &Instance) {
    let closing = async {
        match instance {
            Instance::State(store) => store.close().await,
            Instance::PubSub(pubsub) => pubsub.close().await,
            Instance::Bindings { input, output } => {
                if let Some(input) = input {
                    input.close().await?;
                }
                match output {
                    Some(output) => output.close().await,
                    None => Ok(()),
                }
            }
            Instance::SecretStore(store) => store.close().await,
        }
    };
    if let Ok(Err(e)) = tokio::time::timeout(CLOSE_TIMEOUT, closing).await {
        tracing::debug!("closing a component that failed to start: {e}");
    }
}

/// Calls `init` on every side of `instance`, then asks for its features (or
/// operations, for output bindings).
async fn init(instance: &Instance, metadata: Metadata) -> Result<Vec<String>, ComponentError> {
    match instance {
        Instance::State(store) => {
            store.init(metadata).await?;
            store.features().await
        }
        Instance::PubSub(pubsub) => {
            pubsub.init(metadata).await?;
            pubsub.features().await
        }
        Instance::Bindings { input, output } => {
            if let Some(input) = input {
                input.init(metadata.clone()).await?;
            }
            match output {
                Some(output) => {
                    output.init(metadata).await?;
                    output.operations().await
                }
                None => Ok(Vec::new()),
            }
        }
        Instance::SecretStore(store) => {
            store.init(metadata).await?;
            store.features().await
        }
    }
}

/// Turns `spec.metadata` into plain values, reading `secretKeyRef`s from the
/// component's `auth.secretStore` (which must have started already).
async fn resolve_metadata(spec: &ComponentSpec, builder: &RegistryBuilder) -> std::result::Result<Metadata, String> {
    let mut metadata = Metadata::new();
    for item in &spec.metadata {
        let value = match &item.value {
            MetadataValue::Plain(value) => value.clone(),
            MetadataValue::SecretRef { secret, key } => {
                let store_name = spec.secret_store.as_deref().ok_or_else(|| {
                    format!("metadata `{}` uses secretKeyRef but the component has no auth.secretStore", item.name)
                })?;
                let store = builder.secret_store(store_name).map_err(|e| format!("metadata `{}`: {e}", item.name))?;
                let values = store
                    .get(secret, Metadata::new())
                    .await
                    .map_err(|e| format!("metadata `{}`: secret `{secret}` from `{store_name}`: {e}", item.name))?;
                values.get(key).cloned().ok_or_else(|| {
                    format!("metadata `{}`: secret `{secret}` in `{store_name}` has no key `{key}`", item.name)
                })?
            }
        };
        metadata.insert(item.name.clone(), value);
    }
    Ok(metadata)
}
