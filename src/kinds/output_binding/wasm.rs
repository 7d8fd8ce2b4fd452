//! [`WasmOutputBinding`]: an output binding in a WASM component (world
//! `output-binding-component`, `wit/bindings.wit`).

use std::sync::Arc;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::{Metadata, Result};
use crate::wasm::bindings::output_binding::exports::plughost::components::output_binding as wit;
use crate::wasm::bindings::output_binding::{OutputBindingComponent, OutputBindingComponentPre};
use crate::wasm::instances::Instances;
use crate::wasm::{LoadedComponent, from_wit, to_wit};

/// An [`OutputBinding`] backed by a WASM component.
pub struct WasmOutputBinding {
    instances: Instances<OutputBindingComponent>,
}

crate::wasm_guest!(OutputBindingComponent, OutputBindingComponentPre);

impl WasmOutputBinding {
    /// An adapter for the component `name`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self { instances: Instances::new(loaded, name) }
    }
}

#[async_trait::async_trait]
impl OutputBinding for WasmOutputBinding {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.instances.init(metadata).await
    }

    async fn operations(&self) -> Result<Vec<String>> {
        self.instances
            .call("operations", |g, s| {
                Box::pin(async move { g.plughost_components_output_binding().call_operations(s).await.map(Ok) })
            })
            .await
    }

    async fn ping(&self) -> Result<()> {
        self.instances.ping().await
    }

    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        let request = wit::InvokeRequest {
            operation: request.operation,
            data: request.data,
            metadata: to_wit(&request.metadata),
        };
        let response = self
            .instances
            .call("invoke", move |g, s| {
                Box::pin(async move { g.plughost_components_output_binding().call_invoke(s, &request).await })
            })
            .await?;
        Ok(InvokeResponse {
            data: response.data,
            metadata: from_wit(response.metadata),
            content_type: response.content_type,
        })
    }
}
