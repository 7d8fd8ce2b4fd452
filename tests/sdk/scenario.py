"""Drives a running `plughost run` with the official `dapr` Python SDK.

Usage: scenario.py --store S --pubsub P --binding B --secret-store V

The sidecar's ports and token come from the environment, as for any Dapr app
(DAPR_GRPC_PORT, DAPR_HTTP_PORT, DAPR_API_TOKEN). The secret store must hold
one secret, `api-key` = `s3cret`; the binding must behave like
`bindings.localstorage` (create / get / list / delete by `fileName`).

Prints one JSON object: every observed result, normalised (no ETag values, no
generated ids), so runs against components in different modes can be compared
for equality. Exits non-zero on an unexpected exception.
"""

import argparse
import concurrent.futures
import json
import sys
import time

import grpc
from dapr.clients import DaprClient
from dapr.clients.grpc._request import TransactionalStateOperation, TransactionOperationType
from dapr.clients.grpc._state import StateItem

EVENT_TIMEOUT_S = 20

# dapr 1.18.3's Subscription.start() marks the stream active only after gRPC
# has started pulling requests from it, so on a busy machine the request
# iterator can find the stream "inactive" right after the initial request and
# end: the sidecar then sees the client half-close, and no ack ever reaches
# it. Marking the stream active before it starts closes that race.
from dapr.clients.grpc.subscription import Subscription  # noqa: E402

_sdk_start = Subscription.start


def _start_active(self):
    self._set_stream_active()
    _sdk_start(self)


Subscription.start = _start_active
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)


def code_of(call):
    """The gRPC status name a call fails with, or "OK"."""
    try:
        call()
        return "OK"
    except grpc.RpcError as err:
        return err.code().name


def next_event(subscription):
    """The next message of a streaming subscription, or fail after a timeout."""
    message = _pool.submit(subscription.next_message).result(timeout=EVENT_TIMEOUT_S)
    return message


def describe(message):
    return {
        "topic": message.topic(),
        "pubsub": message.pubsub_name(),
        "source": message.source(),
        "type": message.type(),
        "content_type": message.data_content_type(),
        "data": message.data(),
        "raw": message.raw_data().decode("utf-8", "replace"),
    }


def state(d, store, out):
    d.save_state(store, "order-1", '{"item":"tea"}')
    first = d.get_state(store, "order-1")
    d.save_state(store, "order-1", '{"item":"coffee"}', etag=first.etag)
    second = d.get_state(store, "order-1")
    out["state"] = {
        "read": first.data.decode(),
        "read_after_update": second.data.decode(),
        "etag_changed": bool(first.etag) and first.etag != second.etag,
        "stale_etag_save": code_of(lambda: d.save_state(store, "order-1", "x", etag=first.etag)),
        "stale_etag_delete": code_of(lambda: d.delete_state(store, "order-1", etag=first.etag)),
        "value_after_stale_writes": d.get_state(store, "order-1").data.decode(),
        "delete_with_current_etag": code_of(lambda: d.delete_state(store, "order-1", etag=second.etag)),
    }
    gone = d.get_state(store, "order-1")
    out["state"]["after_delete"] = {"data": gone.data.decode(), "etag": gone.etag}
    out["state"]["missing_key"] = d.get_state(store, "never-written").data.decode()
    d.save_bulk_state(store, [StateItem("bulk-1", "one"), StateItem("bulk-2", "two")])
    bulk = d.get_bulk_state(store, ["bulk-1", "bulk-2", "bulk-3"]).items
    out["state"]["bulk"] = [[item.key, item.data.decode(), bool(item.etag)] for item in bulk]
    out["state"]["key_with_separator"] = code_of(lambda: d.save_state(store, "a||b", "x"))
    out["state"]["unknown_store"] = code_of(lambda: d.get_state("no-such-store", "k"))


