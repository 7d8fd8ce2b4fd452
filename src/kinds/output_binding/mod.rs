//! The `output binding` kind: something the app invokes operations on, shaped
//! after Dapr's `dapr.proto.components.v1.OutputBinding`.

mod grpc;
mod localstorage;
mod wasm;

use super::{Metadata, Result};
use crate::component::Lifecycle;

pub use grpc::GrpcOutputBinding;
pub use localstorage::LocalStorageBinding;
pub use wasm::WasmOutputBinding;

/// One invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeRequest {
    /// Operation name, one of [`OutputBinding::operations`].
    pub operation: String,
    /// Payload.
    pub data: Vec<u8>,
    /// Per-request metadata (e.g. `fileName` for local storage).
    pub metadata: Metadata,
}

impl InvokeRequest {
    /// `operation` with `data` and no metadata.
    pub fn new(operation: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        Self { operation: operation.into(), data: data.into(), metadata: Metadata::new() }
    }

    /// Adds one metadata entry.
    pub fn with(mut self, key: &str, value: &str) -> Self {
        self.metadata.insert(key.to_owned(), value.to_owned());
        self
    }
}

/// The result of an invocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvokeResponse {
    /// Payload, possibly empty.
    pub data: Vec<u8>,
    /// Response metadata.
    pub metadata: Metadata,
    /// Content type of `data`, if known.
    pub content_type: Option<String>,
}

/// An output binding, however it is hosted.
#[async_trait::async_trait]
pub trait OutputBinding: Lifecycle {
    /// Runs one operation. An operation not among its
    /// [`features`](Lifecycle::features) (Dapr's `ListOperations`) is
    /// `NotSupported`.
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse>;
}
