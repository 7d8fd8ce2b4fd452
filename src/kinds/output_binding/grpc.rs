//! [`GrpcOutputBinding`]: an output binding in another process, over Dapr's
//! `OutputBinding` service (spec A10).

use std::sync::Arc;

use super::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::Result;
use crate::pluggable::{ComponentChannel, GrpcLifecycle, Link, client, request};
use crate::proto::components as pb;

type Client = pb::output_binding_client::OutputBindingClient<ComponentChannel>;

/// An [`OutputBinding`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcOutputBinding {
    lifecycle: Arc<GrpcLifecycle>,
    link: Link,
}

impl GrpcOutputBinding {
    /// The output side of the component of `lifecycle` (which an input
    /// side may share).
    pub fn new(lifecycle: &Arc<GrpcLifecycle>) -> Self {
        Self { lifecycle: lifecycle.clone(), link: lifecycle.link().clone() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

#[async_trait::async_trait]
impl OutputBinding for GrpcOutputBinding {
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

impl SharedLifecycle for GrpcOutputBinding {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.lifecycle
    }
}
