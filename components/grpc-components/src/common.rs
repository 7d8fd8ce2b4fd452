//! What every kind's service shares: instances by `x-component-instance`,
//! Dapr's error conventions (spec A12), small conversions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The gRPC metadata header naming the component instance (spec A5).
pub const INSTANCE_HEADER: &str = "x-component-instance";

/// The instance a request is for: its `x-component-instance` header, or the
/// default instance `""` without one (as the SDKs do).
pub fn instance_name<T>(request: &Request<T>) -> String {
    request.metadata().get(INSTANCE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// Instances by name.
pub struct Instances<T> {
    by_name: Mutex<HashMap<String, Arc<T>>>,
}

impl<T> Default for Instances<T> {
    fn default() -> Self {
        Self { by_name: Mutex::new(HashMap::new()) }
    }
}

impl<T> Instances<T> {
    /// The instance `name`, made by `make` if it does not exist yet. `Init`
    /// on an existing instance keeps it (and its data): the host replays
    /// `Init` after reconnecting, and that must not wipe anything.
    pub fn init(&self, name: &str, make: impl FnOnce() -> Result<T, Status>) -> Result<Arc<T>, Status> {
        let mut by_name = self.by_name.lock().expect("instances lock");
        if let Some(found) = by_name.get(name) {
            return Ok(found.clone());
        }
        let made = Arc::new(make()?);
        by_name.insert(name.to_owned(), made.clone());
        Ok(made)
    }

    /// The initialised instance `request` is for.
    pub fn get<R>(&self, request: &Request<R>) -> Result<Arc<T>, Status> {
        let name = instance_name(request);
        self.by_name.lock().expect("instances lock").get(&name).cloned().ok_or_else(|| {
            Status::failed_precondition(format!("component instance `{name}` is not initialised: call Init first"))
        })
    }
}

/// Dapr's ETag mismatch: `FAILED_PRECONDITION` + `BadRequest` field `etag`.
pub fn etag_mismatch(description: String) -> Status {
    Status::with_error_details(
        Code::FailedPrecondition,
        description.clone(),
        ErrorDetails::with_bad_request_violation("etag", description),
    )
}

/// Dapr's invalid ETag: `INVALID_ARGUMENT` + `BadRequest` field `etag`.
pub fn etag_invalid(description: String) -> Status {
    Status::with_error_details(
        Code::InvalidArgument,
        description.clone(),
        ErrorDetails::with_bad_request_violation("etag", description),
    )
}

/// Parses `500ms`, `2s`, `1m`.
pub fn parse_duration(text: &str) -> Option<std::time::Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(std::time::Duration::from_millis(n)),
        "s" => Some(std::time::Duration::from_secs(n)),
        "m" => Some(std::time::Duration::from_secs(n * 60)),
        _ => None,
    }
}

/// Writes one line to stderr, tagged with the program name.
pub fn log(message: impl std::fmt::Display) {
    eprintln!("[grpc-components {}] {message}", std::process::id());
}
