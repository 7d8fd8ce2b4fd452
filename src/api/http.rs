//! Dapr's HTTP API (protocol spec B7) with axum: each route parses its
//! request, calls the [`Sidecar`] and writes Dapr's answer. Per-request
//! component metadata comes as `metadata.<key>` query parameters and goes
//! back as `metadata.<key>` headers; success without a body is 204; errors
//! are `{"errorCode", "message"}` ([`ApiError`]), also for a path or query
//! that cannot be decoded. `server` is the accept loop, with the
//! [`ApiLimits`](super::ApiLimits).

mod body;
mod extract;
mod metadata;
mod server;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde::Deserialize;
use serde_json::Value;
use tokio::net::TcpListener;

use super::connections::ConnectionCap;

use super::Sidecar;
use super::auth::{TOKEN_HEADER, Token};
use super::cloudevents;
use super::errors::ApiError;
use crate::kinds::Metadata;
use crate::kinds::output_binding::InvokeRequest;
use crate::kinds::pubsub::BulkMessage;
use body::{Body, json};
use extract::{Path, Query};
pub(crate) use metadata::health as health_json;

type Shared = State<Arc<Sidecar>>;
type Params = Query<Vec<(String, String)>>;
type ApiResult = Result<Response, ApiError>;

/// The HTTP routes. Every route but `/v1.0/healthz` and
/// `/v1.0/healthz/outbound` requires the API token, if one is set.
pub fn router(sidecar: Arc<Sidecar>) -> Router {
    let token = Token::new(sidecar.config().token.as_deref());
    let protected = Router::new()
        .route("/v1.0/state/{store}", post(state::save_state).put(state::save_state))
        .route(
            "/v1.0/state/{store}/{key}",
            get(state::get_state).delete(state::delete_state).post(state::state_call).put(state::state_call),
        )
        .route("/v1.0/publish/bulk/{pubsub}/{*topic}", post(bulk_publish).put(bulk_publish))
        .route("/v1.0-alpha1/publish/bulk/{pubsub}/{*topic}", post(bulk_publish).put(bulk_publish))
        .route("/v1.0/publish/{pubsub}/{*topic}", post(publish).put(publish))
        // A trailing slash and no topic: Dapr's JSON error, not a bare 404.
        .route("/v1.0/publish/bulk/{pubsub}/", post(no_topic).put(no_topic))
        .route("/v1.0-alpha1/publish/bulk/{pubsub}/", post(no_topic).put(no_topic))
        .route("/v1.0/publish/{pubsub}/", post(no_topic).put(no_topic))
        .route("/v1.0/bindings/{name}", post(invoke_binding).put(invoke_binding))
        .route("/v1.0/secrets/{store}/{key}", get(get_secret))
        .route("/v1.0/metadata", get(metadata::get_metadata))
        .route("/v1.0/metadata/{key}", put(metadata::set_metadata))
        .route("/v1.0/shutdown", post(shutdown))
        .merge(crate::ops::admin::routes())
        .route_layer(middleware::from_fn_with_state(token, check_token));
    let health =
        Router::new().route("/v1.0/healthz", get(healthz)).route("/v1.0/healthz/outbound", get(healthz_outbound));
    protected
        .merge(health)
        .with_state(sidecar)
        .layer(axum::middleware::from_fn(crate::ops::trace::http_layer))
        .layer(axum::middleware::from_fn(crate::metrics::count_http))
}

/// Serves [`router`] on `listener` until the sidecar stops.
pub(super) async fn serve(sidecar: Arc<Sidecar>, listener: TcpListener, cap: ConnectionCap) -> Result<(), String> {
    let stopping = sidecar.clone();
    let limits = sidecar.config().limits.clone();
    server::serve(listener, router(sidecar), &limits, cap, async move { stopping.stopping().await }).await
}

async fn check_token(State(token): State<Token>, request: Request, next: Next) -> Response {
    if token.admits(request.headers().get(TOKEN_HEADER).map(HeaderValue::as_bytes)) {
        next.run(request).await
    } else {
        (StatusCode::UNAUTHORIZED, "invalid api token").into_response()
    }
}

#[derive(Deserialize)]
struct Health {
    appid: Option<String>,
}

