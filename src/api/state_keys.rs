//! Dapr's state key prefixing (protocol spec B8): the key an app uses is
//! stored as `<prefix>||<key>`, so several apps can share one store. The
//! component's `keyPrefix` metadata picks the prefix:
//!
//! | `keyPrefix`         | stored key                         |
//! |---------------------|------------------------------------|
//! | `appid` (default)   | `<app id>\|\|<key>` (no prefix if the app id is empty) |
//! | `name`              | `<store name>\|\|<key>`            |
//! | `namespace`         | `<namespace>.<app id>\|\|<key>` (as `appid` without a namespace) |
//! | `none`              | `<key>`                            |
//! | anything else       | `<value>\|\|<key>`                 |
//!
//! The metadata value is lower-cased, as daprd does. Keys containing `||`
//! are refused. Prefixing happens here, before any component sees the key,
//! whatever the component's mode, so a store shared with daprd sees the
//! same keys.

use super::errors::ApiError;

const SEPARATOR: &str = "||";

/// The prefix of every key of one state store, or none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyScheme {
    prefix: Option<String>,
}

impl KeyScheme {
    /// The scheme of store `store` given its `keyPrefix` metadata, the app id
    /// and the namespace (empty if there is none).
    pub fn new(key_prefix: Option<&str>, app_id: &str, store: &str, namespace: &str) -> Self {
        let strategy = key_prefix.map(str::to_lowercase).unwrap_or_else(|| "appid".to_owned());
        let prefix = match strategy.as_str() {
            "appid" | "" => (!app_id.is_empty()).then(|| app_id.to_owned()),
            "name" => Some(store.to_owned()),
            "namespace" if app_id.is_empty() => None,
            "namespace" if namespace.is_empty() => Some(app_id.to_owned()),
            "namespace" => Some(format!("{namespace}.{app_id}")),
            "none" => None,
            literal => Some(literal.to_owned()),
        };
        Self { prefix }
    }

    /// The key to hand to the component for the app's `key`.
    pub fn to_store(&self, key: &str) -> Result<String, ApiError> {
        if key.is_empty() {
            return Err(ApiError::malformed("state key cannot be empty"));
        }
        if key.contains(SEPARATOR) {
            return Err(ApiError::malformed(format!("input key/keyPrefix '{key}' can't contain '{SEPARATOR}'")));
        }
        Ok(match &self.prefix {
            Some(prefix) => format!("{prefix}{SEPARATOR}{key}"),
            None => key.to_owned(),
        })
    }
}

/// The app's key for a key read back from a store: the part after the first
/// `||` (up to a second one), or the whole key if it has none.
pub fn from_store(key: &str) -> &str {
    let mut parts = key.splitn(3, SEPARATOR);
    let first = parts.next().unwrap_or_default();
    parts.next().unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategies() {
        let key = |prefix: Option<&str>, app: &str, ns: &str| KeyScheme::new(prefix, app, "store", ns).to_store("k");
        assert_eq!(key(None, "app", "").unwrap(), "app||k");
        assert_eq!(key(Some("AppID"), "app", "").unwrap(), "app||k");
        assert_eq!(key(None, "", "").unwrap(), "k");
        assert_eq!(key(Some("name"), "app", "").unwrap(), "store||k");
        assert_eq!(key(Some("namespace"), "app", "prod").unwrap(), "prod.app||k");
        assert_eq!(key(Some("namespace"), "app", "").unwrap(), "app||k");
        assert_eq!(key(Some("NONE"), "app", "").unwrap(), "k");
        assert_eq!(key(Some("Shared"), "app", "").unwrap(), "shared||k");
    }

    #[test]
    fn refuses_separator_and_empty_keys() {
        let scheme = KeyScheme::new(None, "app", "store", "");
        let err = scheme.to_store("a||b").unwrap_err();
        assert_eq!(err.error_code, "ERR_MALFORMED_REQUEST");
        assert_eq!(err.http.as_u16(), 400);
        assert!(scheme.to_store("").is_err());
        assert_eq!(scheme.to_store("a|b").unwrap(), "app||a|b");
    }

    #[test]
    fn unprefixes_like_daprd() {
        assert_eq!(from_store("app||k"), "k");
        assert_eq!(from_store("k"), "k");
        assert_eq!(from_store("a||b||c"), "b");
        assert_eq!(from_store("app||"), "");
    }
}
