//! The `input binding` kind: a source of events the app answers, shaped after
//! Dapr's `dapr.proto.components.v1.InputBinding` (`Read` stream with acks).

mod cron;
mod grpc;
mod wasm;

use super::{Deliveries, Metadata, Result};
use crate::component::Lifecycle;

pub use cron::CronBinding;
pub use grpc::GrpcInputBinding;
pub use wasm::WasmInputBinding;

/// One event from the source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputEvent {
    /// Source-assigned id, echoed in the answer.
    pub id: String,
    /// Payload.
    pub data: Vec<u8>,
    /// Event metadata.
    pub metadata: Metadata,
    /// Content type of `data`, if known.
    pub content_type: Option<String>,
}

/// An input binding, however it is hosted.
#[async_trait::async_trait]
pub trait InputBinding: Lifecycle {
    /// Starts reading. Each event must be answered: `ack_with(reply)` sends
    /// the reply bytes back to the source, `nack(reason)` reports failure
    /// (the source decides whether to send it again). Dropping the stream
    /// stops reading.
    async fn read(&self) -> Result<Deliveries<InputEvent>>;
}
