//! `secret-store-component`: secrets given in the init metadata. An entry
//! `secret.<NAME>` with value `V` is the secret `NAME` = `{NAME: V}`.

wit_bindgen::generate!({ world: "secret-store-component", path: "../../wit" });

use std::cell::RefCell;
use std::collections::BTreeMap;

use exports::plughost::components::lifecycle;
use exports::plughost::components::secret_store::{self, Secret};
use plughost::components::types::{Error, Metadata};

/// Prefix of the init metadata entries that are secrets.
const PREFIX: &str = "secret.";

thread_local! {
    static SECRETS: RefCell<BTreeMap<String, String>> = const { RefCell::new(BTreeMap::new()) };
}

fn secret(name: &str, value: &str) -> Secret {
    vec![(name.to_owned(), value.to_owned())]
}

struct Component;

impl lifecycle::Guest for Component {
    fn init(metadata: Metadata) -> Result<(), Error> {
        let secrets = metadata
            .into_iter()
            .filter_map(|(key, value)| Some((key.strip_prefix(PREFIX)?.to_owned(), value)))
            .filter(|(name, _)| !name.is_empty())
            .collect();
        SECRETS.set(secrets);
        Ok(())
    }

    fn features() -> Vec<String> {
        Vec::new()
    }

    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

impl secret_store::Guest for Component {
    fn get(key: String, _metadata: Metadata) -> Result<Secret, Error> {
        SECRETS.with_borrow(|secrets| match secrets.get(&key) {
            Some(value) => Ok(secret(&key, value)),
            None => Err(Error::NotFound(format!("secret `{key}`"))),
        })
    }

    fn bulk_get(_metadata: Metadata) -> Result<Vec<(String, Secret)>, Error> {
        Ok(SECRETS
            .with_borrow(|secrets| secrets.iter().map(|(name, value)| (name.clone(), secret(name, value))).collect()))
    }
}

export!(Component);

#[cfg(test)]
mod tests {
    use super::*;
    use lifecycle::Guest as _;
    use secret_store::Guest as _;

    #[test]
    fn secrets_from_metadata() {
        let metadata =
            vec![("secret.A".into(), "1".into()), ("other".into(), "x".into()), ("secret.B".into(), "2".into())];
        Component::init(metadata).unwrap();
        assert_eq!(Component::get("A".into(), Vec::new()).unwrap(), secret("A", "1"));
        assert!(matches!(Component::get("NOPE".into(), Vec::new()), Err(Error::NotFound(m)) if m.contains("NOPE")));
        let all = Component::bulk_get(Vec::new()).unwrap();
        assert_eq!(all, [("A".to_owned(), secret("A", "1")), ("B".to_owned(), secret("B", "2"))]);
    }
}
