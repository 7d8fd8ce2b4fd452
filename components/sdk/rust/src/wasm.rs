//! WASM mode: the contract's `Guest` traits implemented over this crate's
//! traits, for the export macros ([`export_state!`](crate::export_state) and
//! the others). Compiled on every target (so it is type-checked natively);
//! only a wasm32 build exports anything.
//!
//! A guest instance is single-threaded and plughost serialises its calls, so
//! the one component instance lives in a thread-local `RefCell`. `init`
//! replaces it: plughost calls `init` once per fresh guest instance.

use std::any::Any;
use std::cell::RefCell;
use std::marker::PhantomData;

use crate::contract::{input_binding_world, output_binding_world, pubsub_world, secret_store_world, state_world};
use crate::{Component, Error, InputBinding, Metadata, OutputBinding, PubSub, SecretStore, StateStore};

thread_local! {
    static INSTANCE: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Implements the world's `Guest` traits for the component `T`.
pub struct Adapter<T>(PhantomData<T>);

fn init<T: Component>(metadata: Metadata) -> Result<(), Error> {
    let made = T::init(metadata)?;
    INSTANCE.with(|slot| *slot.borrow_mut() = Some(Box::new(made)));
    Ok(())
}

/// Runs `f` on the instance (an error if `init` has not made one).
fn with<T: Component, R>(f: impl FnOnce(&mut T) -> Result<R, Error>) -> Result<R, Error> {
    INSTANCE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let instance = slot
            .as_mut()
            .and_then(|any| any.downcast_mut::<T>())
            .ok_or_else(|| Error::Internal("component is not initialised: init was not called".to_owned()))?;
        f(instance)
    })
}

impl<T: Component> crate::contract::base::exports::plughost::components::lifecycle::Guest for Adapter<T> {
    fn init(metadata: Metadata) -> Result<(), Error> {
        init::<T>(metadata)
    }
    fn features() -> Vec<String> {
        with::<T, _>(|c| Ok(c.features())).unwrap_or_default()
    }
    fn ping() -> Result<(), Error> {
        with::<T, _>(|c| c.ping())
    }
}

use crate::bindings::{Event, InvokeRequest, InvokeResponse};
use crate::pubsub::{BulkEntry, FailedEntry, Message, PublishRequest};
use crate::state::{BulkItem, DeleteRequest, GetRequest, KeyError, Operation, SetRequest, StateItem};

impl<T: StateStore> state_world::exports::plughost::components::state::Guest for Adapter<T> {
    fn get(request: GetRequest) -> Result<Option<StateItem>, Error> {
        with::<T, _>(|c| c.get(request))
    }
    fn set(request: SetRequest) -> Result<(), Error> {
        with::<T, _>(|c| c.set(request))
    }
    fn delete(request: DeleteRequest) -> Result<(), Error> {
        with::<T, _>(|c| c.delete(request))
    }
    fn bulk_get(requests: Vec<GetRequest>) -> Result<Vec<BulkItem>, Error> {
        with::<T, _>(|c| c.bulk_get(requests))
    }
    fn bulk_set(requests: Vec<SetRequest>) -> Result<Vec<KeyError>, Error> {
        with::<T, _>(|c| c.bulk_set(requests))
    }
    fn bulk_delete(requests: Vec<DeleteRequest>) -> Result<Vec<KeyError>, Error> {
        with::<T, _>(|c| c.bulk_delete(requests))
    }
    fn transact(operations: Vec<Operation>, metadata: Metadata) -> Result<(), Error> {
        with::<T, _>(|c| c.transact(operations, metadata))
    }
}

impl<T: PubSub> pubsub_world::exports::plughost::components::pubsub::Guest for Adapter<T> {
    fn publish(request: PublishRequest) -> Result<(), Error> {
        with::<T, _>(|c| c.publish(request))
    }
    fn bulk_publish(topic: String, entries: Vec<BulkEntry>, metadata: Metadata) -> Result<Vec<FailedEntry>, Error> {
        with::<T, _>(|c| c.bulk_publish(topic, entries, metadata))
    }
    fn subscribe(topic: String, metadata: Metadata) -> Result<u64, Error> {
        with::<T, _>(|c| c.subscribe(topic, metadata))
    }
    fn pull(subscription: u64, max: u32) -> Result<Vec<Message>, Error> {
        with::<T, _>(|c| c.pull(subscription, max))
    }
    fn ack(subscription: u64, message_id: String, failure: Option<String>) -> Result<(), Error> {
        with::<T, _>(|c| c.ack(subscription, message_id, failure))
    }
    fn unsubscribe(subscription: u64) {
        let _ = with::<T, _>(|c| {
            c.unsubscribe(subscription);
            Ok(())
        });
    }
}

impl<T: InputBinding> input_binding_world::exports::plughost::components::input_binding::Guest for Adapter<T> {
    fn open() -> Result<u64, Error> {
        with::<T, _>(|c| c.open())
    }
    fn poll(reader: u64, max: u32) -> Result<Vec<Event>, Error> {
        with::<T, _>(|c| c.poll(reader, max))
    }
    fn answer(reader: u64, event_id: String, reply: Result<Vec<u8>, String>) -> Result<(), Error> {
        with::<T, _>(|c| c.answer(reader, event_id, reply))
    }
    fn close(reader: u64) {
        let _ = with::<T, _>(|c| {
            c.close(reader);
            Ok(())
        });
    }
}

impl<T: OutputBinding> output_binding_world::exports::plughost::components::output_binding::Guest for Adapter<T> {
    fn operations() -> Vec<String> {
        with::<T, _>(|c| Ok(c.operations())).unwrap_or_default()
    }
    fn invoke(request: InvokeRequest) -> Result<InvokeResponse, Error> {
        with::<T, _>(|c| c.invoke(request))
    }
}

impl<T: SecretStore> secret_store_world::exports::plughost::components::secret_store::Guest for Adapter<T> {
    fn get(key: String, metadata: Metadata) -> Result<Vec<(String, String)>, Error> {
        with::<T, _>(|c| c.get(key, metadata))
    }
    fn bulk_get(metadata: Metadata) -> Result<Vec<(String, Vec<(String, String)>)>, Error> {
        with::<T, _>(|c| c.bulk_get(metadata))
    }
}
