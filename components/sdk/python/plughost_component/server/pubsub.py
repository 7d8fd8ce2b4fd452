"""`dapr.proto.components.v1.PubSub` over a PubSub."""

from ..pubsub import BulkEntry, PublishRequest
from .instances import Failure
from .streams import BATCH, pump


def services(pb, calls, cls):
    pubsub_pb2, common_pb2 = pb.pubsub_pb2, pb.common_pb2

    class PubSub(pb.pubsub_pb2_grpc.PubSubServicer):
        def Init(self, request, context):
            calls.init(context, request.metadata.properties)
            return pubsub_pb2.PubSubInitResponse()

        def Features(self, request, context):
            return common_pb2.FeaturesResponse(features=calls.features(context))

        def Ping(self, request, context):
            calls.ping(context)
            return common_pb2.PingResponse()

        def Publish(self, request, context):
            publish = PublishRequest(request.topic, bytes(request.data), request.content_type or None,
                                     dict(request.metadata))
            calls.run(context, lambda c: c.publish(publish))
            return pubsub_pb2.PublishResponse()

        def BulkPublish(self, request, context):
            entries = [BulkEntry(e.entry_id, bytes(e.event), e.content_type or None, dict(e.metadata))
                       for e in request.entries]
            return calls.run(context, lambda c: pubsub_pb2.BulkPublishResponse(failed_entries=[
                pubsub_pb2.BulkPublishResponseFailedEntry(entry_id=str(entry_id), error=str(error))
                for entry_id, error in c.bulk_publish(request.topic, entries, dict(request.metadata))
            ]))

        def PullMessages(self, request_iterator, context):
            try:
                instance = calls.instances.get(context)
            except Failure as failure:
                context.abort_with_status(failure.status)
            first = next(request_iterator, None)
            if first is None or not first.HasField("topic") or not first.topic.name:
                calls.bad_request(context, "the first PullMessages request must name the topic")
            topic = first.topic.name
            subscription = calls.run(context, lambda c: c.subscribe(topic, dict(first.topic.metadata)))

            def on_ack(component, request):
                if request.ack_message_id:
                    failure = (request.ack_error.message or "nacked") if request.HasField("ack_error") else None
                    component.ack(subscription, request.ack_message_id, failure)

            def message(m):
                return pubsub_pb2.PullMessagesResponse(data=bytes(m.data), topic_name=m.topic or topic,
                                                       metadata=dict(m.metadata or {}),
                                                       content_type=m.content_type or "", id=str(m.id))

            yield from pump(calls, context, instance, lambda c: list(c.pull(subscription, BATCH)), on_ack,
                            request_iterator, lambda c: c.unsubscribe(subscription), message)

    return [("dapr.proto.components.v1.PubSub", pb.pubsub_pb2_grpc.add_PubSubServicer_to_server, PubSub())]
