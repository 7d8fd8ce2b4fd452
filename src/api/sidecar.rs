//! What both APIs do, in plughost's own types: each gRPC method and HTTP
//! route decodes its request, calls one function here and encodes the
//! answer. Registry lookups, key prefixing, CloudEvent wrapping and error
//! mapping happen here, once.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::watch;

use super::ApiConfig;
use super::cloudevents::{self, Outgoing};
use super::errors::{ApiError, Op};
use super::state_keys::{self, KeyScheme};
use crate::Registry;
use crate::component::Status;
use crate::kinds::output_binding::{InvokeRequest, InvokeResponse};
use crate::kinds::pubsub::{BulkMessage, CONSUMER_ID, FailedEntry, Message, PublishRequest};
use crate::kinds::secret_store::Secret;
use crate::kinds::state::{
    BulkStateItem, DeleteRequest, GetRequest, SetRequest, StateItem, TransactionOperation, features,
};
use crate::kinds::{ComponentKind, Deliveries, Metadata};

/// The state both servers share: the registry, the configuration, and what
/// the sidecar itself keeps (extended metadata, live subscriptions, the stop
/// signal).
pub struct Sidecar {
    registry: Registry,
    config: ApiConfig,
    /// Key scheme of every state store, by store name, fixed at start.
    /// Key schemes by store, valid for one registry revision.
    schemes: RwLock<(u64, HashMap<String, KeyScheme>)>,
    /// `SetMetadata` / `PUT /v1.0/metadata/{key}` attributes.
    extended: Mutex<BTreeMap<String, String>>,
    /// Streaming subscriptions currently open, for the metadata API.
    subscriptions: Mutex<BTreeMap<u64, Subscription>>,
    next_subscription: AtomicU64,
    /// Becomes `true` once shutdown is requested (signal, `Shutdown` RPC,
    /// `POST /v1.0/shutdown`).
    stop: watch::Sender<bool>,
}

/// An open streaming subscription, as the metadata API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The pub/sub component.
    pub pubsub: String,
    /// The topic.
    pub topic: String,
    /// The subscribe metadata.
    pub metadata: Metadata,
    /// The dead-letter topic, if one was given.
    pub dead_letter_topic: String,
    /// How it was made.
    pub kind: SubscriptionType,
}

/// How a subscription was made, as the metadata API's `type` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionType {
    /// A `SubscribeTopicEventsAlpha1` stream.
    Streaming,
    /// Asked from the app (`GET /dapr/subscribe`, `ListTopicSubscriptions`).
    Programmatic,
    /// A `kind: Subscription` document.
    Declarative,
}

impl SubscriptionType {
    /// `STREAMING`, `PROGRAMMATIC` or `DECLARATIVE`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Streaming => "STREAMING",
            Self::Programmatic => "PROGRAMMATIC",
            Self::Declarative => "DECLARATIVE",
        }
    }
}

/// One loaded component, as the metadata API lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentView {
    /// Its name.
    pub name: String,
    /// Its type (`state.sqlite`).
    pub type_name: String,
    /// Its version (`v1` if none was given).
    pub version: String,
    /// Dapr's capabilities: the features, plus `ACTOR` for ETag +
    /// transactional state stores, `INPUT_BINDING` / `OUTPUT_BINDING` for
    /// bindings.
    pub capabilities: Vec<String>,
    /// Its kinds (`state`, `output-binding`, ...).
    pub kinds: Vec<String>,
    /// Where it runs (`builtin`, `wasm`, `grpc`, `embedded`).
    pub mode: String,
    /// `ready`, or `unavailable: <reason>` (plughost's).
    pub status: String,
    /// The last health probe, if one ran (see [`crate::health`]).
    pub probe: Option<crate::component::Probe>,
    /// The last problem seen and when, even if it has recovered since.
    pub last_error: Option<(String, std::time::SystemTime)>,
}

/// Removes its subscription from the metadata listing when dropped.
pub struct SubscriptionGuard {
    sidecar: Arc<Sidecar>,
    id: u64,
}

impl Drop for SubscriptionGuard {
    fn drop(&mut self) {
        self.sidecar.subscriptions.lock().expect("subscriptions lock").remove(&self.id);
    }
}

impl Sidecar {
    /// The sidecar over `registry`.
    pub fn new(registry: Registry, config: ApiConfig) -> Arc<Self> {
        Arc::new(Self {
            registry,
            config,
            schemes: RwLock::new((u64::MAX, HashMap::new())),
            extended: Mutex::default(),
            subscriptions: Mutex::default(),
            next_subscription: AtomicU64::new(0),
            stop: watch::channel(false).0,
        })
    }

