"""Drives a Dapr app (app_fastapi.py or app_grpc.py) through `plughost run`:
publishes with the official `dapr` Python SDK and reads what the app saw
from its record file (app_common.py).

Usage: app_scenario.py --pubsub P --record FILE

The sidecar's ports and token come from the environment (DAPR_GRPC_PORT,
DAPR_HTTP_PORT, DAPR_API_TOKEN). Prints one JSON object of normalised
results; every app kind in every component mode must print the same
(tests/sdk/app_expected.json).
"""

import argparse
import json
import os
import sys
import time
import urllib.request

from dapr.clients import DaprClient

WAIT_S = 60


def records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def wait_until(path, done, what):
    """Waits (bounded) until done(records) holds; returns the records."""
    deadline = time.monotonic() + WAIT_S
    while True:
        seen = records(path)
        if done(seen):
            return seen
        if time.monotonic() > deadline:
            sys.exit(f"timed out waiting for {what}; the app saw:\n" + "\n".join(json.dumps(r) for r in seen[-40:]))
        time.sleep(0.1)


def subscriptions():
    """What the metadata API lists as subscribed (the SDK's GetMetadataResponse
    has no subscriptions: this reads the HTTP API)."""
    url = f"http://127.0.0.1:{os.environ['DAPR_HTTP_PORT']}/v1.0/metadata"
    request = urllib.request.Request(url, headers={"dapr-api-token": os.environ.get("DAPR_API_TOKEN", "")})
    with urllib.request.urlopen(request, timeout=10) as response:
        metadata = json.load(response)
    return sorted([s["pubsubname"], s["topic"], s.get("deadLetterTopic", "")] for s in metadata.get("subscriptions", []))


def publish(d, pubsub, topic, n, act="ok", **extra):
    body = json.dumps({"n": n, "act": act, **extra})
    d.publish_event(pubsub, topic, body, data_content_type="application/json")


def of(seen, **match):
    return [r for r in seen if all(r.get(k) == v for k, v in match.items())]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pubsub", required=True)
    parser.add_argument("--record", required=True)
    args = parser.parse_args()
    pubsub, path = args.pubsub, args.record
    out = {}
    with DaprClient() as d:
        # The input binding reaches the app (cron, every second).
        wait_until(path, lambda seen: of(seen, binding="tick"), "an input binding event")
        out["binding"] = "delivered"
        # Every subscription is in place before anything is published.
        deadline = time.monotonic() + WAIT_S
        while len(subscriptions()) < 8:
            if time.monotonic() > deadline:
                sys.exit(f"the app's subscriptions never all started: {subscriptions()}")
            time.sleep(0.1)

        # Response semantics: SUCCESS, RETRY, an error, DROP + dead letter.
        acts = ["ok", "ok", "ok", "retry-once", "ok", "error-once", "ok", "ok", "ok", "ok"]
        for n, act in enumerate(acts):
            publish(d, pubsub, "orders", n, act)
        for n in range(3):
            publish(d, pubsub, "audit", n, "drop")
        publish(d, pubsub, "hidden", 0)
        # Routing rules (declarative for the HTTP app, programmatic for gRPC).
        publish(d, pubsub, "stock", 1, kind="restock")
        publish(d, pubsub, "stock", 2, kind="sale")
        # A raw payload subscription.
        d.publish_event(pubsub, "raw", b"raw-bytes", publish_metadata={"rawPayload": "true"})

        def settled(seen):
            handled = {r["n"] for r in of(seen, topic="orders", outcome="SUCCESS")}
            return (
                handled == set(range(10))
                and len(of(seen, route="audit-dlq")) >= 3
                and len(of(seen, topic="stock")) >= 2
                and of(seen, route="raw")
            )

        seen = wait_until(path, settled, "the orders, audit, stock and raw messages")
        orders = of(seen, topic="orders")
        out["orders"] = {
            "handled": sorted({r["n"] for r in orders if r["outcome"] == "SUCCESS"}),
            "answers": {
                str(n): [r["outcome"] for r in orders if r["n"] == n] for n in (3, 5)
            },
        }
        out["audit"] = {
            "answered": sorted({r["outcome"] for r in of(seen, topic="audit")}),
            "dead_lettered": sorted({r["n"] for r in of(seen, route="audit-dlq")}),
        }
        out["stock"] = sorted([r["route"], r["n"]] for r in of(seen, topic="stock"))
        out["raw"] = sorted({r["raw"] for r in of(seen, route="raw")})

        # 1,000 messages across 3 topics: every one arrives.
        topics = ["load-a", "load-b", "load-c"]
        for n in range(1000):
            publish(d, pubsub, topics[n % 3], n)

        def loaded(seen):
            return len({r["n"] for r in seen if r.get("topic") in topics}) >= 1000

        seen = wait_until(path, loaded, "1,000 messages")
        received = {r["n"] for r in seen if r.get("topic") in topics}
        out["load"] = {"sent": 1000, "received": len(received), "per_topic": [len({r["n"] for r in of(seen, topic=t)}) for t in topics]}
        # Scoped to another app id: never delivered (published before the load).
        out["hidden"] = len(of(seen, route="hidden"))

        out["subscriptions"] = subscriptions()
    print(json.dumps(out, sort_keys=True))


if __name__ == "__main__":
    main()
