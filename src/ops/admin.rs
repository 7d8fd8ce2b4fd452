//! The admin API, on the sidecar's HTTP port under `/v1.0-plughost/`
//! (a prefix of plughost's own, so it never collides with a Dapr route),
//! behind the API token like every other route but the health checks:
//!
//! | route | does |
//! |---|---|
//! | `GET /v1.0-plughost/components` | every configured component: mode, type, source, status, health, enabled, process, restarts, generation, calls, errors |
//! | `POST /v1.0-plughost/components/{name}/disable` | calls fail fast with `UNAVAILABLE` until enabled |
//! | `POST /v1.0-plughost/components/{name}/enable` | calls go through again |
//! | `POST /v1.0-plughost/components/{name}/restart` | restarts the component's supervised process |
//! | `POST /v1.0-plughost/components/{name}/reload` | replaces the component by a fresh instance of its spec (the live registry's handover: no call fails); a failure leaves the old one serving and answers `500` |
//!
//! The same operations are [`Host`] methods, for embedders.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tonic::Code;

use super::Ops;
use crate::Host;
use crate::api::Sidecar;
use crate::api::errors::ApiError;
use crate::supervisor::ProcessState;

/// The prefix of every admin route.
pub const PREFIX: &str = "/v1.0-plughost";

/// Why an admin operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// No component of that name started (never configured, or failed).
    #[error("no running component named `{0}`")]
    NotFound(String),
    /// The component has no process plughost supervises.
    #[error("component `{0}` has no supervised process (no plughost.io/command annotation)")]
    NoProcess(String),
    /// The process was given up on (more failures than `maxRestarts`).
    #[error("the process of component `{0}` failed for good (maxRestarts exceeded); restart plughost to try again")]
    ProcessFailed(String),
    /// The fresh instance could not be made or initialised; the old one
    /// keeps serving.
    #[error("reloading component `{0}` failed, the running instance keeps serving: {1}")]
    ReloadFailed(String, String),
}

impl Ops {
    /// Enables or disables component `name`: while disabled, its calls fail
    /// at once with `Unavailable` (see [`super::ComponentOps::disabled_error`]).
    pub fn set_enabled(&self, name: &str, enabled: bool) -> Result<(), AdminError> {
        let component = self.component(name).ok_or_else(|| AdminError::NotFound(name.to_owned()))?;
        let before = component.enabled.swap(enabled, std::sync::atomic::Ordering::Relaxed);
        if before != enabled {
            tracing::warn!(
                component = name,
                "component {} by an operator",
                if enabled { "enabled" } else { "disabled" }
            );
        }
        Ok(())
    }

    /// Restarts component `name`'s supervised process (SIGTERM, grace
    /// period, SIGKILL, start again; counted as a restart). Its connection
    /// reconnects and replays `Init` by itself.
    pub fn restart_process(&self, name: &str) -> Result<(), AdminError> {
        let process = self.processes.process(name).ok_or_else(|| AdminError::NoProcess(name.to_owned()))?;
        if process.state == ProcessState::Failed {
            return Err(AdminError::ProcessFailed(name.to_owned()));
        }
        tracing::warn!(component = name, "component process restart asked by an operator");
        self.processes.restart(name);
        Ok(())
    }

    /// Replaces component `name` by a fresh instance of its spec.
    pub async fn reload(&self, name: &str) -> Result<(), AdminError> {
        self.component(name).ok_or_else(|| AdminError::NotFound(name.to_owned()))?;
        let reload = self.reloader.get().ok_or_else(|| AdminError::NotFound(name.to_owned()))?.clone();
        reload(name.to_owned()).await.map_err(|e| AdminError::ReloadFailed(name.to_owned(), e))
    }
}

impl Host {
    /// Enables or disables component `name` (see [`Ops::set_enabled`]).
    pub fn set_component_enabled(&self, name: &str, enabled: bool) -> Result<(), AdminError> {
        self.ops().set_enabled(name, enabled)
    }

    /// Restarts component `name`'s supervised process (see
    /// [`Ops::restart_process`]).
    pub fn restart_component_process(&self, name: &str) -> Result<(), AdminError> {
        self.ops().restart_process(name)
    }