async fn healthz(State(sidecar): Shared, Query(health): Query<Health>) -> ApiResult {
    match health.appid {
        Some(id) if id != sidecar.config().app_id => Err(ApiError::new(
            tonic::Code::Internal,
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_HEALTH_APPID_NOT_MATCH",
            "the app id does not match",
        )),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Dapr: 204 once the sidecar can make outbound calls, i.e. its components
/// serve. plughost: and every serving component is healthy now (its last
/// probe passed, its process and connection are up); else 500
/// `ERR_OUTBOUND_HEALTH_NOT_READY` naming the ones that are not.
async fn healthz_outbound(State(sidecar): Shared) -> ApiResult {
    let unhealthy = sidecar.unhealthy();
    if unhealthy.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let names: Vec<String> = unhealthy.iter().map(|(name, status)| format!("{name} ({status})")).collect();
    Err(ApiError::new(
        tonic::Code::Unavailable,
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERR_OUTBOUND_HEALTH_NOT_READY",
        format!("components not healthy: {}", names.join(", ")),
    ))
}

async fn shutdown(State(sidecar): Shared) -> StatusCode {
    tracing::info!("shutdown requested through the HTTP API");
    sidecar.request_shutdown();
    StatusCode::NO_CONTENT
}

/// The `metadata.<key>` query parameters.
fn query_metadata(params: &[(String, String)]) -> Metadata {
    params.iter().filter_map(|(k, v)| Some((k.strip_prefix("metadata.")?.to_owned(), v.clone()))).collect()
}

fn query<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Adds `metadata.<key>` headers (skipping what is not a valid header).
fn with_metadata_headers(headers: &mut HeaderMap, metadata: &Metadata) {
    for (key, value) in metadata {
        let name = HeaderName::try_from(format!("metadata.{key}"));
        if let (Ok(name), Ok(value)) = (name, HeaderValue::try_from(value.as_str())) {
            headers.insert(name, value);
        }
    }
}

fn content_type(headers: &HeaderMap) -> &str {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

async fn publish(
    State(sidecar): Shared,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(params): Params,
    headers: HeaderMap,
    Body(body): Body,
) -> ApiResult {
    sidecar.publish(&pubsub, &topic, &body, content_type(&headers), query_metadata(&params)).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `POST /v1.0/publish/{pubsub}/` (and bulk): no topic.
async fn no_topic(State(sidecar): Shared, Path(pubsub): Path<String>) -> ApiResult {
    sidecar.publish(&pubsub, "", &[], "", Metadata::new()).await?;
    Err(ApiError::topic_empty(&pubsub))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BulkEntry {
    entry_id: String,
    #[serde(default)]
    event: Value,
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    metadata: Metadata,
}

async fn bulk_publish(
    State(sidecar): Shared,
    Path((pubsub, topic)): Path<(String, String)>,
    Query(params): Params,
    Body(body): Body,
) -> ApiResult {
    let entries: Vec<BulkEntry> = json(&body)?;
    let entries = entries
        .into_iter()
        .map(|e| {
            // A string event of a non-JSON type is its text; anything else its JSON.
            let data = match e.event {
                Value::String(text) if !cloudevents::is_json(&e.content_type) => text.into_bytes(),
                other => other.to_string().into_bytes(),
            };
            let content_type = (!e.content_type.is_empty()).then_some(e.content_type);
            BulkMessage { entry_id: e.entry_id, data, content_type, metadata: e.metadata }
        })
        .collect();
    let failed = sidecar.bulk_publish(&pubsub, &topic, entries, query_metadata(&params)).await?;
    if failed.is_empty() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let failed: Vec<Value> =
        failed.into_iter().map(|f| serde_json::json!({ "entryId": f.entry_id, "error": f.error })).collect();
    let body = serde_json::json!({ "failedEntries": failed, "errorCode": "ERR_PUBSUB_PUBLISH_MESSAGE" });
    Ok((StatusCode::INTERNAL_SERVER_ERROR, axum::Json(body)).into_response())
}

#[derive(Deserialize)]
struct BindingCall {
    #[serde(default)]
    data: Value,
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    operation: String,
}

async fn invoke_binding(State(sidecar): Shared, Path(name): Path<String>, Body(body): Body) -> ApiResult {
    let call: BindingCall = json(&body)?;
    // As daprd: `data` reaches the binding as JSON text.
    let data = serde_json::to_vec(&call.data).map_err(|e| ApiError::malformed(e.to_string()))?;
    let answer = sidecar
        .invoke_binding(&name, InvokeRequest { operation: call.operation, data, metadata: call.metadata })
        .await?;
    let mut response = if answer.data.is_empty() {
        StatusCode::NO_CONTENT.into_response()
    } else {
        let mut response = answer.data.into_response();
        let content_type = answer.content_type.as_deref().unwrap_or("application/json");
        if let Ok(value) = HeaderValue::try_from(content_type) {
            response.headers_mut().insert(header::CONTENT_TYPE, value);
        }
        response
    };
    with_metadata_headers(response.headers_mut(), &answer.metadata);
    Ok(response)
}

/// `GET /v1.0/secrets/{store}/{key}`, and `.../bulk` for all of them.
async fn get_secret(State(sidecar): Shared, Path((store, key)): Path<(String, String)>, params: Params) -> ApiResult {
    let metadata = query_metadata(&params);
    if key == "bulk" {
        let secrets: BTreeMap<_, _> = sidecar.bulk_secrets(&store, metadata).await?;
        return Ok(axum::Json(secrets).into_response());
    }
    Ok(axum::Json(sidecar.get_secret(&store, &key, metadata).await?).into_response())
}
