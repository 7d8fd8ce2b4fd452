//! CloudEvents 1.0 envelopes on publish (protocol spec B9), and reading them
//! back for subscribers.
//!
//! Unless the request metadata says `rawPayload=true`, a published payload is
//! wrapped in daprd's JSON envelope before the pub/sub component sees it:
//! `data` holds the payload as JSON for JSON content types, as a string for
//! text, and `data_base64` holds it base64-encoded for binary content. A
//! payload that already is a CloudEvent (`application/cloudevents+json`) is
//! kept and completed (`topic`, `pubsubname`, trace fields, `time`).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value};

use super::errors::ApiError;
use crate::kinds::Metadata;

/// Content type of a JSON CloudEvent.
pub const CLOUDEVENT_CONTENT_TYPE: &str = "application/cloudevents+json";
/// Request metadata that turns the envelope off.
pub const RAW_PAYLOAD: &str = "rawPayload";
const DEFAULT_TYPE: &str = "com.dapr.event.sent";
const DEFAULT_CONTENT_TYPE: &str = "text/plain";

/// One message to publish, as the app sent it.
#[derive(Debug, Clone, Copy)]
pub struct Outgoing<'a> {
    /// The app id: the envelope's `source`.
    pub app_id: &'a str,
    /// The pub/sub component's name.
    pub pubsub: &'a str,
    /// The topic.
    pub topic: &'a str,
    /// The payload's content type; empty if the app gave none.
    pub content_type: &'a str,
    /// The payload.
    pub data: &'a [u8],
    /// Request metadata (`rawPayload`, `cloudevent.*` overrides).
    pub metadata: &'a Metadata,
}

/// Whether `metadata` asks for the payload to go through unwrapped.
pub fn is_raw(metadata: &Metadata) -> bool {
    metadata.get(RAW_PAYLOAD).is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
}

fn media_type(content_type: &str) -> String {
    content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase()
}

/// `application/json`, or any `application/...+json`.
pub fn is_json(content_type: &str) -> bool {
    let media = media_type(content_type);
    media == "application/json" || (media.starts_with("application/") && media.ends_with("+json"))
}

fn is_binary(content_type: &str) -> bool {
    media_type(content_type) == "application/octet-stream"
}

/// The bytes and content type to hand to the pub/sub component.
pub fn outgoing(message: Outgoing<'_>) -> Result<(Vec<u8>, String), ApiError> {
    if is_raw(message.metadata) {
        return Ok((message.data.to_vec(), message.content_type.to_owned()));
    }
    let mut envelope = if media_type(message.content_type) == CLOUDEVENT_CONTENT_TYPE {
        match serde_json::from_slice::<Value>(message.data) {
            Ok(Value::Object(event)) => event,
            _ => return Err(ApiError::malformed("the payload is not a JSON CloudEvent object")),
        }
    } else {
        wrap(message)
    };
    envelope.insert("topic".into(), message.topic.into());
    envelope.insert("pubsubname".into(), message.pubsub.into());
    for field in ["traceid", "traceparent", "tracestate"] {
        let value = message.metadata.get(&format!("cloudevent.{field}")).cloned().unwrap_or_default();
        envelope.entry(field).or_insert(value.into());
    }
    envelope.entry("time").or_insert_with(|| now().into());
    let bytes = serde_json::to_vec(&envelope).map_err(|e| ApiError::malformed(e.to_string()))?;
    Ok((bytes, CLOUDEVENT_CONTENT_TYPE.to_owned()))
}

fn wrap(message: Outgoing<'_>) -> Map<String, Value> {
    let meta = |field: &str| message.metadata.get(&format!("cloudevent.{field}")).filter(|v| !v.is_empty());
    let content_type = if message.content_type.is_empty() { DEFAULT_CONTENT_TYPE } else { message.content_type };
    let mut envelope = Map::new();
    let id = meta("id").cloned().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    envelope.insert("id".into(), id.into());
    envelope.insert("specversion".into(), "1.0".into());
    envelope.insert("datacontenttype".into(), content_type.into());
    envelope.insert("source".into(), meta("source").map_or(message.app_id, String::as_str).into());
    envelope.insert("type".into(), meta("type").map_or(DEFAULT_TYPE, String::as_str).into());
    if let Some(subject) = meta("subject") {
        envelope.insert("subject".into(), subject.as_str().into());
    }
    let text = || Value::String(String::from_utf8_lossy(message.data).into_owned());
    if is_json(content_type) {
        let data = serde_json::from_slice(message.data).unwrap_or_else(|_| text());
        envelope.insert("data".into(), data);
    } else if is_binary(content_type) {
        envelope.insert("data_base64".into(), BASE64.encode(message.data).into());
    } else {
        envelope.insert("data".into(), text());
    }
    envelope
}

