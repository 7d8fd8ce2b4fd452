//! The acked streams of gRPC mode (pub/sub `PullMessages`, input binding
//! `Read`) driven over the pulled traits: pull while fewer than [`WINDOW`]
//! items are unanswered, hand the host's answers to the component, and end
//! the subscription or reader when the stream ends, whichever side ends it.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::instances::Instance;
use crate::Component;

/// Most items handed out and not yet answered, per stream.
pub const WINDOW: u32 = 64;
/// How often an idle stream asks the component again.
pub const POLL: Duration = Duration::from_millis(20);

/// What a stream does with its component.
pub trait Pump<T>: Send + 'static {
    /// What the host sends (answers).
    type In: Send + 'static;
    /// What the component sends.
    type Out: Send + 'static;
    /// Up to `max` items, each now in flight.
    fn pull(&self, component: &mut T, max: u32) -> Result<Vec<Self::Out>, crate::Error>;
    /// An answer; `None` if the message carried none (ignored).
    fn answer(&self, component: &mut T, answer: Self::In) -> Option<Result<(), crate::Error>>;
    /// The stream is over.
    fn end(&self, component: &mut T);
}

/// Runs `pump` on `instance` until either side ends the stream.
pub fn start<T: Component, P: Pump<T>>(
    instance: Arc<Instance<T>>,
    mut incoming: Streaming<P::In>,
    pump: P,
) -> ReceiverStream<Result<P::Out, Status>>
where
    P::In: Default,
{
    let (tx, rx) = mpsc::channel(WINDOW as usize);
    tokio::spawn(async move {
        let mut in_flight = 0u32;
        'stream: loop {
            if in_flight < WINDOW {
                match instance.call("pull", |c| pump.pull(c, WINDOW - in_flight)) {
                    Ok(items) if !items.is_empty() => {
                        for item in items {
                            in_flight += 1;
                            if tx.send(Ok(item)).await.is_err() {
                                break 'stream;
                            }
                        }
                        continue;
                    }
                    Ok(_) => {}
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        break;
                    }
                }
            }
            let woken = instance.wake.notified();
            tokio::select! {
                message = incoming.message() => match message {
                    Ok(Some(answer)) => match instance.call("ack", |c| pump.answer(c, answer).transpose()) {
                        Ok(Some(())) => {
                            in_flight = in_flight.saturating_sub(1);
                            instance.wake.notify_waiters();
                        }
                        Ok(None) => {}
                        // An answer for nothing in flight: the host's mistake;
                        // say so on the stream and go on.
                        Err(status) => crate::log(crate::LogLevel::Warn, &format!("ignored answer: {}", status.message())),
                    },
                    _ => break,
                },
                () = woken => {}
                () = tokio::time::sleep(POLL) => {}
                () = tx.closed() => break,
            }
        }
        let _ = instance.call("end", |c| {
            pump.end(c);
            Ok(())
        });
    });
    ReceiverStream::new(rx)
}
