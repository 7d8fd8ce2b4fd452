//! `StateStore` + `TransactionalStateStore` over `state-logic`: the very code
//! the WASM state guest runs, so the component behaves the same either way.
//! `TransactionalStoreMultiMaxSize` is deliberately not served: the host must
//! tolerate its `UNIMPLEMENTED`, as it must for SDK-built components.

use std::collections::HashMap;
use std::sync::Mutex;

use state_logic::{Delete, Error, Item, Op, Set, Store};
use tonic::{Request, Response, Status};

use crate::common::{Instances, etag_invalid, etag_mismatch};
use crate::pb::components as c;

/// The service: one [`Store`] per component instance.
#[derive(Default)]
pub struct State {
    instances: Instances<Mutex<Store>>,
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

fn status(error: Error) -> Status {
    match error {
        Error::EtagMismatch(key) => etag_mismatch(format!("etag mismatch for key `{key}`")),
        Error::EtagInvalid(key) => etag_invalid(format!("invalid etag for key `{key}`")),
        Error::InvalidArgument(message) => Status::invalid_argument(message),
    }
}

fn pairs(map: HashMap<String, String>) -> Vec<(String, String)> {
    map.into_iter().collect()
}

fn first_write(options: Option<c::StateOptions>) -> bool {
    options.is_some_and(|o| o.concurrency == c::state_options::StateConcurrency::ConcurrencyFirstWrite as i32)
}

fn to_set(r: c::SetRequest) -> Set {
    Set {
        key: r.key,
        value: r.value,
        etag: r.etag.map(|e| e.value),
        metadata: pairs(r.metadata),
        first_write: first_write(r.options),
        content_type: Some(r.content_type).filter(|c| !c.is_empty()),
    }
}

fn to_delete(r: c::DeleteRequest) -> Delete {
    Delete { key: r.key, etag: r.etag.map(|e| e.value), first_write: first_write(r.options) }
}

fn get_response(item: Option<Item>) -> c::GetResponse {
    match item {
        // A missing key: OK, empty data, no etag (spec A8).
        None => c::GetResponse::default(),
        Some(item) => c::GetResponse {
            data: item.data,
            etag: Some(c::Etag { value: item.etag }),
            metadata: item.metadata.into_iter().collect(),
            content_type: item.content_type.unwrap_or_default(),
        },
    }
}

/// Bulk writes apply what they can; the first failure is the answer (Dapr's
/// `BulkSet` has room for one error only).
fn bulk_status(failed: Vec<(String, Error)>) -> Result<(), Status> {
    match failed.into_iter().next() {
        None => Ok(()),
        Some((_, error)) => Err(status(error)),
    }
}

#[tonic::async_trait]
impl c::state_store_server::StateStore for State {
    async fn init(&self, request: Request<c::InitRequest>) -> Result<Response<c::InitResponse>, Status> {
        let name = crate::common::instance_name(&request);
        self.instances.init(&name, || Ok(Mutex::new(Store::new())))?;
        Ok(Response::new(c::InitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::FeaturesResponse { features: state_logic::FEATURES.map(String::from).to_vec() }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn get(&self, request: Request<c::GetRequest>) -> Result<Response<c::GetResponse>, Status> {
        let store = self.instances.get(&request)?;
        let item = store.lock().expect("store lock").get(&request.get_ref().key, now());
        Ok(Response::new(get_response(item)))
    }

    async fn set(&self, request: Request<c::SetRequest>) -> Result<Response<c::SetResponse>, Status> {
        let store = self.instances.get(&request)?;
        let set = to_set(request.into_inner());
        store.lock().expect("store lock").set(set, now()).map_err(status)?;
        Ok(Response::new(c::SetResponse {}))
    }

    async fn delete(&self, request: Request<c::DeleteRequest>) -> Result<Response<c::DeleteResponse>, Status> {
        let store = self.instances.get(&request)?;
        let delete = to_delete(request.into_inner());
        store.lock().expect("store lock").delete(delete, now()).map_err(status)?;
        Ok(Response::new(c::DeleteResponse {}))
    }

    async fn bulk_get(&self, request: Request<c::BulkGetRequest>) -> Result<Response<c::BulkGetResponse>, Status> {
        let store = self.instances.get(&request)?;
        let store = store.lock().expect("store lock");
        let now = now();
        let items = request
            .into_inner()
            .items
            .into_iter()
            .map(|r| {
                let got = get_response(store.get(&r.key, now));
                c::BulkStateItem {
                    key: r.key,
                    data: got.data,
                    etag: got.etag,
                    error: String::new(),
                    metadata: got.metadata,
                    content_type: got.content_type,
                }
            })
            .collect();
        Ok(Response::new(c::BulkGetResponse { items }))
    }

    async fn bulk_set(&self, request: Request<c::BulkSetRequest>) -> Result<Response<c::BulkSetResponse>, Status> {
        let store = self.instances.get(&request)?;
        let sets = request.into_inner().items.into_iter().map(to_set).collect();
        bulk_status(store.lock().expect("store lock").bulk_set(sets, now()))?;
        Ok(Response::new(c::BulkSetResponse {}))
    }

    async fn bulk_delete(
        &self,
        request: Request<c::BulkDeleteRequest>,
    ) -> Result<Response<c::BulkDeleteResponse>, Status> {
        let store = self.instances.get(&request)?;
        let deletes = request.into_inner().items.into_iter().map(to_delete).collect();
        bulk_status(store.lock().expect("store lock").bulk_delete(deletes, now()))?;
        Ok(Response::new(c::BulkDeleteResponse {}))
    }
}

#[tonic::async_trait]
impl c::transactional_state_store_server::TransactionalStateStore for State {
    async fn transact(
        &self,
        request: Request<c::TransactionalStateRequest>,
    ) -> Result<Response<c::TransactionalStateResponse>, Status> {
        use c::transactional_state_operation::Request as Operation;
        let store = self.instances.get(&request)?;
        let mut ops = Vec::new();
        for operation in request.into_inner().operations {
            match operation.request {
                Some(Operation::Set(set)) => ops.push(Op::Set(to_set(set))),
                Some(Operation::Delete(delete)) => ops.push(Op::Delete(to_delete(delete))),
                None => return Err(Status::invalid_argument("transaction operation without a request")),
            }
        }
        store.lock().expect("store lock").transact(ops, now()).map_err(status)?;
        Ok(Response::new(c::TransactionalStateResponse {}))
    }
}
