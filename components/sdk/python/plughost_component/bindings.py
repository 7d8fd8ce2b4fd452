"""Bindings: `OutputBinding` (the app invokes operations) and `InputBinding` (events
the app answers), the interfaces of `wit/bindings.wit`.

Input events are pulled, like pub/sub: the runtime opens a reader, polls it and
answers each event. Over gRPC the runtime turns this into Dapr's `Read` stream.
"""

from dataclasses import dataclass, field
from typing import Optional

from .component import Component
from .errors import NotSupported


@dataclass
class InvokeRequest:
    operation: str
    data: bytes = b""
    metadata: dict = field(default_factory=dict)


@dataclass
class InvokeResponse:
    data: bytes = b""
    metadata: dict = field(default_factory=dict)
    content_type: Optional[str] = None


@dataclass
class Event:
    id: str
    data: bytes = b""
    metadata: dict = field(default_factory=dict)
    content_type: Optional[str] = None


class OutputBinding(Component):
    def operations(self):
        """The operations `invoke` accepts, e.g. ["create", "get"]."""
        return []

    def invoke(self, request):
        """-> InvokeResponse."""
        raise NotSupported("invoke is not implemented")


class InputBinding(Component):
    def open(self):
        """-> a reader id (int)."""
        raise NotSupported("open is not implemented")

    def poll(self, reader, max_events):
        """-> up to `max_events` Event objects that are due now (may be empty)."""
        raise NotSupported("poll is not implemented")

    def answer(self, reader, event_id, reply, error):
        """The app's answer to an event: `reply` bytes, or `error` text when handling failed."""

    def close(self, reader):
        pass
