//! Component factories by type, and component instances by name.
//!
//! [`Factories`] is the open set: `state.sqlite`, later `state.<wasm file
//! stem>` and `state.<socket stem>`, each making an [`Instance`] for one
//! configured component. [`Registry`] is what the host built: one typed map
//! per kind, so looking up a state store can only fail with "no such name",
//! never with a wrong type.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use futures::future::BoxFuture;

use crate::config::Origin;
use crate::kinds::ComponentKind;
use crate::kinds::input_binding::InputBinding;
use crate::kinds::output_binding::OutputBinding;
use crate::kinds::pubsub::PubSub;
use crate::kinds::secret_store::SecretStore;
use crate::kinds::state::StateStore;

/// Where a component runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Native Rust shipped with plughost.
    Builtin,
    /// Handed to the host in code by an embedding application.
    Embedded,
    /// In-process WebAssembly component.
    Wasm,
    /// Out-of-process gRPC service on a Unix socket.
    Grpc,
}

impl Mode {
    /// Lower-case name for listings.
    pub const fn as_str(self) -> &'static str {
        match self {
            Mode::Builtin => "builtin",
            Mode::Embedded => "embedded",
            Mode::Wasm => "wasm",
            Mode::Grpc => "grpc",
        }
    }
}

/// A component made by a factory, not yet initialised.
#[derive(Clone)]
pub enum Instance {
    /// A state store.
    State(Arc<dyn StateStore>),
    /// A pub/sub broker.
    PubSub(Arc<dyn PubSub>),
    /// A binding: input, output, or both (one Dapr `bindings.*` type may be
    /// both, e.g. a socket serving both services).
    Bindings {
        /// The input side, if any.
        input: Option<Arc<dyn InputBinding>>,
        /// The output side, if any.
        output: Option<Arc<dyn OutputBinding>>,
    },
    /// A secret store.
    SecretStore(Arc<dyn SecretStore>),
}

impl Instance {
    /// The kinds this instance provides.
    pub fn kinds(&self) -> Vec<ComponentKind> {
        match self {
            Instance::State(_) => vec![ComponentKind::State],
            Instance::PubSub(_) => vec![ComponentKind::PubSub],
            Instance::Bindings { input, output } => {
                let mut kinds = Vec::new();
                if input.is_some() {
                    kinds.push(ComponentKind::InputBinding);
                }
                if output.is_some() {
                    kinds.push(ComponentKind::OutputBinding);
                }
                kinds
            }
            Instance::SecretStore(_) => vec![ComponentKind::SecretStore],
        }
    }
}

/// What a factory knows about the component it makes.
#[derive(Debug, Clone)]
pub struct FactoryContext {
    /// The component's configured name.
    pub name: String,
    /// The host's data directory, for components that persist.
    pub data_dir: PathBuf,
    /// Where the instance reports its health after start-up (gRPC
    /// components do; in-process ones have nothing to report).
    pub health: Health,
}

/// Makes one instance per configured component. Async, because making one
/// may mean instantiating a WASM component or dialing a socket.
pub type MakeFn = dyn Fn(FactoryContext) -> BoxFuture<'static, anyhow::Result<Instance>> + Send + Sync;

/// A component type the host can make.
#[derive(Clone)]
pub struct Factory {
    /// Where instances of this type run.
    pub mode: Mode,
    /// Where the type came from (`builtin`, a `.wasm` path, a socket path).
    pub source: String,
    /// The constructor.
    pub make: Arc<MakeFn>,
}

impl Factory {
    /// A factory running `make`.
    pub fn new<F, Fut>(mode: Mode, source: impl Into<String>, make: F) -> Self
    where
        F: Fn(FactoryContext) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = anyhow::Result<Instance>> + Send + 'static,
    {
        Self { mode, source: source.into(), make: Arc::new(move |ctx| Box::pin(make(ctx))) }
    }
}

/// Factories by component type (lower-case, e.g. `state.sqlite`).
#[derive(Clone, Default)]
pub struct Factories {
    by_type: BTreeMap<String, Factory>,
}

impl Factories {
    /// Registers `factory` as `type_name`, replacing any earlier one (so an
    /// embedder can override a built-in).
    pub fn insert(&mut self, type_name: &str, factory: Factory) {
        self.by_type.insert(type_name.to_lowercase(), factory);
    }

    /// The factory for `type_name`.
    pub fn get(&self, type_name: &str) -> Option<&Factory> {
        self.by_type.get(&type_name.to_lowercase())
    }

    /// Every registered type name, sorted.
    pub fn type_names(&self) -> impl Iterator<Item = &str> {
        self.by_type.keys().map(String::as_str)
    }
}

/// Whether a configured component is serving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// Initialised and registered.
    Ready,
    /// Init failed or timed out and `ignoreErrors` was set: not registered.
    Failed(String),
    /// Registered, but not answering right now (a gRPC component whose
    /// process is down, or whose ping fails); see [`ComponentInfo::current_status`].
    Unavailable(String),
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Status::Ready => f.write_str("ready"),
            Status::Failed(reason) => write!(f, "failed: {reason}"),
            Status::Unavailable(reason) => write!(f, "unavailable: {reason}"),
        }
    }
}

