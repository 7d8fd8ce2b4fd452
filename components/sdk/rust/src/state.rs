//! State stores: the WIT `state` interface, operation for operation.

use crate::{Component, Error, Metadata};

pub use crate::contract::state_world::exports::plughost::components::state::{
    BulkItem, Concurrency, Consistency, DeleteRequest, GetRequest, KeyError, Operation, SetRequest, StateItem,
    StateOptions,
};

/// Request metadata key: seconds until the value expires (`-1`: never).
pub const TTL_IN_SECONDS: &str = "ttlInSeconds";
/// Response metadata key: when the value expires, RFC 3339.
pub const TTL_EXPIRE_TIME: &str = "ttlExpireTime";

/// A key/value store with Dapr's semantics.
///
/// * ETags change on every write. A write or delete whose ETag differs from
///   the stored one fails with [`Error::EtagMismatch`] (payload: the key); one
///   your store could never have issued fails with [`Error::EtagInvalid`].
///   With [`Concurrency::FirstWrite`] a write without an ETag only creates.
/// * A missing key is `Ok(None)`, not an error; deleting a missing key
///   without an ETag succeeds.
/// * `ttlInSeconds` in a set's metadata expires the value; report
///   `ttlExpireTime` in the item's metadata.
/// * Advertise `TRANSACTIONAL` in [`Component::features`] only if you
///   implement [`transact`](StateStore::transact) (in order, all or nothing).
pub trait StateStore: Component {
    /// The value under `request.key`, `None` if absent or expired.
    fn get(&mut self, request: GetRequest) -> Result<Option<StateItem>, Error>;

    /// One write.
    fn set(&mut self, request: SetRequest) -> Result<(), Error>;

    /// One delete.
    fn delete(&mut self, request: DeleteRequest) -> Result<(), Error>;

    /// Several reads; a failed key carries its error in the item.
    fn bulk_get(&mut self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, Error> {
        Ok(requests
            .into_iter()
            .map(|request| {
                let key = request.key.clone();
                match self.get(request) {
                    Ok(item) => BulkItem { key, item, error: None },
                    Err(e) => BulkItem { key, item: None, error: Some(e.to_string()) },
                }
            })
            .collect())
    }

    /// Several writes, each on its own: returns exactly the keys that failed.
    fn bulk_set(&mut self, requests: Vec<SetRequest>) -> Result<Vec<KeyError>, Error> {
        Ok(requests
            .into_iter()
            .filter_map(|request| {
                let key = request.key.clone();
                self.set(request).err().map(|error| KeyError { key, error })
            })
            .collect())
    }

    /// Several deletes, each on its own: returns exactly the keys that failed.
    fn bulk_delete(&mut self, requests: Vec<DeleteRequest>) -> Result<Vec<KeyError>, Error> {
        Ok(requests
            .into_iter()
            .filter_map(|request| {
                let key = request.key.clone();
                self.delete(request).err().map(|error| KeyError { key, error })
            })
            .collect())
    }

    /// Applies `operations` in order, all or nothing.
    fn transact(&mut self, operations: Vec<Operation>, metadata: Metadata) -> Result<(), Error> {
        let _ = (operations, metadata);
        Err(Error::NotSupported("transactions".to_owned()))
    }
}
