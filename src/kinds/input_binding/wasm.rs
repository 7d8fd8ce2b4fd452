//! [`WasmInputBinding`]: an input binding in a WASM component (world
//! `input-binding-component`, `wit/bindings.wit`).
//!
//! Pulled like WASM pub/sub: a task per reader polls the guest for due
//! events every `wasm.pollInterval`, hands each to the consumer and returns
//! the consumer's reply (or error) to the guest with `answer`.

use std::sync::Arc;

use super::{InputBinding, InputEvent};
use crate::kinds::{Deliveries, Delivery, Metadata, Result};
use crate::wasm::bindings::input_binding::{InputBindingComponent, InputBindingComponentPre};
use crate::wasm::instances::{Instances, spawn_until_closed};
use crate::wasm::{LoadedComponent, from_wit};

/// Events requested per poll.
const BATCH: u32 = 16;

/// An [`InputBinding`] backed by a WASM component.
pub struct WasmInputBinding {
    instances: Arc<Instances<InputBindingComponent>>,
    /// Set by `close`: every reader pump ends, and its stream with it.
    closing: tokio::sync::watch::Sender<bool>,
}

crate::wasm_guest!(InputBindingComponent, InputBindingComponentPre);

impl WasmInputBinding {
    /// An adapter for the component `name`, instantiated at `init`.
    pub fn new(loaded: Arc<LoadedComponent>, name: &str) -> Self {
        Self { instances: Arc::new(Instances::new(loaded, name)), closing: tokio::sync::watch::Sender::new(false) }
    }
}

async fn open(instances: &Instances<InputBindingComponent>) -> Result<u64> {
    instances.call("open", |g, s| Box::pin(g.plughost_components_input_binding().call_open(s))).await
}

async fn pump(
    instances: Arc<Instances<InputBindingComponent>>,
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
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.instances.init(metadata).await
    }

    async fn ping(&self) -> Result<()> {
        self.instances.ping().await
    }

    async fn close(&self) -> Result<()> {
        self.closing.send_replace(true);
        Ok(())
    }

    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        let reader = open(&self.instances).await?;
        let (tx, deliveries) = Deliveries::channel(BATCH as usize);
        spawn_until_closed(&self.closing, pump(self.instances.clone(), reader, tx));
        Ok(deliveries)
    }
}
