//! The gRPC API with tonic's generated client: the token on every RPC, the
//! message size limit, reflection, metadata, the streaming subscription and
//! shutdown.

use std::time::Duration;

use plughost::kinds::Metadata;
use plughost::proto::common;
use plughost::proto::runtime as rt;
use prost::Message as _;
use rt::dapr_client::DaprClient;
use rt::subscribe_topic_events_request_alpha1::SubscribeTopicEventsRequestType as Incoming;
use rt::subscribe_topic_events_response_alpha1::SubscribeTopicEventsResponseType as Outgoing;
use rt::topic_event_response::TopicEventResponseStatus;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use super::{Served, TOKEN};

/// Adds `dapr-api-token` to every call, if set.
#[derive(Clone)]
struct WithToken(Option<String>);

impl tonic::service::Interceptor for WithToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.0 {
            request.metadata_mut().insert("dapr-api-token", token.parse().unwrap());
        }
        Ok(request)
    }
}

type Client = DaprClient<InterceptedService<Channel, WithToken>>;

async fn client(served: &Served, token: Option<&str>) -> Client {
    let channel = Channel::from_shared(served.grpc()).unwrap().connect().await.unwrap();
    DaprClient::with_interceptor(channel, WithToken(token.map(str::to_owned)))
}

fn code<T>(result: Result<tonic::Response<T>, tonic::Status>) -> Code {
    result.map_or_else(|status| status.code(), |_| Code::Ok)
}

fn item(key: &str, value: &[u8]) -> common::StateItem {
    common::StateItem { key: key.into(), value: value.to_vec(), ..Default::default() }
}

fn subscribe_request(pubsub: &str, topic: &str) -> rt::SubscribeTopicEventsRequestAlpha1 {
    let initial = rt::SubscribeTopicEventsRequestInitialAlpha1 {
        pubsub_name: pubsub.into(),
        topic: topic.into(),
        ..Default::default()
    };
    rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::InitialRequest(initial)),
    }
}

/// Calls every RPC of the subset (Shutdown last) and returns each one's code.
async fn every_rpc(c: &mut Client) -> Vec<(&'static str, Code)> {
    let store = || "store".to_owned();
    let mut codes = vec![
        (
            "SaveState",
            code(c.save_state(rt::SaveStateRequest { store_name: store(), states: vec![item("k", b"v")] }).await),
        ),
        (
            "GetState",
            code(c.get_state(rt::GetStateRequest { store_name: store(), key: "k".into(), ..Default::default() }).await),
        ),
        (
            "GetBulkState",
            code(
                c.get_bulk_state(rt::GetBulkStateRequest {
                    store_name: store(),
                    keys: vec!["k".into()],
                    ..Default::default()
                })
                .await,
            ),
        ),
        (
            "DeleteState",
            code(
                c.delete_state(rt::DeleteStateRequest { store_name: store(), key: "k".into(), ..Default::default() })
                    .await,
            ),
        ),
        (
            "DeleteBulkState",
            code(
                c.delete_bulk_state(rt::DeleteBulkStateRequest { store_name: store(), states: vec![item("k", b"")] })
                    .await,
            ),
        ),
        (
            "ExecuteStateTransaction",
            code(
                c.execute_state_transaction(rt::ExecuteStateTransactionRequest {
                    store_name: store(),
                    ..Default::default()
                })
                .await,
            ),
        ),
    ];
    let publish = rt::PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "t".into(),
        data: b"x".to_vec(),
        ..Default::default()
    };
    codes.push(("PublishEvent", code(c.publish_event(publish).await)));
    let entry = rt::BulkPublishRequestEntry {
        entry_id: "1".into(),
        event: b"x".to_vec(),
        content_type: "text/plain".into(),
        ..Default::default()
    };
    let bulk = rt::BulkPublishRequest {
        pubsub_name: "pubsub".into(),
        topic: "t".into(),
        entries: vec![entry],
        ..Default::default()
    };
    codes.push(("BulkPublishEvent", code(c.bulk_publish_event(bulk.clone()).await)));
    #[allow(deprecated)] // the alpha name, kept for older SDKs
    codes.push(("BulkPublishEventAlpha1", code(c.bulk_publish_event_alpha1(bulk).await)));
    let subscribe = tokio_stream::iter([subscribe_request("pubsub", "t")]);
    codes.push(("SubscribeTopicEventsAlpha1", code(c.subscribe_topic_events_alpha1(subscribe).await)));
    let invoke = rt::InvokeBindingRequest { name: "files".into(), operation: "list".into(), ..Default::default() };
    codes.push(("InvokeBinding", code(c.invoke_binding(invoke).await)));
    let secret = rt::GetSecretRequest { store_name: "vault".into(), key: "api-key".into(), ..Default::default() };
    codes.push(("GetSecret", code(c.get_secret(secret).await)));
    codes.push((
        "GetBulkSecret",
        code(c.get_bulk_secret(rt::GetBulkSecretRequest { store_name: "vault".into(), ..Default::default() }).await),
    ));
    codes.push(("GetMetadata", code(c.get_metadata(rt::GetMetadataRequest {}).await)));
    codes.push((
        "SetMetadata",
        code(c.set_metadata(rt::SetMetadataRequest { key: "k".into(), value: "v".into() }).await),
    ));
    codes.push(("Shutdown", code(c.shutdown(rt::ShutdownRequest {}).await)));
    codes
}

