//! Request bodies: read whole, up to the configured limit and within the
//! body read timeout, with Dapr-shaped errors (413 `ERR_REQUEST_TOO_LARGE`
//! over the limit, 408 when the body does not arrive in time, 400
//! `ERR_MALFORMED_REQUEST` for bad JSON).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use serde::de::DeserializeOwned;

use crate::api::Sidecar;
use crate::api::errors::ApiError;

/// The request body, at most `max_body` bytes, received within
/// `body_read_timeout`.
pub struct Body(pub Bytes);

impl FromRequest<Arc<Sidecar>> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, sidecar: &Arc<Sidecar>) -> Result<Self, ApiError> {
        let limit = sidecar.config().max_body;
        let timeout = sidecar.config().limits.body_read_timeout;
        let Ok(read) = tokio::time::timeout(timeout, Limited::new(request.into_body(), limit).collect()).await else {
            return Err(ApiError::new(
                tonic::Code::DeadlineExceeded,
                StatusCode::REQUEST_TIMEOUT,
                "ERR_MALFORMED_REQUEST",
                format!("the request body did not arrive within {timeout:?}"),
            ));
        };
        match read {
            Ok(collected) => Ok(Body(collected.to_bytes())),
            Err(e) if e.is::<LengthLimitError>() => Err(ApiError::too_large(limit)),
            Err(e) => Err(ApiError::new(
                tonic::Code::InvalidArgument,
                StatusCode::BAD_REQUEST,
                "ERR_MALFORMED_REQUEST",
                format!("cannot read the request body: {e}"),
            )),
        }
    }
}

/// `body` parsed as JSON as leniently as daprd does (Go's rules:
/// case-insensitive field names, `null` for empty; see
/// [`crate::api::lenient`]), or `ERR_MALFORMED_REQUEST`.
pub fn json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::api::lenient::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the request body is not valid: {e}")))
}
