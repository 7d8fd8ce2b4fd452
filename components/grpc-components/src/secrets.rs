//! `SecretStore`: the secrets given as init metadata `secret.<NAME>` (value =
//! the secret's value); each secret holds one value named like the secret.

use std::collections::HashMap;

use tonic::{Request, Response, Status};

use crate::common::{Instances, instance_name};
use crate::pb::components as c;

/// The service.
#[derive(Default)]
pub struct Secrets {
    instances: Instances<HashMap<String, String>>,
}

#[tonic::async_trait]
impl c::secret_store_server::SecretStore for Secrets {
    async fn init(
        &self,
        request: Request<c::SecretStoreInitRequest>,
    ) -> Result<Response<c::SecretStoreInitResponse>, Status> {
        let name = instance_name(&request);
        let properties = request.into_inner().metadata.unwrap_or_default().properties;
        let secrets =
            properties.into_iter().filter_map(|(k, v)| k.strip_prefix("secret.").map(|k| (k.to_owned(), v))).collect();
        self.instances.init(&name, || Ok(secrets))?;
        Ok(Response::new(c::SecretStoreInitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::FeaturesResponse::default()))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn get(&self, request: Request<c::GetSecretRequest>) -> Result<Response<c::GetSecretResponse>, Status> {
        let secrets = self.instances.get(&request)?;
        let key = request.into_inner().key;
        let value = secrets.get(&key).ok_or_else(|| Status::not_found(format!("secret `{key}` not found")))?;
        Ok(Response::new(c::GetSecretResponse { data: [(key, value.clone())].into() }))
    }

    async fn bulk_get(
        &self,
        request: Request<c::BulkGetSecretRequest>,
    ) -> Result<Response<c::BulkGetSecretResponse>, Status> {
        let secrets = self.instances.get(&request)?;
        let data = secrets
            .iter()
            .map(|(k, v)| (k.clone(), c::SecretResponse { secrets: [(k.clone(), v.clone())].into() }))
            .collect();
        Ok(Response::new(c::BulkGetSecretResponse { data }))
    }
}
