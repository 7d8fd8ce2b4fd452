//! [`WasmOutputBinding`]: an output binding in a WASM component (world
//! `output-binding-component`, `wit/bindings.wit`).

use std::sync::Arc;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::Result;
use crate::wasm::bindings::output_binding::exports::plughost::components::output_binding as wit;
use crate::wasm::instances::Instances;
use crate::wasm::{Exports, WasmComponent};
use crate::wasm::{from_wit, to_wit};

/// An [`OutputBinding`] backed by a WASM component.
pub struct WasmOutputBinding {
    component: Arc<WasmComponent>,
    instances: Arc<Instances<Exports>>,
}

impl WasmOutputBinding {
    /// The adapter of `component`'s kind.
    pub fn new(component: &Arc<WasmComponent>) -> Self {
        Self { component: component.clone(), instances: component.instances.clone() }
    }
}

#[async_trait::async_trait]
impl OutputBinding for WasmOutputBinding {
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

impl SharedLifecycle for WasmOutputBinding {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
