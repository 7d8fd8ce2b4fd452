//! [`GrpcOutputBinding`]: an output binding in another process, over Dapr's
//! `OutputBinding` service (spec A10).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::grpc::pb::components as pb;
use crate::grpc::{ComponentChannel, Link, client, hook, request};
use crate::kinds::{ComponentKind, Metadata, Result};

type Client = pb::output_binding_client::OutputBindingClient<ComponentChannel>;

/// An [`OutputBinding`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcOutputBinding {
    link: Link,
    operations: Arc<Mutex<Option<Vec<String>>>>,
}

impl GrpcOutputBinding {
    /// A binding over `link` (which an input side may share).
    pub fn new(link: Link) -> Self {
        Self { link, operations: Arc::default() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

async fn ask_operations(
    channel: ComponentChannel,
    timeout: Duration,
    max: usize,
) -> Result<Vec<String>, tonic::Status> {
    match client!(Client, max, channel).list_operations(request(pb::ListOperationsRequest {}, timeout)).await {
        Ok(response) => Ok(response.into_inner().operations),
        Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
        Err(status) => Err(status),
    }
}

#[async_trait::async_trait]
impl OutputBinding for GrpcOutputBinding {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let metadata = self.link.take_settings(metadata)?;
        let max = self.max();
        let init = pb::OutputBindingInitRequest {
            metadata: Some(pb::MetadataRequest { properties: metadata.into_iter().collect() }),
        };
        let operations = self.operations.clone();
        self.link
            .init(hook!(Client, ComponentKind::OutputBinding, max, init, move |channel, timeout| {
                let operations = operations.clone();
                Box::pin(async move {
                    let list = ask_operations(channel, timeout, max).await?;
                    *operations.lock().expect("operations lock") = Some(list);
                    Ok(())
                })
            }))
            .await
    }

    async fn operations(&self) -> Result<Vec<String>> {
        let max = self.max();
        let list = self
            .link
            .call(None, |ch, t| async move { ask_operations(ch, t, max).await.map(tonic::Response::new) })
            .await?;
        *self.operations.lock().expect("operations lock") = Some(list.clone());
        Ok(list)
    }

    async fn ping(&self) -> Result<()> {
        let max = self.max();
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).ping(request(pb::PingRequest {}, t)).await })
            .await?;
        Ok(())
    }

    async fn close(&self) -> Result<()> {
        self.link.close();
        Ok(())
    }

    async fn invoke(&self, r: InvokeRequest) -> Result<InvokeResponse> {
        let max = self.max();
        let message =
            pb::InvokeRequest { data: r.data, metadata: r.metadata.into_iter().collect(), operation: r.operation };
        let answer = self
            .link
            .call(None, |ch, t| async move { client!(Client, max, ch).invoke(request(message, t)).await })
            .await?;
        Ok(InvokeResponse {
            data: answer.data,
            metadata: answer.metadata.into_iter().collect(),
            content_type: Some(answer.content_type).filter(|c| !c.is_empty()),
        })
    }
}