#[tokio::test]
async fn token_is_required_on_every_rpc() {
    let served = Served::start(|config| config.token = Some(TOKEN.into())).await;
    for token in [None, Some("wrong"), Some("s3cret-t0ke"), Some("s3cret-t0ken-")] {
        let mut c = client(&served, token).await;
        for (rpc, code) in every_rpc(&mut c).await {
            assert_eq!(code, Code::Unauthenticated, "{rpc} with token {token:?}");
        }
    }
    let mut c = client(&served, Some(TOKEN)).await;
    for (rpc, code) in every_rpc(&mut c).await {
        assert_eq!(code, Code::Ok, "{rpc} with the right token");
    }
    let Served { api, host, .. } = served;
    tokio::time::timeout(Duration::from_secs(15), api.wait()).await.expect("the Shutdown RPC stops the API");
    host.shutdown().await;
}

/// A `PublishEvent` whose encoded message is exactly `size` bytes.
fn publish_of_size(size: usize) -> rt::PublishEventRequest {
    let mut request = rt::PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: "big".into(),
        metadata: [("rawPayload".to_owned(), "true".to_owned())].into(),
        ..Default::default()
    };
    let mut data = size - request.encoded_len();
    loop {
        request.data = vec![b'x'; data];
        match request.encoded_len() {
            len if len == size => return request,
            len if len > size => data -= len - size,
            len => data += size - len,
        }
    }
}

#[tokio::test]
async fn message_over_the_limit_is_refused_and_the_server_keeps_serving() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let limit = plughost::api::DEFAULT_MAX_BODY;
    let refused = c.publish_event(publish_of_size(limit + 1)).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("message length too large"), "{}", refused.message());
    // The same connection keeps serving, the limit itself included.
    assert_eq!(code(c.publish_event(publish_of_size(limit)).await), Code::Ok);
    let save = rt::SaveStateRequest { store_name: "store".into(), states: vec![item("k", b"v")] };
    c.save_state(save).await.unwrap();
    let get = rt::GetStateRequest { store_name: "store".into(), key: "k".into(), ..Default::default() };
    assert_eq!(c.get_state(get).await.unwrap().into_inner().data, b"v");
    served.stop().await;
}

