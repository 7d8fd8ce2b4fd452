"""A Dapr app on gRPC with the official `dapr-ext-grpc` (App): programmatic
subscriptions through ListTopicSubscriptions, routing rules (CEL) on `stock`,
the input binding `tick` (ListInputBindings / OnBindingEvent) and the health
check service (failing while the file APP_UNHEALTHY exists). Listens on APP_PORT; the pub/sub is PUBSUB (default broker).
Behaviour per event: app_common.py.
"""

import os

from dapr.clients.grpc._response import TopicEventResponse
from dapr.ext.grpc import App, BindingRequest, Rule

import app_common

PUBSUB = os.environ.get("PUBSUB", "broker")
app = App()


def answer(route, topic, event):
    """The answer to one event for `route` of a subscription to `topic`."""
    data = event.data
    payload = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    if route == "audit-dlq":
        return TopicEventResponse(app_common.dead_letter(route, payload).lower())
    outcome = app_common.decide(route, topic, payload)
    if outcome == "ERROR":
        raise RuntimeError(f"{route}: failing the first attempt")
    return TopicEventResponse(outcome.lower())


def programmatic(topic, **options):
    @app.subscribe(pubsub_name=PUBSUB, topic=topic, **options)
    def handler(event):
        return answer(topic, topic, event)


for topic in ["orders", "audit-dlq", "load-a", "load-b", "load-c"]:
    programmatic(topic)
programmatic("audit", dead_letter_topic="audit-dlq")


@app.subscribe(pubsub_name=PUBSUB, topic="raw", metadata={"rawPayload": "true"})
def raw(event):
    payload = bytes(event.data).decode("utf-8", "replace")
    app_common.record(route="raw", topic="raw", n=-1, outcome="SUCCESS", raw=payload)


# Routing rules: the SDK names each rule's path after its function.
@app.subscribe(pubsub_name=PUBSUB, topic="stock", rule=Rule('event.data.kind == "restock"', 1))
def restock(event):
    return answer("restock", "stock", event)


@app.subscribe(pubsub_name=PUBSUB, topic="stock", rule=Rule('event.data.kind != "restock"', 2))
def stock(event):
    return answer("stock", "stock", event)


@app.binding("tick")
def tick(request: BindingRequest):
    app_common.record(binding="tick", outcome="SUCCESS")


def health_check():
    # Without a registered callback the SDK answers UNIMPLEMENTED: unhealthy, for daprd too.
    if app_common.unhealthy():
        raise RuntimeError("unhealthy")


app.register_health_check(health_check)


if __name__ == "__main__":
    app.run(int(os.environ["APP_PORT"]), listen_address="127.0.0.1")