fn now() -> String {
    time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// A CloudEvent read back from a delivered message.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Event {
    /// `id`.
    pub id: String,
    /// `source`.
    pub source: String,
    /// `type`.
    pub event_type: String,
    /// `specversion`.
    pub spec_version: String,
    /// `datacontenttype`.
    pub data_content_type: String,
    /// The payload: `data` (a string as its text, anything else as JSON) or
    /// the decoded `data_base64`.
    pub data: Vec<u8>,
    /// Every other attribute (`topic`, `pubsubname`, `time`, `traceid`, ...).
    pub extensions: Map<String, Value>,
}

/// The CloudEvent in `bytes`, or `None` if they are not a JSON object with a
/// `specversion` (a raw payload).
pub fn parse(bytes: &[u8]) -> Option<Event> {
    let Ok(Value::Object(mut fields)) = serde_json::from_slice::<Value>(bytes) else {
        return None;
    };
    fields.get("specversion")?;
    let mut take = |name: &str| match fields.remove(name) {
        Some(Value::String(s)) => s,
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let (id, source, event_type) = (take("id"), take("source"), take("type"));
    let (spec_version, data_content_type) = (take("specversion"), take("datacontenttype"));
    let data = match (fields.remove("data"), fields.remove("data_base64")) {
        (Some(Value::String(text)), _) if !is_json(&data_content_type) => text.into_bytes(),
        (Some(Value::Null) | None, Some(Value::String(encoded))) => BASE64.decode(encoded).ok()?,
        (Some(Value::Null) | None, _) => Vec::new(),
        (Some(value), _) => value.to_string().into_bytes(),
    };
    Some(Event { id, source, event_type, spec_version, data_content_type, data, extensions: fields })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(content_type: &str, data: &[u8], metadata: &[(&str, &str)]) -> (Value, String) {
        let metadata: Metadata = metadata.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let message = Outgoing { app_id: "app", pubsub: "ps", topic: "t", content_type, data, metadata: &metadata };
        let (bytes, content_type) = outgoing(message).unwrap();
        (serde_json::from_slice(&bytes).unwrap_or(Value::Null), content_type)
    }

    #[test]
    fn wraps_json_text_and_binary() {
        let (event, content_type) = publish("application/json", br#"{"a":1}"#, &[]);
        assert_eq!(content_type, CLOUDEVENT_CONTENT_TYPE);
        assert_eq!(event["data"], serde_json::json!({"a": 1}));
        assert_eq!(event["source"], "app");
        assert_eq!(event["type"], DEFAULT_TYPE);
        assert_eq!(event["specversion"], "1.0");
        assert_eq!((event["topic"].as_str(), event["pubsubname"].as_str()), (Some("t"), Some("ps")));
        assert_eq!(event["id"].as_str().unwrap().len(), 36);
        let (event, _) = publish("", b"hi", &[]);
        assert_eq!((event["data"].as_str(), event["datacontenttype"].as_str()), (Some("hi"), Some("text/plain")));
        let (event, _) = publish("application/octet-stream", &[0, 255], &[]);
        assert_eq!(event["data_base64"], "AP8=");
        let (event, _) = publish("application/json", b"not json", &[]);
        assert_eq!(event["data"], "not json");
    }

    #[test]
    fn overrides_raw_and_passthrough() {
        let (event, _) = publish("text/plain", b"x", &[("cloudevent.id", "my-id"), ("cloudevent.type", "my.type")]);
        assert_eq!((event["id"].as_str(), event["type"].as_str()), (Some("my-id"), Some("my.type")));
        let metadata = Metadata::from([("rawPayload".to_owned(), "true".to_owned())]);
        let raw =
            Outgoing { app_id: "a", pubsub: "p", topic: "t", content_type: "", data: b"raw", metadata: &metadata };
        assert_eq!(outgoing(raw).unwrap(), (b"raw".to_vec(), String::new()));
        let own = br#"{"specversion":"1.0","id":"x","source":"s","type":"t","data":5}"#;
        let (event, _) = publish(CLOUDEVENT_CONTENT_TYPE, own, &[]);
        assert_eq!(
            (event["id"].as_str(), event["topic"].as_str(), event["data"].as_i64()),
            (Some("x"), Some("t"), Some(5))
        );
    }

    #[test]
    fn parses_what_it_wrote() {
        let metadata = Metadata::new();
        for (content_type, data) in [
            ("application/json", &br#"{"a":[1,2]}"#[..]),
            ("text/plain", b"hello"),
            ("application/octet-stream", &[1, 2, 3]),
        ] {
            let message = Outgoing { app_id: "a", pubsub: "p", topic: "t", content_type, data, metadata: &metadata };
            let event = parse(&outgoing(message).unwrap().0).unwrap();
            assert_eq!(event.data, data, "{content_type}");
            assert_eq!(event.data_content_type, content_type);
            assert_eq!(event.extensions["topic"], "t");
        }
        assert_eq!(parse(b"plain bytes"), None);
        assert_eq!(parse(br#"{"no":"specversion"}"#), None);
    }
}
