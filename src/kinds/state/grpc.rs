//! [`GrpcStateStore`]: a state store in another process, over Dapr's
//! `StateStore` / `TransactionalStateStore` services (spec A8), field for
//! field.

use std::sync::Arc;
use std::time::Duration;

use super::{
    BulkStateItem, Concurrency, Consistency, DeleteRequest, GetRequest, SetRequest, StateItem, StateOptions,
    StateStore, TTL_IN_SECONDS, TransactionOperation, features,
};
use crate::component::{Lifecycle, SharedLifecycle};
use crate::kinds::{ComponentError, ComponentKind, Metadata, Result};
use crate::pluggable::{ComponentChannel, GrpcLifecycle, Link, client, request};
use crate::proto::components as pb;

type Client = pb::state_store_client::StateStoreClient<ComponentChannel>;
type TxClient = pb::transactional_state_store_client::TransactionalStateStoreClient<ComponentChannel>;
type MaxClient = pb::transactional_store_multi_max_size_client::TransactionalStoreMultiMaxSizeClient<ComponentChannel>;

/// How long the optional `MultiMaxSize` may take (daprd's figure).
const MULTI_MAX_SIZE_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`StateStore`] served by a Dapr pluggable component on a Unix socket.
#[derive(Debug)]
pub struct GrpcStateStore {
    lifecycle: Arc<GrpcLifecycle>,
    link: Link,
    /// `MultiMaxSize`, asked once on the first transaction; `None` = no limit
    /// (also when the component answers `UNIMPLEMENTED`, as SDK-built ones do).
    multi_max_size: tokio::sync::OnceCell<Option<usize>>,
}

impl GrpcStateStore {
    /// The state side of the component of `lifecycle`; nothing is dialed
    /// before `init`.
    pub fn new(lifecycle: &Arc<GrpcLifecycle>) -> Self {
        let link = lifecycle.link().clone();
        Self { lifecycle: lifecycle.clone(), link, multi_max_size: tokio::sync::OnceCell::new() }
    }

    fn max(&self) -> usize {
        self.link.options().max_message_size
    }

    /// `MultiMaxSize`, bounded like daprd does; any error (`UNIMPLEMENTED`
    /// from SDK-built components included) means "no limit".
    async fn ask_multi_max_size(&self) -> Option<usize> {
        let max = self.max();
        let (channel, _) = self.link.channel().ok()?;
        let asking = request(pb::MultiMaxSizeRequest {}, MULTI_MAX_SIZE_TIMEOUT);
        let asked =
            tokio::time::timeout(MULTI_MAX_SIZE_TIMEOUT, client!(MaxClient, max, channel).multi_max_size(asking)).await;
        match asked {
            Ok(Ok(answer)) => usize::try_from(answer.into_inner().max_size).ok().filter(|n| *n > 0),
            Ok(Err(status)) => {
                tracing::debug!(component = self.link.name(), "MultiMaxSize: {status}; no limit");
                None
            }
            Err(_) => None,
        }
    }
}

fn options(options: StateOptions) -> pb::StateOptions {
    use pb::state_options::StateConcurrency as C;
    pb::StateOptions {
        concurrency: (match options.concurrency {
            Concurrency::Unspecified => C::ConcurrencyUnspecified,
            Concurrency::FirstWrite => C::ConcurrencyFirstWrite,
            Concurrency::LastWrite => C::ConcurrencyLastWrite,
        }) as i32,
        consistency: consistency(options.consistency),
    }
}

fn consistency(consistency: Consistency) -> i32 {
    use pb::state_options::StateConsistency as K;
    (match consistency {
        Consistency::Unspecified => K::ConsistencyUnspecified,
        Consistency::Eventual => K::ConsistencyEventual,
        Consistency::Strong => K::ConsistencyStrong,
    }) as i32
}

fn etag(etag: Option<String>) -> Option<pb::Etag> {
    etag.map(|value| pb::Etag { value })
}

fn to_get(r: GetRequest) -> pb::GetRequest {
    pb::GetRequest { key: r.key, metadata: r.metadata.into_iter().collect(), consistency: consistency(r.consistency) }
}

fn to_set(r: SetRequest) -> pb::SetRequest {
    pb::SetRequest {
        key: r.key,
        value: r.value,
        etag: etag(r.etag),
        metadata: r.metadata.into_iter().collect(),
        // daprd always sends the options, UNSPECIFIED when none were given.
        options: Some(options(r.options)),
        content_type: r.content_type.unwrap_or_default(),
    }
}

fn to_delete(r: DeleteRequest) -> pb::DeleteRequest {
    pb::DeleteRequest {
        key: r.key,
        etag: etag(r.etag),
        metadata: r.metadata.into_iter().collect(),
        options: Some(options(r.options)),
    }
}

