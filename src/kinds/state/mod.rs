//! The `state` kind: a key/value store with ETags, TTL, bulk calls and
//! transactions, shaped after Dapr's `dapr.proto.components.v1.StateStore`
//! so the gRPC adapter is a field-for-field mapping.
//!
//! | implementation | type            | where the data lives                    |
//! |----------------|-----------------|-----------------------------------------|
//! | [`MemoryStateStore`] | `state.in-memory` | process memory                   |
//! | [`SqliteStateStore`] | `state.sqlite`    | one SQLite file in the data dir  |
//! | [`RedisStateStore`]  | `state.redis`     | a Redis server (Dapr's layout)   |
//! | [`GrpcStateStore`]   | `state.<socket>`  | another process (Dapr pluggable) |

mod grpc;
mod memory;
mod redis;
mod rules;
mod sqlite;
mod wasm;

use super::{Metadata, Result};
use crate::component::Lifecycle;

pub use self::redis::{ETAG_COUNTER_KEY, RedisStateStore};
pub use grpc::GrpcStateStore;
pub use memory::MemoryStateStore;
pub use rules::{TTL_EXPIRE_TIME, TTL_IN_SECONDS, parse_ttl};
pub use sqlite::SqliteStateStore;
pub use wasm::WasmStateStore;

/// Feature strings a state store may advertise (Dapr's names).
pub mod features {
    /// Optimistic concurrency with ETags.
    pub const ETAG: &str = "ETAG";
    /// `transact` is supported.
    pub const TRANSACTIONAL: &str = "TRANSACTIONAL";
    /// The `ttlInSeconds` request metadata is honoured.
    pub const TTL: &str = "TTL";
}

/// How a write treats a value written by someone else in the meantime.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Concurrency {
    /// Not given: the store's default, which is last-write.
    #[default]
    Unspecified,
    /// Refuse the write unless the caller proves (with the current ETag) that
    /// it saw the latest value; a write without an ETag only creates new keys.
    FirstWrite,
    /// The last write wins; an ETag, if given, is still checked.
    LastWrite,
}

/// Read consistency; stores here are always strongly consistent, the value is
/// carried so adapters can forward it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Consistency {
    /// Not given.
    #[default]
    Unspecified,
    /// Eventual.
    Eventual,
    /// Strong.
    Strong,
}

/// Options of a write or delete.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateOptions {
    /// First-write or last-write.
    pub concurrency: Concurrency,
    /// Requested consistency.
    pub consistency: Consistency,
}

/// A read of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GetRequest {
    /// The key, exactly as stored (the sidecar API adds Dapr's prefix first).
    pub key: String,
    /// Per-request metadata.
    pub metadata: Metadata,
    /// Requested consistency.
    pub consistency: Consistency,
}

impl GetRequest {
    /// A plain read of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }
}

/// A stored value, as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateItem {
    /// The bytes, exactly as written.
    pub data: Vec<u8>,
    /// The current ETag; changes on every write.
    pub etag: Option<String>,
    /// Response metadata, e.g. `ttlExpireTime` for keys with a TTL.
    pub metadata: Metadata,
    /// The content type given when the value was written.
    pub content_type: Option<String>,
}

/// A write of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetRequest {
    /// The key.
    pub key: String,
    /// The value; any bytes.
    pub value: Vec<u8>,
    /// If given, the write succeeds only if it equals the stored ETag.
    pub etag: Option<String>,
    /// Per-request metadata; `ttlInSeconds` sets an expiry.
    pub metadata: Metadata,
    /// Concurrency and consistency.
    pub options: StateOptions,
    /// Stored with the value and returned by reads.
    pub content_type: Option<String>,
}

impl SetRequest {
    /// An unconditional write of `value` under `key`.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Self { key: key.into(), value: value.into(), ..Self::default() }
    }

    /// The same write, conditional on `etag`.
    pub fn with_etag(mut self, etag: impl Into<String>) -> Self {
        self.etag = Some(etag.into());
        self
    }
}

