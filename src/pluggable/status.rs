//! The one place a `tonic::Status` from a component becomes a
//! [`ComponentError`], following Dapr's conventions (spec A12):
//!
//! | status from the component                         | error              |
//! |---------------------------------------------------|--------------------|
//! | `FAILED_PRECONDITION` + `BadRequest` field `etag` | `EtagMismatch`     |
//! | `INVALID_ARGUMENT` + `BadRequest` field `etag`    | `EtagInvalid`      |
//! | `INVALID_ARGUMENT`                                | `InvalidArgument`  |
//! | `NOT_FOUND`                                       | `NotFound`         |
//! | `UNIMPLEMENTED`                                   | `NotSupported`     |
//! | `UNAVAILABLE`, or any transport error             | `Unavailable`      |
//! | `DEADLINE_EXCEEDED`, or the channel's own timer   | `DeadlineExceeded` |
//! | anything else (kit errors included)               | `Internal`         |
//!
//! Details are decoded with `tonic-types`; garbled or unexpected details fall
//! back to the plain mapping, never to a panic.

use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::StatusExt as _;

use crate::kinds::ComponentError;

/// What the mapping needs to know about the call that failed.
pub(crate) struct CallContext<'a> {
    /// The configured component name.
    pub component: &'a str,
    /// The call's deadline.
    pub deadline: Duration,
    /// The state key, for ETag errors.
    pub key: Option<&'a str>,
}

/// Whether `status` was made on this side from a connection failure (tonic
/// attaches the transport error as its source) rather than sent by the
/// component. The channel's own deadline timer is not one: the connection
/// is fine, the call was only slow.
pub(crate) fn is_transport(status: &Status) -> bool {
    std::error::Error::source(status).is_some()
        && matches!(status.code(), Code::Unavailable | Code::Unknown | Code::Internal | Code::Cancelled)
        && !is_local_deadline(status)
}

/// Whether tonic's channel gave up on the call because its `grpc-timeout`
/// passed. tonic reports that as `CANCELLED` with a transport-like source
/// ([`tonic::TimeoutExpired`]); taken for a broken connection, every slow
/// call used to tear the link down and replay `Init`.
fn is_local_deadline(status: &Status) -> bool {
    let mut next = std::error::Error::source(status);
    while let Some(error) = next {
        if error.is::<tonic::TimeoutExpired>() {
            return true;
        }
        next = error.source();
    }
    false
}

/// `code: message`, or the code alone.
pub(crate) fn describe(status: &Status) -> String {
    let code = format!("{:?}", status.code());
    match (status.message(), std::error::Error::source(status)) {
        ("", None) => code,
        ("", Some(source)) => format!("{code}: {}", error_chain(source)),
        (message, _) => format!("{code}: {message}"),
    }
}

/// An error and its sources, joined with `: `, repeated texts dropped.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = e.source();
    }
    parts.join(": ")
}

/// The description of the one `google.rpc.BadRequest` field violation on
/// `etag`, if that is what `status` carries.
fn etag_violation(status: &Status) -> Option<String> {
    let details = status.check_error_details().ok()?;
    let violations = &details.bad_request()?.field_violations;
    match violations.as_slice() {
        [only] if only.field == "etag" => Some(only.description.clone()),
        _ => None,
    }
}

/// Longest component message kept in an error; the rest is cut, so a huge
/// message cannot reach the API's clients (whose header limits are small).
pub(crate) const MAX_MESSAGE: usize = 4096;

/// `message`, cut at [`MAX_MESSAGE`] bytes (on a character boundary).
fn bounded(message: &str) -> String {
    if message.len() <= MAX_MESSAGE {
        return message.to_owned();
    }
    let mut end = MAX_MESSAGE;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} more bytes cut)", &message[..end], message.len() - end)
}

/// Maps a failed call's `status`.
pub(crate) fn from_status(status: &Status, call: &CallContext<'_>) -> ComponentError {
    let message = bounded(&if status.message().is_empty() { describe(status) } else { status.message().to_owned() });
    let key = || call.key.unwrap_or_default().to_owned();
    if is_local_deadline(status) {
        return ComponentError::DeadlineExceeded { component: call.component.to_owned(), after: call.deadline };
    }
    if is_transport(status) {
        return ComponentError::Unavailable { component: call.component.to_owned(), reason: describe(status) };
    }
    match status.code() {
        Code::FailedPrecondition => match etag_violation(status) {
            Some(description) => ComponentError::EtagMismatch { key: key(), message: description },
            None => ComponentError::Internal(format!("failed precondition: {message}")),
        },
        Code::InvalidArgument => match etag_violation(status) {
            Some(description) => ComponentError::EtagInvalid { key: key(), message: description },
            None => ComponentError::InvalidArgument(message),
        },
        Code::NotFound => ComponentError::NotFound(message),
        Code::Unimplemented => ComponentError::NotSupported(message),
        Code::Unavailable => ComponentError::Unavailable { component: call.component.to_owned(), reason: message },
        Code::DeadlineExceeded => {
            ComponentError::DeadlineExceeded { component: call.component.to_owned(), after: call.deadline }
        }
        _ => ComponentError::Internal(message),
    }
}

