//! Making one component: resolve its type, resolve its metadata, make the
//! instance, `init` it within its timeout, wrap it in its resiliency policy.
//! Used at start-up and by every reload.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use super::{AbortOnDrop, CLOSE_TIMEOUT};
use crate::component::{ComponentInfo, Factories, Factory, FactoryContext, Health, Instance, Mode, Status, modes};
use crate::config::{ComponentSpec, MetadataValue};
use crate::error::{Error, Result};
use crate::kinds::secret_store::SecretStore;
use crate::kinds::{ComponentKind, Metadata};
use crate::ops::Ops;
use crate::pluggable::{GrpcOptions, SocketDirectory};
use crate::registry::RegistryError;
use crate::resiliency::Resiliency;

/// Finds a secret store by name, for `secretKeyRef`s: the registry being
/// built at start-up, the running one on a reload.
pub(crate) type Secrets<'a> = &'a (dyn Fn(&str) -> std::result::Result<Arc<dyn SecretStore>, RegistryError> + Sync);

/// Where component types come from: factories (built-in, embedded) first,
/// then the socket folder, with the waits of components whose socket has
/// not appeared yet.
pub(crate) struct Types<'a> {
    pub(crate) factories: &'a Factories,
    pub(crate) sockets: Option<&'a Arc<SocketDirectory>>,
    pub(crate) grpc: &'a GrpcOptions,
    pub(crate) waits: HashMap<String, AbortOnDrop<bool>>,
}

impl Types<'_> {
    pub(crate) async fn resolve(&mut self, spec: &ComponentSpec) -> Result<Factory> {
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
            if let Some(provider) = sockets.provider(&spec.type_name) {
                return Ok(modes::grpc_type(provider, self.grpc.clone()));
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

/// A component made and initialised, not registered yet.
pub(crate) struct Started {
    pub(crate) info: ComponentInfo,
    /// Wrapped in its resiliency policy.
    pub(crate) instance: Instance,
    /// State stores: the `keyPrefix` metadata.
    pub(crate) key_prefix: Option<String>,
}

/// A component made, not initialised yet.
pub(crate) struct Prepared {
    pub(crate) instance: Instance,
    pub(crate) metadata: Metadata,
    pub(crate) health: Health,
    pub(crate) mode: Mode,
    /// Where its type came from (`builtin`, a `.wasm` path, a socket).
    pub(crate) source: String,
}

impl Prepared {
    /// Initialises it (see [`init`]).
    pub(crate) async fn init(self, spec: &ComponentSpec, resiliency: &Resiliency, ops: &Ops) -> Result<Started> {
        let (mode, source) = (self.mode, self.source.clone());
        let started = init(spec, mode, self.instance, self.metadata, self.health, resiliency, ops).await?;
        ops.set_source(&spec.name, &source);
        Ok(started)
    }
}

/// [`prepare`], then [`init`]: a component ready to register.
pub(crate) async fn make(
    spec: &ComponentSpec,
    factory: &Factory,
    data_dir: &Path,
    resiliency: &Resiliency,
    ops: &Ops,
    secrets: Secrets<'_>,
) -> Result<Started> {
    prepare(spec, factory, data_dir, secrets).await?.init(spec, resiliency, ops).await
}

/// Checks the version, resolves the metadata and makes the instance with
/// `factory`; nothing is initialised or registered. A failure names the
/// component.
pub(crate) async fn prepare(
    spec: &ComponentSpec,
    factory: &Factory,
    data_dir: &Path,
    secrets: Secrets<'_>,
) -> Result<Prepared> {
    if !matches!(spec.version.as_str(), "" | "v0" | "v1") {
        return Err(Error::UnknownVersion {
            name: spec.name.clone(),
            origin: spec.origin.clone(),
            type_name: spec.type_name.clone(),
            version: spec.version.clone(),
        });
    }
    let fail = |reason: anyhow::Error| Error::Create { name: spec.name.clone(), origin: spec.origin.clone(), reason };
    let metadata = resolve_metadata(spec, secrets).await.map_err(|e| fail(anyhow::Error::msg(e)))?;
    let health = Health::default();
    let context = FactoryContext { name: spec.name.clone(), data_dir: data_dir.to_owned(), health: health.clone() };
    let instance = (factory.make)(context).await.map_err(fail)?;
    Ok(Prepared { instance, metadata, health, mode: factory.mode, source: factory.source.clone() })
}

/// The listing of a component that is configured but not serving.
pub(crate) fn failed(spec: &ComponentSpec, mode: Mode, error: &Error) -> ComponentInfo {
    info(spec, mode, Vec::new(), Status::Failed(error.to_string()), Health::default(), Vec::new())
}

pub(crate) fn info(
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
        generation: 1,
        swapped_at: None,
        reload_error: None,
    }
}

/// Initialises `instance` within the spec's timeout, asks its features,
/// and wraps it in its resiliency policy and the operator's decorator
/// (metrics, the enable switch): the one place every mode gets them.
pub(crate) async fn init(
    spec: &ComponentSpec,
    mode: Mode,
    instance: Instance,
    metadata: Metadata,
    health: Health,
    resiliency: &Resiliency,
    ops: &Ops,
) -> Result<Started> {
    let (name, origin) = (spec.name.clone(), spec.origin.clone());
    // Dapr matches the metadata name case-insensitively.
    let key_prefix = metadata.iter().find(|(k, _)| k.eq_ignore_ascii_case("keyPrefix")).map(|(_, v)| v.clone());
    let initialised = async {
        instance.lifecycle.init(metadata).await?;
        instance.lifecycle.features().await
    };
    let features = match tokio::time::timeout(spec.init_timeout, initialised).await {
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
    let key_prefix = key_prefix.filter(|_| kinds.contains(&ComponentKind::State));
    let info = info(spec, mode, kinds.clone(), Status::Ready, health, features);
    tracing::info!(
        component = %spec.name,
        r#type = %spec.type_name,
        mode = mode.as_str(),
        kinds = ?kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "component ready"
    );
    let instance = ops.wrap(&spec.name, mode, resiliency.wrap(&spec.name, instance));
    Ok(Started { info, instance, key_prefix })
}

/// Releases an instance that never started (a gRPC one holds a connection
/// and a supervisor task).
pub(crate) async fn close_instance(instance: &Instance) {
    if let Ok(Err(e)) = tokio::time::timeout(CLOSE_TIMEOUT, instance.lifecycle.close()).await {
        tracing::debug!("closing a component that failed to start: {e}");
    }
}

/// Turns `spec.metadata` into plain values, reading `secretKeyRef`s from the
/// component's `auth.secretStore` (which must have started already).
async fn resolve_metadata(spec: &ComponentSpec, secrets: Secrets<'_>) -> std::result::Result<Metadata, String> {
    let mut metadata = Metadata::new();
    for item in &spec.metadata {
        let value = match &item.value {
            MetadataValue::Plain(value) => value.clone(),
            MetadataValue::SecretRef { secret, key } => {
                let store_name = spec.secret_store.as_deref().ok_or_else(|| {
                    format!("metadata `{}` uses secretKeyRef but the component has no auth.secretStore", item.name)
                })?;
                let store = secrets(store_name).map_err(|e| format!("metadata `{}`: {e}", item.name))?;
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
