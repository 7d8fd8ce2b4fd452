"""Pub/sub brokers: `PubSub`, the `pubsub` interface of `wit/pubsub.wit`.

Delivery is pulled in both modes, because a WASM guest cannot call the host on its
own: the runtime opens a subscription, pulls messages and answers each with `ack`.
Keep pulled messages in flight until acked; redeliver nacked ones and, on
`unsubscribe`, the ones still in flight (at-least-once). Over gRPC the runtime turns
this into Dapr's `PullMessages` stream.
"""

from dataclasses import dataclass, field
from typing import Optional

from .component import Component
from .errors import ComponentError, NotSupported


@dataclass
class PublishRequest:
    topic: str
    data: bytes = b""
    content_type: Optional[str] = None
    metadata: dict = field(default_factory=dict)


@dataclass
class BulkEntry:
    entry_id: str
    data: bytes = b""
    content_type: Optional[str] = None
    metadata: dict = field(default_factory=dict)


@dataclass
class Message:
    """A pulled message; `id` is stable across redeliveries."""

    id: str
    topic: str
    data: bytes = b""
    content_type: Optional[str] = None
    metadata: dict = field(default_factory=dict)


class PubSub(Component):
    def publish(self, request):
        raise NotSupported("publish is not implemented")

    def bulk_publish(self, topic, entries, metadata):
        """-> [(entry_id, error text)] for the entries that failed; default: one by one."""
        failed = []
        for entry in entries:
            try:
                self.publish(PublishRequest(topic, entry.data, entry.content_type, {**metadata, **entry.metadata}))
            except ComponentError as error:
                failed.append((entry.entry_id, error.message))
        return failed

    def subscribe(self, topic, metadata):
        """Starts a subscription (messages published from now on); -> its id (int).
        `metadata["consumerID"]` names a consumer group."""
        raise NotSupported("subscribe is not implemented")

    def pull(self, subscription, max_messages):
        """-> up to `max_messages` Message objects, each now in flight (may be empty)."""
        raise NotSupported("pull is not implemented")

    def ack(self, subscription, message_id, failure):
        """`failure` None: done; a string: deliver the message again."""
        raise NotSupported("ack is not implemented")

    def unsubscribe(self, subscription):
        """Ends the subscription; its in-flight messages are delivered again."""