#[tokio::test]
async fn state_errors_map_to_daprs_codes() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let save = |key: &str, etag: Option<&str>| rt::SaveStateRequest {
        store_name: "store".into(),
        states: vec![common::StateItem { etag: etag.map(|v| common::Etag { value: v.into() }), ..item(key, b"v") }],
    };
    c.save_state(save("k", None)).await.unwrap();
    let get = rt::GetStateRequest { store_name: "store".into(), key: "k".into(), ..Default::default() };
    let etag = c.get_state(get.clone()).await.unwrap().into_inner().etag;
    c.save_state(save("k", Some(&etag))).await.unwrap();
    let stale = c.save_state(save("k", Some(&etag))).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    assert_eq!(tonic_types::StatusExt::get_details_error_info(&stale).unwrap().reason, "ERR_STATE_SAVE");
    assert_eq!(c.save_state(save("a||b", None)).await.unwrap_err().code(), Code::InvalidArgument);
    assert_eq!(c.save_state(save("", None)).await.unwrap_err().code(), Code::InvalidArgument);
    let unknown = rt::GetStateRequest { store_name: "nope".into(), ..get.clone() };
    assert_eq!(c.get_state(unknown).await.unwrap_err().code(), Code::InvalidArgument);
    let missing = rt::GetStateRequest { key: "never".into(), ..get };
    let missing = c.get_state(missing).await.unwrap().into_inner();
    assert!(missing.data.is_empty() && missing.etag.is_empty(), "a missing key is OK with empty data");
    let operation = rt::TransactionalStateOperation { operation_type: "merge".into(), request: Some(item("k", b"")) };
    let transaction = rt::ExecuteStateTransactionRequest {
        store_name: "store".into(),
        operations: vec![operation],
        ..Default::default()
    };
    assert_eq!(c.execute_state_transaction(transaction).await.unwrap_err().code(), Code::Unimplemented);
    let query = rt::QueryStateRequest { store_name: "store".into(), ..Default::default() };
    assert_eq!(c.query_state_alpha1(query).await.unwrap_err().code(), Code::Unimplemented, "outside the subset");
    let publish = rt::PublishEventRequest { pubsub_name: String::new(), topic: "t".into(), ..Default::default() };
    assert_eq!(c.publish_event(publish).await.unwrap_err().code(), Code::InvalidArgument);
    let secret = rt::GetSecretRequest { store_name: "nope".into(), key: "k".into(), ..Default::default() };
    assert_eq!(c.get_secret(secret).await.unwrap_err().code(), Code::InvalidArgument);
    served.stop().await;
}

#[tokio::test]
async fn metadata_lists_components_with_kind_type_and_mode_and_reflection_names_the_service() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let metadata = c.get_metadata(rt::GetMetadataRequest {}).await.unwrap().into_inner();
    assert_eq!(metadata.id, "myapp");
    let mut components: Vec<_> =
        metadata.registered_components.iter().map(|c| (c.name.as_str(), c.r#type.as_str())).collect();
    components.sort();
    assert_eq!(
        components,
        [
            ("files", "bindings.localstorage"),
            ("plain", "state.in-memory"),
            ("pubsub", "pubsub.in-memory"),
            ("store", "state.in-memory"),
            ("vault", "secretstores.local.file")
        ]
    );
    assert_eq!(metadata.extended_metadata["plughost.component.store"], "state builtin");
    assert_eq!(metadata.extended_metadata["plughost.component.files"], "output-binding builtin");

    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
    use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
    let channel = Channel::from_shared(served.grpc()).unwrap().connect().await.unwrap();
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        message_request: Some(MessageRequest::ListServices(String::new())),
        ..Default::default()
    };
    let mut answers = ServerReflectionClient::new(channel)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) = answers.message().await.unwrap().unwrap().message_response
    else {
        panic!("not a list of services");
    };
    let names: Vec<_> = list.service.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["dapr.proto.runtime.v1.Dapr"]);
    served.stop().await;
}

/// An open streaming subscription: what the client sends, what it receives.
struct Stream {
    send: mpsc::Sender<rt::SubscribeTopicEventsRequestAlpha1>,
    receive: tonic::Streaming<rt::SubscribeTopicEventsResponseAlpha1>,
}

