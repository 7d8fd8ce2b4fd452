//! [`WasmInputBinding`]: an input binding in a WASM component (world
//! `input-binding-component`, `wit/bindings.wit`).
//!
//! Pulled like WASM pub/sub: a task per reader polls the guest for due
//! events every `wasm.pollInterval`, hands each to the consumer and returns
//! the consumer's reply (or error) to the guest with `answer`.

use std::sync::Arc;

use super::{InputBinding, InputEvent};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{Deliveries, Delivery, Result};
use crate::wasm::from_wit;
use crate::wasm::instances::{Instances, spawn_until_closed};
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

async fn open(instances: &Instances<Exports>) -> Result<u64> {
    instances.call("open", |g, s| Box::pin(g.plughost_components_input_binding().call_open(s))).await
}

async fn pump(
    instances: Arc<Instances<Exports>>,
    mut reader: u64,
    tx: tokio::sync::mpsc::Sender<Delivery<InputEvent>>,
) {
    let poll = instances.settings().map_or(std::time::Duration::from_millis(20), |s| s.poll_interval);
    'reading: loop {
        let events = match instances
            .call_internal("poll", move |g, s| {
                Box::pin(g.plughost_components_input_binding().call_poll(s, reader, BATCH))
            })
            .await
        {
            Ok(events) => events,
            Err(e) => {
                tracing::warn!(component = instances.name(), "poll failed ({e}); reopening the reader");
                if let Ok(reopened) = open(&instances).await {
                    reader = reopened;
                }
                Vec::new()
            }
        };
        if events.is_empty() {
            tokio::select! {
                () = tokio::time::sleep(poll) => continue,
                () = tx.closed() => break,
            }
        }
        for event in events {
            let id = event.id.clone();
            let (delivery, answer) = Delivery::new(InputEvent {
                id: event.id,
                data: event.data,
                metadata: from_wit(event.metadata),
                content_type: event.content_type,
            });
            if tx.send(delivery).await.is_err() {
                break 'reading;
            }
            let instances = instances.clone();
            tokio::spawn(async move {
                let reply =
                    answer.await.unwrap_or_else(|_| Err("dropped by the consumer without an answer".to_owned()));
                let answered = instances
                    .call_internal("answer", move |g, s| {
                        Box::pin(async move {
                            g.plughost_components_input_binding()
                                .call_answer(s, reader, &id, reply.as_deref().map_err(String::as_str))
                                .await
                        })
                    })
                    .await;
                if let Err(e) = answered {
                    tracing::warn!(component = instances.name(), "answer failed: {e}");
                }
            });
        }
    }
    let _ = instances
        .call_internal("close", move |g, s| {
            Box::pin(async move { g.plughost_components_input_binding().call_close(s, reader).await.map(Ok) })
        })
        .await;
}

#[async_trait::async_trait]
impl InputBinding for WasmInputBinding {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        let reader = open(&self.instances).await?;
        let (tx, deliveries) = Deliveries::channel(BATCH as usize);
        spawn_until_closed(&self.component.closing, pump(self.instances.clone(), reader, tx));
        Ok(deliveries)
    }
}

impl SharedLifecycle for WasmInputBinding {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.component
    }
}
