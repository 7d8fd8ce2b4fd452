//! Secret stores: the WIT `secret-store` interface.

use crate::{Component, Error, Metadata};

/// A secret: a map of values (one pair for most stores).
pub type Secret = Vec<(String, String)>;

/// Read-only secrets.
pub trait SecretStore: Component {
    /// The secret `key`; [`Error::NotFound`] if there is none.
    fn get(&mut self, key: String, metadata: Metadata) -> Result<Secret, Error>;

    /// Every secret.
    fn bulk_get(&mut self, metadata: Metadata) -> Result<Vec<(String, Secret)>, Error>;
}
