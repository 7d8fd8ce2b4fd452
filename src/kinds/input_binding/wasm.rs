//! [`WasmInputBinding`]: an input binding in a WASM component (world
//! `input-binding-component`, `wit/bindings.wit`).
//!
//! Pulled like WASM pub/sub, by the same loop ([`crate::wasm::pull`]): a task
//! per reader polls the guest for due events every `wasm.pollInterval`, hands
//! each to the consumer and returns the consumer's reply (or error) to the
//! guest with `answer`.

use std::sync::Arc;

use super::{InputBinding, InputEvent};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{Deliveries, Reply, Result};
use crate::wasm::from_wit;
use crate::wasm::instances::Instances;
use crate::wasm::pull::PullSource;
use crate::wasm::{Exports, WasmComponent};

/// Events requested per poll.
const BATCH: u32 = 16;

/// An [`InputBinding`] backed by a WASM component.
pub struct WasmInputBinding {
    component: Arc<WasmComponent>,
    instances: Arc<Instances<Exports>>,
}

impl WasmInputBinding {
    /// The adapter of `component`'s kind.
    pub fn new(component: &Arc<WasmComponent>) -> Self {
        Self { component: component.clone(), instances: component.instances.clone() }
    }
}

/// One reader, pulled by [`crate::wasm::pull`] up to [`BATCH`] events at a
/// time.
struct Reader {
    instances: Arc<Instances<Exports>>,
}

impl PullSource for Reader {
    type Guest = Exports;
    type Item = InputEvent;
    const BATCH: u32 = BATCH;

    fn instances(&self) -> &Instances<Exports> {
        &self.instances
    }

    fn describe(&self) -> String {
        "reader".to_owned()
    }

    async fn open(&self) -> Result<u64> {
        self.instances.call("open", |g, s| Box::pin(g.plughost_components_input_binding().call_open(s))).await
    }

    async fn pull(&self, reader: u64, max: u32) -> Result<Vec<(String, InputEvent)>> {
        let events = self
            .instances
            .call_internal("poll", move |g, s| {
                Box::pin(g.plughost_components_input_binding().call_poll(s, reader, max))
            })
            .await?;
        Ok(events
            .into_iter()
            .map(|e| {
                let event = InputEvent {
                    id: e.id.clone(),
                    data: e.data,
                    metadata: from_wit(e.metadata),
                    content_type: e.content_type,
                };
                (e.id, event)
            })
            .collect())
    }

    async fn answer(&self, reader: u64, id: String, reply: Reply) -> Result<()> {
        self.instances
            .call_internal("answer", move |g, s| {
                Box::pin(async move {
                    g.plughost_components_input_binding()
                        .call_answer(s, reader, &id, reply.as_deref().map_err(String::as_str))
                        .await
                })
            })
            .await
    }

    async fn close(&self, reader: u64) {
        let _ = self
            .instances
            .call_internal("close", move |g, s| {
                Box::pin(async move { g.plughost_components_input_binding().call_close(s, reader).await.map(Ok) })
            })
            .await;
    }
}

#[async_trait::async_trait]
impl InputBinding for WasmInputBinding {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        let reader = Reader { instances: self.instances.clone() };
        crate::wasm::pull::start(reader, BATCH as usize, &self.component.closing).await
    }
}

impl SharedLifecycle for WasmInputBinding {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
