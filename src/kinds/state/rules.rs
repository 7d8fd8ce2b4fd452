//! The concurrency and TTL rules every built-in store applies, written once
//! so `state.in-memory` and `state.sqlite` cannot drift apart.
//!
//! ETags are decimal version numbers: unique per write within a store, so a
//! stale ETag can never match again. Anything that is not a decimal number is
//! an *invalid* ETag, which Dapr distinguishes from a *mismatched* one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Concurrency, Metadata, StateOptions};
use crate::kinds::{ComponentError, Result};

/// Request metadata key: seconds until the value expires; `-1` means never.
pub const TTL_IN_SECONDS: &str = "ttlInSeconds";
/// Response metadata key: RFC 3339 UTC time at which the value expires.
pub const TTL_EXPIRE_TIME: &str = "ttlExpireTime";

/// Reads `ttlInSeconds` from request metadata. `None` means no expiry
/// (absent, empty, `0` or `-1`); a value that is not an integer, or is below
/// `-1`, is an invalid argument naming the value.
pub fn parse_ttl(metadata: &Metadata) -> Result<Option<Duration>> {
    let Some(raw) = metadata.get(TTL_IN_SECONDS).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let seconds: i64 = raw.trim().parse().map_err(|_| {
        ComponentError::invalid(format!("{TTL_IN_SECONDS} must be an integer number of seconds, got `{raw}`"))
    })?;
    match seconds {
        s if s < -1 => {
            Err(ComponentError::invalid(format!("{TTL_IN_SECONDS} must be -1 (no expiry) or positive, got {s}")))
        }
        s if s <= 0 => Ok(None),
        s => Ok(Some(Duration::from_secs(s as u64))),
    }
}

/// Milliseconds since the Unix epoch, the unit expiry times are stored in.
pub(super) fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The expiry time (epoch millis) for a write with `ttl`, if any.
pub(super) fn expiry(ttl: Option<Duration>) -> Option<i64> {
    ttl.map(|ttl| now_millis() + ttl.as_millis() as i64)
}

/// Response metadata for a value expiring at `expires_at` (epoch millis).
pub(super) fn expiry_metadata(expires_at: Option<i64>) -> Metadata {
    let mut metadata = Metadata::new();
    if let Some(millis) = expires_at {
        let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::milliseconds(millis);
        if let Ok(text) = at.format(&time::format_description::well_known::Rfc3339) {
            metadata.insert(TTL_EXPIRE_TIME.to_owned(), text);
        }
    }
    metadata
}

/// The ETag the caller gave, treating an empty string as "none" (HTTP clients
/// send `If-Match: ""`).
pub(super) fn given_etag(etag: &Option<String>) -> Option<&str> {
    etag.as_deref().filter(|e| !e.is_empty())
}

/// Decides whether a write or delete of `key` may go ahead, given the ETag
/// currently stored (`None` if the key is absent).
pub(super) fn check_etag(key: &str, stored: Option<u64>, given: Option<&str>, options: StateOptions) -> Result<()> {
    match given {
        Some(text) => {
            let version: u64 = text
                .parse()
                .map_err(|_| ComponentError::etag_invalid(key, format!("`{text}` is not an ETag this store issued")))?;
            if stored == Some(version) { Ok(()) } else { Err(ComponentError::etag_mismatch(key)) }
        }
        None if options.concurrency == Concurrency::FirstWrite && stored.is_some() => {
            Err(ComponentError::EtagMismatch {
                key: key.to_owned(),
                message: "first-write concurrency needs the current ETag to replace an existing value".to_owned(),
            })
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ttl(value: &str) -> Result<Option<Duration>> {
        parse_ttl(&Metadata::from([(TTL_IN_SECONDS.to_owned(), value.to_owned())]))
    }

    #[test]
    fn ttl_values() {
        assert_eq!(ttl("2").unwrap(), Some(Duration::from_secs(2)));
        assert_eq!(ttl("-1").unwrap(), None);
        assert_eq!(ttl("").unwrap(), None);
        assert!(matches!(ttl("foo"), Err(ComponentError::InvalidArgument(m)) if m.contains("foo")));
        assert!(matches!(ttl("-5"), Err(ComponentError::InvalidArgument(_))));
    }

    #[test]
    fn etag_rules() {
        let first = StateOptions { concurrency: Concurrency::FirstWrite, ..Default::default() };
        let last = StateOptions::default();
        assert!(check_etag("k", Some(3), Some("3"), last).is_ok());
        assert!(matches!(check_etag("k", Some(3), Some("2"), last), Err(ComponentError::EtagMismatch { .. })));
        assert!(matches!(check_etag("k", None, Some("2"), last), Err(ComponentError::EtagMismatch { .. })));
        assert!(matches!(check_etag("k", Some(3), Some("x"), last), Err(ComponentError::EtagInvalid { .. })));
        assert!(check_etag("k", Some(3), None, last).is_ok());
        assert!(matches!(check_etag("k", Some(3), None, first), Err(ComponentError::EtagMismatch { .. })));
        assert!(check_etag("k", None, None, first).is_ok());
    }
}
