//! One decorator per kind: [`Resilient`] around the instance's `Arc<dyn …>`
//! runs each outbound call through [`Policy::run`]; lifecycle calls and
//! streams go straight through.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Policy;
use crate::component::{Instance, Kinds, Lifecycle, SharedLifecycle};
use crate::kinds::output_binding::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::pubsub::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::kinds::secret_store::{Secret, SecretStore};
use crate::kinds::state::{
    BulkStateItem, DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation,
};
use crate::kinds::{Deliveries, Metadata, Result};

/// `inner` with `policy` applied to its outbound calls.
struct Resilient<T: ?Sized> {
    inner: Arc<T>,
    policy: Arc<Policy>,
}

fn resilient<T: ?Sized>(inner: Arc<T>, policy: &Arc<Policy>) -> Resilient<T> {
    Resilient { inner, policy: policy.clone() }
}

/// Wraps every outbound side of `instance` (input bindings only stream, so
/// they stay as they are); the lifecycle is not wrapped.
pub(super) fn wrap(policy: Arc<Policy>, instance: Instance) -> Instance {
    let Kinds { state, pubsub, input_binding, output_binding, secret_store } = instance.kinds;
    let kinds = Kinds {
        state: state.map(|s| Arc::new(resilient(s, &policy)) as Arc<dyn StateStore>),
        pubsub: pubsub.map(|p| Arc::new(resilient(p, &policy)) as Arc<dyn PubSub>),
        input_binding,
        output_binding: output_binding.map(|o| Arc::new(resilient(o, &policy)) as Arc<dyn OutputBinding>),
        secret_store: secret_store.map(|s| Arc::new(resilient(s, &policy)) as Arc<dyn SecretStore>),
    };
    Instance::new(instance.lifecycle, kinds)
}

/// `impl $kind for Resilient<dyn $kind>` with the given methods; the
/// lifecycle passes straight through.
macro_rules! resilient {
    ($kind:ident { $($methods:tt)* }) => {
        impl SharedLifecycle for Resilient<dyn $kind> {
            fn lifecycle(&self) -> &dyn Lifecycle {
                &*self.inner
            }
        }

        #[async_trait::async_trait]
        impl $kind for Resilient<dyn $kind> {
            $($methods)*
        }
    };
}

resilient!(StateStore {
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
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.policy.run(request, |r| self.inner.invoke(r)).await
    }
});

resilient!(SecretStore {
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        self.policy.run(metadata, |m| self.inner.get(key, m)).await
    }
    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        self.policy.run(metadata, |m| self.inner.bulk_get(m)).await
    }
});
