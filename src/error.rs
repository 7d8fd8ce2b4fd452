//! The host's public error: what can stop a host from starting.

use std::time::Duration;

use crate::config::{ConfigErrors, Origin};
use crate::kinds::ComponentError;
use crate::registry::RegistryError;

/// Why the host could not start (or a lookup failed).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// One or more component files are invalid; nothing was loaded.
    #[error("invalid component configuration:\n{0}")]
    Config(ConfigErrors),
    /// A lookup or a duplicate name.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// `spec.type` names no known factory (nor, with socket discovery, a
    /// type any socket provided within the component's `initTimeout`).
    #[error("component `{name}` ({origin}): unknown type `{type_name}`; known types: {known}{waited}")]
    UnknownType {
        /// Component name.
        name: String,
        /// Where it is defined.
        origin: Origin,
        /// The type asked for.
        type_name: String,
        /// Types that exist, comma-separated.
        known: String,
        /// Empty, or how long the host waited for a socket to provide it.
        waited: String,
    },
    /// `spec.version` is not one the type has.
    #[error("component `{name}` ({origin}): type `{type_name}` has no version `{version}` (use v1 or leave it out)")]
    UnknownVersion {
        /// Component name.
        name: String,
        /// Where it is defined.
        origin: Origin,
        /// The type.
        type_name: String,
        /// The version asked for.
        version: String,
    },
    /// The factory could not make the instance, or a `secretKeyRef` could not
    /// be resolved.
    #[error("component `{name}` ({origin}): {reason:#}")]
    Create {
        /// Component name.
        name: String,
        /// Where it is defined.
        origin: Origin,
        /// What went wrong: the factory's own error, kept whole (shown in
        /// the message rather than as `source()`, so `{:#}` does not print
        /// it twice).
        reason: anyhow::Error,
    },
    /// `init` returned an error.
    #[error("component `{name}` ({origin}) failed to initialise: {error}")]
    Init {
        /// Component name.
        name: String,
        /// Where it is defined.
        origin: Origin,
        /// The component's error.
        error: ComponentError,
    },
    /// `init` did not return within `spec.initTimeout`.
    #[error("component `{name}` ({origin}) did not finish init within {after:?} (spec.initTimeout)")]
    InitTimeout {
        /// Component name.
        name: String,
        /// Where it is defined.
        origin: Origin,
        /// The timeout.
        after: Duration,
    },
    /// The WASM runtime could not start, or the WASM directory is unreadable.
    #[error("WASM: {0:#}")]
    Wasm(anyhow::Error),
    /// The data directory could not be created.
    #[error("data directory {path}: {error}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// `Result` with the host's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

// By hand rather than `#[from]`, which would also make the errors the
// `source()`, so `{:#}` would print every message twice.
impl From<ConfigErrors> for Error {
    fn from(errors: ConfigErrors) -> Self {
        Error::Config(errors)
    }
}
