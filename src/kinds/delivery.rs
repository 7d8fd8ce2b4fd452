//! Streams whose items the consumer must answer: pub/sub messages and input
//! binding events.
//!
//! Every item arrives as a [`Delivery`] holding a one-shot reply channel. The
//! consumer calls [`Delivery::ack`] (optionally with reply bytes, which input
//! bindings pass back to the source) or [`Delivery::nack`]. A delivery dropped
//! without an answer counts as a nack, so a consumer that crashes, or drops its
//! [`Deliveries`] with items still buffered, never loses them: the producer
//! sees the reply channel close and delivers again (at-least-once).

use tokio::sync::{mpsc, oneshot};

/// The consumer's answer to one delivery: `Ok(reply bytes)` or `Err(reason)`.
pub type Reply = Result<Vec<u8>, String>;

/// One item of an acked stream, with the channel to answer it on.
#[derive(Debug)]
pub struct Delivery<T> {
    /// The message or event.
    pub item: T,
    reply: oneshot::Sender<Reply>,
}

impl<T> Delivery<T> {
    /// Wraps `item`; the producer awaits the returned receiver for the answer.
    /// A receiver that resolves to `Err(RecvError)` means "dropped unanswered".
    pub fn new(item: T) -> (Self, oneshot::Receiver<Reply>) {
        let (reply, answer) = oneshot::channel();
        (Self { item, reply }, answer)
    }

    /// Processed successfully.
    pub fn ack(self) {
        let _ = self.reply.send(Ok(Vec::new()));
    }

    /// Processed successfully, with reply bytes for the source (input bindings).
    pub fn ack_with(self, data: Vec<u8>) {
        let _ = self.reply.send(Ok(data));
    }

    /// Processing failed; the producer redelivers (pub/sub) or reports the
    /// error to the source (input bindings).
    pub fn nack(self, reason: impl Into<String>) {
        let _ = self.reply.send(Err(reason.into()));
    }
}

/// The consumer side of an acked stream. Dropping it ends the subscription;
/// whatever was buffered and not answered is redelivered by the producer.
#[derive(Debug)]
pub struct Deliveries<T> {
    rx: mpsc::Receiver<Delivery<T>>,
}

impl<T> Deliveries<T> {
    /// A stream with room for `buffer` unanswered items in flight, and the
    /// sender the producer feeds it through.
    pub fn channel(buffer: usize) -> (mpsc::Sender<Delivery<T>>, Self) {
        let (tx, rx) = mpsc::channel(buffer.max(1));
        (tx, Self { rx })
    }

    /// The next item, or `None` once the producer has ended the stream.
    pub async fn next(&mut self) -> Option<Delivery<T>> {
        self.rx.recv().await
    }
}
