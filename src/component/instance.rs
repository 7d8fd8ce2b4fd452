//! [`Instance`]: what a factory makes for one configured component — its
//! lifecycle, called once, and the kinds it serves.

use std::sync::Arc;

use super::Lifecycle;
use crate::kinds::input_binding::InputBinding;
use crate::kinds::output_binding::OutputBinding;
use crate::kinds::pubsub::PubSub;
use crate::kinds::secret_store::SecretStore;
use crate::kinds::state::StateStore;
use crate::kinds::{ComponentKind, Metadata, Result};

/// The kinds one component serves, one field per [`ComponentKind`]. A Dapr
/// `bindings.*` type may serve both binding kinds.
#[derive(Clone, Default)]
pub struct Kinds {
    /// The state store side.
    pub state: Option<Arc<dyn StateStore>>,
    /// The pub/sub side.
    pub pubsub: Option<Arc<dyn PubSub>>,
    /// The input binding side.
    pub input_binding: Option<Arc<dyn InputBinding>>,
    /// The output binding side.
    pub output_binding: Option<Arc<dyn OutputBinding>>,
    /// The secret store side.
    pub secret_store: Option<Arc<dyn SecretStore>>,
}

impl Kinds {
    /// The kinds present, in [`ComponentKind::ALL`] order.
    pub fn list(&self) -> Vec<ComponentKind> {
        ComponentKind::ALL.into_iter().filter(|kind| self.has(*kind)).collect()
    }

    /// Whether the `kind` side is present.
    pub fn has(&self, kind: ComponentKind) -> bool {
        match kind {
            ComponentKind::State => self.state.is_some(),
            ComponentKind::PubSub => self.pubsub.is_some(),
            ComponentKind::InputBinding => self.input_binding.is_some(),
            ComponentKind::OutputBinding => self.output_binding.is_some(),
            ComponentKind::SecretStore => self.secret_store.is_some(),
        }
    }
}

/// A component made by a factory, not yet initialised: one lifecycle and
/// the kinds it serves (which share that lifecycle: one WASM instance, one
/// gRPC connection).
#[derive(Clone)]
pub struct Instance {
    /// Called once for the whole component.
    pub lifecycle: Arc<dyn Lifecycle>,
    /// What it serves.
    pub kinds: Kinds,
}

impl Instance {
    /// A component whose kinds share `lifecycle`.
    pub fn new(lifecycle: Arc<dyn Lifecycle>, kinds: Kinds) -> Self {
        Self { lifecycle, kinds }
    }

    /// A state store that is its own lifecycle.
    pub fn state(store: Arc<dyn StateStore>) -> Self {
        Self::new(store.clone(), Kinds { state: Some(store), ..Kinds::default() })
    }

    /// A pub/sub component that is its own lifecycle.
    pub fn pubsub(pubsub: Arc<dyn PubSub>) -> Self {
        Self::new(pubsub.clone(), Kinds { pubsub: Some(pubsub), ..Kinds::default() })
    }

    /// A secret store that is its own lifecycle.
    pub fn secret_store(store: Arc<dyn SecretStore>) -> Self {
        Self::new(store.clone(), Kinds { secret_store: Some(store), ..Kinds::default() })
    }

    /// An input binding that is its own lifecycle.
    pub fn input_binding(binding: Arc<dyn InputBinding>) -> Self {
        Self::new(binding.clone(), Kinds { input_binding: Some(binding), ..Kinds::default() })
    }

    /// An output binding that is its own lifecycle.
    pub fn output_binding(binding: Arc<dyn OutputBinding>) -> Self {
        Self::new(binding.clone(), Kinds { output_binding: Some(binding), ..Kinds::default() })
    }

    /// Two separate objects serving the two binding directions of one
    /// component: both are initialised (input first), the operations are the
    /// output's.
    pub fn bindings(input: Arc<dyn InputBinding>, output: Arc<dyn OutputBinding>) -> Self {
        let both = Arc::new(BothBindings { input: input.clone(), output: output.clone() });
        Self::new(both, Kinds { input_binding: Some(input), output_binding: Some(output), ..Kinds::default() })
    }

    /// The kinds it serves.
    pub fn kinds(&self) -> Vec<ComponentKind> {
        self.kinds.list()
    }
}

/// The lifecycle of [`Instance::bindings`].
struct BothBindings {
    input: Arc<dyn InputBinding>,
    output: Arc<dyn OutputBinding>,
}

#[async_trait::async_trait]
impl Lifecycle for BothBindings {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        self.input.init(metadata.clone()).await?;
        self.output.init(metadata).await
    }

    async fn features(&self) -> Result<Vec<String>> {
        self.output.features().await
    }

    async fn ping(&self) -> Result<()> {
        self.input.ping().await?;
        self.output.ping().await
    }

    async fn close(&self) -> Result<()> {
        let input = self.input.close().await;
        self.output.close().await.and(input)
    }
}
