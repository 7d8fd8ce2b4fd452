//! The one mapping from plughost's errors to what a Dapr client sees: a gRPC
//! code, an HTTP status and Dapr's `errorCode` (protocol spec B6).
//!
//! Both APIs build an [`ApiError`] and convert it once: into a
//! [`tonic::Status`] (with a `google.rpc.ErrorInfo` detail whose `reason` is
//! the `errorCode`, as newer daprd does) or into an HTTP response with the
//! JSON body `{"errorCode": "...", "message": "..."}`.
//!
//! Where Dapr answers a component failure with a catch-all (`INTERNAL` /
//! 500), plughost refines the status by the component's typed error
//! ([`ComponentError`]): an ETag mismatch is always `ABORTED` / 409, a bad
//! argument `INVALID_ARGUMENT` / 400, an unreachable component `UNAVAILABLE`
//! / 503, and so on. The `errorCode` stays Dapr's code for the operation.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use tonic::Code;
use tonic_types::{ErrorDetails, StatusExt};

use crate::kinds::{ComponentError, ComponentKind};
use crate::registry::RegistryError;

/// An API call that failed, ready for either wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The gRPC status code.
    pub code: Code,
    /// The HTTP status.
    pub http: StatusCode,
    /// Dapr's error code (`ERR_STATE_SAVE`, ...).
    pub error_code: &'static str,
    /// Human-readable text; never holds more than the component reported.
    pub message: String,
}

/// What the failing call was doing; picks Dapr's `errorCode` and the wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Get one key.
    StateGet,
    /// Bulk get.
    StateBulkGet,
    /// Save one or several keys.
    StateSave,
    /// Delete one or several keys.
    StateDelete,
    /// A transaction.
    StateTransaction,
    /// Publish or bulk publish.
    Publish,
    /// Open a streaming subscription.
    Subscribe,
    /// Invoke an output binding.
    InvokeBinding,
    /// Get one secret or all of them.
    SecretGet,
}

impl Op {
    fn kind(self) -> ComponentKind {
        match self {
            Op::StateGet | Op::StateBulkGet | Op::StateSave | Op::StateDelete | Op::StateTransaction => {
                ComponentKind::State
            }
            Op::Publish | Op::Subscribe => ComponentKind::PubSub,
            Op::InvokeBinding => ComponentKind::OutputBinding,
            Op::SecretGet => ComponentKind::SecretStore,
        }
    }

    /// Dapr's code for a component failure during this operation.
    fn failure_code(self) -> &'static str {
        match self {
            Op::StateGet => "ERR_STATE_GET",
            Op::StateBulkGet => "ERR_STATE_BULK_GET",
            Op::StateSave => "ERR_STATE_SAVE",
            Op::StateDelete => "ERR_STATE_DELETE",
            Op::StateTransaction => "ERR_STATE_TRANSACTION",
            Op::Publish | Op::Subscribe => "ERR_PUBSUB_PUBLISH_MESSAGE",
            Op::InvokeBinding => "ERR_INVOKE_OUTPUT_BINDING",
            Op::SecretGet => "ERR_SECRET_GET",
        }
    }

    fn failure_text(self, component: &str) -> String {
        match self {
            Op::StateGet | Op::StateBulkGet => format!("failed getting state from state store {component}"),
            Op::StateSave => format!("failed saving state in state store {component}"),
            Op::StateDelete => format!("failed deleting state in state store {component}"),
            Op::StateTransaction => format!("error while executing state transaction on {component}"),
            Op::Publish => format!("error when publishing to pubsub {component}"),
            Op::Subscribe => format!("error when subscribing to pubsub {component}"),
            Op::InvokeBinding => format!("error invoking output binding {component}"),
            Op::SecretGet => format!("failed getting secret from secret store {component}"),
        }
    }
}

impl ApiError {
    /// An error with every part given.
    pub fn new(code: Code, http: StatusCode, error_code: &'static str, message: impl Into<String>) -> Self {
        Self { code, http, error_code, message: message.into() }
    }