    /// Replaces component `name` by a fresh instance of its spec: made and
    /// initialised by a handover, with no failed call (see [`crate::live`]).
    pub async fn reload_component(&self, name: &str) -> Result<(), AdminError> {
        self.ops().reload(name).await
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        let (code, http, error_code) = match &error {
            AdminError::NotFound(_) => (Code::NotFound, StatusCode::NOT_FOUND, "ERR_COMPONENT_NOT_FOUND"),
            AdminError::NoProcess(_) => (Code::FailedPrecondition, StatusCode::CONFLICT, "ERR_COMPONENT_NO_PROCESS"),
            AdminError::ProcessFailed(_) => {
                (Code::FailedPrecondition, StatusCode::CONFLICT, "ERR_COMPONENT_PROCESS_FAILED")
            }
            AdminError::ReloadFailed(..) => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR, "ERR_RELOAD_FAILED"),
        };
        ApiError::new(code, http, error_code, error.to_string())
    }
}

type Shared = State<Arc<Sidecar>>;

/// The admin routes, to merge into the protected part of the HTTP API.
pub fn routes() -> Router<Arc<Sidecar>> {
    Router::new()
        .route(&format!("{PREFIX}/components"), get(list))
        .route(&format!("{PREFIX}/components/{{name}}/{{action}}"), post(act))
}

fn ops(sidecar: &Sidecar) -> Result<&Arc<Ops>, ApiError> {
    sidecar.config().admin.as_ref().ok_or_else(|| {
        ApiError::new(
            Code::Unimplemented,
            StatusCode::NOT_IMPLEMENTED,
            "ERR_ADMIN_NOT_AVAILABLE",
            "this sidecar API was started without a host's admin handle (ApiConfig::admin)",
        )
    })
}

async fn list(State(sidecar): Shared) -> Result<Response, ApiError> {
    let ops = ops(&sidecar)?;
    let views = sidecar.components();
    let mut components = Vec::new();
    for info in sidecar.registry().components() {
        let component = ops.component(&info.name);
        let process = ops.processes().process(&info.name);
        let (calls, errors) = component.as_ref().map(|c| c.counts()).unwrap_or_default();
        let view = views.iter().find(|v| v.name == info.name);
        let health = view.map(crate::api::http::health_json).unwrap_or_else(|| json!({}));
        components.push(json!({
            "name": info.name,
            "kinds": info.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
            "type": info.type_name,
            "version": info.version,
            "mode": info.mode.as_str(),
            "source": component.as_ref().map(|c| c.source()).unwrap_or_default(),
            "origin": info.origin.to_string(),
            "status": info.current_status().to_string(),
            "enabled": component.as_ref().is_some_and(|c| c.enabled()),
            "health": health,
            "process": process.as_ref().map(|p| json!({
                "state": p.state.as_str(),
                "pid": p.pid,
                "restarts": p.restarts,
                "failures": p.failures,
                "lastError": p.last_error,
            })),
            "restarts": process.as_ref().map_or(0, |p| p.restarts),
            "generation": component.as_ref().map_or(0, |c| c.generation()),
            "calls": calls,
            "errors": errors,
        }));
    }
    let body: Value = json!({
        "appId": sidecar.config().app_id,
        "pid": std::process::id(),
        "components": components,
    });
    Ok(axum::Json(body).into_response())
}

async fn act(State(sidecar): Shared, Path((name, action)): Path<(String, String)>) -> Result<Response, ApiError> {
    let ops = ops(&sidecar)?;
    match action.as_str() {
        "disable" => ops.set_enabled(&name, false)?,
        "enable" => ops.set_enabled(&name, true)?,
        "restart" => ops.restart_process(&name)?,
        "reload" => ops.reload(&name).await?,
        other => {
            return Err(ApiError::new(
                Code::NotFound,
                StatusCode::NOT_FOUND,
                "ERR_ADMIN_UNKNOWN_ACTION",
                format!("unknown action `{other}` (disable, enable, restart, reload)"),
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
