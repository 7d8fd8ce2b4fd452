"""The two pulled kinds over Dapr's bidirectional streams: pub/sub `PullMessages` and
input binding `Read`. The component is pulled (as in WASM mode); a reader thread
hands the host's acks to the component meanwhile."""

import threading
import traceback

# How long an idle stream waits before pulling again.
POLL_SECONDS = 0.02
BATCH = 16


def pump(calls, context, instance, pull, on_request, requests, finish, to_response):
    """Yields `to_response(item)` for what `pull(component)` returns until the host ends
    the stream; every later request goes to `on_request(component, request)`;
    `finish(component)` runs at the end whatever happens."""
    ended = threading.Event()

    def read_acks():
        try:
            for request in requests:
                try:
                    with instance.lock:
                        on_request(instance.component, request)
                except Exception:
                    calls.log(f"error handling an ack: {traceback.format_exc().rstrip()}")
        except Exception:
            pass  # the stream was cancelled
        finally:
            ended.set()

    threading.Thread(target=read_acks, daemon=True, name="acks").start()
    try:
        while context.is_active() and not ended.is_set():
            items = calls.run(context, lambda component: [to_response(i) for i in pull(component)])
            for item in items:
                yield item
            if not items:
                ended.wait(POLL_SECONDS)
    finally:
        try:
            with instance.lock:
                finish(instance.component)
        except Exception:
            calls.log(f"error closing a stream: {traceback.format_exc().rstrip()}")