/// A component's health after start-up, shared between the component (which
/// updates it: a gRPC component's periodic ping and its connection state),
/// the host's periodic probe (`crate::health`, every mode) and listings
/// (which read it). Cheap to clone; healthy until told otherwise.
#[derive(Debug, Clone, Default)]
pub struct Health(Arc<RwLock<HealthState>>);

#[derive(Debug, Default)]
struct HealthState {
    problem: Option<String>,
    probe: Option<Probe>,
    last_error: Option<(String, SystemTime)>,
}

/// The result of one liveness probe (`ping` on every kind the component
/// provides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// Whether every ping answered in time.
    pub ok: bool,
    /// How long the pings took.
    pub latency: Duration,
    /// Why it failed, if it did.
    pub error: Option<String>,
    /// When it ended.
    pub at: SystemTime,
}

impl Health {
    /// Marks the component healthy.
    pub fn set_ready(&self) {
        self.0.write().expect("health lock").problem = None;
    }

    /// Marks the component unavailable, saying why.
    pub fn set_unavailable(&self, reason: impl Into<String>) {
        let reason = reason.into();
        let mut state = self.0.write().expect("health lock");
        state.last_error = Some((reason.clone(), SystemTime::now()));
        state.problem = Some(reason);
    }

    /// Why the component is unavailable, if it is.
    pub fn problem(&self) -> Option<String> {
        self.0.read().expect("health lock").problem.clone()
    }

    /// Records a probe (it does not change [`Self::problem`]).
    pub fn record(&self, probe: Probe) {
        let mut state = self.0.write().expect("health lock");
        if let Some(error) = &probe.error {
            state.last_error = Some((error.clone(), probe.at));
        }
        state.probe = Some(probe);
    }

    /// The last probe, if one ran.
    pub fn last_probe(&self) -> Option<Probe> {
        self.0.read().expect("health lock").probe.clone()
    }

    /// The last problem seen (by a probe or the connection) and when, even
    /// if the component has recovered since.
    pub fn last_error(&self) -> Option<(String, SystemTime)> {
        self.0.read().expect("health lock").last_error.clone()
    }
}

/// One configured component, for listings and the metadata API.
#[derive(Debug, Clone)]
pub struct ComponentInfo {
    /// Configured name.
    pub name: String,
    /// Kinds it provides (two for a binding that is both input and output).
    pub kinds: Vec<ComponentKind>,
    /// Component type, e.g. `state.sqlite`.
    pub type_name: String,
    /// Configured version.
    pub version: String,
    /// Where it runs.
    pub mode: Mode,
    /// Serving or not, as start-up left it.
    pub status: Status,
    /// Health since start-up; [`Self::current_status`] combines both.
    pub health: Health,
    /// Feature strings (state, pub/sub, secrets) or operations (output bindings).
    pub features: Vec<String>,
    /// Where it was defined.
    pub origin: Origin,
    /// State stores: the `keyPrefix` metadata, Dapr's key prefixing strategy,
    /// which the sidecar API applies before calling the store.
    pub key_prefix: Option<String>,
}

impl ComponentInfo {
    /// The status now: `failed` if start-up failed, else `unavailable` while
    /// the component's health says so, else `ready`.
    pub fn current_status(&self) -> Status {
        match (&self.status, self.health.problem()) {
            (Status::Ready, Some(problem)) => Status::Unavailable(problem),
            (status, _) => status.clone(),
        }
    }
}

/// A lookup that found nothing, or a registration that clashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    /// No component of this kind is configured at all.
    #[error("no {kind} component is configured")]
    NotConfigured {
        /// The kind asked for.
        kind: ComponentKind,
    },
    /// Components of this kind exist, but none has this name.
    #[error("no {kind} component named `{name}` (configured: {known})")]
    NotFound {
        /// The kind asked for.
        kind: ComponentKind,
        /// The name asked for.
        name: String,
        /// The names that do exist, comma-separated.
        known: String,
    },
    /// Two definitions share a name (whatever their kinds, as in Dapr).
    #[error("duplicate component name `{name}`: defined at {first} and again at {second}")]
    Duplicate {
        /// The shared name.
        name: String,
        /// The first definition.
        first: Origin,
        /// The second definition.
        second: Origin,
    },
}

/// Every serving component, by kind and name. Cheap to clone (shared maps).
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Maps>,
}

#[derive(Default)]
struct Maps {
    state: HashMap<String, Arc<dyn StateStore>>,
    pubsub: HashMap<String, Arc<dyn PubSub>>,
    input_bindings: HashMap<String, Arc<dyn InputBinding>>,
    output_bindings: HashMap<String, Arc<dyn OutputBinding>>,
    secret_stores: HashMap<String, Arc<dyn SecretStore>>,
    components: Vec<ComponentInfo>,
}

