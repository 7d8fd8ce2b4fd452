//! The gRPC counterpart of an HTTP body read timeout. tonic buffers a request
//! message until it is whole, up to the message size limit, for as long as
//! the client likes: a client that starts messages on many streams and never
//! finishes them holds that memory forever. So each request message must
//! arrive whole within [`ApiLimits::body_read_timeout`] once its first byte
//! arrived; the first message of a call is timed from the call's start. A
//! stream idle between messages (a streaming subscription waiting for its
//! next answer) has no limit.
//!
//! The body is followed with gRPC's framing (a 5-byte prefix: a compression
//! flag and the message length, big-endian, then the message).
//!
//! [`ApiLimits::body_read_timeout`]: crate::api::ApiLimits::body_read_timeout

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Bytes, HttpBody};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;
use tonic::Status;

/// Where the reader is in gRPC's length-prefixed framing.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Framing {
    /// Bytes of the current prefix seen so far (0 between messages).
    prefix: Vec<u8>,
    /// Bytes of the current message still to come.
    left: u64,
}

impl Framing {
    /// Follows `data` through the framing.
    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.left > 0 {
                let take = usize::try_from(self.left).unwrap_or(usize::MAX).min(data.len());
                self.left -= take as u64;
                data = &data[take..];
                continue;
            }
            let take = (5 - self.prefix.len()).min(data.len());
            self.prefix.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.prefix.len() == 5 {
                let length = [self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]];
                self.left = u64::from(u32::from_be_bytes(length));
                self.prefix.clear();
            }
        }
    }

    /// Whether a message has started and not finished.
    fn mid_message(&self) -> bool {
        !self.prefix.is_empty() || self.left > 0
    }
}

/// A request body whose messages must each arrive within `timeout`.
pub(super) struct MessageDeadline<B> {
    inner: B,
    timeout: Duration,
    framing: Framing,
    /// Running while a message is incomplete (and from the start).
    timer: Option<Pin<Box<Sleep>>>,
    expired: bool,
}

impl<B> MessageDeadline<B> {
    /// `inner`, its first message due within `timeout` from now.
    pub(super) fn new(inner: B, timeout: Duration) -> Self {
        let timer = Some(Box::pin(tokio::time::sleep(timeout)));
        Self { inner, timeout, framing: Framing::default(), timer, expired: false }
    }
}

impl<B> HttpBody for MessageDeadline<B>
where
    B: HttpBody<Data = Bytes, Error = Status> + Unpin,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.get_mut();
        if this.expired {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.framing.feed(data);
                    if !this.framing.mid_message() {
                        this.timer = None;
                    } else if this.timer.is_none() {
                        this.timer = Some(Box::pin(tokio::time::sleep(this.timeout)));
                    }
                }
                return Poll::Ready(Some(Ok(frame)));
            }
            Poll::Ready(other) => return Poll::Ready(other),
            Poll::Pending => {}
        }
        if let Some(timer) = &mut this.timer
            && timer.as_mut().poll(cx).is_ready()
        {
            this.timer = None;
            this.expired = true;
            let timeout = this.timeout;
            return Poll::Ready(Some(Err(Status::deadline_exceeded(format!(
                "the request message did not arrive whole within {timeout:?}"
            )))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.expired || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_messages_across_chunks() {
        let mut framing = Framing::default();
        assert!(!framing.mid_message());
        // A 3-byte message split everywhere, then an empty one.
        framing.feed(&[0, 0]);
        assert!(framing.mid_message());
        framing.feed(&[0, 0, 3, b'a']);
        assert!(framing.mid_message());
        framing.feed(b"bc");
        assert!(!framing.mid_message());
        framing.feed(&[0, 0, 0, 0, 0]);
        assert!(!framing.mid_message());
        // Two messages in one chunk, the second incomplete.
        framing.feed(&[0, 0, 0, 0, 1, b'x', 0, 0, 0, 0, 2, b'y']);
        assert!(framing.mid_message());
        framing.feed(b"z");
        assert!(!framing.mid_message());
    }
}
