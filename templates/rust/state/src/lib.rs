//! `{{name}}`: a state store. Replace the in-memory map with your storage;
//! the SDK does the rest in both modes (see README.md).

use std::collections::HashMap;

use plughost_component::state::{DeleteRequest, GetRequest, SetRequest, StateItem};
use plughost_component::{Component, Error, Metadata, StateStore};

/// The component: one instance per configured component (gRPC) or per
/// guest instance (WASM), made by `init`.
#[derive(Default)]
pub struct {{camel_name}} {
    /// key → (value, version); the version is the ETag.
    values: HashMap<String, (Vec<u8>, u64)>,
    version: u64,
}

impl {{camel_name}} {
    /// Dapr's ETag rule: a given ETag must match the stored version.
    fn check_etag(&self, key: &str, etag: Option<&str>) -> Result<(), Error> {
        let Some(etag) = etag.filter(|e| !e.is_empty()) else { return Ok(()) };
        let given: u64 = etag.parse().map_err(|_| Error::EtagInvalid(key.to_owned()))?;
        match self.values.get(key) {
            Some((_, version)) if *version == given => Ok(()),
            _ => Err(Error::EtagMismatch(key.to_owned())),
        }
    }
}

impl Component for {{camel_name}} {
    fn init(_metadata: Metadata) -> Result<Self, Error> {
        Ok(Self::default())
    }

    fn features(&self) -> Vec<String> {
        vec!["ETAG".to_owned()]
    }
}

impl StateStore for {{camel_name}} {
    fn get(&mut self, request: GetRequest) -> Result<Option<StateItem>, Error> {
        Ok(self.values.get(&request.key).map(|(data, version)| StateItem {
            data: data.clone(),
            etag: Some(version.to_string()),
            metadata: Vec::new(),
            content_type: None,
        }))
    }

    fn set(&mut self, request: SetRequest) -> Result<(), Error> {
        self.check_etag(&request.key, request.etag.as_deref())?;
        self.version += 1;
        self.values.insert(request.key, (request.value, self.version));
        Ok(())
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<(), Error> {
        self.check_etag(&request.key, request.etag.as_deref())?;
        self.values.remove(&request.key);
        Ok(())
    }
}

// The WASM component (a wasm32 build exports the plughost world; elsewhere a no-op).
plughost_component::export_state!({{camel_name}});

#[cfg(test)]
mod tests {
    use plughost_component::state::{Concurrency, Consistency, StateOptions};

    use super::*;

    fn set(key: &str, value: &str, etag: Option<String>) -> SetRequest {
        SetRequest {
            key: key.to_owned(),
            value: value.as_bytes().to_vec(),
            etag,
            metadata: Vec::new(),
            options: StateOptions { concurrency: Concurrency::Unspecified, consistency: Consistency::Unspecified },
            content_type: None,
        }
    }

    #[test]
    fn smoke() {
        let mut store = {{camel_name}}::init(Vec::new()).unwrap();
        store.set(set("k", "v1", None)).unwrap();
        let get = GetRequest { key: "k".to_owned(), metadata: Vec::new(), consistency: Consistency::Unspecified };
        let item = store.get(get).unwrap().expect("stored");
        assert_eq!(item.data, b"v1");
        assert!(matches!(store.set(set("k", "v2", Some("999".into()))), Err(Error::EtagMismatch(_))));
        assert!(matches!(store.set(set("k", "v2", Some("x".into()))), Err(Error::EtagInvalid(_))));
        store.set(set("k", "v2", item.etag)).unwrap();
    }
}
