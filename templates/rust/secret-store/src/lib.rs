//! `{{name}}`: a secret store. Replace the metadata-backed map with your
//! vault; the SDK does the rest in both modes (see README.md).

use std::collections::BTreeMap;

use plughost_component::secrets::Secret;
use plughost_component::{Component, Error, Metadata, SecretStore};

/// The component: the secrets are the init metadata `secret.<NAME>`.
pub struct {{camel_name}} {
    secrets: BTreeMap<String, String>,
}

impl Component for {{camel_name}} {
    fn init(metadata: Metadata) -> Result<Self, Error> {
        let secrets = metadata
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("secret.")?.to_owned(), v)))
            .collect();
        Ok(Self { secrets })
    }
}

impl SecretStore for {{camel_name}} {
    fn get(&mut self, key: String, _metadata: Metadata) -> Result<Secret, Error> {
        let value = self.secrets.get(&key).ok_or_else(|| Error::NotFound(format!("secret `{key}`")))?;
        Ok(vec![(key, value.clone())])
    }

    fn bulk_get(&mut self, _metadata: Metadata) -> Result<Vec<(String, Secret)>, Error> {
        Ok(self.secrets.iter().map(|(k, v)| (k.clone(), vec![(k.clone(), v.clone())])).collect())
    }
}

// The WASM component (a wasm32 build exports the plughost world; elsewhere a no-op).
plughost_component::export_secret_store!({{camel_name}});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke() {
        let metadata = vec![("secret.db".to_owned(), "pw".to_owned()), ("other".to_owned(), "x".to_owned())];
        let mut store = {{camel_name}}::init(metadata).unwrap();
        assert_eq!(store.get("db".to_owned(), Vec::new()).unwrap(), vec![("db".to_owned(), "pw".to_owned())]);
        assert!(matches!(store.get("other".to_owned(), Vec::new()), Err(Error::NotFound(_))));
        assert_eq!(store.bulk_get(Vec::new()).unwrap().len(), 1);
    }
}