/// A delete of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteRequest {
    /// The key.
    pub key: String,
    /// If given, the delete succeeds only if it equals the stored ETag.
    pub etag: Option<String>,
    /// Per-request metadata.
    pub metadata: Metadata,
    /// Concurrency and consistency.
    pub options: StateOptions,
}

impl DeleteRequest {
    /// An unconditional delete of `key`.
    pub fn new(key: impl Into<String>) -> Self {
        Self { key: key.into(), ..Self::default() }
    }
}

/// One answer of a bulk get. A missing key has empty `data`, no ETag and no
/// error, as on Dapr's wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BulkStateItem {
    /// The key asked for.
    pub key: String,
    /// The value, or `None` if the key does not exist.
    pub item: Option<StateItem>,
    /// Why this key could not be read, if it could not.
    pub error: Option<String>,
}

/// One step of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransactionOperation {
    /// Upsert.
    Set(SetRequest),
    /// Delete.
    Delete(DeleteRequest),
}

/// A key/value store, however it is hosted.
///
/// Shared as `Arc<dyn StateStore>` and called concurrently; an implementation
/// that cannot run calls in parallel (one WASM instance) serializes them
/// itself. Keys are opaque strings (any Unicode); values are opaque bytes.
#[async_trait::async_trait]
pub trait StateStore: Lifecycle {
    /// The value under `key`, or `None` if there is none (or it expired).
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>>;

    /// Writes one key. ETag mismatch and invalid ETag are
    /// [`ComponentError::EtagMismatch`](super::ComponentError::EtagMismatch) and
    /// [`ComponentError::EtagInvalid`](super::ComponentError::EtagInvalid).
    async fn set(&self, request: SetRequest) -> Result<()>;

    /// Deletes one key. Deleting a missing key without an ETag is not an error.
    async fn delete(&self, request: DeleteRequest) -> Result<()>;

    /// Reads several keys; the answer has one item per request, in order.
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        let mut items = Vec::with_capacity(requests.len());
        for request in requests {
            let key = request.key.clone();
            match self.get(request).await {
                Ok(item) => items.push(BulkStateItem { key, item, error: None }),
                Err(e) => items.push(BulkStateItem { key, item: None, error: Some(e.to_string()) }),
            }
        }
        Ok(items)
    }

    /// Writes several keys, each on its own: the ones that fail are reported
    /// together in [`ComponentError::Bulk`](super::ComponentError::Bulk), the
    /// others stay written.
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        set_each(self, requests).await
    }

    /// Deletes several keys, with the same partial-failure rule as `bulk_set`.
    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        delete_each(self, requests).await
    }

    /// Applies `operations` in order, all or nothing: if one fails (an ETag
    /// mismatch, say) none of them is visible afterwards. Stores without the
    /// `TRANSACTIONAL` feature return `NotSupported`.
    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()>;
}

/// `bulk_set` as one `set` per request: the default, and the gRPC adapter's
/// path when Dapr's `BulkSet` could not report exactly the failed keys.
pub(crate) async fn set_each<S: StateStore + ?Sized>(store: &S, requests: Vec<SetRequest>) -> Result<()> {
    let mut failed = Vec::new();
    for request in requests {
        let key = request.key.clone();
        if let Err(e) = store.set(request).await {
            failed.push((key, e));
        }
    }
    bulk_result(failed)
}

/// `bulk_delete` as one `delete` per request (see [`set_each`]).
pub(crate) async fn delete_each<S: StateStore + ?Sized>(store: &S, requests: Vec<DeleteRequest>) -> Result<()> {
    let mut failed = Vec::new();
    for request in requests {
        let key = request.key.clone();
        if let Err(e) = store.delete(request).await {
            failed.push((key, e));
        }
    }
    bulk_result(failed)
}

fn bulk_result(failed: Vec<(String, super::ComponentError)>) -> Result<()> {
    if failed.is_empty() { Ok(()) } else { Err(super::ComponentError::Bulk(failed)) }
}
