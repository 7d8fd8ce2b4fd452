//! The HTTP API's accept loop. `axum::serve` sets no header read timeout
//! and no HTTP/2 limits, so a client sending half a request kept its
//! connection forever; this loop serves the same router with hyper's
//! connection builder configured from the [`ApiLimits`], sets `TCP_NODELAY`
//! on every accepted connection, and shuts down gracefully: once `shutdown`
//! resolves it stops accepting, asks every connection to finish its open
//! requests, and returns when all are closed. At the connection cap it
//! accepts nothing until a connection closes (see `connections.rs`).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::ApiLimits;
use crate::api::connections::ConnectionCap;
use crate::api::limits::KEEPALIVE_TIMEOUT;

/// hyper's smallest HTTP/1 read buffer.
const MIN_HTTP1_BUFFER: usize = 8 << 10;

fn builder(limits: &ApiLimits) -> auto::Builder<TokioExecutor> {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size((limits.max_header_size as usize).max(MIN_HTTP1_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(limits.max_pending_reset_streams)
        .max_local_error_reset_streams(limits.max_local_error_reset_streams)
        .max_header_list_size(limits.max_header_size)
        .keep_alive_interval(limits.keepalive_interval)
        .keep_alive_timeout(KEEPALIVE_TIMEOUT);
    builder
}

/// Serves `router` on `listener` until `shutdown` resolves and the open
/// connections have finished.
pub(super) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &ApiLimits,
    cap: ConnectionCap,
    shutdown: impl Future<Output = ()>,
) -> Result<(), String> {
    let builder = builder(limits);
    // Connections watch `stop`; each holds a clone of `open` until it ends,
    // so `all_closed.closed()` resolves once they all have.
    let (stop, _) = watch::channel(false);
    let (all_closed, open) = watch::channel(());
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: let it pass.
                    tracing::warn!("the HTTP API cannot accept a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        // At the connection cap, this connection waits (unread) for a slot,
        // and no more are accepted meanwhile.
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = cap.slot() => slot,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on an HTTP API connection: {e}");
        }
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(router.clone())).into_owned();
        let (mut stopping, held) = (stop.subscribe(), open.clone());
        tokio::spawn(async move {
            let (_held, _slot) = (held, slot);
            tokio::pin!(connection);
            let mut asked = false;
            loop {
                tokio::select! {
                    served = connection.as_mut() => {
                        if let Err(e) = served {
                            tracing::debug!("HTTP API connection ended: {e}");
                        }
                        break;
                    }
                    changed = stopping.wait_for(|stop| *stop), if !asked => {
                        asked = true;
                        if changed.is_ok() {
                            connection.as_mut().graceful_shutdown();
                        }
                    }
                }
            }
        });
    }
    drop(listener);
    stop.send_replace(true);
    drop(open);
    all_closed.closed().await;
    Ok(())
}
