//! One decorator per kind: [`Resilient`] around the instance's `Arc<dyn …>`
//! runs each outbound call through [`Policy::run`]; lifecycle calls and
//! streams go straight through.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Policy;
use crate::kinds::output_binding::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::pubsub::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::kinds::secret_store::{Secret, SecretStore};
use crate::kinds::state::{
    BulkStateItem, DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation,
};
use crate::kinds::{Deliveries, Metadata, Result};
use crate::registry::Instance;

/// `inner` with `policy` applied to its outbound calls.
struct Resilient<T: ?Sized> {
    inner: Arc<T>,
    policy: Arc<Policy>,
}

fn resilient<T: ?Sized>(inner: Arc<T>, policy: &Arc<Policy>) -> Resilient<T> {
    Resilient { inner, policy: policy.clone() }
}

/// Wraps every outbound side of `instance` (input bindings only stream, so
/// they stay as they are).
pub(super) fn wrap(policy: Arc<Policy>, instance: Instance) -> Instance {
    match instance {
        Instance::State(store) => Instance::State(Arc::new(resilient(store, &policy))),
        Instance::PubSub(pubsub) => Instance::PubSub(Arc::new(resilient(pubsub, &policy))),
        Instance::Bindings { input, output } => Instance::Bindings {
            input,
            output: output.map(|o| Arc::new(resilient(o, &policy)) as Arc<dyn OutputBinding>),
        },
        Instance::SecretStore(store) => Instance::SecretStore(Arc::new(resilient(store, &policy))),
    }
}

/// `impl $kind for Resilient<dyn $kind>`: the lifecycle calls pass straight
/// through, the given methods are added.
macro_rules! resilient {
    ($kind:ident { $($methods:tt)* }) => {
        #[async_trait::async_trait]
        impl $kind for Resilient<dyn $kind> {
            async fn init(&self, metadata: Metadata) -> Result<()> {
                self.inner.init(metadata).await
            }
            async fn ping(&self) -> Result<()> {
                self.inner.ping().await
            }
            async fn close(&self) -> Result<()> {
                self.inner.close().await
            }
            $($methods)*
        }
    };
}

resilient!(StateStore {
    async fn features(&self) -> Result<Vec<String>> {
        self.inner.features().await
    }
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        self.policy.run(request, |r| self.inner.get(r)).await
    }
    async fn set(&self, request: SetRequest) -> Result<()> {
        self.policy.run(request, |r| self.inner.set(r)).await
    }
    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.policy.run(request, |r| self.inner.delete(r)).await
    }
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        self.policy.run(requests, |r| self.inner.bulk_get(r)).await
    }
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        self.policy.run(requests, |r| self.inner.bulk_set(r)).await
    }
    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        self.policy.run(requests, |r| self.inner.bulk_delete(r)).await
    }
    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()> {
        self.policy.run((operations, metadata), |(o, m)| self.inner.transact(o, m)).await
    }
});

resilient!(PubSub {
    async fn features(&self) -> Result<Vec<String>> {
        self.inner.features().await
    }
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        self.policy.run(request, |r| self.inner.publish(r)).await
    }
    async fn bulk_publish(&self, topic: &str, entries: Vec<BulkMessage>, metadata: Metadata) -> Result<Vec<FailedEntry>> {
        self.policy.run((entries, metadata), |(e, m)| self.inner.bulk_publish(topic, e, m)).await
    }
    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        self.inner.subscribe(topic, metadata).await
    }
});

resilient!(OutputBinding {
    async fn operations(&self) -> Result<Vec<String>> {
        self.inner.operations().await
    }
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.policy.run(request, |r| self.inner.invoke(r)).await
    }
});

resilient!(SecretStore {
    async fn features(&self) -> Result<Vec<String>> {
        self.inner.features().await
    }
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        self.policy.run(metadata, |m| self.inner.get(key, m)).await
    }
    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        self.policy.run(metadata, |m| self.inner.bulk_get(m)).await
    }
});
