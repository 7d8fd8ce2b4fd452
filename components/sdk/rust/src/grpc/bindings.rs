//! `InputBinding` and `OutputBinding` over the crate's binding traits.

use std::pin::Pin;

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use super::instances::Instances;
use super::pb::components as c;
use super::stream::{self, Pump};
use crate::bindings::InvokeRequest;
use crate::{Error, InputBinding, OutputBinding};

/// The output binding service: one `T` per component instance.
pub struct Output<T> {
    instances: Instances<T>,
}

impl<T> Default for Output<T> {
    fn default() -> Self {
        Self { instances: Instances::default() }
    }
}

#[tonic::async_trait]
impl<T: OutputBinding> c::output_binding_server::OutputBinding for Output<T> {
    async fn init(
        &self,
        request: Request<c::OutputBindingInitRequest>,
    ) -> Result<Response<c::OutputBindingInitResponse>, Status> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata)?;
        Ok(Response::new(c::OutputBindingInitResponse {}))
    }

    async fn list_operations(
        &self,
        request: Request<c::ListOperationsRequest>,
    ) -> Result<Response<c::ListOperationsResponse>, Status> {
        let operations = self.instances.get(&request)?.call("operations", |b| Ok(b.operations()))?;
        Ok(Response::new(c::ListOperationsResponse { operations }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?.call("ping", T::ping)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn invoke(&self, request: Request<c::InvokeRequest>) -> Result<Response<c::InvokeResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let r = request.into_inner();
        let invoke = InvokeRequest { operation: r.operation, data: r.data, metadata: r.metadata.into_iter().collect() };
        let response = instance.call("invoke", |b| b.invoke(invoke))?;
        Ok(Response::new(c::InvokeResponse {
            data: response.data,
            metadata: response.metadata.into_iter().collect(),
            content_type: response.content_type.unwrap_or_default(),
        }))
    }
}

/// The input binding service: one `T` per component instance.
pub struct Input<T> {
    instances: Instances<T>,
}

impl<T> Default for Input<T> {
    fn default() -> Self {
        Self { instances: Instances::default() }
    }
}

struct Reader(u64);

impl<T: InputBinding> Pump<T> for Reader {
    type In = c::ReadRequest;
    type Out = c::ReadResponse;

    fn pull(&self, binding: &mut T, max: u32) -> Result<Vec<Self::Out>, Error> {
        Ok(binding
            .poll(self.0, max)?
            .into_iter()
            .map(|e| c::ReadResponse {
                data: e.data,
                metadata: e.metadata.into_iter().collect(),
                content_type: e.content_type.unwrap_or_default(),
                message_id: e.id,
            })
            .collect())
    }

    fn answer(&self, binding: &mut T, answer: Self::In) -> Option<Result<(), Error>> {
        if answer.message_id.is_empty() {
            return None;
        }
        let reply = match answer.response_error {
            Some(error) => Err(error.message),
            None => Ok(answer.response_data),
        };
        Some(binding.answer(self.0, answer.message_id, reply))
    }

    fn end(&self, binding: &mut T) {
        binding.close(self.0);
    }
}

#[tonic::async_trait]
impl<T: InputBinding> c::input_binding_server::InputBinding for Input<T> {
    async fn init(
        &self,
        request: Request<c::InputBindingInitRequest>,
    ) -> Result<Response<c::InputBindingInitResponse>, Status> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata)?;
        Ok(Response::new(c::InputBindingInitResponse {}))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?.call("ping", T::ping)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn read(
        &self,
        request: Request<Streaming<c::ReadRequest>>,
    ) -> Result<Response<Pin<Box<dyn Stream<Item = Result<c::ReadResponse, Status>> + Send>>>, Status> {
        let instance = self.instances.get(&request)?;
        let reader = instance.call("open", T::open)?;
        Ok(Response::new(Box::pin(stream::start(instance, request.into_inner(), Reader(reader)))))
    }
}
