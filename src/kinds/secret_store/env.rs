//! `secretstores.local.env`: secrets from the host's environment variables,
//! after Dapr's store of the same name. With `prefix` metadata only variables
//! starting with it are visible, and names are given without it.

use crate::component::Lifecycle;
use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::{Secret, SecretStore};
use crate::kinds::{ComponentError, Metadata, Result};

/// A [`SecretStore`] over environment variables.
#[derive(Debug, Default)]
pub struct EnvSecretStore {
    prefix: OnceLock<String>,
}

impl EnvSecretStore {
    /// A store configured by its `init` metadata.
    pub fn new() -> Self {
        Self::default()
    }

    fn prefix(&self) -> &str {
        self.prefix.get().map_or("", String::as_str)
    }
}

#[async_trait::async_trait]
impl Lifecycle for EnvSecretStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let prefix = metadata.get("prefix").cloned().unwrap_or_default();
        self.prefix.set(prefix).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl SecretStore for EnvSecretStore {
    async fn get(&self, key: &str, _metadata: Metadata) -> Result<Secret> {
        let name = format!("{}{key}", self.prefix());
        match std::env::var(&name) {
            Ok(value) => Ok(Secret::from([(key.to_owned(), value)])),
            Err(std::env::VarError::NotPresent) => Err(ComponentError::NotFound(format!("secret `{key}`"))),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(ComponentError::internal(format!("variable `{name}` is not UTF-8")))
            }
        }
    }

    async fn bulk_get(&self, _metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        let prefix = self.prefix();
        Ok(std::env::vars()
            .filter_map(|(name, value)| {
                let key = name.strip_prefix(prefix)?.to_owned();
                (!key.is_empty()).then(|| (key.clone(), Secret::from([(key, value)])))
            })
            .collect())
    }
}
