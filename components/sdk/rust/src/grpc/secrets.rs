//! `SecretStore` over a [`crate::SecretStore`].

use tonic::{Request, Response, Status};

use super::instances::Instances;
use super::pb::components as c;
use crate::SecretStore;

/// The service: one `T` per component instance.
pub struct Secrets<T> {
    instances: Instances<T>,
}

impl<T> Default for Secrets<T> {
    fn default() -> Self {
        Self { instances: Instances::default() }
    }
}

#[tonic::async_trait]
impl<T: SecretStore> c::secret_store_server::SecretStore for Secrets<T> {
    async fn init(
        &self,
        request: Request<c::SecretStoreInitRequest>,
    ) -> Result<Response<c::SecretStoreInitResponse>, Status> {
        let metadata = request.get_ref().metadata.clone();
        self.instances.init(&request, metadata)?;
        Ok(Response::new(c::SecretStoreInitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        let features = self.instances.get(&request)?.call("features", |s| Ok(s.features()))?;
        Ok(Response::new(c::FeaturesResponse { features }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?.call("ping", T::ping)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn get(&self, request: Request<c::GetSecretRequest>) -> Result<Response<c::GetSecretResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let r = request.into_inner();
        let secret = instance.call("get", |s| s.get(r.key, r.metadata.into_iter().collect()))?;
        Ok(Response::new(c::GetSecretResponse { data: secret.into_iter().collect() }))
    }

    async fn bulk_get(
        &self,
        request: Request<c::BulkGetSecretRequest>,
    ) -> Result<Response<c::BulkGetSecretResponse>, Status> {
        let instance = self.instances.get(&request)?;
        let metadata = request.into_inner().metadata.into_iter().collect();
        let all = instance.call("bulk_get", |s| s.bulk_get(metadata))?;
        let data = all
            .into_iter()
            .map(|(name, secret)| (name, c::SecretResponse { secrets: secret.into_iter().collect() }))
            .collect();
        Ok(Response::new(c::BulkGetSecretResponse { data }))
    }
}
