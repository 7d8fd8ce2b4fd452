"""One small component of each non-state kind, for wire_test.py (and the WASM check in
plughost's tests): the pulled kinds keep what they hand out in flight until acked."""

import collections

from plughost_component import (
    Event,
    InputBinding,
    InvokeResponse,
    Message,
    NotFound,
    NotSupported,
    OutputBinding,
    PubSub,
    SecretStore,
)


class Broker(PubSub):
    def init(self, metadata):
        self.subscriptions = {}  # id -> [topic, queue of Message, {id: Message} in flight]
        self.next_id = 1

    def features(self):
        return []

    def publish(self, request):
        if request.topic == "forbidden":
            raise NotSupported("topic `forbidden` is not served")
        for topic, queue, _ in self.subscriptions.values():
            if topic == request.topic:
                queue.append(Message(f"m{self.next_id}", topic, request.data, request.content_type, request.metadata))
        self.next_id += 1

    def subscribe(self, topic, metadata):
        sid = len(self.subscriptions) + 1
        self.subscriptions[sid] = [topic, collections.deque(), {}]
        return sid

    def pull(self, subscription, max_messages):
        _, queue, in_flight = self.subscriptions[subscription]
        out = []
        while queue and len(out) < max_messages:
            message = queue.popleft()
            in_flight[message.id] = message
            out.append(message)
        return out

    def ack(self, subscription, message_id, failure):
        _, queue, in_flight = self.subscriptions[subscription]
        message = in_flight.pop(message_id, None)
        if message is not None and failure is not None:
            queue.append(message)

    def unsubscribe(self, subscription):
        self.subscriptions.pop(subscription, None)


class Ticker(InputBinding):
    """Three events per reader; the answers are kept for `Echo` to report."""

    answers = []

    def init(self, metadata):
        self.readers = {}

    def open(self):
        reader = len(self.readers) + 1
        self.readers[reader] = [Event(f"e{i}", f"tick {i}".encode(), {"n": str(i)}) for i in range(3)]
        return reader

    def poll(self, reader, max_events):
        events, self.readers[reader] = self.readers[reader][:max_events], self.readers[reader][max_events:]
        return events

    def answer(self, reader, event_id, reply, error):
        Ticker.answers.append((event_id, reply, error))

    def close(self, reader):
        self.readers.pop(reader, None)


class Echo(OutputBinding):
    def init(self, metadata):
        self.prefix = metadata.get("prefix", "")

    def operations(self):
        return ["echo"]

    def invoke(self, request):
        if request.operation != "echo":
            raise NotSupported(f"operation `{request.operation}` is not supported")
        return InvokeResponse(self.prefix.encode() + request.data, {"op": request.operation}, "text/plain")


class Secrets(SecretStore):
    def init(self, metadata):
        self.secrets = {k[len("secret."):]: v for k, v in metadata.items() if k.startswith("secret.")}

    def get(self, key, metadata):
        if key not in self.secrets:
            raise NotFound(f"no secret `{key}`")
        return {key: self.secrets[key]}

    def bulk_get(self, metadata):
        return {k: {k: v} for k, v in self.secrets.items()}
