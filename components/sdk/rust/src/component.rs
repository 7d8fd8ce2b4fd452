//! What every component implements: the lifecycle.

use crate::{Error, Metadata};

/// The lifecycle every kind shares (WIT `lifecycle`, Dapr's `Init`,
/// `Features`, `Ping`).
///
/// [`init`](Component::init) *creates* the instance: in gRPC mode one per
/// `x-component-instance` (the YAML component name), in WASM mode one per
/// guest instance. Every other method runs on an initialised instance; a call
/// that arrives before `Init` is answered with an error by the SDK and never
/// reaches your code.
pub trait Component: Sized + Send + 'static {
    /// Makes an instance from the component's `spec.metadata` (YAML).
    fn init(metadata: Metadata) -> Result<Self, Error>;

    /// Feature strings, e.g. `ETAG`, `TRANSACTIONAL`, `TTL` for state stores.
    fn features(&self) -> Vec<String> {
        Vec::new()
    }

    /// Liveness probe.
    fn ping(&mut self) -> Result<(), Error> {
        Ok(())
    }
}

/// The value of `key` in `metadata`, if present.
pub fn metadata_value<'a>(metadata: &'a Metadata, key: &str) -> Option<&'a str> {
    metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// Writes a line to the host's log: through plughost's `log` import in WASM
/// mode (tagged with the component's name), to stderr in gRPC mode.
pub fn log(level: LogLevel, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::contract::base::plughost::components::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

pub use crate::contract::base::plughost::components::log::Level as LogLevel;
