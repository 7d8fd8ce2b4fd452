//! The app over gRPC (protocol spec C2, C3, C5): the app serves
//! `dapr.proto.runtime.v1.AppCallback` (and `AppCallbackHealthCheck` for
//! health checks) on its port.

use std::time::Duration;

use tokio::sync::OnceCell;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::Verdict;
use super::subscriptions::{AppSubscription, Programmatic};
use crate::api::subscribe::topic_event;
use crate::kinds::Metadata;
use crate::kinds::input_binding::InputEvent;
use crate::kinds::pubsub::Message;
use crate::proto::runtime as rt;
use rt::app_callback_client::AppCallbackClient;
use rt::app_callback_health_check_client::AppCallbackHealthCheckClient;
use rt::topic_event_response::TopicEventResponseStatus;

/// A gRPC app at `<address>:<port>`; the connection is made on first use and
/// made again after the app restarts.
pub struct GrpcApp {
    channel: Channel,
    /// `ListInputBindings`, asked once (as daprd).
    bindings: OnceCell<Vec<String>>,
}

/// `message` with `metadata` as gRPC metadata (invalid entries skipped).
fn request<T>(message: T, metadata: &Metadata) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    for (key, value) in metadata {
        let key = key.to_ascii_lowercase();
        if key.ends_with("-bin") || key.starts_with("grpc-") {
            continue;
        }
        if let (Ok(key), Ok(value)) = (MetadataKey::from_bytes(key.as_bytes()), MetadataValue::try_from(value.as_str()))
        {
            request.metadata_mut().insert(key, value);
        }
    }
    request
}

impl GrpcApp {
    /// A lazily connecting channel to `authority` (`host:port`).
    pub fn new(authority: &str) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(format!("http://{authority}")).map_err(|e| e.to_string())?;
        let channel = endpoint.connect_timeout(Duration::from_secs(5)).tcp_nodelay(true).connect_lazy();
        Ok(Self { channel, bindings: OnceCell::new() })
    }

    fn client(&self) -> AppCallbackClient<Channel> {
        AppCallbackClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    /// `ListTopicSubscriptions`: `UNIMPLEMENTED` means none.
    pub async fn list_subscriptions(&self) -> Result<Vec<AppSubscription>, String> {
        match self.client().list_topic_subscriptions(()).await {
            Ok(response) => Ok(response
                .into_inner()
                .subscriptions
                .into_iter()
                .filter_map(|s| Programmatic::from(s).into_subscription("ListTopicSubscriptions"))
                .collect()),
            Err(status) if status.code() == tonic::Code::Unimplemented => Ok(Vec::new()),
            Err(status) => Err(format!("ListTopicSubscriptions: {}: {}", status.code(), status.message())),
        }
    }

    /// `OnTopicEvent` with the event read from `envelope`.
    pub async fn deliver_event(
        &self,
        subscription: &AppSubscription,
        path: &str,
        envelope: &[u8],
        metadata: &Metadata,
    ) -> Verdict {
        let message = Message { topic: subscription.topic.clone(), data: envelope.to_vec(), ..Message::default() };
        let event = rt::TopicEventRequest { path: path.to_owned(), ..topic_event(&message, &subscription.pubsub) };
        match self.client().on_topic_event(request(event, metadata)).await {
            Ok(response) => match TopicEventResponseStatus::try_from(response.into_inner().status) {
                Ok(TopicEventResponseStatus::Success) => Verdict::Success,
                Ok(TopicEventResponseStatus::Drop) => Verdict::Drop("OnTopicEvent answered DROP".into()),
                Ok(TopicEventResponseStatus::Retry) => Verdict::Retry("OnTopicEvent answered RETRY".into()),
                Err(_) => Verdict::Retry("OnTopicEvent answered an unknown status".into()),
            },
            Err(status) if status.code() == tonic::Code::Unimplemented => Verdict::Ignored,
            Err(status) => Verdict::Retry(format!("OnTopicEvent: {}: {}", status.code(), status.message())),
        }
    }

    /// Whether `ListInputBindings` names `name` (any error: no bindings).
    pub async fn handles_binding(&self, name: &str) -> bool {
        let bindings = self
            .bindings
            .get_or_init(|| async {
                match self.client().list_input_bindings(()).await {
                    Ok(response) => response.into_inner().bindings,
                    Err(status) => {
                        tracing::warn!("ListInputBindings: {}: {}", status.code(), status.message());
                        Vec::new()
                    }
                }
            })
            .await;
        bindings.iter().any(|b| b == name)
    }

    /// `OnBindingEvent`; the answer's `data` is the reply.
    pub async fn deliver_binding(&self, name: &str, event: &InputEvent) -> Result<Vec<u8>, String> {
        let message = rt::BindingEventRequest {
            name: name.to_owned(),
            data: event.data.clone(),
            metadata: event.metadata.clone().into_iter().collect(),
        };
        match self.client().on_binding_event(request(message, &event.metadata)).await {
            Ok(response) => Ok(response.into_inner().data),
            Err(status) => Err(format!("OnBindingEvent: {}: {}", status.code(), status.message())),
        }
    }

    /// `AppCallbackHealthCheck/HealthCheck` within `timeout`.
    pub async fn probe(&self, timeout: Duration) -> Result<(), String> {
        let mut request = tonic::Request::new(());
        request.set_timeout(timeout);
        let mut client = AppCallbackHealthCheckClient::new(self.channel.clone());
        client
            .health_check(request)
            .await
            .map(|_| ())
            .map_err(|s| format!("HealthCheck: {}: {}", s.code(), s.message()))
    }
}
