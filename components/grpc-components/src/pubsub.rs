//! `PubSub`: topics with consumer groups, at-least-once.
//!
//! Each topic has groups; each group has a queue ordered by message sequence.
//! Publishing appends to every group of the topic; a `PullMessages` stream
//! takes from its group's queue and keeps up to [`WINDOW`] messages in flight
//! until they are acked. A nack (`ack_error`) puts the message back at its
//! place (it is redelivered before newer ones); when a stream ends, whatever
//! it had in flight goes back too. A subscription without `consumerID` is a
//! group of its own that ends with it; a named group outlives its streams.
//!
//! **Durability.** With `--data-dir`, each instance appends every event that
//! matters for its named groups (group created, message published, message
//! acked) to `<data-dir>/<instance>.pubsub.log` before answering, and replays
//! that log when the instance is initialised again, so a process that is
//! killed and restarted still holds every message a named group has not
//! acked. Records are written with one `write` each (no `fsync`): they
//! survive the process dying, not the machine. A torn last record is cut off
//! on replay. The log is never compacted (fine for a test component).

use std::collections::{BTreeMap, HashMap};
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use prost::Message as _;
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::common::{Instances, instance_name, log};
use crate::pb::components as c;

/// Subscribe metadata naming a consumer group.
const CONSUMER_ID: &str = "consumerID";
/// Unacked messages one stream may hold.
const WINDOW: usize = 64;

/// The service.
pub struct PubSub {
    instances: Instances<Broker>,
    data_dir: Option<PathBuf>,
}

impl PubSub {
    /// A service whose named groups persist under `data_dir`, if given.
    pub fn new(data_dir: Option<PathBuf>) -> Self {
        Self { instances: Instances::default(), data_dir }
    }
}

#[derive(Clone)]
struct Msg {
    seq: u64,
    topic: String,
    data: Vec<u8>,
    metadata: HashMap<String, String>,
    content_type: String,
}

/// One log record.
#[derive(Clone, PartialEq, prost::Message)]
struct Record {
    /// 1 = group created, 2 = message published, 3 = message acked.
    #[prost(uint32, tag = "1")]
    kind: u32,
    #[prost(string, tag = "2")]
    topic: String,
    #[prost(string, tag = "3")]
    group: String,
    #[prost(uint64, tag = "4")]
    seq: u64,
    #[prost(bytes = "vec", tag = "5")]
    data: Vec<u8>,
    #[prost(map = "string, string", tag = "6")]
    metadata: HashMap<String, String>,
    #[prost(string, tag = "7")]
    content_type: String,
}

const GROUP: u32 = 1;
const PUBLISH: u32 = 2;
const ACK: u32 = 3;

#[derive(Default)]
struct Group {
    durable: bool,
    pending: Mutex<BTreeMap<u64, Msg>>,
    ready: Notify,
}

impl Group {
    fn push(&self, message: Msg) {
        self.pending.lock().expect("queue lock").insert(message.seq, message);
        self.ready.notify_waiters();
    }

    /// The oldest pending message; cancel-safe (takes it only when returning).
    async fn pop(&self) -> Msg {
        loop {
            let ready = self.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some((_, message)) = self.pending.lock().expect("queue lock").pop_first() {
                return message;
            }
            ready.await;
        }
    }
}

#[derive(Default)]
struct Topics {
    /// topic → group name → group.
    groups: HashMap<String, HashMap<String, Arc<Group>>>,
    next_seq: u64,
    next_anonymous: u64,
}

struct Broker {
    topics: Mutex<Topics>,
    log: Option<Mutex<std::fs::File>>,
}

