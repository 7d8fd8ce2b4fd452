//! [`GrpcInputBinding`]: an input binding in another process, over Dapr's
//! `InputBinding` service (spec A10): one `Read` stream per reader, whose
//! responses are the events and whose requests are the answers. The stream
//! survives reconnections (see `pluggable::stream`).

use futures::future::BoxFuture;
use std::sync::Arc;
use tokio_stream::wrappers::ReceiverStream;

use super::{InputBinding, InputEvent};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{Deliveries, Reply, Result};
use crate::pluggable::stream::{self, AckedStream};
use crate::pluggable::{ComponentChannel, GrpcLifecycle, Link, client};
use crate::proto::components as pb;

type Client = pb::input_binding_client::InputBindingClient<ComponentChannel>;

/// How many unanswered events one reader may hold.
const IN_FLIGHT: usize = 16;

/// An [`InputBinding`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcInputBinding {
    lifecycle: Arc<GrpcLifecycle>,
    link: Link,
}

impl GrpcInputBinding {
    /// The input side of the component of `lifecycle` (which an output
    /// side may share).
    pub fn new(lifecycle: &Arc<GrpcLifecycle>) -> Self {
        Self { lifecycle: lifecycle.clone(), link: lifecycle.link().clone() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }
}

struct Reader {
    max: usize,
}

impl AckedStream for Reader {
    type Ack = pb::ReadRequest;
    type Event = pb::ReadResponse;
    type Item = InputEvent;

    fn describe(&self) -> String {
        "input binding read stream".to_owned()
    }

    fn first(&self) -> Option<Self::Ack> {
        None // the host sends nothing until it answers the first event
    }

    fn open(
        &self,
        channel: ComponentChannel,
        acks: ReceiverStream<Self::Ack>,
    ) -> BoxFuture<'static, Result<tonic::Response<tonic::Streaming<Self::Event>>, tonic::Status>> {
        let max = self.max;
        Box::pin(async move { client!(Client, max, channel).read(acks).await })
    }

    fn item(&self, event: Self::Event) -> (String, InputEvent) {
        let item = InputEvent {
            id: event.message_id.clone(),
            data: event.data,
            metadata: event.metadata.into_iter().collect(),
            content_type: Some(event.content_type).filter(|c| !c.is_empty()),
        };
        (event.message_id, item)
    }

    fn answer(&self, id: String, reply: Reply) -> Self::Ack {
        match reply {
            Ok(data) => pb::ReadRequest { response_data: data, message_id: id, response_error: None },
            Err(message) => pb::ReadRequest {
                response_data: Vec::new(),
                message_id: id,
                response_error: Some(pb::AckResponseError { message }),
            },
        }
    }
}

#[async_trait::async_trait]
impl InputBinding for GrpcInputBinding {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        stream::start(self.link.clone(), Reader { max: self.max() }, IN_FLIGHT).await
    }
}

impl SharedLifecycle for GrpcInputBinding {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.lifecycle
    }
}
