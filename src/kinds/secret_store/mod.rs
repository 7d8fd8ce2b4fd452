//! The `secret store` kind: read-only secrets, shaped after Dapr's
//! `dapr.proto.components.v1.SecretStore`. A secret is a map of values
//! (usually one entry, named like the secret).

mod env;
mod file;
mod grpc;
mod wasm;

use crate::component::Lifecycle;
use std::collections::BTreeMap;

use super::{Metadata, Result};

pub use env::EnvSecretStore;
pub use file::FileSecretStore;
pub use grpc::GrpcSecretStore;
pub use wasm::WasmSecretStore;

/// One secret: value name → value.
pub type Secret = BTreeMap<String, String>;

/// Feature string: a secret can hold several values.
pub const MULTIPLE_KEY_VALUES_PER_SECRET: &str = "MULTIPLE_KEY_VALUES_PER_SECRET";

/// A secret store, however it is hosted.
#[async_trait::async_trait]
pub trait SecretStore: Lifecycle {
    /// The secret named `key`; `NotFound` if there is none.
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret>;

    /// Every secret the store holds, by name.
    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>>;
}
