//! The decorator around every instance: each call is checked against the
//! component's switch, timed and counted per operation. The metric handles
//! are resolved once here, so a call costs an atomic load, two atomic adds
//! and one histogram observation. Lifecycle calls (`init`, `features`,
//! `ping`, `close`) pass straight through: the health probe and shutdown
//! work on a disabled component too.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use super::{ComponentOps, outcome};
use crate::component::{Instance, Kinds, Lifecycle, SharedLifecycle};
use crate::kinds::input_binding::{InputBinding, InputEvent};
use crate::kinds::output_binding::{InvokeRequest, InvokeResponse, OutputBinding};
use crate::kinds::pubsub::{BulkMessage, FailedEntry, Message, PubSub, PublishRequest};
use crate::kinds::secret_store::{Secret, SecretStore};
use crate::kinds::state::{
    BulkStateItem, DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation,
};
use crate::kinds::{ComponentKind, Deliveries, Metadata, Result};
use crate::metrics::CallMetrics;

/// `inner`, observed; `operations[i]` is the i-th name of its kind's list.
struct Observed<T: ?Sized> {
    inner: Arc<T>,
    component: Arc<ComponentOps>,
    operations: Vec<Arc<CallMetrics>>,
}

fn observed<T: ?Sized>(
    component: &Arc<ComponentOps>,
    kind: ComponentKind,
    names: &[&str],
    inner: Arc<T>,
) -> Observed<T> {
    let metrics = crate::metrics::global();
    let operations: Vec<Arc<CallMetrics>> = names
        .iter()
        .map(|op| Arc::new(metrics.call_metrics(&component.name, kind.as_str(), component.mode.as_str(), op)))
        .collect();
    component.operations.write().expect("ops lock").extend(operations.iter().cloned());
    Observed { inner, component: component.clone(), operations }
}

impl<T: ?Sized> Observed<T> {
    /// Runs `call` as operation `index`, unless the component is disabled.
    async fn run<R>(&self, index: usize, call: impl Future<Output = Result<R>>) -> Result<R> {
        let started = Instant::now();
        let result = if self.component.enabled() { call.await } else { Err(self.component.disabled_error()) };
        self.operations[index].record(started.elapsed(), result.as_ref().err().map(outcome));
        result
    }
}

const STATE: [&str; 7] = ["get", "set", "delete", "bulk_get", "bulk_set", "bulk_delete", "transact"];
const PUBSUB: [&str; 3] = ["publish", "bulk_publish", "subscribe"];
const INPUT: [&str; 1] = ["read"];
const OUTPUT: [&str; 1] = ["invoke"];
const SECRETS: [&str; 2] = ["get", "bulk_get"];

/// Wraps every side of `instance`; the lifecycle is not wrapped.
pub(super) fn wrap(component: Arc<ComponentOps>, instance: Instance) -> Instance {
    let c = &component;
    let Kinds { state, pubsub, input_binding, output_binding, secret_store } = instance.kinds;
    let kinds = Kinds {
        state: state.map(|s| Arc::new(observed(c, ComponentKind::State, &STATE, s)) as Arc<dyn StateStore>),
        pubsub: pubsub.map(|p| Arc::new(observed(c, ComponentKind::PubSub, &PUBSUB, p)) as Arc<dyn PubSub>),
        input_binding: input_binding
            .map(|i| Arc::new(observed(c, ComponentKind::InputBinding, &INPUT, i)) as Arc<dyn InputBinding>),
        output_binding: output_binding
            .map(|o| Arc::new(observed(c, ComponentKind::OutputBinding, &OUTPUT, o)) as Arc<dyn OutputBinding>),
        secret_store: secret_store
            .map(|s| Arc::new(observed(c, ComponentKind::SecretStore, &SECRETS, s)) as Arc<dyn SecretStore>),
    };
    Instance::new(instance.lifecycle, kinds)
}

/// `impl $kind for Observed<dyn $kind>` with the given methods; the
/// lifecycle passes straight through.
macro_rules! observe {
    ($kind:ident { $($methods:tt)* }) => {
        impl SharedLifecycle for Observed<dyn $kind> {
            fn lifecycle(&self) -> &dyn Lifecycle {
                &*self.inner
            }
        }

        #[async_trait::async_trait]
        impl $kind for Observed<dyn $kind> {
            $($methods)*
        }
    };
}

observe!(StateStore {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        self.run(0, self.inner.get(request)).await
    }
    async fn set(&self, request: SetRequest) -> Result<()> {
        self.run(1, self.inner.set(request)).await
    }
    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.run(2, self.inner.delete(request)).await
    }
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        self.run(3, self.inner.bulk_get(requests)).await
    }
    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        self.run(4, self.inner.bulk_set(requests)).await
    }
    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        self.run(5, self.inner.bulk_delete(requests)).await
    }
    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()> {
        self.run(6, self.inner.transact(operations, metadata)).await
    }
});

observe!(PubSub {
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        self.run(0, self.inner.publish(request)).await
    }
    async fn bulk_publish(&self, topic: &str, entries: Vec<BulkMessage>, metadata: Metadata) -> Result<Vec<FailedEntry>> {
        self.run(1, self.inner.bulk_publish(topic, entries, metadata)).await
    }
    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        self.run(2, self.inner.subscribe(topic, metadata)).await
    }
});

observe!(InputBinding {
    async fn read(&self) -> Result<Deliveries<InputEvent>> {
        self.run(0, self.inner.read()).await
    }
});

observe!(OutputBinding {
    async fn invoke(&self, request: InvokeRequest) -> Result<InvokeResponse> {
        self.run(0, self.inner.invoke(request)).await
    }
});

observe!(SecretStore {
    async fn get(&self, key: &str, metadata: Metadata) -> Result<Secret> {
        self.run(0, self.inner.get(key, metadata)).await
    }
    async fn bulk_get(&self, metadata: Metadata) -> Result<BTreeMap<String, Secret>> {
        self.run(1, self.inner.bulk_get(metadata)).await
    }
});
