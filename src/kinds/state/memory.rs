//! `state.in-memory`: a store in process memory, lost on restart. The
//! reference implementation of the rules in `rules.rs`; useful for tests and
//! for caches.

use crate::component::Lifecycle;
use std::collections::HashMap;
use std::sync::Mutex;

use super::rules::{check_etag, expiry, expiry_metadata, given_etag, now_millis, parse_ttl};
use super::{DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation, features};
use crate::kinds::{Metadata, Result};

/// A [`StateStore`] in a `HashMap` behind one mutex. Every call holds the lock
/// for a few map operations only, never across an `.await`.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Entry>,
    /// Last ETag issued. Never reused, so an ETag from a deleted and
    /// re-created key cannot match the new value.
    version: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    data: Vec<u8>,
    version: u64,
    content_type: Option<String>,
    /// Epoch millis after which the entry reads as absent.
    expires_at: Option<i64>,
}

impl Entry {
    fn live(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }
}

impl MemoryStateStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

/// The staged effect of one write on `entries` (for transactions): `None`
/// means "deleted".
type Changes = HashMap<String, Option<Entry>>;

impl Inner {
    fn current<'a>(&'a self, changes: &'a Changes, key: &str, now: i64) -> Option<&'a Entry> {
        match changes.get(key) {
            Some(staged) => staged.as_ref(),
            None => self.entries.get(key).filter(|e| e.live(now)),
        }
    }

    /// Checks `request` against the current state and stages its effect.
    fn stage_set(&mut self, changes: &mut Changes, request: SetRequest, now: i64) -> Result<()> {
        let ttl = parse_ttl(&request.metadata)?;
        let stored = self.current(changes, &request.key, now).map(|e| e.version);
        check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
        self.version += 1;
        let entry = Entry {
            data: request.value,
            version: self.version,
            content_type: request.content_type,
            expires_at: expiry(ttl),
        };
        changes.insert(request.key, Some(entry));
        Ok(())
    }

    fn stage_delete(&mut self, changes: &mut Changes, request: DeleteRequest, now: i64) -> Result<()> {
        let stored = self.current(changes, &request.key, now).map(|e| e.version);
        check_etag(&request.key, stored, given_etag(&request.etag), request.options)?;
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
}

#[async_trait::async_trait]
impl Lifecycle for MemoryStateStore {
    async fn init(&self, _metadata: Metadata) -> Result<()> {
        Ok(())
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok([features::ETAG, features::TRANSACTIONAL, features::TTL].map(String::from).to_vec())
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }
}

#[async_trait::async_trait]
impl StateStore for MemoryStateStore {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        let inner = self.inner.lock().expect("state lock poisoned");
        let no_changes = Changes::new();
        let entry = inner.current(&no_changes, &request.key, now_millis());
        Ok(entry.map(|e| StateItem {
            data: e.data.clone(),
            etag: Some(e.version.to_string()),
            metadata: expiry_metadata(e.expires_at),
            content_type: e.content_type.clone(),
        }))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        let mut inner = self.inner.lock().expect("state lock poisoned");
        let mut changes = Changes::new();
        inner.stage_set(&mut changes, request, now_millis())?;
        inner.commit(changes);
        Ok(())
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let mut inner = self.inner.lock().expect("state lock poisoned");
        let mut changes = Changes::new();
        inner.stage_delete(&mut changes, request, now_millis())?;
        inner.commit(changes);
        Ok(())
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, _metadata: Metadata) -> Result<()> {
        let mut inner = self.inner.lock().expect("state lock poisoned");
        let now = now_millis();
        let mut changes = Changes::new();
        for operation in operations {
            match operation {
                TransactionOperation::Set(request) => inner.stage_set(&mut changes, request, now)?,
                TransactionOperation::Delete(request) => inner.stage_delete(&mut changes, request, now)?,
            }
        }
        inner.commit(changes);
        Ok(())
    }
}
