//! The state store of `wasm-state` and the misbehaving fixtures, built with
//! the component SDK (`../sdk/rust`, crate `plughost-component`) over
//! [`state_logic::Store`]. The fixtures differ from `wasm-state` only in a
//! [`Behaviour`] hook.
//!
//! A library, not a component: each guest crate names its behaviour and
//! exports it with this crate's export macro (the SDK's `export_state!`):
//!
//! ```ignore
//! struct Plain;
//! impl state_guest::Behaviour for Plain {}
//! type Component = state_guest::StateComponent<Plain>;
//! state_guest::export!(Component);
//! ```

use std::marker::PhantomData;
use std::time::{SystemTime, UNIX_EPOCH};

pub use plughost_component;
use plughost_component::state::{
    BulkItem, Concurrency, DeleteRequest, GetRequest, KeyError, Operation, SetRequest, StateItem,
};
use plughost_component::{Component, LogLevel, StateStore};
pub use plughost_component::{Error, Metadata};
use state_logic::Store;

/// What a guest does besides being a plain store.
pub trait Behaviour: 'static {
    /// Runs first in every `get`, with the requested key.
    fn before_get(_key: &str) {}

    /// Answers a `get` instead of the store, if it returns `Some`
    /// (`wasm-state-probe` reports what WASI let it do this way).
    fn answer_get(_key: &str) -> Option<Result<Vec<u8>, Error>> {
        None
    }

    /// Runs in `ping`; its error is the ping's.
    fn ping() -> Result<(), Error> {
        Ok(())
    }
}

/// A state store whose `get` and `ping` first run `B`'s hooks.
pub struct StateComponent<B> {
    store: Store,
    behaviour: PhantomData<fn() -> B>,
}

/// Exports `$component` (a [`StateComponent`]) as a WASM state component.
#[macro_export]
macro_rules! export {
    ($component:ty) => {
        $crate::plughost_component::export_state!($component);
    };
}

/// Milliseconds since the Unix epoch, from `wasi:clocks/wall-clock`.
fn now() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn error(e: state_logic::Error) -> Error {
    match e {
        state_logic::Error::EtagMismatch(key) => Error::EtagMismatch(key),
        state_logic::Error::EtagInvalid(key) => Error::EtagInvalid(key),
        state_logic::Error::InvalidArgument(message) => Error::InvalidArgument(message),
    }
}

fn key_errors(failed: Vec<(String, state_logic::Error)>) -> Vec<KeyError> {
    failed.into_iter().map(|(key, e)| KeyError { key, error: error(e) }).collect()
}

fn set(request: SetRequest) -> state_logic::Set {
    state_logic::Set {
        key: request.key,
        value: request.value,
        etag: request.etag,
        metadata: request.metadata,
        first_write: request.options.concurrency == Concurrency::FirstWrite,
        content_type: request.content_type,
    }
}

fn delete(request: DeleteRequest) -> state_logic::Delete {
    state_logic::Delete {
        key: request.key,
        etag: request.etag,
        first_write: request.options.concurrency == Concurrency::FirstWrite,
    }
}

fn item(found: state_logic::Item) -> StateItem {
    StateItem { data: found.data, etag: Some(found.etag), metadata: found.metadata, content_type: found.content_type }
}

impl<B: Behaviour> Component for StateComponent<B> {
    fn init(_metadata: Metadata) -> Result<Self, Error> {
        plughost_component::log(LogLevel::Debug, "in-memory state store ready");
        Ok(Self { store: Store::new(), behaviour: PhantomData })
    }

    fn features(&self) -> Vec<String> {
        state_logic::FEATURES.map(String::from).to_vec()
    }

    fn ping(&mut self) -> Result<(), Error> {
        B::ping()
    }
}

impl<B: Behaviour> StateStore for StateComponent<B> {
    fn get(&mut self, request: GetRequest) -> Result<Option<StateItem>, Error> {
        B::before_get(&request.key);
        if let Some(answer) = B::answer_get(&request.key) {
            let data = answer?;
            return Ok(Some(StateItem { data, etag: None, metadata: Vec::new(), content_type: None }));
        }
        Ok(self.store.get(&request.key, now()).map(item))
    }

    fn set(&mut self, request: SetRequest) -> Result<(), Error> {
        self.store.set(set(request), now()).map_err(error)
    }

    fn delete(&mut self, request: DeleteRequest) -> Result<(), Error> {
        self.store.delete(delete(request), now()).map_err(error)
    }

    fn bulk_get(&mut self, requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, Error> {
        let now = now();
        Ok(requests
            .into_iter()
            .map(|request| {
                let found = self.store.get(&request.key, now).map(item);
                BulkItem { key: request.key, item: found, error: None }
            })
            .collect())
    }

    fn bulk_set(&mut self, requests: Vec<SetRequest>) -> Result<Vec<KeyError>, Error> {
        let requests = requests.into_iter().map(set).collect();
        Ok(key_errors(self.store.bulk_set(requests, now())))
    }

    fn bulk_delete(&mut self, requests: Vec<DeleteRequest>) -> Result<Vec<KeyError>, Error> {
        let requests = requests.into_iter().map(delete).collect();
        Ok(key_errors(self.store.bulk_delete(requests, now())))
    }

    fn transact(&mut self, operations: Vec<Operation>, _metadata: Metadata) -> Result<(), Error> {
        let ops = operations
            .into_iter()
            .map(|op| match op {
                Operation::Set(request) => state_logic::Op::Set(set(request)),
                Operation::Delete(request) => state_logic::Op::Delete(delete(request)),
            })
            .collect();
        self.store.transact(ops, now()).map_err(error)
    }
}
