//! The outermost layer of the sidecar's gRPC server: counts every request
//! by method and final status (`plughost_sidecar_grpc_requests_total`), and
//! runs it in its W3C trace context ([`super::trace`]).
//!
//! The method label is the method name of the `dapr.proto.runtime.v1.Dapr`
//! service (every one of its methods, served or not), `reflection`, or
//! `other`: a client cannot make up label values. The status is the
//! canonical code name, read from the response headers (a trailers-only
//! answer) or the trailers; a stream the client drops before its trailers
//! counts as `CANCELLED`. Counters are resolved once per (method, status),
//! so a request costs a hash lookup and an atomic add.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt as _;
use prometheus_client::metrics::counter::Counter;
use prost::Message as _;

use super::trace::{self, TRACEPARENT, TRACESTATE, TraceContext};

const SERVICE: &str = "dapr.proto.runtime.v1.Dapr";

/// gRPC's canonical code names, by code.
const CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

/// One method's counters, one per status, made on first use.
struct MethodCounters {
    name: &'static str,
    by_code: [OnceLock<Counter>; 17],
}

impl MethodCounters {
    fn new(name: &'static str) -> Self {
        Self { name, by_code: std::array::from_fn(|_| OnceLock::new()) }
    }

    fn count(&self, code: usize) {
        let code = if code < CODES.len() { code } else { 2 }; // beyond the table: UNKNOWN
        let counter = self.by_code[code].get_or_init(|| crate::metrics::global().grpc_counter(self.name, CODES[code]));
        counter.inc();
    }
}

/// Every method of the `Dapr` service (from the embedded descriptor set),
/// plus `reflection` and `other`.
fn methods() -> &'static (HashMap<&'static str, MethodCounters>, MethodCounters, MethodCounters) {
    static METHODS: OnceLock<(HashMap<&'static str, MethodCounters>, MethodCounters, MethodCounters)> = OnceLock::new();
    METHODS.get_or_init(|| {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET)
            .expect("the embedded descriptor set decodes");
        let mut methods = HashMap::new();
        for file in set.file.iter().filter(|f| f.package() == "dapr.proto.runtime.v1") {
            for method in file.service.iter().filter(|s| s.name() == "Dapr").flat_map(|s| &s.method) {
                // Leaked once: the set of names is fixed for the process.
                let name: &'static str = Box::leak(method.name().to_owned().into_boxed_str());
                methods.insert(name, MethodCounters::new(name));
            }
        }
        (methods, MethodCounters::new("reflection"), MethodCounters::new("other"))
    })
}

fn counters_for(path: &str) -> &'static MethodCounters {
    let (methods, reflection, other) = methods();
    let mut parts = path.trim_start_matches('/').splitn(2, '/');
    match (parts.next(), parts.next()) {
        (Some(SERVICE), Some(method)) => methods.get(method).unwrap_or(other),
        (Some(service), Some(_)) if service.starts_with("grpc.reflection.") => reflection,
        _ => other,
    }
}

fn status_of(headers: &axum::http::HeaderMap) -> Option<usize> {
    let value = headers.get("grpc-status")?;
    Some(value.to_str().ok().and_then(|s| s.parse::<usize>().ok()).filter(|&c| c < CODES.len()).unwrap_or(2))
}

/// The layer, for `tonic::transport::Server::builder().layer(...)`.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct GrpcApiLayer;

impl<S> tower::Layer<S> for GrpcApiLayer {
    type Service = GrpcApi<S>;

    fn layer(&self, inner: S) -> GrpcApi<S> {
        GrpcApi { inner }
    }
}

/// The service [`GrpcApiLayer`] makes.
#[derive(Clone, Debug)]
pub(crate) struct GrpcApi<S> {
    inner: S,
}

/// Counts its method's request once: with the trailers' status, or as
/// `CANCELLED` if dropped before them.
struct Pending {
    counters: &'static MethodCounters,
    counted: bool,
}

impl Pending {
    fn count(&mut self, code: usize) {
        if !self.counted {
            self.counted = true;
            self.counters.count(code);
        }
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        self.count(1);
    }
}

impl<S, B, ResBody> tower::Service<axum::http::Request<B>> for GrpcApi<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<ResBody>> + Send + 'static,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = axum::http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: axum::http::Request<B>) -> Self::Future {
        let counters = counters_for(request.uri().path());
        let headers = request.headers();
        let context = TraceContext::parse(
            headers.get(TRACEPARENT).map(|v| v.as_bytes()),
            headers.get(TRACESTATE).map(|v| v.as_bytes()),
        );
        let call = self.inner.call(request);
        Box::pin(async move {
            let mut pending = Pending { counters, counted: false };
            let response = trace::scoped(context, call).await?;
            let (parts, body) = response.into_parts();
            if let Some(code) = status_of(&parts.headers) {
                pending.count(code);
            }
            let body = body.map_frame(move |frame| {
                if let Some(code) = frame.trailers_ref().and_then(status_of) {
                    pending.count(code);
                }
                frame
            });
            Ok(axum::http::Response::from_parts(parts, tonic::body::Body::new(body)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_labels_are_bounded() {
        assert_eq!(counters_for("/dapr.proto.runtime.v1.Dapr/GetState").name, "GetState");
        assert_eq!(counters_for("/dapr.proto.runtime.v1.Dapr/MadeUp").name, "other");
        assert_eq!(counters_for("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").name, "reflection");
        assert_eq!(counters_for("/x").name, "other");
    }
}
