//! The running components by name: [`Registry`] is what the host built,
//! one typed map per kind, so looking up a state store can only fail with
//! "no such name", never with a wrong type. What a component *is* (its
//! lifecycle, factories, health) is in [`crate::component`].
//!
//! The registry is live: each name holds a [`Slot`] whose implementation
//! the host can replace while calls run, and lookups hand out the slot's
//! [`Live`] handle, which calls whatever implementation the slot holds at
//! the time of each call (see [`crate::live`]). Components can also be
//! added and removed while the host runs.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::component::{ComponentInfo, Instance, Kinds, Lifecycle};
use crate::config::Origin;
use crate::kinds::ComponentKind;
use crate::kinds::input_binding::InputBinding;
use crate::kinds::output_binding::OutputBinding;
use crate::kinds::pubsub::PubSub;
use crate::kinds::secret_store::SecretStore;
use crate::kinds::state::StateStore;
use crate::live::{Live, Slot};

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

/// Every configured component, by kind and name. Cheap to clone; clones
/// share the same (live) maps.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Maps>>,
    /// Bumped on every change of the set of components or their settings.
    revision: Arc<std::sync::atomic::AtomicU64>,
}

#[derive(Default)]
struct Maps {
    state: HashMap<String, Arc<dyn StateStore>>,
    pubsub: HashMap<String, Arc<dyn PubSub>>,
    input_bindings: HashMap<String, Arc<dyn InputBinding>>,
    output_bindings: HashMap<String, Arc<dyn OutputBinding>>,
    secret_stores: HashMap<String, Arc<dyn SecretStore>>,
    slots: HashMap<String, (Arc<Slot>, Arc<Live>)>,
    /// State stores' `keyPrefix` metadata (Dapr's key prefixing strategy,
    /// which the sidecar API applies before calling the store).
    key_prefixes: HashMap<String, String>,
    components: Vec<ComponentInfo>,
}

impl Maps {
    /// Puts `live` in the typed map of every kind in `kinds`.
    fn map(&mut self, name: &str, live: &Arc<Live>, kinds: &Kinds) {
        // Destructured whole, so a new kind cannot be forgotten here.
        let Kinds { state, pubsub, input_binding, output_binding, secret_store } = kinds;
        let name = name.to_owned();
        if state.is_some() {
            self.state.insert(name.clone(), live.clone());
        }
        if pubsub.is_some() {
            self.pubsub.insert(name.clone(), live.clone());
        }
        if input_binding.is_some() {
            self.input_bindings.insert(name.clone(), live.clone());
        }
        if output_binding.is_some() {
            self.output_bindings.insert(name.clone(), live.clone());
        }
        if secret_store.is_some() {
            self.secret_stores.insert(name, live.clone());
        }
    }

    fn unmap(&mut self, name: &str) {
        self.state.remove(name);
        self.pubsub.remove(name);
        self.input_bindings.remove(name);
        self.output_bindings.remove(name);
        self.secret_stores.remove(name);
    }

    fn add(&mut self, info: ComponentInfo, instance: Instance) -> Arc<Slot> {
        let name = info.name.clone();
        let kinds = instance.kinds.clone();
        let slot = Slot::new(&name, instance);
        let live = Live::new(slot.clone());
        self.map(&name, &live, &kinds);
        self.slots.insert(name.clone(), (slot.clone(), live));
        self.components.retain(|c| c.name != name);
        self.components.push(info);
        slot
    }
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