#[cfg(test)]
mod tests {
    use tonic_types::ErrorDetails;

    use super::*;

    fn map(status: Status) -> ComponentError {
        from_status(&status, &CallContext { component: "store", deadline: Duration::from_secs(3), key: Some("k") })
    }

    fn etag(code: Code) -> Status {
        Status::with_error_details(code, "etag says no", ErrorDetails::with_bad_request_violation("etag", "stale"))
    }

    #[test]
    fn dapr_etag_conventions() {
        assert_eq!(
            map(etag(Code::FailedPrecondition)),
            ComponentError::EtagMismatch { key: "k".into(), message: "stale".into() }
        );
        assert_eq!(
            map(etag(Code::InvalidArgument)),
            ComponentError::EtagInvalid { key: "k".into(), message: "stale".into() }
        );
        // Without the detail, the codes mean what they say.
        assert_eq!(map(Status::invalid_argument("bad ttl")), ComponentError::InvalidArgument("bad ttl".into()));
        assert!(matches!(map(Status::failed_precondition("not initialised")), ComponentError::Internal(_)));
        // A violation on another field is not an ETag error.
        let other = Status::with_error_details(
            Code::InvalidArgument,
            "x",
            ErrorDetails::with_bad_request_violation("key", "bad"),
        );
        assert_eq!(map(other), ComponentError::InvalidArgument("x".into()));
    }

    #[test]
    fn codes() {
        assert_eq!(map(Status::not_found("secret `a`")), ComponentError::NotFound("secret `a`".into()));
        assert_eq!(map(Status::unimplemented("MultiMaxSize")), ComponentError::NotSupported("MultiMaxSize".into()));
        assert_eq!(
            map(Status::unavailable("backend down")),
            ComponentError::Unavailable { component: "store".into(), reason: "backend down".into() }
        );
        assert_eq!(
            map(Status::deadline_exceeded("slow")),
            ComponentError::DeadlineExceeded { component: "store".into(), after: Duration::from_secs(3) }
        );
        assert_eq!(map(Status::internal("boom")), ComponentError::Internal("boom".into()));
        assert_eq!(map(Status::new(Code::Aborted, "")), ComponentError::Internal("Aborted".into()));
    }

    #[test]
    fn garbled_details_never_panic() {
        for junk in [&b"\xff\xff\xff"[..], b"", b"\x0a\x05hello", b"\x1a\x02\x0a\x00"] {
            for code in [Code::FailedPrecondition, Code::InvalidArgument, Code::Internal] {
                let status = Status::with_details(code, "garbled", junk.to_vec().into());
                let error = map(status);
                assert!(!matches!(error, ComponentError::EtagMismatch { .. } | ComponentError::EtagInvalid { .. }));
            }
        }
    }

    #[test]
    fn transport_errors_are_unavailable() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "connection reset by peer");
        let status = Status::from_error(Box::new(io));
        assert!(is_transport(&status), "{status:?}");
        match map(status) {
            ComponentError::Unavailable { component, reason } => {
                assert_eq!(component, "store");
                assert!(reason.contains("connection reset"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(!is_transport(&Status::unknown("sent by the component")));
    }

    #[test]
    fn huge_messages_are_cut() {
        let ComponentError::Internal(message) = map(Status::internal("é".repeat(100_000))) else { panic!() };
        assert!(message.len() < MAX_MESSAGE + 64, "{}", message.len());
        assert!(message.ends_with("(195904 more bytes cut)"), "{}", &message[message.len() - 40..]);
    }

    #[test]
    fn the_channels_own_deadline_is_a_deadline_not_a_lost_connection() {
        // What tonic's channel answers when a call's `grpc-timeout` passes.
        let status = Status::from_error(Box::new(tonic::TimeoutExpired(())));
        assert_eq!(status.code(), Code::Cancelled, "{status:?}");
        assert!(!is_transport(&status), "{status:?}");
        assert_eq!(
            map(status),
            ComponentError::DeadlineExceeded { component: "store".into(), after: Duration::from_secs(3) }
        );
    }
}