impl Broker {
    /// A broker; with `path`, replays the log there and appends to it.
    fn open(path: Option<PathBuf>) -> Result<Self, String> {
        let mut topics = Topics::default();
        let Some(path) = path else { return Ok(Self { topics: Mutex::new(topics), log: None }) };
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        let mut rest = &bytes[..];
        let mut good = 0;
        let mut replayed = 0usize;
        while !rest.is_empty() {
            let Ok(record) = Record::decode_length_delimited(&mut rest) else { break };
            good = bytes.len() - rest.len();
            replayed += 1;
            match record.kind {
                GROUP => {
                    let group = Arc::new(Group { durable: true, ..Group::default() });
                    topics.groups.entry(record.topic).or_default().entry(record.group).or_insert(group);
                }
                PUBLISH => {
                    topics.next_seq = topics.next_seq.max(record.seq + 1);
                    let message = Msg {
                        seq: record.seq,
                        topic: record.topic.clone(),
                        data: record.data,
                        metadata: record.metadata,
                        content_type: record.content_type,
                    };
                    for group in topics.groups.get(&record.topic).into_iter().flat_map(|g| g.values()) {
                        group.push(message.clone());
                    }
                }
                ACK => {
                    if let Some(group) = topics.groups.get(&record.topic).and_then(|g| g.get(&record.group)) {
                        group.pending.lock().expect("queue lock").remove(&record.seq);
                    }
                }
                _ => {}
            }
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        // Cut a torn last record, or later appends would hide behind it.
        file.set_len(good as u64).map_err(|e| format!("{}: {e}", path.display()))?;
        if replayed > 0 {
            log(format!("replayed {replayed} records from {}", path.display()));
        }
        Ok(Self { topics: Mutex::new(topics), log: Some(Mutex::new(file)) })
    }

    fn append(&self, record: &Record) -> Result<(), Status> {
        let Some(file) = &self.log else { return Ok(()) };
        let bytes = record.encode_length_delimited_to_vec();
        file.lock()
            .expect("log lock")
            .write_all(&bytes)
            .map_err(|e| Status::internal(format!("writing the pubsub log: {e}")))
    }

    /// The group a subscription joins: its named group (created, and logged,
    /// if new) or a fresh anonymous one.
    fn join(&self, topic: &str, consumer: Option<&str>) -> Result<(String, Arc<Group>), Status> {
        let mut topics = self.topics.lock().expect("topics lock");
        match consumer {
            Some(name) => {
                if let Some(group) = topics.groups.get(topic).and_then(|g| g.get(name)) {
                    return Ok((name.to_owned(), group.clone()));
                }
                let durable = self.log.is_some();
                if durable {
                    self.append(&Record {
                        kind: GROUP,
                        topic: topic.to_owned(),
                        group: name.to_owned(),
                        ..Record::default()
                    })?;
                }
                let group = Arc::new(Group { durable, ..Group::default() });
                topics.groups.entry(topic.to_owned()).or_default().insert(name.to_owned(), group.clone());
                Ok((name.to_owned(), group))
            }
            None => {
                topics.next_anonymous += 1;
                let name = format!("\0anonymous-{}", topics.next_anonymous);
                let group = Arc::new(Group::default());
                topics.groups.entry(topic.to_owned()).or_default().insert(name.clone(), group.clone());
                Ok((name, group))
            }
        }
    }

    fn leave(&self, topic: &str, name: &str) {
        if let Some(groups) = self.topics.lock().expect("topics lock").groups.get_mut(topic) {
            groups.remove(name);
        }
    }

    fn publish(
        &self,
        topic: String,
        data: Vec<u8>,
        metadata: HashMap<String, String>,
        content_type: String,
    ) -> Result<(), Status> {
        if topic.is_empty() {
            return Err(Status::invalid_argument("topic name is empty"));
        }
        let mut topics = self.topics.lock().expect("topics lock");
        let seq = topics.next_seq;
        let message = Msg { seq, topic, data, metadata, content_type };
        let groups: Vec<Arc<Group>> =
            topics.groups.get(&message.topic).into_iter().flat_map(|g| g.values().cloned()).collect();
        if groups.iter().any(|g| g.durable) {
            self.append(&Record {
                kind: PUBLISH,
                topic: message.topic.clone(),
                seq,
                data: message.data.clone(),
                metadata: message.metadata.clone(),
                content_type: message.content_type.clone(),
                ..Record::default()
            })?;
        }
        topics.next_seq += 1;
        for group in groups {
            group.push(message.clone());
        }
        Ok(())
    }

    fn acked(&self, group_name: &str, group: &Group, message: &Msg) {
        if group.durable {
            let record = Record {
                kind: ACK,
                topic: message.topic.clone(),
                group: group_name.to_owned(),
                seq: message.seq,
                ..Record::default()
            };
            if let Err(e) = self.append(&record) {
                log(format!("{e}"));
            }
        }
    }
}

/// Feeds one stream from its group and reads its acks until either side ends;
/// then puts back whatever was in flight.
async fn serve_subscription(
    broker: Arc<Broker>,
    topic: String,
    group_name: String,
    group: Arc<Group>,
    mut acks: Streaming<c::PullMessagesRequest>,
    tx: mpsc::Sender<Result<c::PullMessagesResponse, Status>>,
) {
    let mut in_flight: HashMap<String, Msg> = HashMap::new();
    loop {
        tokio::select! {
            biased;
            ack = acks.message() => match ack {
                Ok(Some(ack)) => {
                    if let Some(message) = in_flight.remove(&ack.ack_message_id) {
                        if ack.ack_error.is_some() {
                            group.push(message);
                        } else {
                            broker.acked(&group_name, &group, &message);
                        }
                    }
                }
                Ok(None) | Err(_) => break,
            },
            message = group.pop(), if in_flight.len() < WINDOW => {
                let response = c::PullMessagesResponse {
                    data: message.data.clone(),
                    topic_name: message.topic.clone(),
                    metadata: message.metadata.clone(),
                    content_type: message.content_type.clone(),
                    id: message.seq.to_string(),
                };
                in_flight.insert(response.id.clone(), message);
                // Never blocks: the channel holds WINDOW and only in-flight
                // messages are in it.
                if tx.send(Ok(response)).await.is_err() {
                    break;
                }
            }
            () = tx.closed() => break,
        }
    }
    for (_, message) in in_flight {
        group.push(message);
    }
    if !group.durable && group_name.starts_with('\0') {
        broker.leave(&topic, &group_name);
    }
}

#[tonic::async_trait]
impl c::pub_sub_server::PubSub for PubSub {
    async fn init(&self, request: Request<c::PubSubInitRequest>) -> Result<Response<c::PubSubInitResponse>, Status> {
        let name = instance_name(&request);
        let path = self.data_dir.as_ref().map(|dir| dir.join(format!("{}.pubsub.log", file_safe(&name))));
        self.instances.init(&name, || Broker::open(path).map_err(Status::internal))?;
        Ok(Response::new(c::PubSubInitResponse {}))
    }

