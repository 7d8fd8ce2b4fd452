//! `SubscribeTopicEventsAlpha1`: a streaming subscription (protocol spec B5).
//!
//! The client's first message names the pub/sub and topic; plughost
//! subscribes, answers `initial_response {}` (the Python SDK discards exactly
//! one message before events), then sends each message as an
//! `event_message` (a `TopicEventRequest` read from the CloudEvent) and waits
//! for its `event_processed`: `SUCCESS` acks, `RETRY` nacks (the broker
//! redelivers), `DROP` acks after publishing the message to the dead-letter
//! topic, if one was given. Messages still unanswered when the stream ends
//! are nacked, so nothing is lost.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use prost_types::value::Kind;
use serde_json::Value;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

use super::cloudevents;
use super::sidecar::{Sidecar, Subscription, SubscriptionGuard, SubscriptionType};
use crate::kinds::pubsub::Message;
use crate::kinds::{Deliveries, Delivery, Metadata};
use crate::proto::runtime as rt;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use rt::topic_event_response::TopicEventResponseStatus;

type Item = Result<rt::SubscribeTopicEventsResponseAlpha1, Status>;

/// How many events may wait to be read by the client.
const BUFFER: usize = 32;

/// How many events one stream may hold sent but unanswered; beyond that the
/// messages stay in the broker, where other members of the consumer group
/// can take them.
const MAX_UNANSWERED: usize = 64;

/// Reads the initial request, subscribes, and returns the stream of
/// responses (the `initial_response` first).
pub(super) async fn open(
    sidecar: Arc<Sidecar>,
    mut inbound: Streaming<rt::SubscribeTopicEventsRequestAlpha1>,
) -> Result<tonic::codegen::BoxStream<rt::SubscribeTopicEventsResponseAlpha1>, Status> {
    let first = inbound.message().await?.and_then(|m| m.subscribe_topic_events_request_type);
    let Some(Incoming::InitialRequest(initial)) = first else {
        return Err(Status::invalid_argument("the first message of the stream must be an initial_request"));
    };
    let metadata: Metadata = initial.metadata.into_iter().collect();
    let deliveries = sidecar.subscribe(&initial.pubsub_name, &initial.topic, metadata.clone()).await?;
    let dead_letter_topic = initial.dead_letter_topic.unwrap_or_default();
    let guard = sidecar.track(Subscription {
        pubsub: initial.pubsub_name.clone(),
        topic: initial.topic.clone(),
        metadata,
        dead_letter_topic: dead_letter_topic.clone(),
        kind: SubscriptionType::Streaming,
    });
    let (tx, rx) = mpsc::channel(BUFFER);
    let initial_response = Outgoing::InitialResponse(rt::SubscribeTopicEventsResponseInitialAlpha1 {});
    let _ = tx.try_send(Ok(response(initial_response)));
    let counters = crate::metrics::global().pubsub_counters(&initial.pubsub_name, "stream");
    let pump = Pump {
        sidecar,
        pubsub: initial.pubsub_name,
        dead_letter_topic,
        pending: HashMap::new(),
        counters,
        _guard: guard,
    };
    tokio::spawn(pump.run(deliveries, inbound, tx));
    Ok(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx)))
}

fn response(kind: Outgoing) -> rt::SubscribeTopicEventsResponseAlpha1 {
    rt::SubscribeTopicEventsResponseAlpha1 { subscribe_topic_events_response_type: Some(kind) }
}

/// One subscription's loop: broker → client, acks client → broker.
struct Pump {
    sidecar: Arc<Sidecar>,
    pubsub: String,
    dead_letter_topic: String,
    /// Events sent and not answered yet, by event id (a queue, in case two
    /// in-flight CloudEvents share an id).
    pending: HashMap<String, VecDeque<Delivery<Message>>>,
    /// Delivered, acked, retried, dropped.
    counters: crate::metrics::PubSubCounters,
    _guard: SubscriptionGuard,
}

impl Pump {
    async fn run(
        mut self,
        mut deliveries: Deliveries<Message>,
        mut inbound: Streaming<rt::SubscribeTopicEventsRequestAlpha1>,
        tx: mpsc::Sender<Item>,
    ) {
        let sidecar = self.sidecar.clone();
        // A client that half-closes its side can no longer answer, but still
        // reads: keep delivering (what it cannot ack is redelivered later).
        let mut inbound_open = true;
        loop {
            // Take the next message only when the client has room for it, so
            // a slow reader holds messages in the broker, not here.
            let next = async {
                let permit = tx.reserve().await.ok()?;
                Some((permit, deliveries.next().await))
            };
            let unanswered: usize = self.pending.values().map(VecDeque::len).sum();
            tokio::select! {
                next = next, if unanswered < MAX_UNANSWERED => match next {
                    None => break, // the client is gone
                    Some((permit, None)) => {
                        permit.send(Err(Status::unavailable("the pub/sub component ended the subscription")));
                        break;
                    }
                    Some((permit, Some(delivery))) => {
                        let event = topic_event(&delivery.item, &self.pubsub);
                        self.pending.entry(event.id.clone()).or_default().push_back(delivery);
                        self.counters.delivered.inc();
                        permit.send(Ok(response(Outgoing::EventMessage(event))));
                    }
                },
                message = inbound.message(), if inbound_open => match message {
                    Ok(Some(message)) => {
                        if let Err(status) = self.answer(message).await {
                            let _ = tx.send(Err(status)).await;
                            break;
                        }
                    }
                    Ok(None) => inbound_open = false,
                    Err(_) => break,
                },
                () = tx.closed() => break, // the client is gone (cancelled or disconnected)
                () = sidecar.stopping() => break,
            }
        }
        // Dropping `pending` nacks what the app never answered: redelivered.
        let unanswered: usize = self.pending.values().map(VecDeque::len).sum();
        self.counters.retried.inc_by(unanswered as u64);
        tracing::debug!(pubsub = %self.pubsub, unanswered = self.pending.len(), "streaming subscription closed");
    }

