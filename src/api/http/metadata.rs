//! `GET /v1.0/metadata` (daprd's JSON shape; empty parts omitted) and
//! `PUT /v1.0/metadata/{key}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::extract::Path;
use super::{Body, Shared};

pub(super) async fn get_metadata(State(sidecar): Shared) -> Json<Value> {
    let components: Vec<Value> = sidecar
        .components()
        .into_iter()
        .map(|c| {
            json!({
                "name": c.name,
                "type": c.type_name,
                "version": c.version,
                "capabilities": c.capabilities,
                // plughost's own: where the component runs, and its kinds.
                "mode": c.mode,
                "kinds": c.kinds,
                "status": c.status,
                "health": health(&c),
            })
        })
        .collect();
    let subscriptions: Vec<Value> = sidecar
        .subscriptions()
        .into_iter()
        .map(|s| {
            json!({
                "pubsubname": s.pubsub,
                "topic": s.topic,
                "metadata": s.metadata,
                "deadLetterTopic": s.dead_letter_topic,
                "type": s.kind.as_str(),
            })
        })
        .collect();
    Json(json!({
        "id": sidecar.config().app_id,
        "runtimeVersion": env!("CARGO_PKG_VERSION"),
        "enabledFeatures": [],
        "components": components,
        "extended": sidecar.extended_metadata(),
        "subscriptions": subscriptions,
        "actorRuntime": { "runtimeStatus": "DISABLED" },
    }))
}

/// The last probe and the last error, with RFC 3339 times.
pub(crate) fn health(c: &crate::api::sidecar::ComponentView) -> Value {
    let at = |t: std::time::SystemTime| {
        time::OffsetDateTime::from(t).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
    };
    let mut health = json!({});
    if let Some(probe) = &c.probe {
        health["ok"] = json!(probe.ok);
        health["latencyMs"] = json!(probe.latency.as_secs_f64() * 1000.0);
        health["checkedAt"] = json!(at(probe.at));
    }
    if let Some((error, when)) = &c.last_error {
        health["lastError"] = json!(error);
        health["lastErrorAt"] = json!(at(*when));
    }
    health
}

pub(super) async fn set_metadata(State(sidecar): Shared, Path(key): Path<String>, Body(body): Body) -> StatusCode {
    sidecar.set_metadata(key, String::from_utf8_lossy(&body).into_owned());
    StatusCode::NO_CONTENT
}