fn lookup<T: ?Sized>(map: &HashMap<String, Arc<T>>, kind: ComponentKind, name: &str) -> Result<Arc<T>, RegistryError> {
    if let Some(found) = map.get(name) {
        return Ok(found.clone());
    }
    if map.is_empty() {
        return Err(RegistryError::NotConfigured { kind });
    }
    let mut known: Vec<&str> = map.keys().map(String::as_str).collect();
    known.sort_unstable();
    Err(RegistryError::NotFound { kind, name: name.to_owned(), known: known.join(", ") })
}

impl Registry {
    /// An empty registry builder.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder::default()
    }

    /// The state store named `name`.
    pub fn state(&self, name: &str) -> Result<Arc<dyn StateStore>, RegistryError> {
        lookup(&self.inner.state, ComponentKind::State, name)
    }

    /// The pub/sub component named `name`.
    pub fn pubsub(&self, name: &str) -> Result<Arc<dyn PubSub>, RegistryError> {
        lookup(&self.inner.pubsub, ComponentKind::PubSub, name)
    }

    /// The input binding named `name`.
    pub fn input_binding(&self, name: &str) -> Result<Arc<dyn InputBinding>, RegistryError> {
        lookup(&self.inner.input_bindings, ComponentKind::InputBinding, name)
    }

    /// The output binding named `name`.
    pub fn output_binding(&self, name: &str) -> Result<Arc<dyn OutputBinding>, RegistryError> {
        lookup(&self.inner.output_bindings, ComponentKind::OutputBinding, name)
    }

    /// The secret store named `name`.
    pub fn secret_store(&self, name: &str) -> Result<Arc<dyn SecretStore>, RegistryError> {
        lookup(&self.inner.secret_stores, ComponentKind::SecretStore, name)
    }

    /// Every configured component, serving or not, in load order.
    pub fn components(&self) -> &[ComponentInfo] {
        &self.inner.components
    }
}

/// Collects components, refusing duplicate names, then freezes them into a
/// [`Registry`].
#[derive(Default)]
pub struct RegistryBuilder {
    maps: Maps,
    seen: HashMap<String, Origin>,
}

impl RegistryBuilder {
    /// Claims `name` for a definition at `origin`; fails if it is taken.
    pub fn claim(&mut self, name: &str, origin: &Origin) -> Result<(), RegistryError> {
        if let Some(first) = self.seen.get(name) {
            return Err(RegistryError::Duplicate {
                name: name.to_owned(),
                first: first.clone(),
                second: origin.clone(),
            });
        }
        self.seen.insert(name.to_owned(), origin.clone());
        Ok(())
    }

    /// Adds a serving instance (its name must have been claimed) and its info.
    pub fn add(&mut self, info: ComponentInfo, instance: Instance) {
        let name = info.name.clone();
        match instance {
            Instance::State(store) => {
                self.maps.state.insert(name, store);
            }
            Instance::PubSub(pubsub) => {
                self.maps.pubsub.insert(name, pubsub);
            }
            Instance::Bindings { input, output } => {
                if let Some(input) = input {
                    self.maps.input_bindings.insert(name.clone(), input);
                }
                if let Some(output) = output {
                    self.maps.output_bindings.insert(name, output);
                }
            }
            Instance::SecretStore(store) => {
                self.maps.secret_stores.insert(name, store);
            }
        }
        self.maps.components.push(info);
    }

    /// Records a component that is configured but not serving.
    pub fn add_failed(&mut self, info: ComponentInfo) {
        self.maps.components.push(info);
    }

    /// A secret store already added, for resolving `secretKeyRef`s of
    /// components added after it.
    pub fn secret_store(&self, name: &str) -> Result<Arc<dyn SecretStore>, RegistryError> {
        lookup(&self.maps.secret_stores, ComponentKind::SecretStore, name)
    }

    /// The finished registry.
    pub fn build(self) -> Registry {
        Registry { inner: Arc::new(self.maps) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kinds::state::MemoryStateStore;

    #[test]
    fn lookups_distinguish_not_configured_from_not_found() {
        let mut builder = Registry::builder();
        let origin = Origin::Code;
        builder.claim("a", &origin).unwrap();
        let info = ComponentInfo {
            name: "a".into(),
            kinds: vec![ComponentKind::State],
            type_name: "state.in-memory".into(),
            version: String::new(),
            mode: Mode::Builtin,
            status: Status::Ready,
            health: Health::default(),
            features: Vec::new(),
            origin,
            key_prefix: None,
        };
        builder.add(info, Instance::State(Arc::new(MemoryStateStore::new())));
        let duplicate = builder.claim("a", &Origin::Default).unwrap_err();
        assert_eq!(
            duplicate.to_string(),
            "duplicate component name `a`: defined at code and again at embedded default"
        );
        let registry = builder.build();
        assert!(registry.state("a").is_ok());
        assert!(matches!(registry.state("b"), Err(RegistryError::NotFound { known, .. }) if known == "a"));
        assert!(matches!(registry.pubsub("a"), Err(RegistryError::NotConfigured { kind: ComponentKind::PubSub })));
    }
}
