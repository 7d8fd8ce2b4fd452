//! One component instance per `x-component-instance` (spec A5), made by
//! `Init`; every call into your code goes through [`Instance::call`], which
//! turns your errors into Dapr's statuses and a panic into `INTERNAL`.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::Notify;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetails, StatusExt as _};

use crate::{Component, Error, Metadata};

/// The gRPC metadata header naming the component instance.
pub const INSTANCE_HEADER: &str = "x-component-instance";

/// The instance `request` is for: its header, or `""` without one (the
/// default instance, as Dapr's SDKs do).
pub fn instance_name<R>(request: &Request<R>) -> String {
    request.metadata().get(INSTANCE_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

/// One initialised component, its calls serialised by a mutex.
pub struct Instance<T> {
    name: String,
    component: Mutex<T>,
    /// Woken when messages may be ready (a publish, a nack).
    pub wake: Notify,
}

impl<T: Component> Instance<T> {
    /// Runs `f` on the component. Your error becomes Dapr's status; a panic
    /// becomes `INTERNAL` naming the operation (the instance stays usable).
    pub fn call<R>(&self, operation: &str, f: impl FnOnce(&mut T) -> Result<R, Error>) -> Result<R, Status> {
        let mut component = self.component.lock().unwrap_or_else(PoisonError::into_inner);
        match std::panic::catch_unwind(AssertUnwindSafe(|| f(&mut component))) {
            Ok(result) => result.map_err(status),
            Err(panic) => Err(Status::internal(format!(
                "component instance `{}` panicked in `{operation}`: {}",
                self.name,
                panic_message(&panic)
            ))),
        }
    }
}

fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".to_owned())
}

/// Instances by name.
pub struct Instances<T> {
    by_name: Mutex<HashMap<String, Arc<Instance<T>>>>,
}

impl<T> Default for Instances<T> {
    fn default() -> Self {
        Self { by_name: Mutex::new(HashMap::new()) }
    }
}

impl<T: Component> Instances<T> {
    /// `Init`: makes the instance the request names. `Init` on an existing
    /// instance keeps it and its data: a host replays `Init` after it
    /// reconnects, and that must not wipe anything.
    pub fn init<R>(
        &self,
        request: &Request<R>,
        metadata: Option<super::pb::components::MetadataRequest>,
    ) -> Result<(), Status> {
        let name = instance_name(request);
        let mut by_name = self.by_name.lock().unwrap_or_else(PoisonError::into_inner);
        if by_name.contains_key(&name) {
            return Ok(());
        }
        let metadata: Metadata = metadata.map(|m| m.properties.into_iter().collect()).unwrap_or_default();
        let made = match std::panic::catch_unwind(|| T::init(metadata)) {
            Ok(made) => made.map_err(status)?,
            Err(panic) => {
                return Err(Status::internal(format!(
                    "component instance `{name}` panicked in `init`: {}",
                    panic_message(&panic)
                )));
            }
        };
        let instance = Instance { name: name.clone(), component: Mutex::new(made), wake: Notify::new() };
        by_name.insert(name, Arc::new(instance));
        Ok(())
    }

    /// The initialised instance `request` is for; `FAILED_PRECONDITION`
    /// naming it if `Init` has not made it.
    pub fn get<R>(&self, request: &Request<R>) -> Result<Arc<Instance<T>>, Status> {
        let name = instance_name(request);
        self.by_name.lock().unwrap_or_else(PoisonError::into_inner).get(&name).cloned().ok_or_else(|| {
            Status::failed_precondition(format!("component instance `{name}` is not initialised: call Init first"))
        })
    }
}

/// A readable message for an [`Error`].
pub fn describe(error: &Error) -> String {
    match error {
        Error::EtagMismatch(key) => format!("etag mismatch for key `{key}`"),
        Error::EtagInvalid(key) => format!("invalid etag for key `{key}`"),
        Error::NotFound(what) => format!("not found: {what}"),
        Error::InvalidArgument(message)
        | Error::NotSupported(message)
        | Error::Unavailable(message)
        | Error::Internal(message) => message.clone(),
    }
}

/// Dapr's conventions (spec A12): ETag mismatch is `FAILED_PRECONDITION` and
/// an invalid ETag `INVALID_ARGUMENT`, each with one `google.rpc.BadRequest`
/// violation on field `etag`; the other errors map to their codes.
pub fn status(error: Error) -> Status {
    let message = describe(&error);
    let etag = |code: Code| {
        Status::with_error_details(code, message.clone(), ErrorDetails::with_bad_request_violation("etag", &message))
    };
    match error {
        Error::EtagMismatch(_) => etag(Code::FailedPrecondition),
        Error::EtagInvalid(_) => etag(Code::InvalidArgument),
        Error::NotFound(_) => Status::not_found(message),
        Error::InvalidArgument(_) => Status::invalid_argument(message),
        Error::NotSupported(_) => Status::unimplemented(message),
        Error::Unavailable(_) => Status::unavailable(message),
        Error::Internal(_) => Status::internal(message),
    }
}