    fn maps(&self) -> std::sync::RwLockReadGuard<'_, Maps> {
        self.inner.read().expect("registry lock")
    }

    /// The state store named `name`.
    pub fn state(&self, name: &str) -> Result<Arc<dyn StateStore>, RegistryError> {
        lookup(&self.maps().state, ComponentKind::State, name)
    }

    /// The pub/sub component named `name`.
    pub fn pubsub(&self, name: &str) -> Result<Arc<dyn PubSub>, RegistryError> {
        lookup(&self.maps().pubsub, ComponentKind::PubSub, name)
    }

    /// The input binding named `name`.
    pub fn input_binding(&self, name: &str) -> Result<Arc<dyn InputBinding>, RegistryError> {
        lookup(&self.maps().input_bindings, ComponentKind::InputBinding, name)
    }

    /// The output binding named `name`.
    pub fn output_binding(&self, name: &str) -> Result<Arc<dyn OutputBinding>, RegistryError> {
        lookup(&self.maps().output_bindings, ComponentKind::OutputBinding, name)
    }

    /// The secret store named `name`.
    pub fn secret_store(&self, name: &str) -> Result<Arc<dyn SecretStore>, RegistryError> {
        lookup(&self.maps().secret_stores, ComponentKind::SecretStore, name)
    }

    /// The lifecycle of the serving component named `name` (any kind): its
    /// live handle, so it reaches the current implementation.
    pub fn lifecycle(&self, name: &str) -> Option<Arc<dyn Lifecycle>> {
        self.maps().slots.get(name).map(|(_, live)| live.clone() as Arc<dyn Lifecycle>)
    }

    /// The slot of the serving component named `name`.
    pub(crate) fn slot(&self, name: &str) -> Option<Arc<Slot>> {
        self.maps().slots.get(name).map(|(slot, _)| slot.clone())
    }

    /// A number that changes whenever a component is added, replaced or
    /// removed (for caches of per-component settings).
    pub fn revision(&self) -> u64 {
        self.revision.load(std::sync::atomic::Ordering::Acquire)
    }

    fn bump(&self) {
        self.revision.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }

    /// The `keyPrefix` metadata of the state store named `name`, if set.
    pub fn state_key_prefix(&self, name: &str) -> Option<String> {
        self.maps().key_prefixes.get(name).cloned()
    }

    /// Every configured component, serving or not, in load order, with its
    /// slot's generation and when it was last swapped.
    pub fn components(&self) -> Vec<ComponentInfo> {
        let maps = self.maps();
        maps.components
            .iter()
            .map(|info| {
                let mut info = info.clone();
                if let Some((slot, _)) = maps.slots.get(&info.name) {
                    info.generation = slot.generation();
                    info.swapped_at = slot.swapped_at();
                }
                info
            })
            .collect()
    }

    /// Adds a serving component (or replaces a failed one's entry) while the
    /// host runs.
    pub(crate) fn insert(&self, info: ComponentInfo, instance: Instance, key_prefix: Option<String>) -> Arc<Slot> {
        let mut maps = self.inner.write().expect("registry lock");
        maps.key_prefixes.remove(&info.name);
        if let Some(prefix) = key_prefix {
            maps.key_prefixes.insert(info.name.clone(), prefix);
        }
        let slot = maps.add(info, instance);
        self.bump();
        slot
    }

    /// Ends a handover of `name`'s slot (see [`Slot`]): with `Some`, the new
    /// instance serves from now on, the listing and the typed maps follow
    /// (the kinds it serves may change), and the old instance is returned
    /// to close; with `None` the old one goes on.
    pub(crate) fn finish_handover(
        &self,
        slot: &Slot,
        new: Option<(ComponentInfo, Instance, Option<String>)>,
    ) -> Option<Arc<Instance>> {
        let Some((info, instance, key_prefix)) = new else {
            slot.finish_handover(None);
            return None;
        };
        let mut maps = self.inner.write().expect("registry lock");
        let kinds = instance.kinds.clone();
        let old = slot.finish_handover(Some(instance));
        if let Some((_, live)) = maps.slots.get(&info.name).cloned() {
            maps.unmap(&info.name);
            maps.map(&info.name, &live, &kinds);
        }
        maps.key_prefixes.remove(&info.name);
        if let Some(prefix) = key_prefix {
            maps.key_prefixes.insert(info.name.clone(), prefix);
        }
        if let Some(entry) = maps.components.iter_mut().find(|c| c.name == info.name) {
            *entry = info;
        }
        drop(maps);
        self.bump();
        old
    }

    /// Removes `name`: lookups no longer find it, and handles taken before
    /// get "not found" once the calls running on it have finished. Returns
    /// its slot, for the caller to hand over to [`crate::live::removed`].
    pub(crate) fn remove(&self, name: &str) -> Option<Arc<Slot>> {
        let mut maps = self.inner.write().expect("registry lock");
        maps.unmap(name);
        maps.key_prefixes.remove(name);
        maps.components.retain(|c| c.name != name);
        let slot = maps.slots.remove(name).map(|(slot, _)| slot);
        drop(maps);
        self.bump();
        slot
    }

    /// Records, on `name`'s listing, why its last reload failed (it keeps
    /// serving as before).
    pub(crate) fn set_reload_error(&self, name: &str, error: Option<String>) {
        let mut maps = self.inner.write().expect("registry lock");
        if let Some(entry) = maps.components.iter_mut().find(|c| c.name == name) {
            entry.reload_error = error;
        }
    }

    /// Records a configured component that is not serving.
    pub(crate) fn add_failed(&self, info: ComponentInfo) {
        let mut maps = self.inner.write().expect("registry lock");
        maps.components.retain(|c| c.name != info.name);
        maps.components.push(info);
    }
}

/// Collects components, refusing duplicate names, then hands them to a
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
        self.maps.add(info, instance);
    }

    /// Records the `keyPrefix` metadata of the state store `name`.
    pub fn set_state_key_prefix(&mut self, name: &str, key_prefix: String) {
        self.maps.key_prefixes.insert(name.to_owned(), key_prefix);
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
        Registry { inner: Arc::new(RwLock::new(self.maps)), revision: Arc::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::component::{Health, Mode, Status};
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
            generation: 1,
            swapped_at: None,
            reload_error: None,
        };
        builder.add(info, Instance::state(Arc::new(MemoryStateStore::new())));
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
