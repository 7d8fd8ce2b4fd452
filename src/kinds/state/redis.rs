//! `state.redis`: state in a Redis server, on the data layout of Dapr's
//! `state.redis` (components-contrib), so daprd and plughost read each
//! other's keys. `docs/redis-layout.md` has the layout and where plughost's
//! rules differ from Dapr's.
//!
//! Every write, delete and transaction is one Lua script (`redis_write.lua`),
//! so the ETag check and the write are one atomic step on the server: several
//! plughost instances on one Redis see exactly one winner. Reads are one
//! script too (`redis_get.lua`), returning the value and its remaining TTL.

use crate::component::Lifecycle;
use std::sync::OnceLock;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Script, Value};

use super::rules::{TTL_IN_SECONDS, expiry_metadata, given_etag, now_millis, parse_ttl};
use super::{
    BulkStateItem, Concurrency, DeleteRequest, GetRequest, SetRequest, StateItem, StateStore, TransactionOperation,
    features,
};
use crate::kinds::redis_conn::{KeepAlive, RedisSettings, integer};
use crate::kinds::{ComponentError, Metadata, Result};

/// The key holding the ETag counter: new keys start above every version
/// plughost issued, so an ETag is not reissued after a delete.
pub const ETAG_COUNTER_KEY: &str = "{plughost}:etag-counter";

static WRITE: OnceLock<Script> = OnceLock::new();
static GET: OnceLock<Script> = OnceLock::new();

fn write_script() -> &'static Script {
    WRITE.get_or_init(|| Script::new(include_str!("redis_write.lua")))
}

fn get_script() -> &'static Script {
    GET.get_or_init(|| Script::new(include_str!("redis_get.lua")))
}

/// A [`StateStore`] in Redis.
#[derive(Debug)]
pub struct RedisStateStore {
    name: String,
    conn: OnceLock<(RedisSettings, ConnectionManager, Option<Duration>)>,
    keep_alive: OnceLock<KeepAlive>,
}

impl RedisStateStore {
    /// A store for the component `name`, connected by `init`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), conn: OnceLock::new(), keep_alive: OnceLock::new() }
    }

    fn parts(&self) -> Result<&(RedisSettings, ConnectionManager, Option<Duration>)> {
        self.conn.get().ok_or_else(|| ComponentError::internal("state.redis used before init"))
    }

    fn error(&self, e: RedisError) -> ComponentError {
        match self.conn.get() {
            Some((settings, _, _)) => settings.error(&self.name, e),
            None => ComponentError::internal(e),
        }
    }

    /// Runs `operations` as one script; maps the script's refusals onto
    /// the key they concern.
    async fn write(&self, operations: Vec<TransactionOperation>) -> Result<()> {
        let (_, conn, default_ttl) = self.parts()?;
        let mut invocation = write_script().key(ETAG_COUNTER_KEY);
        let mut keys = Vec::with_capacity(operations.len());
        for operation in operations {
            let (key, kind, etag, options, value, content_type, ttl) = match operation {
                TransactionOperation::Set(r) => {
                    let ttl = match r.metadata.contains_key(TTL_IN_SECONDS) {
                        true => parse_ttl(&r.metadata)?,
                        false => *default_ttl,
                    };
                    (r.key, "set", r.etag, r.options, r.value, r.content_type, ttl)
                }
                TransactionOperation::Delete(r) => (r.key, "del", r.etag, r.options, Vec::new(), None, None),
            };
            let etag = given_etag(&etag).unwrap_or_default();
            if !etag.is_empty() && etag.parse::<u64>().is_err() {
                return Err(ComponentError::etag_invalid(&key, format!("`{etag}` is not an ETag this store issued")));
            }
            let first_write = if options.concurrency == Concurrency::FirstWrite { "1" } else { "0" };
            let ttl_ms = ttl.map_or(0, |t| t.as_millis() as u64);
            invocation.key(&key).arg(kind).arg(etag).arg(first_write).arg(value).arg(content_type.unwrap_or_default());
            invocation.arg(ttl_ms);
            keys.push(key);
        }
        match invocation.invoke_async::<Value>(&mut conn.clone()).await {
            Ok(_) => Ok(()),
            Err(e) => Err(refusal(&e, &keys).unwrap_or_else(|| self.error(e))),
        }
    }
}

