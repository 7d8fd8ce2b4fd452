//! W3C trace context (<https://www.w3.org/TR/trace-context/>): a valid
//! `traceparent` (and its `tracestate`) received on the sidecar HTTP or gRPC
//! API is kept for the duration of that call, in a task-local:
//!
//! * the call runs in a `tracing` span `sidecar{traceparent=...}` (with
//!   `tracestate` when given), so every log line of the call, the WASM
//!   component's own included, carries it;
//! * every gRPC component call made within it carries both headers in its
//!   metadata (the interceptor of `pluggable::link` adds them).
//!
//! An invalid `traceparent` is ignored, as the specification asks (and its
//! `tracestate` with it); a `tracestate` longer than 512 bytes is dropped.
//! plughost starts no trace of its own and does not change the parent id:
//! it is not a tracer, it passes the context along.

use std::future::Future;

use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tracing::Instrument;

/// The `traceparent` header.
pub const TRACEPARENT: &str = "traceparent";
/// The `tracestate` header.
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` passed along (the specification's limit).
const MAX_TRACESTATE: usize = 512;

/// A received trace context, validated once.
#[derive(Debug, Clone)]
pub struct TraceContext {
    traceparent: AsciiMetadataValue,
    tracestate: Option<AsciiMetadataValue>,
}

tokio::task_local! {
    static CURRENT: TraceContext;
}

impl TraceContext {
    /// The context of `traceparent` and `tracestate` header values, if
    /// `traceparent` is valid.
    pub fn parse(traceparent: Option<&[u8]>, tracestate: Option<&[u8]>) -> Option<Self> {
        let traceparent = traceparent.filter(|t| valid_traceparent(t))?;
        let tracestate = tracestate
            .filter(|s| !s.is_empty() && s.len() <= MAX_TRACESTATE)
            .and_then(|s| AsciiMetadataValue::try_from(s).ok());
        Some(Self { traceparent: AsciiMetadataValue::try_from(traceparent).ok()?, tracestate })
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        self.traceparent.to_str().unwrap_or_default()
    }

    /// The `tracestate` value, if one came.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_ref().and_then(|s| s.to_str().ok())
    }

    /// Runs `call` with this context current and in its span.
    pub async fn scope<F: Future>(self, call: F) -> F::Output {
        let span = match self.tracestate() {
            Some(state) => tracing::info_span!("sidecar", traceparent = %self.traceparent(), tracestate = %state),
            None => tracing::info_span!("sidecar", traceparent = %self.traceparent()),
        };
        CURRENT.scope(self, call.instrument(span)).await
    }
}

/// Runs `call` in `context`'s scope, or as it is without one.
pub async fn scoped<F: Future>(context: Option<TraceContext>, call: F) -> F::Output {
    match context {
        Some(context) => context.scope(call).await,
        None => call.await,
    }
}

/// Adds the current call's trace context, if any, to outgoing gRPC metadata.
pub fn inject(metadata: &mut MetadataMap) {
    let _ = CURRENT.try_with(|context| {
        metadata.insert(TRACEPARENT, context.traceparent.clone());
        if let Some(state) = &context.tracestate {
            metadata.insert(TRACESTATE, state.clone());
        }
    });
}

/// The current call's trace context, if any.
pub fn current() -> Option<TraceContext> {
    CURRENT.try_with(Clone::clone).ok()
}

/// `version-traceid-parentid-flags`, lower-case hex, ids not all zero;
/// version `ff` is invalid, version `00` has exactly these four fields, a
/// later version may append more after a `-`.
fn valid_traceparent(value: &[u8]) -> bool {
    let hex = |part: &[u8]| part.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b));
    if value.len() < 55 || (value.len() > 55 && (value[..2] == *b"00" || value[55] != b'-')) {
        return false;
    }
    let (version, trace_id, parent_id, flags) = (&value[..2], &value[3..35], &value[36..52], &value[53..55]);
    let dashes = value[2] == b'-' && value[35] == b'-' && value[52] == b'-';
    dashes
        && hex(version)
        && version != b"ff"
        && hex(trace_id)
        && trace_id.iter().any(|&b| b != b'0')
        && hex(parent_id)
        && parent_id.iter().any(|&b| b != b'0')
        && hex(flags)
}

/// Axum middleware: runs the request in its trace context, if it has one.
pub async fn http_layer(request: axum::extract::Request, next: axum::middleware::Next) -> axum::response::Response {
    let headers = request.headers();
    let context = TraceContext::parse(
        headers.get(TRACEPARENT).map(|v| v.as_bytes()),
        headers.get(TRACESTATE).map(|v| v.as_bytes()),
    );
    scoped(context, next.run(request)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn traceparent_follows_the_specification() {
        assert!(valid_traceparent(VALID.as_bytes()));
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(!valid_traceparent(bad.as_bytes()), "{bad}");
        }
        // A later version may carry more fields.
        assert!(valid_traceparent(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever"));
    }

    #[tokio::test]
    async fn the_context_reaches_outgoing_metadata_within_its_scope_only() {
        let context = TraceContext::parse(Some(VALID.as_bytes()), Some(b"congo=t61rcWkgMzE")).unwrap();
        let inside = context
            .scope(async {
                let mut metadata = MetadataMap::new();
                inject(&mut metadata);
                metadata
            })
            .await;
        assert_eq!(inside.get(TRACEPARENT).unwrap(), VALID);
        assert_eq!(inside.get(TRACESTATE).unwrap(), "congo=t61rcWkgMzE");
        let mut outside = MetadataMap::new();
        inject(&mut outside);
        assert!(outside.is_empty());
        let long = vec![b'a'; 513];
        assert!(TraceContext::parse(Some(VALID.as_bytes()), Some(&long)).unwrap().tracestate().is_none());
        assert!(TraceContext::parse(Some(b"junk"), Some(b"a=b")).is_none());
    }
}
