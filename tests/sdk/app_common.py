"""What both test apps (app_fastapi.py, app_grpc.py) do with an event, so the
two app kinds behave alike and the scenario expects one result.

The payload of every test message is JSON: {"n": <int>, "act": <str>}.
`act` says how the app answers: "ok" (SUCCESS), "retry-once" (RETRY on the
first attempt), "error-once" (an HTTP 500 / a gRPC error on the first
attempt), "drop" (DROP). Every attempt is appended as one JSON line to the
file named by APP_RECORD: {"route", "topic", "n", "outcome"} (bindings:
{"binding", "outcome"}); the scenario reads that file.
"""

import json
import os
import threading

_lock = threading.Lock()
_attempts = {}


def record(**fields):
    with _lock:
        with open(os.environ["APP_RECORD"], "a", encoding="utf-8") as out:
            out.write(json.dumps(fields) + "\n")


def decide(route, topic, payload):
    """The outcome for this attempt: "SUCCESS", "RETRY", "DROP" or "ERROR"."""
    try:
        message = json.loads(payload)
    except (TypeError, ValueError):
        message = {"n": -1, "act": "ok", "text": payload if isinstance(payload, str) else repr(payload)}
    if not isinstance(message, dict):
        message = {"n": -1, "act": "ok"}
    n, act = message.get("n", -1), message.get("act", "ok")
    with _lock:
        key = (topic, n)
        _attempts[key] = _attempts.get(key, 0) + 1
        first = _attempts[key] == 1
    outcome = {
        "retry-once": "RETRY" if first else "SUCCESS",
        "error-once": "ERROR" if first else "SUCCESS",
        "drop": "DROP",
    }.get(act, "SUCCESS")
    record(route=route, topic=topic, n=n, outcome=outcome)
    return outcome


def dead_letter(route, payload):
    """A dead-lettered message: recorded and accepted, whatever its `act`."""
    try:
        n = json.loads(payload).get("n", -1)
    except (TypeError, ValueError, AttributeError):
        n = -1
    record(route=route, topic=route, n=n, outcome="SUCCESS")
    return "SUCCESS"


def unhealthy():
    """Whether the health endpoint should fail (the file APP_UNHEALTHY exists)."""
    flag = os.environ.get("APP_UNHEALTHY")
    return bool(flag) and os.path.exists(flag)