impl Stream {
    async fn open(c: &mut Client, initial: rt::SubscribeTopicEventsRequestAlpha1) -> Result<Self, tonic::Status> {
        let (send, rx) = mpsc::channel(16);
        send.send(initial).await.unwrap();
        let mut receive = c.subscribe_topic_events_alpha1(ReceiverStream::new(rx)).await?.into_inner();
        let first = receive.message().await?.unwrap().subscribe_topic_events_response_type;
        assert!(matches!(first, Some(Outgoing::InitialResponse(_))), "initial_response comes first: {first:?}");
        Ok(Self { send, receive })
    }

    async fn event(&mut self) -> rt::TopicEventRequest {
        let next =
            tokio::time::timeout(Duration::from_secs(10), self.receive.message()).await.expect("an event in time");
        match next.unwrap().unwrap().subscribe_topic_events_response_type {
            Some(Outgoing::EventMessage(event)) => event,
            other => panic!("expected an event, got {other:?}"),
        }
    }

    async fn answer(&self, event: &rt::TopicEventRequest, status: TopicEventResponseStatus) {
        let processed = rt::SubscribeTopicEventsRequestProcessedAlpha1 {
            id: event.id.clone(),
            status: Some(rt::TopicEventResponse { status: status as i32 }),
        };
        let message = rt::SubscribeTopicEventsRequestAlpha1 {
            subscribe_topic_events_request_type: Some(Incoming::EventProcessed(processed)),
        };
        self.send.send(message).await.unwrap();
    }
}

async fn publish(c: &mut Client, topic: &str, data: &str) {
    let request = rt::PublishEventRequest {
        pubsub_name: "pubsub".into(),
        topic: topic.into(),
        data: data.as_bytes().to_vec(),
        data_content_type: "text/plain".into(),
        ..Default::default()
    };
    c.publish_event(request).await.unwrap();
}

