"""A Dapr app on FastAPI with the official `dapr-ext-fastapi` (DaprApp):
programmatic subscriptions through GET /dapr/subscribe, the declarative
subscription's routes (/restock, /stock, /hidden), the input binding `tick`
(POST /tick; FastAPI answers OPTIONS /tick with 405, which counts as "handled")
and a health endpoint. Listens on APP_PORT; the pub/sub is PUBSUB (default
broker). Behaviour per event: app_common.py; `"act": "slow"` events take 50 ms and record how many
events the app was handling at once.
"""

import asyncio
import base64
import json
import os

import uvicorn
from dapr.ext.fastapi import DaprApp
from fastapi import FastAPI, Request, Response

import app_common

PUBSUB = os.environ.get("PUBSUB", "broker")
app = FastAPI()
dapr_app = DaprApp(app)


async def answer(route, topic, request):
    """The answer to one CloudEvent for `route` of a subscription to `topic`."""
    event = await request.json()
    if "data_base64" in event:
        payload = base64.b64decode(event["data_base64"]).decode("utf-8", "replace")
        app_common.record(route=route, topic=topic, n=-1, outcome="SUCCESS", raw=payload)
        return Response(status_code=204)
    data = event.get("data")
    payload = data if isinstance(data, str) else json.dumps(data)
    if route == "audit-dlq":
        return {"status": app_common.dead_letter(route, payload)}
    if isinstance(data, dict) and data.get("act") == "slow":
        return await slow(route, topic, data.get("n", -1))
    outcome = app_common.decide(route, topic, payload)
    if outcome == "ERROR":
        return Response(status_code=500)
    return {"status": outcome}


_in_flight = 0


async def slow(route, topic, n):
    """Takes 50 ms, and records how many events the app was handling at once."""
    global _in_flight
    _in_flight += 1
    at_once = _in_flight
    await asyncio.sleep(0.05)
    _in_flight -= 1
    app_common.record(route=route, topic=topic, n=n, outcome="SUCCESS", at_once=at_once)
    return {"status": "SUCCESS"}


def programmatic(topic, **options):
    @dapr_app.subscribe(pubsub=PUBSUB, topic=topic, route=f"/{topic}", **options)
    async def handler(request: Request):
        return await answer(topic, topic, request)


for topic in ["orders", "audit-dlq", "load-a", "load-b", "load-c"]:
    programmatic(topic)
programmatic("audit", dead_letter_topic="audit-dlq")
programmatic("raw", metadata={"rawPayload": "true"})


# Routes of the declarative subscriptions (components folder), not listed above.
for route, topic in [("restock", "stock"), ("stock", "stock"), ("hidden", "hidden")]:
    async def declared(request: Request, route=route, topic=topic):
        return await answer(route, topic, request)

    app.add_api_route(f"/{route}", declared, methods=["POST"])


@app.post("/tick")
async def tick(request: Request):
    await request.body()
    app_common.record(binding="tick", outcome="SUCCESS")
    return Response(status_code=200)


@app.get("/healthz")
async def healthz():
    return Response(status_code=503 if app_common.unhealthy() else 204)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(os.environ["APP_PORT"]), log_level="warning")