def transaction(d, store, out):
    d.save_state(store, "tx-1", "zero")
    stale = d.get_state(store, "tx-1").etag
    d.save_state(store, "tx-2", "to be deleted")
    d.execute_state_transaction(
        store,
        [
            TransactionalStateOperation(key="tx-1", data="one"),
            TransactionalStateOperation(key="tx-2", operation_type=TransactionOperationType.delete),
        ],
    )
    tx1 = d.get_state(store, "tx-1")
    # All or nothing: tx-3 must not appear when the second step's ETag is stale.
    failed = code_of(
        lambda: d.execute_state_transaction(
            store,
            [
                TransactionalStateOperation(key="tx-3", data="three"),
                TransactionalStateOperation(key="tx-1", data="uno", etag=stale),
            ],
        )
    )
    out["transaction"] = {
        "tx-1": tx1.data.decode(),
        "tx-2": d.get_state(store, "tx-2").data.decode(),
        "failed_transaction": failed,
        "tx-3_after_failure": d.get_state(store, "tx-3").data.decode(),
        "tx-1_after_failure": d.get_state(store, "tx-1").data.decode(),
    }


def pubsub(d, name, out):
    subscription = d.subscribe(name, "orders")
    try:
        d.publish_event(name, "orders", json.dumps({"order": 1}), data_content_type="application/json")
        json_event = next_event(subscription)
        subscription.respond_success(json_event)

        d.publish_event(name, "orders", "second", data_content_type="text/plain")
        retried = next_event(subscription)
        subscription.respond_retry(retried)
        redelivered = next_event(subscription)
        subscription.respond_success(redelivered)

        d.publish_event(name, "orders", b"raw-bytes", publish_metadata={"rawPayload": "true"})
        raw = next_event(subscription)
        subscription.respond_success(raw)

        d.publish_events(name, "orders", ["bulk-a", "bulk-b"], data_content_type="text/plain")
        bulk_events = [next_event(subscription) for _ in range(2)]
        for event in bulk_events:
            subscription.respond_success(event)
        bulk = sorted(event.data() for event in bulk_events)
        # Acks are sent by the SDK's writer thread; let them out before closing.
        time.sleep(0.5)
    finally:
        subscription.close()
    out["pubsub"] = {
        "json": describe(json_event),
        "text": describe(retried),
        "redelivered_same_event": retried.id() == redelivered.id() and redelivered.data() == "second",
        "raw": {"raw": raw.raw_data().decode(), "topic": raw.topic()},
        "bulk": bulk,
        "unknown_pubsub": code_of(lambda: d.publish_event("no-such-pubsub", "orders", "x")),
    }


def binding(d, name, out):
    created = d.invoke_binding(name, "create", "hello file", binding_metadata={"fileName": "note.txt"})
    read = d.invoke_binding(name, "get", binding_metadata={"fileName": "note.txt"})
    listing = d.invoke_binding(name, "list")
    d.invoke_binding(name, "delete", binding_metadata={"fileName": "note.txt"})
    out["binding"] = {
        "created": created.binding_metadata.get("fileName"),
        "read": read.text(),
        "list": json.loads(listing.text()),
        "read_deleted": code_of(lambda: d.invoke_binding(name, "get", binding_metadata={"fileName": "note.txt"})),
        "unknown_operation": code_of(lambda: d.invoke_binding(name, "explode")),
        "unknown_binding": code_of(lambda: d.invoke_binding("no-such-binding", "get")),
    }


def secrets(d, store, out):
    out["secrets"] = {
        "get": dict(d.get_secret(store, "api-key").secret),
        "bulk": {name: dict(values) for name, values in d.get_bulk_secret(store).secrets.items()},
        "missing": code_of(lambda: d.get_secret(store, "no-such-secret")),
        "unknown_store": code_of(lambda: d.get_secret("no-such-store", "api-key")),
    }


def main():
    parser = argparse.ArgumentParser()
    for arg in ("--store", "--pubsub", "--binding", "--secret-store"):
        parser.add_argument(arg, required=True)
    args = parser.parse_args()
    out = {}
    with DaprClient() as d:
        state(d, args.store, out)
        transaction(d, args.store, out)
        pubsub(d, args.pubsub, out)
        binding(d, args.binding, out)
        secrets(d, args.secret_store, out)
        metadata = d.get_metadata()
        out["metadata"] = {
            "app_id": metadata.application_id,
            "components": sorted([c.name, c.type] for c in metadata.registered_components),
        }
    json.dump(out, sys.stdout, sort_keys=True)
    print()
    _pool.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    main()