#[tokio::test]
async fn streaming_subscription_acks_retries_and_drops() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let mut dead = served.host.pubsub("pubsub").unwrap().subscribe("dead", Metadata::new()).await.unwrap();
    let mut initial = subscribe_request("pubsub", "orders");
    if let Some(Incoming::InitialRequest(i)) = &mut initial.subscribe_topic_events_request_type {
        i.dead_letter_topic = Some("dead".into());
    }
    let mut stream = Stream::open(&mut c, initial).await.unwrap();

    let metadata = c.get_metadata(rt::GetMetadataRequest {}).await.unwrap().into_inner();
    let listed: Vec<_> =
        metadata.subscriptions.iter().map(|s| (s.topic.as_str(), s.r#type, s.dead_letter_topic.as_str())).collect();
    assert_eq!(listed, [("orders", rt::PubsubSubscriptionType::Streaming as i32, "dead")]);

    publish(&mut c, "orders", "first").await;
    let event = stream.event().await;
    assert_eq!(
        (event.data.as_slice(), event.topic.as_str(), event.pubsub_name.as_str()),
        (&b"first"[..], "orders", "pubsub")
    );
    assert_eq!(
        (event.source.as_str(), event.r#type.as_str(), event.spec_version.as_str()),
        ("myapp", "com.dapr.event.sent", "1.0")
    );
    assert_eq!(event.data_content_type, "text/plain");
    assert!(event.extensions.as_ref().unwrap().fields.contains_key("time"));
    stream.answer(&event, TopicEventResponseStatus::Retry).await;
    let again = stream.event().await;
    assert_eq!((again.id.as_str(), again.data.as_slice()), (event.id.as_str(), &b"first"[..]), "RETRY redelivers");
    stream.answer(&again, TopicEventResponseStatus::Success).await;

    publish(&mut c, "orders", "poison").await;
    let poison = stream.event().await;
    stream.answer(&poison, TopicEventResponseStatus::Drop).await;
    let dead_lettered = tokio::time::timeout(Duration::from_secs(10), dead.next()).await.unwrap().unwrap();
    let event: serde_json::Value = serde_json::from_slice(&dead_lettered.item.data).unwrap();
    assert_eq!(event["data"], "poison");
    dead_lettered.ack();

    // An event left unanswered when the stream closes goes to the next
    // subscriber of the same consumer group (the app id).
    publish(&mut c, "orders", "unanswered").await;
    assert_eq!(stream.event().await.data, b"unanswered");
    drop(stream);
    let mut next = Stream::open(&mut c, subscribe_request("pubsub", "orders")).await.unwrap();
    let redelivered = next.event().await;
    assert_eq!(redelivered.data, b"unanswered");
    next.answer(&redelivered, TopicEventResponseStatus::Success).await;

    // A stream still open does not hold up shutdown.
    served.stop().await;
    let end = tokio::time::timeout(Duration::from_secs(10), next.receive.message()).await.expect("the stream ends");
    assert!(!matches!(end, Ok(Some(_))), "no more events after shutdown: {end:?}");
}

#[tokio::test]
async fn streaming_subscription_keeps_delivering_after_the_client_half_closes() {
    // dapr 1.18.3's Python SDK can end its request stream right after the
    // initial request (a race in `Subscription.start`); the events must still
    // reach it, and what it cannot ack is redelivered later.
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let Stream { send, mut receive } = Stream::open(&mut c, subscribe_request("pubsub", "half")).await.unwrap();
    drop(send);
    publish(&mut c, "half", "still delivered").await;
    let next = tokio::time::timeout(Duration::from_secs(10), receive.message()).await.expect("an event in time");
    match next.unwrap().unwrap().subscribe_topic_events_response_type {
        Some(Outgoing::EventMessage(event)) => assert_eq!(event.data, b"still delivered"),
        other => panic!("expected an event, got {other:?}"),
    }
    drop(receive);
    let mut next = Stream::open(&mut c, subscribe_request("pubsub", "half")).await.unwrap();
    assert_eq!(next.event().await.data, b"still delivered", "unanswered, so delivered again");
}

/// The events a stream receives until it stays quiet for half a second,
/// acked (SUCCESS) if `ack`.
async fn drain(stream: &mut Stream, ack: bool) -> Vec<Vec<u8>> {
    let mut events = Vec::new();
    while let Ok(Ok(Some(message))) = tokio::time::timeout(Duration::from_millis(500), stream.receive.message()).await {
        if let Some(Outgoing::EventMessage(event)) = message.subscribe_topic_events_response_type {
            if ack {
                stream.answer(&event, TopicEventResponseStatus::Success).await;
            }
            events.push(event.data);
        }
    }
    events
}

#[tokio::test]
async fn a_stream_holds_at_most_64_unanswered_events_and_the_group_gets_the_rest() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let mut slow = Stream::open(&mut c, subscribe_request("pubsub", "bounded")).await.unwrap();
    for i in 0..100 {
        publish(&mut c, "bounded", &format!("m{i}")).await;
    }
    // `slow` never answers: it stops at 64 unanswered events.
    let held = drain(&mut slow, false).await;
    assert_eq!(held.len(), 64, "a stream holds at most 64 unanswered events");
    // Another member of the app's consumer group gets what `slow` does not
    // hold, and, once `slow` goes away, what it held: nothing is lost.
    let mut other = Stream::open(&mut c, subscribe_request("pubsub", "bounded")).await.unwrap();
    let mut seen: std::collections::HashSet<Vec<u8>> = drain(&mut other, true).await.into_iter().collect();
    drop(slow);
    seen.extend(drain(&mut other, true).await);
    assert_eq!(seen.len(), 100, "every message reached the group");
    assert!(held.iter().all(|m| seen.contains(m)), "the events `slow` held were delivered again");
}

#[tokio::test]
async fn streaming_subscription_refuses_bad_openings() {
    let served = Served::start(|_| {}).await;
    let mut c = client(&served, None).await;
    let processed = rt::SubscribeTopicEventsRequestAlpha1 {
        subscribe_topic_events_request_type: Some(Incoming::EventProcessed(Default::default())),
    };
    let status = Stream::open(&mut c, processed).await.err().expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = Stream::open(&mut c, subscribe_request("nope", "t")).await.err().expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = Stream::open(&mut c, subscribe_request("pubsub", "")).await.err().expect("refused");
    assert_eq!(status.code(), Code::InvalidArgument);
    served.stop().await;
}
