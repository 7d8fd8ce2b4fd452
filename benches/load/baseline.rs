//! The no-op baseline: the same stack as plughost's sidecar (hyper for
//! HTTP, tonic for gRPC, tokio), answering the bench's requests without
//! doing anything, in a process of its own. What plughost adds is measured
//! against it in the same run.

use std::convert::Infallible;
use std::net::SocketAddr;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use plughost::proto::runtime as rt;
use tonic::{Request as GrpcRequest, Response as GrpcResponse, Status};

/// The argument that turns the bench binary into the baseline server.
pub const ARG: &str = "--baseline-server";

/// The 48-byte value every state get returns (the bench's value size).
pub const VALUE: &[u8] = b"\"0123456789abcdef0123456789abcdef0123456789abc\"";

/// Serves HTTP and gRPC on free loopback ports until stdin closes; prints
/// `baseline http=<port> grpc=<port>` once both listen.
pub fn serve() {
    // The same runtime flavour plughost's `run` uses (multi-thread).
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding HTTP");
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding gRPC");
        let (http_port, grpc_port) = (port(&http), port(&grpc));
        tokio::spawn(serve_http(http));
        let incoming = tonic::transport::server::TcpIncoming::from(grpc).with_nodelay(Some(true));
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(rt::dapr_server::DaprServer::new(NoOp))
                .serve_with_incoming(incoming),
        );
        println!("baseline http={http_port} grpc={grpc_port}");
        // The bench holds our stdin; when it goes, so do we.
        let mut sink = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut tokio::io::stdin(), &mut sink).await.ok();
    });
}

fn port(listener: &tokio::net::TcpListener) -> u16 {
    listener.local_addr().map(|a: SocketAddr| a.port()).expect("local address")
}

async fn serve_http(listener: tokio::net::TcpListener) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        stream.set_nodelay(true).ok();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(answer);
            hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
                .ok();
        });
    }
}

async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Read the body, as a real handler must.
    let _ = http_body_util::BodyExt::collect(request.into_body()).await;
    Ok(Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from_static(VALUE)))
        .expect("response"))
}

struct NoOp;

#[tonic::async_trait]
impl rt::dapr_server::Dapr for NoOp {
    async fn get_state(
        &self,
        _: GrpcRequest<rt::GetStateRequest>,
    ) -> Result<GrpcResponse<rt::GetStateResponse>, Status> {
        Ok(GrpcResponse::new(rt::GetStateResponse { data: VALUE.to_vec(), etag: "1".into(), ..Default::default() }))
    }

    async fn save_state(&self, _: GrpcRequest<rt::SaveStateRequest>) -> Result<GrpcResponse<()>, Status> {
        Ok(GrpcResponse::new(()))
    }

    async fn publish_event(&self, _: GrpcRequest<rt::PublishEventRequest>) -> Result<GrpcResponse<()>, Status> {
        Ok(GrpcResponse::new(()))
    }
}
