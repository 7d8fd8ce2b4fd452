//! An in-memory key/value store with Dapr's ETag, TTL and transaction rules.
//!
//! Shared by the WebAssembly state guest and the gRPC state component, so the
//! same logic runs in either mode. No I/O and no clock: every call takes
//! `now`, milliseconds since the Unix epoch.

use std::collections::HashMap;

/// Request metadata key: seconds until expiry.
pub const TTL_IN_SECONDS: &str = "ttlInSeconds";
/// Response metadata key: RFC 3339 expiry time.
pub const TTL_EXPIRE_TIME: &str = "ttlExpireTime";
/// Features to advertise.
pub const FEATURES: [&str; 3] = ["ETAG", "TRANSACTIONAL", "TTL"];

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// ETag does not match (payload: the key).
    EtagMismatch(String),
    /// ETag is malformed (payload: the key).
    EtagInvalid(String),
    /// Malformed request.
    InvalidArgument(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::EtagMismatch(key) => write!(f, "etag mismatch for key `{key}`"),
            Error::EtagInvalid(key) => write!(f, "invalid etag for key `{key}`"),
            Error::InvalidArgument(message) => f.write_str(message),
        }
    }
}

/// A stored value as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub data: Vec<u8>,
    pub etag: String,
    pub content_type: Option<String>,
    /// `ttlExpireTime` when the value has a TTL.
    pub metadata: Vec<(String, String)>,
}

/// A write.
#[derive(Debug, Clone, Default)]
pub struct Set {
    pub key: String,
    pub value: Vec<u8>,
    pub etag: Option<String>,
    pub metadata: Vec<(String, String)>,
    pub first_write: bool,
    pub content_type: Option<String>,
}

/// A delete.
#[derive(Debug, Clone, Default)]
pub struct Delete {
    pub key: String,
    pub etag: Option<String>,
    pub first_write: bool,
}

/// One step of a transaction.
#[derive(Debug, Clone)]
pub enum Op {
    Set(Set),
    Delete(Delete),
}

#[derive(Debug, Clone)]
struct Entry {
    data: Vec<u8>,
    version: u64,
    content_type: Option<String>,
    expires_at: Option<i64>,
}

/// The store.
#[derive(Debug, Default)]
pub struct Store {
    entries: HashMap<String, Entry>,
    version: u64,
}

/// Staged writes of a transaction: `None` = deleted.
type Changes = HashMap<String, Option<Entry>>;

fn parse_ttl(metadata: &[(String, String)]) -> Result<Option<i64>, Error> {
    let Some((_, raw)) = metadata.iter().find(|(k, v)| k == TTL_IN_SECONDS && !v.is_empty()) else {
        return Ok(None);
    };
    let seconds: i64 = raw
        .trim()
        .parse()
        .map_err(|_| Error::InvalidArgument(format!("{TTL_IN_SECONDS} must be an integer, got `{raw}`")))?;
    match seconds {
        s if s < -1 => Err(Error::InvalidArgument(format!("{TTL_IN_SECONDS} must be -1 or positive, got {s}"))),
        s if s <= 0 => Ok(None),
        s => Ok(Some(s * 1000)),
    }
}

fn check_etag(key: &str, stored: Option<u64>, given: Option<&str>, first_write: bool) -> Result<(), Error> {
    match given.filter(|e| !e.is_empty()) {
        Some(text) => {
            let version: u64 = text.parse().map_err(|_| Error::EtagInvalid(key.to_owned()))?;
            if stored == Some(version) { Ok(()) } else { Err(Error::EtagMismatch(key.to_owned())) }
        }
        None if first_write && stored.is_some() => Err(Error::EtagMismatch(key.to_owned())),
        None => Ok(()),
    }
}

impl Store {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn current<'a>(&'a self, changes: &'a Changes, key: &str, now: i64) -> Option<&'a Entry> {
        match changes.get(key) {
            Some(staged) => staged.as_ref(),
            None => self.entries.get(key).filter(|e| e.expires_at.is_none_or(|at| at > now)),
        }
    }

    fn stage_set(&mut self, changes: &mut Changes, request: Set, now: i64) -> Result<(), Error> {
        let ttl = parse_ttl(&request.metadata)?;
        let stored = self.current(changes, &request.key, now).map(|e| e.version);
        check_etag(&request.key, stored, request.etag.as_deref(), request.first_write)?;
        self.version += 1;
        let entry = Entry {
            data: request.value,
            version: self.version,
            content_type: request.content_type,
            expires_at: ttl.map(|ms| now + ms),
        };
        changes.insert(request.key, Some(entry));
        Ok(())
    }

