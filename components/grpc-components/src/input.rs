//! `InputBinding`: an event every `interval` (init metadata, default
//! `100ms`) on each open `Read` stream, with at most [`WINDOW`] unanswered.
//! An event still unanswered when its stream ends is sent again, first, on
//! the instance's next stream; an answer with `response_error` is logged and
//! not repeated (the source decides, as with Dapr's cron binding).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::common::{Instances, instance_name, log, parse_duration};
use crate::pb::components as c;

const WINDOW: usize = 16;

/// The service.
#[derive(Default)]
pub struct Input {
    instances: Instances<Source>,
}

struct Source {
    interval: Duration,
    next_id: AtomicU64,
    /// Events to send again, oldest first.
    again: Mutex<VecDeque<c::ReadResponse>>,
}

impl Source {
    fn next_event(&self) -> c::ReadResponse {
        if let Some(event) = self.again.lock().expect("lock").pop_front() {
            return event;
        }
        let n = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        c::ReadResponse {
            data: format!("event {n}").into_bytes(),
            metadata: [("sequence".to_owned(), n.to_string())].into(),
            content_type: "text/plain".to_owned(),
            message_id: n.to_string(),
        }
    }
}

#[tonic::async_trait]
impl c::input_binding_server::InputBinding for Input {
    async fn init(
        &self,
        request: Request<c::InputBindingInitRequest>,
    ) -> Result<Response<c::InputBindingInitResponse>, Status> {
        let name = instance_name(&request);
        let properties = request.into_inner().metadata.unwrap_or_default().properties;
        let interval = match properties.get("interval") {
            None => Duration::from_millis(100),
            Some(text) => parse_duration(text)
                .filter(|d| !d.is_zero())
                .ok_or_else(|| Status::invalid_argument(format!("interval `{text}`: use e.g. 50ms, 2s, 1m")))?,
        };
        self.instances
            .init(&name, || Ok(Source { interval, next_id: AtomicU64::new(0), again: Mutex::new(VecDeque::new()) }))?;
        Ok(Response::new(c::InputBindingInitResponse {}))
    }

    async fn ping(&self, request: Request<c::PingRequest>) -> Result<Response<c::PingResponse>, Status> {
        self.instances.get(&request)?;
        Ok(Response::new(c::PingResponse {}))
    }

    async fn read(
        &self,
        request: Request<Streaming<c::ReadRequest>>,
    ) -> Result<Response<tonic::codegen::BoxStream<c::ReadResponse>>, Status> {
        let source = self.instances.get(&request)?;
        let mut acks = request.into_inner();
        let (tx, rx) = mpsc::channel(WINDOW);
        tokio::spawn(async move {
            let mut unanswered: BTreeMap<u64, c::ReadResponse> = BTreeMap::new();
            let mut ticker = tokio::time::interval(source.interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticker.tick().await;
            loop {
                tokio::select! {
                    biased;
                    ack = acks.message() => match ack {
                        Ok(Some(ack)) => {
                            let id = ack.message_id.parse().unwrap_or(u64::MAX);
                            if unanswered.remove(&id).is_some()
                                && let Some(error) = ack.response_error
                            {
                                log(format!("event {id} failed in the app: {}", error.message));
                            }
                        }
                        Ok(None) | Err(_) => break,
                    },
                    _ = ticker.tick(), if unanswered.len() < WINDOW => {
                        let event = source.next_event();
                        unanswered.insert(event.message_id.parse().unwrap_or(0), event.clone());
                        if tx.send(Ok(event)).await.is_err() {
                            break;
                        }
                    }
                    () = tx.closed() => break,
                }
            }
            source.again.lock().expect("lock").extend(unanswered.into_values());
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
