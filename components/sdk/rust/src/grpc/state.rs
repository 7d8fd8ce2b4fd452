//! `StateStore` + `TransactionalStateStore` over a [`crate::StateStore`].

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use super::instances::{Instances, status};
use super::pb::components as c;
use crate::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, Operation, SetRequest, StateItem, StateOptions,
};
use crate::{Error, Metadata, StateStore};

/// The service: one `T` per component instance.
pub struct State<T> {
    instances: Instances<T>,
}

impl<T> Default for State<T> {
    fn default() -> Self {
        Self { instances: Instances::default() }
    }
}

fn pairs(map: HashMap<String, String>) -> Metadata {
    map.into_iter().collect()
}

fn consistency(value: i32) -> Consistency {
    match c::state_options::StateConsistency::try_from(value) {
        Ok(c::state_options::StateConsistency::ConsistencyEventual) => Consistency::Eventual,
        Ok(c::state_options::StateConsistency::ConsistencyStrong) => Consistency::Strong,
        _ => Consistency::Unspecified,
    }
}

fn options(options: Option<c::StateOptions>) -> StateOptions {
    let options = options.unwrap_or_default();
    let concurrency = match c::state_options::StateConcurrency::try_from(options.concurrency) {
        Ok(c::state_options::StateConcurrency::ConcurrencyFirstWrite) => Concurrency::FirstWrite,
        Ok(c::state_options::StateConcurrency::ConcurrencyLastWrite) => Concurrency::LastWrite,
        _ => Concurrency::Unspecified,
    };
    StateOptions { concurrency, consistency: consistency(options.consistency) }
}

fn get_request(r: c::GetRequest) -> GetRequest {
    GetRequest { key: r.key, metadata: pairs(r.metadata), consistency: consistency(r.consistency) }
}

fn set_request(r: c::SetRequest) -> SetRequest {
    SetRequest {
        key: r.key,
        value: r.value,
        etag: r.etag.map(|e| e.value),
        metadata: pairs(r.metadata),
        options: options(r.options),
        content_type: Some(r.content_type).filter(|c| !c.is_empty()),
    }
}

fn delete_request(r: c::DeleteRequest) -> DeleteRequest {
    DeleteRequest {
        key: r.key,
        etag: r.etag.map(|e| e.value),
        metadata: pairs(r.metadata),
        options: options(r.options),
    }
}

fn get_response(item: Option<StateItem>) -> c::GetResponse {
    match item {
        // A missing key: OK, empty data, no etag (spec A8).
        None => c::GetResponse::default(),
        Some(item) => c::GetResponse {
            data: item.data,
            etag: item.etag.map(|value| c::Etag { value }),
            metadata: item.metadata.into_iter().collect(),
            content_type: item.content_type.unwrap_or_default(),
        },
    }
}

/// Dapr's `BulkSet` / `BulkDelete` answer has room for one error: the first
/// failed key's, with the ETag conventions (daprd applies them to both).
fn bulk_status(failed: Vec<crate::state::KeyError>) -> Result<(), Status> {
    match failed.into_iter().next() {
        None => Ok(()),
        Some(failed) => Err(status(failed.error)),
    }
}

#[tonic::async_trait]
impl<T: StateStore> c::state_store_server::StateStore for State<T> {
    async fn init(&self, request: Request<c::InitRequest>) -> Result<Response<c::InitResponse>, Status> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata)?;
        Ok(Response::new(c::InitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        let features = self.instances.get(&request)?.call("features", |s| Ok(s.features()))?;
        Ok(Response::new(c::FeaturesResponse { features }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?.call("ping", T::ping)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn get(&self, request: Request<c::GetRequest>) -> Result<Response<c::GetResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let get = get_request(request.into_inner());
        let item = instance.call("get", |s| s.get(get))?;
        Ok(Response::new(get_response(item)))
    }

    async fn set(&self, request: Request<c::SetRequest>) -> Result<Response<c::SetResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let set = set_request(request.into_inner());
        instance.call("set", |s| s.set(set))?;
        Ok(Response::new(c::SetResponse {}))
    }

    async fn delete(&self, request: Request<c::DeleteRequest>) -> Result<Response<c::DeleteResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let delete = delete_request(request.into_inner());
        instance.call("delete", |s| s.delete(delete))?;
        Ok(Response::new(c::DeleteResponse {}))
    }

    async fn bulk_get(&self, request: Request<c::BulkGetRequest>) -> Result<Response<c::BulkGetResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let gets = request.into_inner().items.into_iter().map(get_request).collect();
        let found = instance.call("bulk_get", |s| s.bulk_get(gets))?;
        let items = found
            .into_iter()
            .map(|found| {
                let got = get_response(found.item);
                c::BulkStateItem {
                    key: found.key,
                    data: got.data,
                    etag: got.etag,
                    error: found.error.unwrap_or_default(),
                    metadata: got.metadata,
                    content_type: got.content_type,
                }
            })
            .collect();
        Ok(Response::new(c::BulkGetResponse { items }))
    }

    async fn bulk_set(&self, request: Request<c::BulkSetRequest>) -> Result<Response<c::BulkSetResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let sets = request.into_inner().items.into_iter().map(set_request).collect();
        bulk_status(instance.call("bulk_set", |s| s.bulk_set(sets))?)?;
        Ok(Response::new(c::BulkSetResponse {}))
    }

    async fn bulk_delete(
        &self,
        request: Request<c::BulkDeleteRequest>,
    ) -> Result<Response<c::BulkDeleteResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let deletes = request.into_inner().items.into_iter().map(delete_request).collect();
        bulk_status(instance.call("bulk_delete", |s| s.bulk_delete(deletes))?)?;
        Ok(Response::new(c::BulkDeleteResponse {}))
    }
}

#[tonic::async_trait]
impl<T: StateStore> c::transactional_state_store_server::TransactionalStateStore for State<T> {
    async fn transact(
        &self,
        request: Request<c::TransactionalStateRequest>,
    ) -> Result<Response<c::TransactionalStateResponse>, Status> {
        use c::transactional_state_operation::Request as Op;
        let instance = self.instances.get(&request)?;
        let request = request.into_inner();
        let mut operations = Vec::with_capacity(request.operations.len());
        for (i, operation) in request.operations.into_iter().enumerate() {
            operations.push(match operation.request {
                Some(Op::Set(set)) => Operation::Set(set_request(set)),
                Some(Op::Delete(delete)) => Operation::Delete(delete_request(delete)),
                None => {
                    return Err(status(Error::InvalidArgument(format!(
                        "transaction operation {i} has neither a set nor a delete"
                    ))));
                }
            });
        }
        let metadata = pairs(request.metadata);
        instance.call("transact", |s| s.transact(operations, metadata))?;
        Ok(Response::new(c::TransactionalStateResponse {}))
    }
}