    async fn answer(&mut self, message: rt::SubscribeTopicEventsRequestAlpha1) -> Result<(), Status> {
        let processed = match message.subscribe_topic_events_request_type {
            Some(Incoming::EventProcessed(processed)) => processed,
            Some(Incoming::InitialRequest(_)) => {
                return Err(Status::invalid_argument("initial_request sent twice on one stream"));
            }
            None => return Ok(()),
        };
        let Some(queue) = self.pending.get_mut(&processed.id) else {
            tracing::warn!(id = %processed.id, "event_processed for an event not in flight; ignored");
            return Ok(());
        };
        let delivery = queue.pop_front().expect("queues in `pending` are never empty");
        if queue.is_empty() {
            self.pending.remove(&processed.id);
        }
        let status = processed.status.map_or(0, |s| s.status);
        match TopicEventResponseStatus::try_from(status) {
            Ok(TopicEventResponseStatus::Success) => {
                self.counters.acked.inc();
                delivery.ack();
            }
            Ok(TopicEventResponseStatus::Drop) => {
                if !self.dead_letter_topic.is_empty() {
                    let message = delivery.item.clone();
                    if let Err(e) = self.sidecar.dead_letter(&self.pubsub, &self.dead_letter_topic, message).await {
                        tracing::warn!(topic = %self.dead_letter_topic, "dead-lettering a dropped message failed: {}", e.message);
                        self.counters.retried.inc();
                        delivery.nack("dead-lettering failed");
                        return Ok(());
                    }
                }
                self.counters.dropped.inc();
                delivery.ack();
            }
            Ok(TopicEventResponseStatus::Retry) | Err(_) => {
                self.counters.retried.inc();
                delivery.nack("the app asked for a retry");
            }
        }
        Ok(())
    }
}

/// The event as the app sees it: read from the CloudEvent, or, for a raw
/// payload, the bytes as they are. The app channel's gRPC delivery uses it too.
pub(crate) fn topic_event(message: &Message, pubsub: &str) -> rt::TopicEventRequest {
    let base = rt::TopicEventRequest {
        topic: message.topic.clone(),
        pubsub_name: pubsub.to_owned(),
        spec_version: "1.0".to_owned(),
        r#type: "com.dapr.event.sent".to_owned(),
        ..Default::default()
    };
    match cloudevents::parse(&message.data) {
        Some(event) => rt::TopicEventRequest {
            id: if event.id.is_empty() { message.id.clone() } else { event.id },
            source: event.source,
            r#type: event.event_type,
            spec_version: event.spec_version,
            data_content_type: event.data_content_type,
            data: event.data,
            extensions: Some(prost_types::Struct {
                fields: event.extensions.into_iter().map(|(k, v)| (k, to_prost(v))).collect(),
            }),
            ..base
        },
        None => rt::TopicEventRequest {
            id: message.id.clone(),
            data_content_type: message.content_type.clone().unwrap_or_else(|| "application/octet-stream".to_owned()),
            data: message.data.clone(),
            ..base
        },
    }
}

fn to_prost(value: Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => {
            Kind::ListValue(prost_types::ListValue { values: items.into_iter().map(to_prost).collect() })
        }
        Value::Object(fields) => Kind::StructValue(prost_types::Struct {
            fields: fields.into_iter().map(|(k, v)| (k, to_prost(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_payloads_keep_their_bytes_and_id() {
        let message = Message { id: "m1".into(), topic: "t".into(), data: vec![0, 1], ..Message::default() };
        let event = topic_event(&message, "ps");
        assert_eq!((event.id.as_str(), event.data.as_slice(), event.pubsub_name.as_str()), ("m1", &[0u8, 1][..], "ps"));
        assert_eq!(event.data_content_type, "application/octet-stream");
    }

    #[test]
    fn cloudevents_are_unpacked() {
        let data = br#"{"specversion":"1.0","id":"e1","source":"app","type":"x","datacontenttype":"application/json","data":{"a":1},"traceid":"","n":[1,true,null]}"#;
        let message = Message { id: "m1".into(), topic: "t".into(), data: data.to_vec(), ..Message::default() };
        let event = topic_event(&message, "ps");
        assert_eq!((event.id.as_str(), event.source.as_str(), event.r#type.as_str()), ("e1", "app", "x"));
        assert_eq!(event.data, br#"{"a":1}"#);
        let extensions = event.extensions.unwrap().fields;
        assert!(extensions.contains_key("traceid") && extensions.contains_key("n"));
    }
}
