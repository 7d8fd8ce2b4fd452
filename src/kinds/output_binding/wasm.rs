//! [`WasmOutputBinding`]: an output binding in a WASM component (world
//! `output-binding-component`, `wit/bindings.wit`).

use std::sync::Arc;

use futures::future::BoxFuture;
use wasmtime::Store;
use wasmtime::component::InstancePre;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::{Metadata, Result};
use crate::wasm::bindings::WitError;
use crate::wasm::bindings::output_binding::exports::plughost::components::output_binding as wit;
use crate::wasm::bindings::output_binding::{OutputBindingComponent, OutputBindingComponentPre};
use crate::wasm::instances::{Guest, Instances};
use crate::wasm::{HostState, LoadedComponent, from_wit, to_wit};

/// An [`OutputBinding`] backed by a WASM component.
pub struct WasmOutputBinding {
    instances: Instances<OutputBindingComponent>,
}

impl Guest for OutputBindingComponent {
    type Pre = OutputBindingComponentPre<HostState>;

    fn pre(pre: &InstancePre<HostState>) -> wasmtime::Result<Self::Pre> {
        OutputBindingComponentPre::new(pre.clone())
    }

    fn instantiate<'a>(pre: &'a Self::Pre, store: &'a mut Store<HostState>) -> BoxFuture<'a, wasmtime::Result<Self>> {
        Box::pin(pre.instantiate_async(store))
    }

    fn init<'a>(
        &'a self,
        store: &'a mut Store<HostState>,
        metadata: &'a Vec<(String, String)>,
    ) -> BoxFuture<'a, wasmtime::Result<std::result::Result<(), WitError>>> {
        Box::pin(self.plughost_components_lifecycle().call_init(store, metadata))
    }
}

impl WasmOutputBinding {
    /// An adapter for the component `name`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self { instances: Instances::new(loaded, name) }
    }

    pub(crate) fn check(pre: &InstancePre<HostState>) -> wasmtime::Result<()> {
        OutputBindingComponent::pre(pre).map(|_| ())
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
        self.instances.call("ping", |g, s| Box::pin(g.plughost_components_lifecycle().call_ping(s))).await
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