    /// The components it serves.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The configuration it serves with.
    pub fn config(&self) -> &ApiConfig {
        &self.config
    }

    /// Asks both servers to stop (gracefully); returns at once.
    pub fn request_shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once shutdown has been requested.
    pub async fn stopping(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stop| *stop).await;
    }

    /// Store `store`'s key scheme, from its `keyPrefix`; recomputed when the
    /// registry changed (a component added, replaced or removed).
    fn scheme(&self, store: &str) -> KeyScheme {
        let revision = self.registry.revision();
        {
            let cached = self.schemes.read().expect("schemes lock");
            if cached.0 == revision
                && let Some(scheme) = cached.1.get(store)
            {
                return scheme.clone();
            }
        }
        let (app_id, namespace) = (&self.config.app_id, &self.config.namespace);
        let key_prefix = self.registry.state_key_prefix(store);
        let scheme = KeyScheme::new(key_prefix.as_deref(), app_id, store, namespace);
        let mut cached = self.schemes.write().expect("schemes lock");
        if cached.0 != revision {
            *cached = (revision, HashMap::new());
        }
        cached.1.insert(store.to_owned(), scheme.clone());
        scheme
    }

    fn state(&self, op: Op, store: &str) -> Result<Arc<dyn crate::kinds::state::StateStore>, ApiError> {
        self.registry.state(store).map_err(|e| ApiError::lookup(op, &e))
    }

    /// The value under the app's `key`, or `None`.
    pub async fn get_state(&self, store: &str, mut request: GetRequest) -> Result<Option<StateItem>, ApiError> {
        let component = self.state(Op::StateGet, store)?;
        request.key = self.scheme(store).to_store(&request.key)?;
        component.get(request).await.map_err(|e| ApiError::component(Op::StateGet, store, &e))
    }

    /// Several keys; each answer carries the app's key.
    pub async fn bulk_get_state(
        &self,
        store: &str,
        keys: Vec<String>,
        metadata: Metadata,
    ) -> Result<Vec<BulkStateItem>, ApiError> {
        let component = self.state(Op::StateBulkGet, store)?;
        let scheme = self.scheme(store);
        let mut requests = Vec::with_capacity(keys.len());
        for key in &keys {
            requests.push(GetRequest {
                key: scheme.to_store(key)?,
                metadata: metadata.clone(),
                ..GetRequest::default()
            });
        }
        let mut items =
            component.bulk_get(requests).await.map_err(|e| ApiError::component(Op::StateBulkGet, store, &e))?;
        for item in &mut items {
            item.key = state_keys::from_store(&item.key).to_owned();
        }
        Ok(items)
    }

    /// Writes the items (app keys); one item is a `set`, several a `bulk_set`.
    pub async fn save_state(&self, store: &str, mut requests: Vec<SetRequest>) -> Result<(), ApiError> {
        let component = self.state(Op::StateSave, store)?;
        if requests.is_empty() {
            return Ok(());
        }
        let scheme = self.scheme(store);
        for request in &mut requests {
            request.key = scheme.to_store(&request.key)?;
            if request.content_type.is_none() {
                request.content_type = request.metadata.get("contentType").cloned();
            }
        }
        let result = if requests.len() == 1 {
            component.set(requests.remove(0)).await
        } else {
            component.bulk_set(requests).await
        };
        result.map_err(|e| ApiError::component(Op::StateSave, store, &e))
    }

    /// Deletes the items (app keys); one is a `delete`, several a `bulk_delete`.
    pub async fn delete_state(&self, store: &str, mut requests: Vec<DeleteRequest>) -> Result<(), ApiError> {
        let component = self.state(Op::StateDelete, store)?;
        if requests.is_empty() {
            return Ok(());
        }
        let scheme = self.scheme(store);
        for request in &mut requests {
            request.key = scheme.to_store(&request.key)?;
        }
        let result = if requests.len() == 1 {
            component.delete(requests.remove(0)).await
        } else {
            component.bulk_delete(requests).await
        };
        result.map_err(|e| ApiError::component(Op::StateDelete, store, &e))
    }

    /// Applies `operations` (app keys) all or nothing; the store must have
    /// the `TRANSACTIONAL` feature.
    pub async fn transact(
        &self,
        store: &str,
        mut operations: Vec<TransactionOperation>,
        metadata: Metadata,
    ) -> Result<(), ApiError> {
        let component = self.state(Op::StateTransaction, store)?;
        let transactional = self
            .registry
            .components()
            .iter()
            .any(|c| c.name == store && c.features.iter().any(|f| f == features::TRANSACTIONAL));
        if !transactional {
            return Err(ApiError::transactions_not_supported(store));
        }
        let scheme = self.scheme(store);
        for operation in &mut operations {
            let key = match operation {
                TransactionOperation::Set(set) => &mut set.key,
                TransactionOperation::Delete(delete) => &mut delete.key,
            };
            *key = scheme.to_store(key)?;
        }
        component.transact(operations, metadata).await.map_err(|e| ApiError::component(Op::StateTransaction, store, &e))
    }

    fn pubsub(&self, op: Op, pubsub: &str, topic: &str) -> Result<Arc<dyn crate::kinds::pubsub::PubSub>, ApiError> {
        if pubsub.is_empty() {
            return Err(ApiError::pubsub_empty());
        }
        let component = self.registry.pubsub(pubsub).map_err(|e| ApiError::lookup(op, &e))?;
        if topic.is_empty() {
            return Err(ApiError::topic_empty(pubsub));
        }
        Ok(component)
    }

    /// Publishes `data`, wrapped in a CloudEvent unless `rawPayload=true`.
    pub async fn publish(
        &self,
        pubsub: &str,
        topic: &str,
        data: &[u8],
        content_type: &str,
        metadata: Metadata,
    ) -> Result<(), ApiError> {
        let component = self.pubsub(Op::Publish, pubsub, topic)?;
        let message = Outgoing { app_id: &self.config.app_id, pubsub, topic, content_type, data, metadata: &metadata };
        let (data, content_type) = cloudevents::outgoing(message)?;
        let content_type = (!content_type.is_empty()).then_some(content_type);
        let request = PublishRequest { topic: topic.to_owned(), data, metadata, content_type };
        component.publish(request).await.map_err(|e| ApiError::component(Op::Publish, pubsub, &e))
    }

    /// Publishes every entry (each wrapped unless raw); returns the failures.
    pub async fn bulk_publish(
        &self,
        pubsub: &str,
        topic: &str,
        entries: Vec<BulkMessage>,
        metadata: Metadata,
    ) -> Result<Vec<FailedEntry>, ApiError> {
        let component = self.pubsub(Op::Publish, pubsub, topic)?;
        let mut seen = std::collections::HashSet::new();
        let mut wrapped = Vec::with_capacity(entries.len());
        for mut entry in entries {
            if entry.entry_id.is_empty() || !seen.insert(entry.entry_id.clone()) {
                return Err(ApiError::malformed(format!("entry id `{}` is empty or not unique", entry.entry_id)));
            }
            let mut entry_metadata = metadata.clone();
            entry_metadata.extend(entry.metadata.clone());
            let content_type = entry.content_type.clone().unwrap_or_default();
            let message = Outgoing {
                app_id: &self.config.app_id,
                pubsub,
                topic,
                content_type: &content_type,
                data: &entry.data,
                metadata: &entry_metadata,
            };
            let (data, content_type) = cloudevents::outgoing(message)?;
            entry.data = data;
            entry.content_type = (!content_type.is_empty()).then_some(content_type);
            wrapped.push(entry);
        }
        component.bulk_publish(topic, wrapped, metadata).await.map_err(|e| ApiError::component(Op::Publish, pubsub, &e))
    }

    /// Opens a subscription; the app id is the consumer group unless the
    /// metadata names one (as daprd does).
    pub async fn subscribe(
        &self,
        pubsub: &str,
        topic: &str,
        mut metadata: Metadata,
    ) -> Result<Deliveries<Message>, ApiError> {
        let component = self.pubsub(Op::Subscribe, pubsub, topic)?;
        if metadata.get(CONSUMER_ID).is_none_or(|id| id.is_empty()) && !self.config.app_id.is_empty() {
            metadata.insert(CONSUMER_ID.to_owned(), self.config.app_id.clone());
        }
        component.subscribe(topic, metadata).await.map_err(|e| ApiError::component(Op::Subscribe, pubsub, &e))
    }

    /// Publishes a dropped message's bytes, unchanged, to `topic`.
    pub async fn dead_letter(&self, pubsub: &str, topic: &str, message: Message) -> Result<(), ApiError> {
        let component = self.pubsub(Op::Publish, pubsub, topic)?;
        let request = PublishRequest {
            topic: topic.to_owned(),
            data: message.data,
            metadata: message.metadata,
            content_type: message.content_type,
        };
        component.publish(request).await.map_err(|e| ApiError::component(Op::Publish, pubsub, &e))
    }

    /// Lists `subscription` in the metadata API until the guard drops.
    pub fn track(self: &Arc<Self>, subscription: Subscription) -> SubscriptionGuard {
        let id = self.next_subscription.fetch_add(1, Ordering::Relaxed);
        self.subscriptions.lock().expect("subscriptions lock").insert(id, subscription);
        SubscriptionGuard { sidecar: self.clone(), id }
    }

    /// Runs one operation of the output binding `name`.
    pub async fn invoke_binding(&self, name: &str, request: InvokeRequest) -> Result<InvokeResponse, ApiError> {
        let op = Op::InvokeBinding;
        let component = self.registry.output_binding(name).map_err(|e| ApiError::lookup(op, &e))?;
        component.invoke(request).await.map_err(|e| ApiError::component(op, name, &e))
    }

    /// The secret `key` of `store`.
    pub async fn get_secret(&self, store: &str, key: &str, metadata: Metadata) -> Result<Secret, ApiError> {
        let component = self.registry.secret_store(store).map_err(|e| ApiError::lookup(Op::SecretGet, &e))?;
        component.get(key, metadata).await.map_err(|e| ApiError::component(Op::SecretGet, store, &e))
    }

    /// Every secret of `store`.
    pub async fn bulk_secrets(&self, store: &str, metadata: Metadata) -> Result<BTreeMap<String, Secret>, ApiError> {
        let component = self.registry.secret_store(store).map_err(|e| ApiError::lookup(Op::SecretGet, &e))?;
        component.bulk_get(metadata).await.map_err(|e| ApiError::component(Op::SecretGet, store, &e))
    }

    /// Every serving component.
    pub fn components(&self) -> Vec<ComponentView> {
        let components = self.registry.components();
        let serving = components.iter().filter(|c| c.status == Status::Ready);
        serving
            .map(|c| {
                let mut capabilities = c.features.clone();
                let has = |f: &str| c.features.iter().any(|x| x == f);
                if c.kinds.contains(&ComponentKind::State) && has(features::ETAG) && has(features::TRANSACTIONAL) {
                    capabilities.push("ACTOR".to_owned());
                }
                if c.kinds.contains(&ComponentKind::OutputBinding) || c.kinds.contains(&ComponentKind::InputBinding) {
                    // A binding's features are its operations; Dapr lists directions.
                    capabilities.clear();
                    if c.kinds.contains(&ComponentKind::InputBinding) {
                        capabilities.push("INPUT_BINDING".to_owned());
                    }
                    if c.kinds.contains(&ComponentKind::OutputBinding) {
                        capabilities.push("OUTPUT_BINDING".to_owned());
                    }
                }
                ComponentView {
                    name: c.name.clone(),
                    type_name: c.type_name.clone(),
                    version: if c.version.is_empty() { "v1".to_owned() } else { c.version.clone() },
                    capabilities,
                    kinds: c.kinds.iter().map(|k| k.as_str().to_owned()).collect(),
                    mode: c.mode.as_str().to_owned(),
                    status: c.current_status().to_string(),
                    probe: c.health.last_probe(),
                    last_error: c.health.last_error(),
                }
            })
            .collect()
    }

    /// The extended metadata: what apps set, plus plughost's own entries
    /// (`plughost.version`, and per component `plughost.component.<name>` =
    /// `<kinds> <mode>`).
    pub fn extended_metadata(&self) -> BTreeMap<String, String> {
        let mut extended = self.extended.lock().expect("extended lock").clone();
        extended.insert("plughost.version".to_owned(), env!("CARGO_PKG_VERSION").to_owned());
        for c in self.components() {
            extended.insert(format!("plughost.component.{}", c.name), format!("{} {}", c.kinds.join(","), c.mode));
            extended.insert(format!("plughost.health.{}", c.name), c.status.clone());
        }
        extended
    }

    /// The serving components that are not healthy now, with why.
    pub fn unhealthy(&self) -> Vec<(String, String)> {
        let components = self.registry.components();
        let serving = components.iter().filter(|c| c.status == Status::Ready);
        serving
            .filter_map(|c| match c.current_status() {
                Status::Ready => None,
                other => Some((c.name.clone(), other.to_string())),
            })
            .collect()
    }

    /// Sets one extended metadata attribute.
    pub fn set_metadata(&self, key: String, value: String) {
        self.extended.lock().expect("extended lock").insert(key, value);
    }

    /// The streaming subscriptions open now.
    pub fn subscriptions(&self) -> Vec<Subscription> {
        self.subscriptions.lock().expect("subscriptions lock").values().cloned().collect()
    }
}
