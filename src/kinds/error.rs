//! The error every component kind returns.
//!
//! One enum for all five kinds, on purpose: the gRPC adapters decode
//! `tonic::Status` into it, the WASM adapters decode the WIT `error` variant
//! into it, and the sidecar API maps it onto gRPC codes and HTTP statuses, each
//! in exactly one function. Variants that only make sense for one kind (the
//! ETag ones, [`ComponentError::Bulk`]) say so in their docs; other kinds never
//! produce them.

use std::time::Duration;

/// Why a component call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ComponentError {
    /// State only: the ETag given does not match the stored one (or the key
    /// does not exist, or first-write concurrency found an existing value).
    /// Never retried: the caller must re-read.
    #[error("etag mismatch for key `{key}`{}", detail(.message))]
    EtagMismatch {
        /// The key whose write or delete was refused.
        key: String,
        /// Extra text from the component, may be empty.
        message: String,
    },
    /// State only: the ETag given is not in a format the store understands.
    #[error("invalid etag for key `{key}`{}", detail(.message))]
    EtagInvalid {
        /// The key whose write or delete was refused.
        key: String,
        /// Extra text from the component, may be empty.
        message: String,
    },
    /// The thing asked for does not exist (a secret, a file of an output
    /// binding). A missing *state* key is not an error: `get` returns `None`.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is malformed (bad `ttlInSeconds`, unknown operation, ...).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The component does not implement this (e.g. transactions on a store
    /// without the `TRANSACTIONAL` feature).
    #[error("not supported: {0}")]
    NotSupported(String),
    /// The component cannot be reached right now (process down, instance
    /// being replaced). Safe to retry later.
    #[error("component `{component}` unavailable: {reason}")]
    Unavailable {
        /// The component's configured name.
        component: String,
        /// What went wrong, for the log and the caller.
        reason: String,
    },
    /// The call did not finish within its deadline.
    #[error("component `{component}` did not answer within {after:?}")]
    DeadlineExceeded {
        /// The component's configured name.
        component: String,
        /// The deadline that passed.
        after: Duration,
    },
    /// The component is at capacity (too many calls waiting for it); nothing
    /// was done. Safe to retry later.
    #[error("component `{component}` is overloaded: {reason}")]
    ResourceExhausted {
        /// The component's configured name.
        component: String,
        /// Which limit was reached.
        reason: String,
    },
    /// State only: some items of a bulk set or bulk delete failed; the others
    /// were applied. Each entry names the key and why.
    #[error("{} of the bulk operation's items failed: {}", .0.len(), bulk_summary(.0))]
    Bulk(Vec<(String, ComponentError)>),
    /// Anything else the component reported, or a guest trap.
    #[error("{0}")]
    Internal(String),
}

impl ComponentError {
    /// Shorthand for [`ComponentError::Internal`].
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::Internal(message.to_string())
    }

    /// Shorthand for [`ComponentError::InvalidArgument`].
    pub fn invalid(message: impl std::fmt::Display) -> Self {
        Self::InvalidArgument(message.to_string())
    }

    /// An ETag mismatch on `key` with no further detail.
    pub fn etag_mismatch(key: &str) -> Self {
        Self::EtagMismatch { key: key.to_owned(), message: String::new() }
    }

    /// An invalid ETag on `key`, saying what was wrong with it.
    pub fn etag_invalid(key: &str, message: impl std::fmt::Display) -> Self {
        Self::EtagInvalid { key: key.to_owned(), message: message.to_string() }
    }

    /// Whether the same call may succeed if it is simply made again: the one
    /// rule resiliency policies follow, for retries and for what a circuit
    /// breaker counts as a failure.
    ///
    /// Transient: [`Unavailable`](Self::Unavailable) (process down, instance
    /// being replaced), [`DeadlineExceeded`](Self::DeadlineExceeded) and
    /// [`Internal`](Self::Internal) (a backend error, a guest trap: Dapr
    /// retries these too) and [`ResourceExhausted`](Self::ResourceExhausted)
    /// (a full call queue drains; a retry's backoff gives it time). Permanent, never retried, and proof that the
    /// component is answering: ETag mismatch or invalid (the caller must
    /// re-read), not found, invalid argument, not supported, and a bulk
    /// call's partial failure (the other items were applied; repeating the
    /// whole call is not the same call).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unavailable { .. }
            | Self::DeadlineExceeded { .. }
            | Self::Internal(_)
            | Self::ResourceExhausted { .. } => true,
            Self::EtagMismatch { .. }
            | Self::EtagInvalid { .. }
            | Self::NotFound(_)
            | Self::InvalidArgument(_)
            | Self::NotSupported(_)
            | Self::Bulk(_) => false,
        }
    }
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

fn bulk_summary(items: &[(String, ComponentError)]) -> String {
    items.iter().map(|(key, err)| format!("`{key}`: {err}")).collect::<Vec<_>>().join("; ")
}
