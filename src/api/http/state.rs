//! The state routes: save, get (with `ETag`), delete (with `If-Match`), bulk
//! get and transactions, with daprd's JSON shapes.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{Path, Query};
use super::{ApiResult, Body, Params, Shared, json, query, query_metadata, with_metadata_headers};
use crate::api::errors::ApiError;
use crate::kinds::Metadata;
use crate::kinds::state::{
    Concurrency, Consistency, DeleteRequest, GetRequest, SetRequest, StateOptions, TransactionOperation,
};

#[derive(Deserialize, Default)]
struct OptionsJson {
    concurrency: Option<String>,
    consistency: Option<String>,
}

fn concurrency(value: Option<&str>) -> Result<Concurrency, ApiError> {
    match value.unwrap_or_default() {
        "" => Ok(Concurrency::Unspecified),
        "first-write" => Ok(Concurrency::FirstWrite),
        "last-write" => Ok(Concurrency::LastWrite),
        other => Err(ApiError::malformed(format!("unknown concurrency `{other}` (first-write or last-write)"))),
    }
}

fn consistency(value: Option<&str>) -> Result<Consistency, ApiError> {
    match value.unwrap_or_default() {
        "" => Ok(Consistency::Unspecified),
        "eventual" => Ok(Consistency::Eventual),
        "strong" => Ok(Consistency::Strong),
        other => Err(ApiError::malformed(format!("unknown consistency `{other}` (eventual or strong)"))),
    }
}

impl OptionsJson {
    fn parse(options: Option<Self>) -> Result<StateOptions, ApiError> {
        let options = options.unwrap_or_default();
        Ok(StateOptions {
            concurrency: concurrency(options.concurrency.as_deref())?,
            consistency: consistency(options.consistency.as_deref())?,
        })
    }
}

/// One item of a save, or the `request` of a transaction operation.
#[derive(Deserialize)]
struct StateEntry {
    key: String,
    #[serde(default)]
    value: Value,
    etag: Option<String>,
    #[serde(default)]
    metadata: Metadata,
    options: Option<OptionsJson>,
}

impl StateEntry {
    /// A write: the value is stored as its JSON text, as daprd does (a JSON
    /// string keeps its quotes).
    fn set(self) -> Result<SetRequest, ApiError> {
        Ok(SetRequest {
            value: serde_json::to_vec(&self.value).map_err(|e| ApiError::malformed(e.to_string()))?,
            options: OptionsJson::parse(self.options)?,
            key: self.key,
            etag: self.etag,
            metadata: self.metadata,
            content_type: None,
        })
    }

    fn delete(self) -> Result<DeleteRequest, ApiError> {
        Ok(DeleteRequest {
            options: OptionsJson::parse(self.options)?,
            key: self.key,
            etag: self.etag,
            metadata: self.metadata,
        })
    }
}

pub(super) async fn save_state(State(sidecar): Shared, Path(store): Path<String>, Body(body): Body) -> ApiResult {
    let entries: Vec<StateEntry> = json(&body)?;
    let requests = entries.into_iter().map(StateEntry::set).collect::<Result<_, _>>()?;
    sidecar.save_state(&store, requests).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn get_state(
    State(sidecar): Shared,
    Path((store, key)): Path<(String, String)>,
    params: Params,
) -> ApiResult {
    let request =
        GetRequest { key, metadata: query_metadata(&params), consistency: consistency(query(&params, "consistency"))? };
    let Some(item) = sidecar.get_state(&store, request).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let mut response = item.data.into_response();
    let headers = response.headers_mut();
    let content_type = item.content_type.as_deref().unwrap_or("application/json");
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::try_from(content_type).unwrap_or(HeaderValue::from_static("application/json")),
    );
    if let Some(etag) = item.etag.and_then(|e| HeaderValue::try_from(e).ok()) {
        headers.insert(header::ETAG, etag);
    }
    with_metadata_headers(headers, &item.metadata);
    Ok(response)
}

pub(super) async fn delete_state(
    State(sidecar): Shared,
    Path((store, key)): Path<(String, String)>,
    params: Params,
    headers: HeaderMap,
) -> ApiResult {
    let etag = match headers.get(header::IF_MATCH) {
        Some(value) => Some(value.to_str().map_err(|_| ApiError::malformed("If-Match is not text"))?.to_owned()),
        None => None,
    };
    let options = StateOptions {
        concurrency: concurrency(query(&params, "concurrency"))?,
        consistency: consistency(query(&params, "consistency"))?,
    };
    let request = DeleteRequest { key, etag, metadata: query_metadata(&params), options };
    sidecar.delete_state(&store, vec![request]).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// POST / PUT on `/v1.0/state/{store}/{bulk|transaction}`.
pub(super) async fn state_call(
    sidecar: Shared,
    Path((store, call)): Path<(String, String)>,
    params: Params,
    body: Body,
) -> ApiResult {
    match call.as_str() {
        "bulk" => bulk_get(sidecar, store, params, body).await,
        "transaction" => transaction(sidecar, store, params, body).await,
        _ => Ok(StatusCode::METHOD_NOT_ALLOWED.into_response()),
    }
}

#[derive(Deserialize)]
struct BulkGet {
    #[serde(default)]
    keys: Vec<String>,
    #[serde(default)]
    metadata: Metadata,
}

async fn bulk_get(State(sidecar): Shared, store: String, Query(params): Params, Body(body): Body) -> ApiResult {
    let request: BulkGet = json(&body)?;
    let mut metadata = request.metadata;
    metadata.extend(query_metadata(&params));
    let items = sidecar.bulk_get_state(&store, request.keys, metadata).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|i| {
            let mut entry = serde_json::Map::new();
            entry.insert("key".into(), i.key.into());
            if let Some(item) = i.item {
                // Raw JSON when the bytes are JSON, else their text.
                let data = serde_json::from_slice(&item.data)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&item.data).into_owned()));
                entry.insert("data".into(), data);
                if let Some(etag) = item.etag {
                    entry.insert("etag".into(), etag.into());
                }
                if !item.metadata.is_empty() {
                    entry.insert("metadata".into(), serde_json::to_value(item.metadata).unwrap_or_default());
                }
            }
            if let Some(error) = i.error {
                entry.insert("error".into(), error.into());
            }
            Value::Object(entry)
        })
        .collect();
    Ok(axum::Json(items).into_response())
}

#[derive(Deserialize)]
struct Transaction {
    #[serde(default)]
    operations: Vec<TransactionStep>,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct TransactionStep {
    operation: String,
    request: StateEntry,
}

async fn transaction(State(sidecar): Shared, store: String, Query(params): Params, Body(body): Body) -> ApiResult {
    let request: Transaction = json(&body)?;
    let mut operations = Vec::with_capacity(request.operations.len());
    for step in request.operations {
        operations.push(match step.operation.as_str() {
            "upsert" => TransactionOperation::Set(step.request.set()?),
            "delete" => TransactionOperation::Delete(step.request.delete()?),
            other => return Err(ApiError::unknown_operation(other)),
        });
    }
    let mut metadata = request.metadata;
    metadata.extend(query_metadata(&params));
    sidecar.transact(&store, operations, metadata).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