    /// A request that cannot be understood: `INVALID_ARGUMENT` / 400
    /// `ERR_MALFORMED_REQUEST`.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, StatusCode::BAD_REQUEST, "ERR_MALFORMED_REQUEST", message)
    }

    /// A request body over the configured limit: `RESOURCE_EXHAUSTED` / 413.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            Code::ResourceExhausted,
            StatusCode::PAYLOAD_TOO_LARGE,
            "ERR_REQUEST_TOO_LARGE",
            format!("request body larger than the limit of {limit} bytes (--max-body-size)"),
        )
    }

    /// An empty pubsub name.
    pub fn pubsub_empty() -> Self {
        Self::new(Code::InvalidArgument, StatusCode::NOT_FOUND, "ERR_PUBSUB_EMPTY", "pubsub name is empty")
    }

    /// An empty topic.
    pub fn topic_empty(pubsub: &str) -> Self {
        Self::new(
            Code::InvalidArgument,
            StatusCode::NOT_FOUND,
            "ERR_TOPIC_NAME_EMPTY",
            format!("topic is empty in pubsub {pubsub}"),
        )
    }

    /// A state store without the `TRANSACTIONAL` feature.
    pub fn transactions_not_supported(store: &str) -> Self {
        Self::new(
            Code::Unimplemented,
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERR_STATE_STORE_NOT_SUPPORTED",
            format!("state store {store} doesn't support transaction"),
        )
    }

    /// A transaction operation other than `upsert` and `delete`.
    pub fn unknown_operation(operation: &str) -> Self {
        Self::new(
            Code::Unimplemented,
            StatusCode::BAD_REQUEST,
            "ERR_NOT_SUPPORTED_STATE_OPERATION",
            format!("operation type {operation} not supported"),
        )
    }

    /// A failed registry lookup during `op`.
    pub fn lookup(op: Op, err: &RegistryError) -> Self {
        use Code::{FailedPrecondition, Internal, InvalidArgument};
        let not_configured = matches!(err, RegistryError::NotConfigured { .. });
        let message = err.to_string();
        let (code, http, error_code) = match (op.kind(), not_configured) {
            (ComponentKind::State, false) => (InvalidArgument, 400, "ERR_STATE_STORE_NOT_FOUND"),
            (ComponentKind::State, true) => (FailedPrecondition, 500, "ERR_STATE_STORE_NOT_CONFIGURED"),
            (ComponentKind::PubSub, false) => (InvalidArgument, 404, "ERR_PUBSUB_NOT_FOUND"),
            (ComponentKind::PubSub, true) => (FailedPrecondition, 400, "ERR_PUBSUB_NOT_CONFIGURED"),
            (ComponentKind::SecretStore, false) => (InvalidArgument, 401, "ERR_SECRET_STORE_NOT_FOUND"),
            (ComponentKind::SecretStore, true) => (FailedPrecondition, 500, "ERR_SECRET_STORES_NOT_CONFIGURED"),
            // Dapr reports a missing output binding as a failed invocation.
            (ComponentKind::OutputBinding | ComponentKind::InputBinding, _) => {
                (Internal, 500, "ERR_INVOKE_OUTPUT_BINDING")
            }
        };
        let http = StatusCode::from_u16(http).expect("valid status");
        Self::new(code, http, error_code, message)
    }

    /// A component's error during `op` on the component named `component`.
    pub fn component(op: Op, component: &str, err: &ComponentError) -> Self {
        let (code, http) = status_of(err);
        Self::new(code, http, op.failure_code(), format!("{}: {err}", op.failure_text(component)))
    }
}

/// The gRPC code and HTTP status of a component error.
fn status_of(err: &ComponentError) -> (Code, StatusCode) {
    match err {
        ComponentError::EtagMismatch { .. } => (Code::Aborted, StatusCode::CONFLICT),
        ComponentError::EtagInvalid { .. } | ComponentError::InvalidArgument(_) => {
            (Code::InvalidArgument, StatusCode::BAD_REQUEST)
        }
        ComponentError::NotFound(_) => (Code::NotFound, StatusCode::NOT_FOUND),
        ComponentError::NotSupported(_) => (Code::Unimplemented, StatusCode::NOT_IMPLEMENTED),
        ComponentError::Unavailable { .. } => (Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
        ComponentError::DeadlineExceeded { .. } => (Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
        ComponentError::ResourceExhausted { .. } => (Code::ResourceExhausted, StatusCode::SERVICE_UNAVAILABLE),
        // A bulk write whose failures are all of one kind is reported as that
        // kind (every item an ETag conflict: 409); a mix is a plain failure.
        ComponentError::Bulk(items) => {
            let mut statuses = items.iter().map(|(_, e)| status_of(e));
            match statuses.next() {
                Some(first) if statuses.all(|s| s == first) => first,
                _ => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
            }
        }
        _ => (Code::Internal, StatusCode::INTERNAL_SERVER_ERROR),
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        let details = ErrorDetails::with_error_info(err.error_code, "dapr.io", std::collections::HashMap::new());
        tonic::Status::with_error_details(err.code, err.message, details)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "errorCode": self.error_code, "message": self.message });
        (self.http, axum::Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn not_found(kind: ComponentKind) -> RegistryError {
        RegistryError::NotFound { kind, name: "x".into(), known: "a".into() }
    }

    #[test]
    fn lookups_follow_daprs_table() {
        let state = ApiError::lookup(Op::StateSave, &not_found(ComponentKind::State));
        assert_eq!(
            (state.code, state.http.as_u16(), state.error_code),
            (Code::InvalidArgument, 400, "ERR_STATE_STORE_NOT_FOUND")
        );
        let secrets = ApiError::lookup(Op::SecretGet, &not_found(ComponentKind::SecretStore));
        assert_eq!((secrets.http.as_u16(), secrets.error_code), (401, "ERR_SECRET_STORE_NOT_FOUND"));
        let pubsub = ApiError::lookup(Op::Publish, &RegistryError::NotConfigured { kind: ComponentKind::PubSub });
        assert_eq!((pubsub.code, pubsub.http.as_u16()), (Code::FailedPrecondition, 400));
    }

    #[test]
    fn component_errors_keep_their_type() {
        let mismatch = ApiError::component(Op::StateDelete, "s", &ComponentError::etag_mismatch("k"));
        assert_eq!(
            (mismatch.code, mismatch.http.as_u16(), mismatch.error_code),
            (Code::Aborted, 409, "ERR_STATE_DELETE")
        );
        let bulk = ComponentError::Bulk(vec![
            ("a".into(), ComponentError::etag_mismatch("a")),
            ("b".into(), ComponentError::etag_mismatch("b")),
        ]);
        assert_eq!(ApiError::component(Op::StateSave, "s", &bulk).http.as_u16(), 409);
        let mixed = ComponentError::Bulk(vec![
            ("a".into(), ComponentError::etag_mismatch("a")),
            ("b".into(), ComponentError::internal("disk full")),
        ]);
        assert_eq!(ApiError::component(Op::StateSave, "s", &mixed).code, Code::Internal);
        let internal = ApiError::component(Op::SecretGet, "vault", &ComponentError::internal("boom"));
        assert_eq!(internal.message, "failed getting secret from secret store vault: boom");
    }

    #[test]
    fn grpc_status_carries_the_error_code() {
        let status = tonic::Status::from(ApiError::malformed("bad"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(status.get_details_error_info().unwrap().reason, "ERR_MALFORMED_REQUEST");
    }
}
