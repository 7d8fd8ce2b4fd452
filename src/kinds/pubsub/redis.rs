//! `pubsub.redis`: a broker on Redis Streams, with Dapr's message format
//! (`XADD <topic> * data <payload> metadata <JSON>`), so daprd and plughost
//! can publish to and consume from the same streams.
//!
//! A topic is a stream; a `consumerID` is a consumer group, shared by every
//! subscription that names it, in any plughost instance on the same Redis.
//! Each subscription is its own consumer in the group (`<consumerID>-<uuid>`),
//! reads with `XREADGROUP` and acks with `XACK` (at-least-once). What a
//! consumer took and never acked, because it died or is stuck, is claimed by
//! a live one (`XPENDING` + `XCLAIM`) once idle for `processingTimeout`,
//! checked every `redeliverInterval`. The consumer loop is in
//! `redis_consumer.rs`.
//!
//! A subscription without a `consumerID` gets a group of its own starting at
//! the stream's end (every such subscriber sees each new message), destroyed
//! when it ends.

use crate::component::Lifecycle;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use ::redis::{RedisError, Value};

use super::redis_consumer::{Consumer, Options};
use super::{CONSUMER_ID, Message, PubSub, PublishRequest};
use crate::kinds::redis_conn::{KeepAlive, RedisSettings, duration, integer};
use crate::kinds::{ComponentError, Deliveries, Metadata, Result};

/// A [`PubSub`] on Redis Streams.
#[derive(Debug)]
pub struct RedisPubSub {
    name: String,
    shared: OnceLock<Arc<Shared>>,
    /// Set by `close`: every consumer loop ends.
    closing: tokio::sync::watch::Sender<bool>,
}

/// What the component and its consumer loops share.
#[derive(Debug)]
pub(super) struct Shared {
    pub name: String,
    pub settings: RedisSettings,
    /// For everything but blocking reads (each consumer has its own).
    pub conn: ConnectionManager,
    pub options: Options,
    max_len_approx: Option<u64>,
    _keep_alive: KeepAlive,
}

impl Shared {
    pub fn error(&self, e: RedisError) -> ComponentError {
        self.settings.error(&self.name, e)
    }

    /// `XGROUP CREATE <topic> <group> <start> MKSTREAM`; an existing group
    /// is fine.
    pub async fn create_group(&self, topic: &str, group: &str, start: &str) -> Result<()> {
        let created = ::redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(topic)
            .arg(group)
            .arg(start)
            .arg("MKSTREAM")
            .query_async::<()>(&mut self.conn.clone())
            .await;
        match created {
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            other => other.map_err(|e| self.error(e)),
        }
    }
}

impl RedisPubSub {
    /// A broker for the component `name`, connected by `init`.
    pub fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), shared: OnceLock::new(), closing: tokio::sync::watch::Sender::new(false) }
    }

    fn shared(&self) -> Result<&Arc<Shared>> {
        self.shared.get().ok_or_else(|| ComponentError::internal("pubsub.redis used before init"))
    }
}

/// A stream entry as a [`Message`]: `data`, `metadata` (JSON object of
/// strings) and plughost's optional `contentType`.
pub(super) fn to_message(topic: &str, id: String, fields: std::collections::HashMap<String, Value>) -> Message {
    let bytes = |value: Option<&Value>| match value {
        Some(Value::BulkString(b)) => Some(b.clone()),
        Some(Value::SimpleString(s)) => Some(s.clone().into_bytes()),
        _ => None,
    };
    let metadata = bytes(fields.get("metadata"))
        .and_then(|json| match serde_json::from_slice::<Metadata>(&json) {
            Ok(metadata) => Some(metadata),
            Err(e) => {
                tracing::warn!(topic, id, "redis message metadata is not a JSON object of strings: {e}");
                None
            }
        })
        .unwrap_or_default();
    let content_type = bytes(fields.get("contentType")).map(|b| String::from_utf8_lossy(&b).into_owned());
    Message { data: bytes(fields.get("data")).unwrap_or_default(), topic: topic.to_owned(), id, content_type, metadata }
}

#[async_trait::async_trait]
impl Lifecycle for RedisPubSub {
    async fn init(&self, metadata: Metadata) -> Result<()> {
        let settings = RedisSettings::from_metadata(&metadata)?;
        let options = Options {
            processing_timeout: duration(&metadata, "processingTimeout", Duration::from_secs(60))?,
            redeliver_interval: duration(&metadata, "redeliverInterval", Duration::from_secs(15))?,
            queue_depth: integer(&metadata, "queueDepth", 100)?.max(1) as usize,
            concurrency: integer(&metadata, "concurrency", 10)?.max(1) as usize,
        };
        let max_len_approx = match integer(&metadata, "maxLenApprox", 0)? {
            n if n > 0 => Some(n as u64),
            _ => None,
        };
        let (conn, _keep_alive) = settings.connect_kept_alive(&self.name).await?;
        let shared = Shared { name: self.name.clone(), settings, conn, options, max_len_approx, _keep_alive };
        self.shared.set(Arc::new(shared)).map_err(|_| ComponentError::internal("init called twice"))
    }

    async fn features(&self) -> Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn ping(&self) -> Result<()> {
        let shared = self.shared()?;
        ::redis::cmd("PING").query_async::<()>(&mut shared.conn.clone()).await.map_err(|e| shared.error(e))
    }

    async fn close(&self) -> Result<()> {
        self.closing.send_replace(true);
        Ok(())
    }
}

#[async_trait::async_trait]
impl PubSub for RedisPubSub {
    async fn publish(&self, request: PublishRequest) -> Result<()> {
        if request.topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let shared = self.shared()?;
        let mut xadd = ::redis::cmd("XADD");
        xadd.arg(&request.topic);
        if let Some(n) = shared.max_len_approx {
            xadd.arg("MAXLEN").arg("~").arg(n);
        }
        let metadata = serde_json::to_string(&request.metadata).map_err(ComponentError::internal)?;
        xadd.arg("*").arg("data").arg(&request.data).arg("metadata").arg(metadata);
        if let Some(content_type) = request.content_type.as_deref().filter(|c| !c.is_empty()) {
            xadd.arg("contentType").arg(content_type);
        }
        xadd.query_async::<String>(&mut shared.conn.clone()).await.map(drop).map_err(|e| shared.error(e))
    }

    async fn subscribe(&self, topic: &str, metadata: Metadata) -> Result<Deliveries<Message>> {
        if topic.is_empty() {
            return Err(ComponentError::invalid("topic name is empty"));
        }
        let shared = self.shared()?.clone();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let (group, consumer, own_group) = match metadata.get(CONSUMER_ID).filter(|c| !c.is_empty()) {
            Some(group) => (group.clone(), format!("{group}-{id}"), false),
            None => (format!("plughost-{id}"), format!("plughost-{id}"), true),
        };
        // A named group starts at the stream's beginning (Dapr: `0`), so it
        // gets what was published before its first subscriber; an own group
        // only what comes after this call.
        shared.create_group(topic, &group, if own_group { "$" } else { "0" }).await?;
        let consumer = Consumer::start(shared, topic.to_owned(), group, consumer, own_group).await?;
        Ok(consumer.run(self.closing.subscribe()))
    }
}
