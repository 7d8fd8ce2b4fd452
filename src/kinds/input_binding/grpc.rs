//! [`GrpcInputBinding`]: an input binding in another process, over Dapr's
//! `InputBinding` service (spec A10): one `Read` stream per reader, whose
//! responses are the events and whose requests are the answers. The stream
//! survives reconnections (see `grpc::stream`).

use futures::future::BoxFuture;
use tokio_stream::wrappers::ReceiverStream;

use super::{InputBinding, InputEvent};
use crate::grpc::pb::components as pb;
use crate::grpc::stream::{self, AckedStream};
use crate::grpc::{ComponentChannel, Link, client, hook, request};
use crate::kinds::{ComponentKind, Deliveries, Metadata, Reply, Result};

type Client = pb::input_binding_client::InputBindingClient<ComponentChannel>;

/// How many unanswered events one reader may hold.
const IN_FLIGHT: usize = 16;

/// An [`InputBinding`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcInputBinding {
    link: Link,
}

impl GrpcInputBinding {
    /// A binding over `link` (which an output side may share).
    pub fn new(link: Link) -> Self {
        Self { link }
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
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let metadata = self.link.take_settings(metadata)?;
        let max = self.max();
        let init = pb::InputBindingInitRequest {
            metadata: Some(pb::MetadataRequest { properties: metadata.into_iter().collect() }),
        };
        self.link.init(hook!(Client, ComponentKind::InputBinding, max, init, |_, _| Box::pin(async { Ok(()) }))).await
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

    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        stream::start(self.link.clone(), Reader { max: self.max() }, IN_FLIGHT).await
    }
}