/// On this wire a missing key is OK + empty data + no ETag (spec A8).
fn item(
    data: Vec<u8>,
    etag: Option<pb::Etag>,
    metadata: std::collections::HashMap<String, String>,
    content_type: String,
) -> Option<StateItem> {
    let etag = etag.map(|e| e.value).filter(|e| !e.is_empty());
    if data.is_empty() && etag.is_none() {
        return None;
    }
    Some(StateItem {
        data,
        etag,
        metadata: metadata.into_iter().collect(),
        content_type: Some(content_type).filter(|c| !c.is_empty()),
    })
}

/// Whether a write can fail on its own (an ETag, first-write, a TTL to
/// check). Dapr's `BulkSet` / `BulkDelete` answer with at most one error for
/// the whole batch, which cannot say *which* keys failed; the trait promises
/// exactly that, so batches with such items go key by key.
fn conditional(etag: &Option<String>, options: &StateOptions, metadata: &Metadata) -> bool {
    etag.is_some() || options.concurrency == Concurrency::FirstWrite || metadata.contains_key(TTL_IN_SECONDS)
}

#[async_trait::async_trait]
impl StateStore for GrpcStateStore {
    async fn get(&self, r: GetRequest) -> Result<Option<StateItem>> {
        let (max, key) = (self.max(), r.key.clone());
        let message = to_get(r);
        let got = self
            .link
            .call(Some(&key), |ch, t| async move { client!(Client, max, ch).get(request(message, t)).await })
            .await?;
        Ok(item(got.data, got.etag, got.metadata, got.content_type))
    }

    async fn set(&self, r: SetRequest) -> Result<()> {
        let (max, key) = (self.max(), r.key.clone());
        let message = to_set(r);
        self.link
            .call(Some(&key), |ch, t| async move { client!(Client, max, ch).set(request(message, t)).await })
            .await?;
        Ok(())
    }

    async fn delete(&self, r: DeleteRequest) -> Result<()> {
        let (max, key) = (self.max(), r.key.clone());
        let message = to_delete(r);
        self.link
            .call(Some(&key), |ch, t| async move { client!(Client, max, ch).delete(request(message, t)).await })
            .await?;
        Ok(())
    }

    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        let max = self.max();
        let message = pb::BulkGetRequest {
            items: requests.into_iter().map(to_get).collect(),
            options: Some(pb::BulkGetRequestOptions { parallelism: 0 }),
        };
        let got = self
            .link
            .call(None, |ch, t| async move { client!(Client, max, ch).bulk_get(request(message, t)).await })
            .await?;
        Ok(got
            .items
            .into_iter()
            .map(|i| BulkStateItem {
                item: if i.error.is_empty() { item(i.data, i.etag, i.metadata, i.content_type) } else { None },
                error: Some(i.error).filter(|e| !e.is_empty()),
                key: i.key,
            })
            .collect())
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        if requests.iter().any(|r| conditional(&r.etag, &r.options, &r.metadata)) {
            return super::set_each(self, requests).await;
        }
        let max = self.max();
        let message = pb::BulkSetRequest {
            items: requests.into_iter().map(to_set).collect(),
            options: Some(pb::BulkSetRequestOptions { parallelism: 0 }),
        };
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).bulk_set(request(message, t)).await })
            .await?;
        Ok(())
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        if requests.iter().any(|r| conditional(&r.etag, &r.options, &Metadata::new())) {
            return super::delete_each(self, requests).await;
        }
        let max = self.max();
        let message = pb::BulkDeleteRequest {
            items: requests.into_iter().map(to_delete).collect(),
            options: Some(pb::BulkDeleteRequestOptions { parallelism: 0 }),
        };
        self.link
            .call(None, |ch, t| async move { client!(Client, max, ch).bulk_delete(request(message, t)).await })
            .await?;
        Ok(())
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, metadata: Metadata) -> Result<()> {
        let known = self.lifecycle.features_of(ComponentKind::State);
        if known.is_some_and(|f| !f.iter().any(|f| f == features::TRANSACTIONAL)) {
            return Err(ComponentError::NotSupported(format!(
                "component `{}` does not advertise TRANSACTIONAL",
                self.link.name()
            )));
        }
        let max = self.max();
        let limit = *self.multi_max_size.get_or_init(|| self.ask_multi_max_size()).await;
        if let Some(limit) = limit
            && operations.len() > limit
        {
            return Err(ComponentError::invalid(format!(
                "the transaction has {} operations; component `{}` allows at most {limit}",
                operations.len(),
                self.link.name()
            )));
        }
        use pb::transactional_state_operation::Request as Operation;
        let message = pb::TransactionalStateRequest {
            operations: operations
                .into_iter()
                .map(|op| pb::TransactionalStateOperation {
                    request: Some(match op {
                        TransactionOperation::Set(set) => Operation::Set(to_set(set)),
                        TransactionOperation::Delete(delete) => Operation::Delete(to_delete(delete)),
                    }),
                })
                .collect(),
            metadata: metadata.into_iter().collect(),
        };
        self.link
            .call(None, |ch, t| async move { client!(TxClient, max, ch).transact(request(message, t)).await })
            .await?;
        Ok(())
    }
}

impl SharedLifecycle for GrpcStateStore {
    fn lifecycle(&self) -> &dyn Lifecycle {
        &*self.lifecycle
    }
}
