//! Bindings: the WIT `input-binding` and `output-binding` interfaces.

use crate::{Component, Error};

pub use crate::contract::input_binding_world::exports::plughost::components::input_binding::Event;
pub use crate::contract::output_binding_world::exports::plughost::components::output_binding::{
    InvokeRequest, InvokeResponse,
};

/// Something the app invokes operations on.
pub trait OutputBinding: Component {
    /// The operations [`invoke`](OutputBinding::invoke) accepts.
    fn operations(&self) -> Vec<String>;

    /// Runs one operation.
    fn invoke(&mut self, request: InvokeRequest) -> Result<InvokeResponse, Error>;
}

/// A source of events the app answers, **pulled** by the host: it opens a
/// reader, polls it for events and answers each one. In gRPC mode the SDK
/// turns this into Dapr's `Read` stream, polling every 20 ms.
pub trait InputBinding: Component {
    /// Opens a reader; returns its id.
    fn open(&mut self) -> Result<u64, Error>;

    /// Up to `max` events that are due now (may be none).
    fn poll(&mut self, reader: u64, max: u32) -> Result<Vec<Event>, Error>;

    /// The app's answer to an event: its reply bytes, or why it failed.
    fn answer(&mut self, reader: u64, event_id: String, reply: Result<Vec<u8>, String>) -> Result<(), Error>;

    /// Closes a reader.
    fn close(&mut self, reader: u64);
}
