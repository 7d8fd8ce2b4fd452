//! [`WasmStateStore`]: a state store in a WASM component (world
//! `state-component`, `wit/state.wit`).

use std::sync::Arc;

use super::{
    BulkStateItem, Concurrency, Consistency, DeleteRequest, GetRequest, SetRequest, StateItem, StateOptions,
    StateStore, TransactionOperation,
};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{ComponentError, Metadata, Result};
use crate::wasm::bindings::state::exports::plughost::components::state as wit;
use crate::wasm::instances::Instances;
use crate::wasm::{Exports, WasmComponent};
use crate::wasm::{from_wit, to_wit};

/// A [`StateStore`] backed by a WASM component's instance(s); see
/// [`crate::wasm::instances`] for how calls are isolated.
pub struct WasmStateStore {
    component: Arc<WasmComponent>,
    instances: Arc<Instances<Exports>>,
}

impl WasmStateStore {
    /// The adapter of `component`'s kind.
    pub fn new(component: &Arc<WasmComponent>) -> Self {
        Self { component: component.clone(), instances: component.instances.clone() }
    }
}

fn consistency(c: Consistency) -> wit::Consistency {
    match c {
        Consistency::Unspecified => wit::Consistency::Unspecified,
        Consistency::Eventual => wit::Consistency::Eventual,
        Consistency::Strong => wit::Consistency::Strong,
    }
}

fn options(o: StateOptions) -> wit::StateOptions {
    wit::StateOptions {
        concurrency: match o.concurrency {
            Concurrency::Unspecified => wit::Concurrency::Unspecified,
            Concurrency::FirstWrite => wit::Concurrency::FirstWrite,
            Concurrency::LastWrite => wit::Concurrency::LastWrite,
        },
        consistency: consistency(o.consistency),
    }
}

fn get_request(r: GetRequest) -> wit::GetRequest {
    wit::GetRequest { key: r.key, metadata: to_wit(&r.metadata), consistency: consistency(r.consistency) }
}

fn set_request(r: SetRequest) -> wit::SetRequest {
    wit::SetRequest {
        key: r.key,
        value: r.value,
        etag: r.etag,
        metadata: to_wit(&r.metadata),
        options: options(r.options),
        content_type: r.content_type,
    }
}

fn delete_request(r: DeleteRequest) -> wit::DeleteRequest {
    wit::DeleteRequest { key: r.key, etag: r.etag, metadata: to_wit(&r.metadata), options: options(r.options) }
}

fn item(i: wit::StateItem) -> StateItem {
    StateItem { data: i.data, etag: i.etag, metadata: from_wit(i.metadata), content_type: i.content_type }
}

fn bulk_result(failed: Vec<wit::KeyError>) -> Result<()> {
    if failed.is_empty() {
        Ok(())
    } else {
        Err(ComponentError::Bulk(failed.into_iter().map(|f| (f.key, f.error.into())).collect()))
    }
}

#[async_trait::async_trait]
impl StateStore for WasmStateStore {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        let request = get_request(request);
        let found = self
            .instances
            .call("get", move |g, s| Box::pin(async move { g.plughost_components_state().call_get(s, &request).await }))
            .await?;
        Ok(found.map(item))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        let request = set_request(request);
        self.instances
            .call("set", move |g, s| Box::pin(async move { g.plughost_components_state().call_set(s, &request).await }))
            .await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        let request = delete_request(request);
        self.instances
            .call("delete", move |g, s| {
                Box::pin(async move { g.plughost_components_state().call_delete(s, &request).await })
            })
            .await
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        let requests: Vec<_> = requests.into_iter().map(get_request).collect();
        let items = self
            .instances
            .call("bulk-get", move |g, s| {
                Box::pin(async move { g.plughost_components_state().call_bulk_get(s, &requests).await })
            })
            .await?;
        Ok(items.into_iter().map(|b| BulkStateItem { key: b.key, item: b.item.map(item), error: b.error }).collect())
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let requests: Vec<_> = requests.into_iter().map(set_request).collect();
        let failed = self
            .instances
            .call("bulk-set", move |g, s| {
                Box::pin(async move { g.plughost_components_state().call_bulk_set(s, &requests).await })
            })
            .await?;
        bulk_result(failed)
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let requests: Vec<_> = requests.into_iter().map(delete_request).collect();
        let failed = self
            .instances
            .call("bulk-delete", move |g, s| {
                Box::pin(async move { g.plughost_components_state().call_bulk_delete(s, &requests).await })
            })
            .await?;
        bulk_result(failed)
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()> {
        let operations: Vec<_> = operations
            .into_iter()
            .map(|op| match op {
                TransactionOperation::Set(r) => wit::Operation::Set(set_request(r)),
                TransactionOperation::Delete(r) => wit::Operation::Delete(delete_request(r)),
            })
            .collect();
        let metadata = to_wit(&metadata);
        self.instances
            .call("transact", move |g, s| {
                Box::pin(async move { g.plughost_components_state().call_transact(s, &operations, &metadata).await })
            })
            .await
    }
}

impl SharedLifecycle for WasmStateStore {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
