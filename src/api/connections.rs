//! The global cap on open connections of the sidecar API, HTTP and gRPC
//! together ([`ApiLimits::max_connections`](super::ApiLimits::max_connections)).
//!
//! Every other limit is per connection, so a client opening connections
//! without end still grew the process (a file descriptor, buffers and a task
//! each) until it ran out of descriptors, and then the served clients lost
//! theirs too. At the cap, each accept loop holds the connection it accepted
//! last, unread, and accepts no more: new connections wait in the kernel's
//! listen backlog (a client sees a slow connect, or a refusal once the
//! backlog is full) and are served as soon as a served one closes. The
//! served connections are not touched. (A loop waits for a slot after
//! accepting, not before, so an idle loop holds no slot.)

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::{Stream, StreamExt as _};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::transport::server::{Connected, TcpConnectInfo};

/// Open connections of both APIs; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionCap {
    slots: Arc<Semaphore>,
    max: usize,
    warned: Arc<std::sync::atomic::AtomicBool>,
}

impl ConnectionCap {
    pub(crate) fn new(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        Self { slots: Arc::new(Semaphore::new(max)), max, warned: Arc::default() }
    }

    /// A slot for one more connection, once there is one; held for as long
    /// as the connection lives.
    pub(crate) async fn slot(&self) -> OwnedSemaphorePermit {
        if self.slots.available_permits() == 0 && !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed) {
            tracing::warn!(
                "the sidecar API has {} connections open (its cap, --max-api-connections); new ones wait \
                 (logged once)",
                self.max
            );
        }
        self.slots.clone().acquire_owned().await.expect("the semaphore is never closed")
    }

    /// `incoming` accepting only while a slot is free (the connection
    /// accepted last waits for one, unread): each connection holds its slot
    /// until it closes.
    pub(crate) fn limit(
        &self,
        incoming: impl Stream<Item = std::io::Result<TcpStream>> + Send + 'static,
    ) -> impl Stream<Item = std::io::Result<Held>> + Send + 'static {
        let cap = self.clone();
        futures::stream::unfold((Box::pin(incoming), cap), |(mut incoming, cap)| async move {
            let accepted = match incoming.next().await? {
                Ok(io) => Ok(Held { io, _slot: cap.slot().await }),
                Err(e) => Err(e),
            };
            Some((accepted, (incoming, cap)))
        })
    }
}

/// An accepted connection and its slot.
pub(crate) struct Held {
    io: TcpStream,
    _slot: OwnedSemaphorePermit,
}

impl Connected for Held {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> TcpConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for Held {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}