    async fn features(&self, request: Request<c::FeaturesRequest>) -> Result<Response<c::FeaturesResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::FeaturesResponse { features: vec!["BULK_PUBSUB".to_owned()] }))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn publish(&self, request: Request<c::PublishRequest>) -> Result<Response<c::PublishResponse>, Status> {
        let broker = self.instances.get(&request)?;
        let r = request.into_inner();
        broker.publish(r.topic, r.data, r.metadata, r.content_type)?;
        Ok(Response::new(c::PublishResponse {}))
    }

    async fn bulk_publish(
        &self,
        request: Request<c::BulkPublishRequest>,
    ) -> Result<Response<c::BulkPublishResponse>, Status> {
        let broker = self.instances.get(&request)?;
        let r = request.into_inner();
        let mut failed_entries = Vec::new();
        for entry in r.entries {
            let mut metadata = r.metadata.clone();
            metadata.extend(entry.metadata);
            if let Err(e) = broker.publish(r.topic.clone(), entry.event, metadata, entry.content_type) {
                failed_entries.push(c::BulkPublishResponseFailedEntry {
                    entry_id: entry.entry_id,
                    error: e.message().to_owned(),
                });
            }
        }
        Ok(Response::new(c::BulkPublishResponse { failed_entries }))
    }

    async fn pull_messages(
        &self,
        request: Request<Streaming<c::PullMessagesRequest>>,
    ) -> Result<Response<tonic::codegen::BoxStream<c::PullMessagesResponse>>, Status> {
        let broker = self.instances.get(&request)?;
        let mut acks = request.into_inner();
        // The first message names the topic. The subscription is registered
        // before the response starts, so a host that publishes right after
        // the stream opened is sure the message reaches it.
        let first = acks.message().await?.ok_or_else(|| Status::invalid_argument("stream ended before the topic"))?;
        let topic = first
            .topic
            .filter(|t| !t.name.is_empty())
            .ok_or_else(|| Status::invalid_argument("the first PullMessagesRequest must carry the topic"))?;
        let consumer = topic.metadata.get(CONSUMER_ID).map(String::as_str).filter(|c| !c.is_empty());
        let (group_name, group) = broker.join(&topic.name, consumer)?;
        let (tx, rx) = mpsc::channel(WINDOW);
        tokio::spawn(serve_subscription(broker, topic.name, group_name, group, acks, tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

/// `name` usable as a file name.
fn file_safe(name: &str) -> String {
    let safe: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect();
    if safe.is_empty() { "default".to_owned() } else { safe }
}
