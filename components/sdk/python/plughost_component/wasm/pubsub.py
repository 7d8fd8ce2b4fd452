"""The `pubsub` interface over a PubSub."""

from .. import pubsub as sdk
from . import call


def adapter(holder):
    from wit_world.exports import pubsub as wit

    class Pubsub:
        def publish(self, request):
            r = sdk.PublishRequest(request.topic, bytes(request.data), request.content_type, dict(request.metadata))
            call(holder, lambda c: c.publish(r))

        def bulk_publish(self, topic, entries, metadata):
            es = [sdk.BulkEntry(e.entry_id, bytes(e.data), e.content_type, dict(e.metadata)) for e in entries]
            failed = call(holder, lambda c: list(c.bulk_publish(topic, es, dict(metadata))))
            return [wit.FailedEntry(str(entry_id), str(error)) for entry_id, error in failed]

        def subscribe(self, topic, metadata):
            return int(call(holder, lambda c: c.subscribe(topic, dict(metadata))))

        def pull(self, subscription, max):
            messages = call(holder, lambda c: list(c.pull(subscription, max)))
            return [wit.Message(str(m.id), m.topic, bytes(m.data), m.content_type,
                                [(str(k), str(v)) for k, v in (m.metadata or {}).items()]) for m in messages]

        def ack(self, subscription, message_id, failure):
            call(holder, lambda c: c.ack(subscription, message_id, failure))

        def unsubscribe(self, subscription):
            if holder.component is not None:
                holder.component.unsubscribe(subscription)

    return Pubsub
