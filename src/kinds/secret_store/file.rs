//! `secretstores.local.file`: secrets from a JSON file, after Dapr's store of
//! the same name. Nested objects are flattened into names joined with
//! `nestedSeparator` (default `:`), so `{"db": {"password": "x"}}` holds the
//! secret `db:password`. With `multiValued: "true"` each top-level key is one
//! secret whose values are its flattened children.
//!
//! The file is read once, at init; a missing or malformed file fails init with
//! the path and the reason.

use crate::component::Lifecycle;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use serde_json::Value;

use super::{MULTIPLE_KEY_VALUES_PER_SECRET, Secret, SecretStore};
use crate::kinds::{ComponentError, Metadata, Result};

/// A [`SecretStore`] over one JSON file.
#[derive(Debug, Default)]
pub struct FileSecretStore {
    loaded: OnceLock<Loaded>,
}

#[derive(Debug)]
struct Loaded {
    secrets: BTreeMap<String, Secret>,
    multi_valued: bool,
}

impl FileSecretStore {
    /// A store configured by its `init` metadata (`secretsFile` required).
    pub fn new() -> Self {
        Self::default()
    }

    fn loaded(&self) -> Result<&Loaded> {
        self.loaded.get().ok_or_else(|| ComponentError::internal("secretstores.local.file used before init"))
    }
}

/// Flattens `value` into `out`, joining nested names with `separator`.
/// Strings are taken as they are; other scalars in their JSON spelling.
fn flatten(prefix: &str, value: &Value, separator: &str, out: &mut Secret) {
    match value {
        Value::Object(map) => {
            for (name, child) in map {
                let name = if prefix.is_empty() { name.clone() } else { format!("{prefix}{separator}{name}") };
                flatten(&name, child, separator, out);
            }
        }
        Value::String(text) => {
            out.insert(prefix.to_owned(), text.clone());
        }
        other => {
            out.insert(prefix.to_owned(), other.to_string());
        }
    }
}

#[async_trait::async_trait]
impl Lifecycle for FileSecretStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let path =
            metadata.get("secretsFile").ok_or_else(|| ComponentError::invalid("missing `secretsFile` metadata"))?;
        let separator = metadata.get("nestedSeparator").map_or(":", String::as_str);
        let multi_valued = metadata.get("multiValued").is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let text = tokio::fs::read_to_string(path)
            .await
            .map_err(|e| ComponentError::invalid(format!("reading secrets file {path}: {e}")))?;
        let root: Value = serde_json::from_str(&text).map_err(|e| {
            ComponentError::invalid(format!("secrets file {path}, line {} column {}: {e}", e.line(), e.column()))
        })?;
        let Value::Object(top) = &root else {
            return Err(ComponentError::invalid(format!("secrets file {path}: the top level must be a JSON object")));
        };
        let mut secrets = BTreeMap::new();
        if multi_valued {
            for (name, value) in top {
                let mut values = Secret::new();
                match value {
                    Value::Object(_) => flatten("", value, separator, &mut values),
                    _ => flatten(name, value, separator, &mut values),
                }
                secrets.insert(name.clone(), values);
            }
        } else {
            let mut flat = Secret::new();
            flatten("", &root, separator, &mut flat);
            secrets = flat.into_iter().map(|(k, v)| (k.clone(), Secret::from([(k, v)]))).collect();
        }
        self.loaded.set(Loaded { secrets, multi_valued }).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        let multi = self.loaded()?.multi_valued;
        Ok(if multi { vec![MULTIPLE_KEY_VALUES_PER_SECRET.to_owned()] } else { Vec::new() })
    }

    async fn ping(&self) -> Result<()> {
        self.loaded().map(|_| ())
    }
}

#[async_trait::async_trait]
impl SecretStore for FileSecretStore {
    async fn get(&self, key: &str, _metadata: Metadata) -> Result<Secret> {
        self.loaded()?.secrets.get(key).cloned().ok_or_else(|| ComponentError::NotFound(format!("secret `{key}`")))
    }

    async fn bulk_get(&self, _metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        Ok(self.loaded()?.secrets.clone())
    }
}