/// The ETag error a script refusal stands for (`ETAG_MISMATCH <index>`,
/// `FIRST_WRITE <index>`), if it is one.
fn refusal(e: &RedisError, keys: &[String]) -> Option<ComponentError> {
    let index: usize = e.detail()?.trim().parse().ok()?;
    let key = keys.get(index)?.clone();
    match e.code()? {
        "ETAG_MISMATCH" => Some(ComponentError::EtagMismatch { key, message: String::new() }),
        "FIRST_WRITE" => Some(ComponentError::EtagMismatch {
            key,
            message: "first-write concurrency needs the current ETag to replace an existing value".into(),
        }),
        _ => None,
    }
}

/// The reply of `redis_get.lua`: type, data, version, content type, PTTL.
type GetReply = Option<(String, Option<Vec<u8>>, Option<String>, Option<String>, i64)>;

#[async_trait::async_trait]
impl Lifecycle for RedisStateStore {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let settings = RedisSettings::from_metadata(&metadata)?;
        let default_ttl = match integer(&metadata, TTL_IN_SECONDS, 0)? {
            s if s > 0 => Some(Duration::from_secs(s as u64)),
            _ => None,
        };
        let (conn, keep_alive) = settings.connect_kept_alive(&self.name).await?;
        let _ = self.keep_alive.set(keep_alive);
        self.conn.set((settings, conn, default_ttl)).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok([features::ETAG, features::TRANSACTIONAL, features::TTL].map(String::from).to_vec())
    }

    async fn ping(&self) -> Result<()> {
        let (_, conn, _) = self.parts()?;
        ::redis::cmd("PING").query_async::<()>(&mut conn.clone()).await.map_err(|e| self.error(e))
    }
}

#[async_trait::async_trait]
impl StateStore for RedisStateStore {
    async fn get(&self, request: GetRequest) -> Result<Option<StateItem>> {
        let (_, conn, _) = self.parts()?;
        let reply: GetReply =
            get_script().key(&request.key).invoke_async(&mut conn.clone()).await.map_err(|e| self.error(e))?;
        let Some((kind, data, version, content_type, pttl)) = reply else { return Ok(None) };
        let expires_at = (pttl >= 0).then(|| now_millis() + pttl);
        if kind == "string" {
            let data = data.unwrap_or_default();
            return Ok(Some(StateItem { data, etag: None, metadata: expiry_metadata(expires_at), content_type: None }));
        }
        let (Some(data), Some(version)) = (data, version) else {
            return Err(ComponentError::internal(format!(
                "redis key `{}`: required hash field 'data' or 'version' was not found",
                request.key
            )));
        };
        Ok(Some(StateItem { data, etag: Some(version), metadata: expiry_metadata(expires_at), content_type }))
    }

    async fn set(&self, request: SetRequest) -> Result<()> {
        self.write(vec![TransactionOperation::Set(request)]).await
    }

    async fn delete(&self, request: DeleteRequest) -> Result<()> {
        self.write(vec![TransactionOperation::Delete(request)]).await
    }

    /// All reads at once over the multiplexed connection (Redis pipelines
    /// them); each key's failure is its own.
    async fn bulk_get(&self, requests: Vec<GetRequest>) -> Result<Vec<BulkStateItem>> {
        let reads = requests.into_iter().map(|request| async move {
            let key = request.key.clone();
            match self.get(request).await {
                Ok(item) => BulkStateItem { key, item, error: None },
                Err(e) => BulkStateItem { key, item: None, error: Some(e.to_string()) },
            }
        });
        Ok(futures::future::join_all(reads).await)
    }

    async fn bulk_set(&self, requests: Vec<SetRequest>) -> Result<()> {
        let writes = requests.into_iter().map(|r| async move { (r.key.clone(), self.set(r).await) });
        bulk_result(futures::future::join_all(writes).await)
    }

    async fn bulk_delete(&self, requests: Vec<DeleteRequest>) -> Result<()> {
        let deletes = requests.into_iter().map(|r| async move { (r.key.clone(), self.delete(r).await) });
        bulk_result(futures::future::join_all(deletes).await)
    }

    async fn transact(&self, operations: Vec<TransactionOperation>, _metadata: Metadata) -> Result<()> {
        if operations.is_empty() {
            return Ok(());
        }
        self.write(operations).await
    }
}

fn bulk_result(results: Vec<(String, Result<()>)>) -> Result<()> {
    let failed: Vec<_> = results.into_iter().filter_map(|(key, r)| r.err().map(|e| (key, e))).collect();
    if failed.is_empty() { Ok(()) } else { Err(ComponentError::Bulk(failed)) }
}