    fn stage_delete(&mut self, changes: &mut Changes, request: Delete, now: i64) -> Result<(), Error> {
        let stored = self.current(changes, &request.key, now).map(|e| e.version);
        check_etag(&request.key, stored, request.etag.as_deref(), request.first_write)?;
        changes.insert(request.key, None);
        Ok(())
    }

    fn commit(&mut self, changes: Changes) {
        for (key, entry) in changes {
            match entry {
                Some(entry) => self.entries.insert(key, entry),
                None => self.entries.remove(&key),
            };
        }
    }

    /// The live value under `key`.
    pub fn get(&self, key: &str, now: i64) -> Option<Item> {
        let entry = self.entries.get(key).filter(|e| e.expires_at.is_none_or(|at| at > now))?;
        let metadata = entry.expires_at.map(|at| vec![(TTL_EXPIRE_TIME.to_owned(), rfc3339(at))]).unwrap_or_default();
        Some(Item {
            data: entry.data.clone(),
            etag: entry.version.to_string(),
            content_type: entry.content_type.clone(),
            metadata,
        })
    }

    /// One write.
    pub fn set(&mut self, request: Set, now: i64) -> Result<(), Error> {
        self.transact(vec![Op::Set(request)], now)
    }

    /// One delete; deleting an absent key without an ETag succeeds.
    pub fn delete(&mut self, request: Delete, now: i64) -> Result<(), Error> {
        self.transact(vec![Op::Delete(request)], now)
    }

    /// Applies `ops` in order, all or nothing.
    pub fn transact(&mut self, ops: Vec<Op>, now: i64) -> Result<(), Error> {
        let mut changes = Changes::new();
        for op in ops {
            match op {
                Op::Set(request) => self.stage_set(&mut changes, request, now)?,
                Op::Delete(request) => self.stage_delete(&mut changes, request, now)?,
            }
        }
        self.commit(changes);
        Ok(())
    }

    /// Each write on its own; returns the keys that failed, with why.
    pub fn bulk_set(&mut self, requests: Vec<Set>, now: i64) -> Vec<(String, Error)> {
        requests
            .into_iter()
            .filter_map(|r| {
                let key = r.key.clone();
                self.set(r, now).err().map(|e| (key, e))
            })
            .collect()
    }

    /// Each delete on its own; returns the keys that failed, with why.
    pub fn bulk_delete(&mut self, requests: Vec<Delete>, now: i64) -> Vec<(String, Error)> {
        requests
            .into_iter()
            .filter_map(|r| {
                let key = r.key.clone();
                self.delete(r, now).err().map(|e| (key, e))
            })
            .collect()
    }
}

/// Formats epoch milliseconds as RFC 3339 UTC (`2026-11-21T17:06:22.123Z`).
pub fn rfc3339(millis: i64) -> String {
    let (secs, ms) = (millis.div_euclid(1000), millis.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_795_367_182_123), "2026-11-22T17:06:22.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn etags_and_transactions() {
        let mut store = Store::new();
        store.set(Set { key: "a".into(), value: b"1".to_vec(), ..Default::default() }, 0).unwrap();
        let etag = store.get("a", 0).unwrap().etag;
        let stale = Set { key: "a".into(), etag: Some("999".into()), ..Default::default() };
        assert_eq!(store.set(stale, 0), Err(Error::EtagMismatch("a".into())));
        let bad = Set { key: "a".into(), etag: Some("x".into()), ..Default::default() };
        assert_eq!(store.set(bad, 0), Err(Error::EtagInvalid("a".into())));
        let ops = vec![
            Op::Set(Set { key: "b".into(), value: b"2".to_vec(), ..Default::default() }),
            Op::Set(Set { key: "a".into(), etag: Some("12345".into()), ..Default::default() }),
        ];
        assert!(store.transact(ops, 0).is_err());
        assert!(store.get("b", 0).is_none(), "rolled back");
        assert_eq!(store.get("a", 0).unwrap().etag, etag);
    }

    #[test]
    fn ttl_expires() {
        let mut store = Store::new();
        let metadata = vec![(TTL_IN_SECONDS.to_owned(), "2".to_owned())];
        store.set(Set { key: "t".into(), value: b"v".to_vec(), metadata, ..Default::default() }, 1_000).unwrap();
        let item = store.get("t", 1_500).unwrap();
        assert_eq!(item.metadata, vec![(TTL_EXPIRE_TIME.to_owned(), rfc3339(3_000))]);
        assert!(store.get("t", 3_000).is_none());
    }
}
