"""The gRPC runtime of plughost_component over a real socket, with a real grpcio client.

Usage: python3 wire_test.py   (plughost's `cargo test` runs it: tests/all/python_sdk.rs)

Runs `components/python-state/store.py` (the SDK example) and `faulty.py` / `kinds.py`
(fixtures here) as processes and checks: the state rules; the wire conventions of
spec A12 (status codes, the BadRequest/etag detail); reflection v1alpha and v1 listing
exactly the served services; `x-component-instance` instances created by Init; bad
input (calls before Init, unknown instance, malformed bytes, a transaction operation
without a request, a failing Init, a component raising a bug) answered with a status,
never a crash; the other kinds (pub/sub stream with acks and redelivery, input binding
Read stream, output binding, secret store); the socket life cycle (stale socket
replaced, live socket refused, SIGTERM/SIGINT exit 0 and remove the socket).
Prints `N passed, N failed` and exits non-zero on any failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SDK = os.path.dirname(HERE)
sys.path.insert(0, SDK)

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from plughost_component.server import stubs  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
STORE = os.path.normpath(os.path.join(SDK, "..", "..", "python-state", "store.py"))
RESULTS = {"passed": 0, "failed": 0}
SCRATCH = {"dir": None}
PROCS = []  # every server started, killed at the end whatever happened
EXPECTED_SERVICES = {
    "dapr.proto.components.v1.StateStore",
    "dapr.proto.components.v1.TransactionalStateStore",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
}

pb = pb_grpc = common = None


def require(condition, message):
    if not condition:
        raise AssertionError(message)


def check(name, fn):
    try:
        fn()
    except Exception as error:
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {type(error).__name__}: {error}", flush=True)
    else:
        RESULTS["passed"] += 1
        print(f"ok   {name}", flush=True)


def start(path, expect_ready=True, target=None, env_extra=None):
    """Runs the example store on `path`, or `python -m plughost_component serve TARGET`
    (a class of a module in this folder)."""
    # TMPDIR inside the test folder: the stubs of a server killed with SIGKILL go away with it.
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([SDK, HERE]))
    for var in ("DAPR_COMPONENT_SOCKETS_FOLDER", "DAPR_COMPONENTS_SOCKETS_FOLDER"):
        env.pop(var, None)
    env.update(env_extra or {})
    if SCRATCH["dir"]:
        env["TMPDIR"] = SCRATCH["dir"]
    if target is None:
        command = [sys.executable, STORE, path]
    elif env_extra:  # the socket comes from the environment: <folder>/<name>.sock
        command = [sys.executable, "-m", "plughost_component", "serve", target, "--path", HERE, "--name",
                   os.path.splitext(os.path.basename(path))[0]]
    else:
        command = [sys.executable, "-m", "plughost_component", "serve", target, "--path", HERE, "--socket", path]
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    PROCS.append(proc)
    if not expect_ready:
        return proc
    deadline = time.monotonic() + 20
    while not answers(path):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"server did not start: {proc.stderr.read()}")
        time.sleep(0.05)
    return proc


def answers(path):
    """True when something accepts connections on the socket (a stale file does not)."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()


def stop(proc, sig=signal.SIGTERM):
    proc.send_signal(sig)
    try:
        rc = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    return rc


class Client:
    def __init__(self, path, instance=None):
        self.channel = grpc.insecure_channel(
            f"unix:{path}",
            options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.max_send_message_length", 64 << 20)],
        )
        self.state = pb_grpc.StateStoreStub(self.channel)
        self.tx = pb_grpc.TransactionalStateStoreStub(self.channel)
        self.metadata = [] if instance is None else [("x-component-instance", instance)]

    def __getattr__(self, rpc):
        method = getattr(self.state, rpc, None) or getattr(self.tx, rpc)
        return lambda request: method(request, metadata=self.metadata, timeout=10)

    def set(self, key, value, etag=None, metadata=None, concurrency=0, content_type=""):
        if isinstance(value, str):
            value = value.encode()
        request = pb.SetRequest(key=key, value=value, metadata=metadata or {}, content_type=content_type,
                                options=pb.StateOptions(concurrency=concurrency))
        if etag is not None:
            request.etag.value = etag
        return self.Set(request)

    def get(self, key):
        return self.Get(pb.GetRequest(key=key))

    def value(self, key):
        response = self.get(key)
        return response.data if response.HasField("etag") else None

    def delete(self, key, etag=None):
        request = pb.DeleteRequest(key=key)
        if etag is not None:
            request.etag.value = etag
        return self.Delete(request)


def rpc_error(fn):
    try:
        fn()
    except grpc.RpcError as error:
        return error
    raise AssertionError("the call succeeded")


def assert_etag_error(error, code, message=None):
    assert error.code() == code, (error.code(), error.details())
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin"
    assert len(status.details) == 1, status
    bad = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad), status.details[0].type_url
    assert status.details[0].type_url == "type.googleapis.com/google.rpc.BadRequest"
    assert len(bad.field_violations) == 1 and bad.field_violations[0].field == "etag", bad
    assert bad.field_violations[0].description == error.details()
    if message is not None:
        assert error.details() == message, error.details()


def bulk_failures(error):
    trailers = dict(error.trailing_metadata() or ())
    return json.loads(trailers["x-bulk-failures-bin"].decode("utf-8"))


def list_services(channel, version):
    if version == "v1alpha":
        call = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo
    else:
        call = channel.stream_stream(
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
            request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
            response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
        )
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="dapr.proto.components.v1.StateStore"),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol=f"grpc.reflection.{version}.ServerReflection"),
    ]
    responses = list(call(iter(requests), timeout=10))
    names = {s.name for s in responses[0].list_services_response.service}
    for response in responses[1:]:
        assert response.HasField("file_descriptor_response"), response
    return names


def run_state_checks(path):
    c = Client(path, "statestore")
    n = iter(range(1_000_000))

    def key(prefix):
        return f"{prefix}-{next(n)}"

    def lifecycle():
        c.Init(pb.InitRequest(metadata=common.MetadataRequest(properties={"a": "b"})))
        assert set(c.Features(common.FeaturesRequest()).features) == {"ETAG", "TRANSACTIONAL", "TTL"}
        c.Ping(common.PingRequest())
        error = rpc_error(lambda: pb_grpc.TransactionalStoreMultiMaxSizeStub(c.channel).MultiMaxSize(
            pb.MultiMaxSizeRequest(), timeout=10))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error.code()

    def calls_before_init_are_refused_and_ping_answers():
        fresh = Client(path, "never-initialised")
        error = rpc_error(lambda: fresh.get("k"))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        assert "never-initialised" in error.details() and "Init" in error.details(), error.details()
        assert rpc_status.from_call(error) is None, "no etag detail"
        error = rpc_error(lambda: fresh.Features(common.FeaturesRequest()))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        fresh.Ping(common.PingRequest())  # liveness: the process answers
        error = rpc_error(lambda: Client(path).get("k"))  # the default instance, never initialised
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "default" in error.details(), error
        fresh.channel.close()

    def malformed_requests_get_a_status():
        raw = c.channel.unary_unary("/dapr.proto.components.v1.StateStore/Set",
                                    request_serializer=lambda b: b, response_deserializer=lambda b: b)
        error = rpc_error(lambda: raw(b"\xff\xff\xff\xff garbage", metadata=c.metadata, timeout=10))
        assert error.code() in (grpc.StatusCode.INTERNAL, grpc.StatusCode.INVALID_ARGUMENT), error
        unknown = c.channel.unary_unary("/dapr.proto.components.v1.StateStore/NoSuchCall",
                                        request_serializer=lambda b: b, response_deserializer=lambda b: b)
        assert rpc_error(lambda: unknown(b"", timeout=10)).code() == grpc.StatusCode.UNIMPLEMENTED
        empty = pb.TransactionalStateRequest(operations=[pb.TransactionalStateOperation()])
        error = rpc_error(lambda: c.Transact(empty))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "operation 0" in error.details(), error
        assert c.value("still-serving") is None  # the server is still there

    def reflection_lists_exactly_the_services():
        for version in ("v1alpha", "v1"):
            names = list_services(c.channel, version)
            assert names == EXPECTED_SERVICES, (version, names)

    def set_get_delete_and_missing():
        k = key("sgd")
        missing = c.get(k)
        assert missing.data == b"" and not missing.HasField("etag") and missing.content_type == "", missing
        c.delete(k)
        c.set(k, "v1")
        assert c.value(k) == b"v1"
        c.set(k, "v2")
        assert c.value(k) == b"v2"
        c.delete(k)
        assert c.value(k) is None

    def etag_rules():
        k = key("etag")
        c.set(k, "one")
        first = c.get(k).etag.value
        c.set(k, "two", etag=first)
        second = c.get(k).etag.value
        assert second != first
        error = rpc_error(lambda: c.set(k, "three", etag=first))
        assert_etag_error(error, grpc.StatusCode.FAILED_PRECONDITION, f"etag mismatch for key `{k}`")
        assert c.value(k) == b"two"
        error = rpc_error(lambda: c.set(k, "four", etag="not-an-etag"))
        assert_etag_error(error, grpc.StatusCode.INVALID_ARGUMENT, f"invalid etag for key `{k}`")
        error = rpc_error(lambda: c.set(key("etag-new"), "x", etag=second))
        assert_etag_error(error, grpc.StatusCode.FAILED_PRECONDITION)
        assert_etag_error(rpc_error(lambda: c.delete(k, first)), grpc.StatusCode.FAILED_PRECONDITION)
        c.delete(k, second)
        assert c.value(k) is None
        # Unicode keys travel in the status message and the detail.
        u = key("ключ-🔑")
        c.set(u, "v")
        assert_etag_error(rpc_error(lambda: c.set(u, "w", etag="1")), grpc.StatusCode.FAILED_PRECONDITION,
                          f"etag mismatch for key `{u}`")

    def etag_race_first_write():
        k = key("race")
        c.set(k, "start")
        tag = c.get(k).etag.value
        results = [None] * 50

        def writer(i):
            try:
                c.set(k, f"writer {i}", etag=tag, concurrency=pb.StateOptions.CONCURRENCY_FIRST_WRITE)
                results[i] = "won"
            except grpc.RpcError as error:
                results[i] = error.code()

        threads = [threading.Thread(target=writer, args=(i,)) for i in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        winners = [i for i, r in enumerate(results) if r == "won"]
        assert len(winners) == 1, results
        assert all(r in ("won", grpc.StatusCode.FAILED_PRECONDITION) for r in results), results
        assert c.value(k) == f"writer {winners[0]}".encode()
        fw = key("fw")
        c.set(fw, "created", concurrency=pb.StateOptions.CONCURRENCY_FIRST_WRITE)
        error = rpc_error(lambda: c.set(fw, "again", concurrency=pb.StateOptions.CONCURRENCY_FIRST_WRITE))
        assert_etag_error(error, grpc.StatusCode.FAILED_PRECONDITION)
        assert c.value(fw) == b"created"

    def bulk():
        keys = [key(f"bulk{i}") for i in range(5)]
        c.BulkSet(pb.BulkSetRequest(items=[pb.SetRequest(key=k, value=f"value of {k}".encode()) for k in keys[:3]]))
        items = c.BulkGet(pb.BulkGetRequest(items=[pb.GetRequest(key=k) for k in keys])).items
        assert [i.key for i in items] == keys
        for i, item in enumerate(items):
            assert item.error == ""
            if i < 3:
                assert item.data == f"value of {keys[i]}".encode() and item.etag.value
            else:
                assert item.data == b"" and not item.HasField("etag")
        c.BulkDelete(pb.BulkDeleteRequest(items=[pb.DeleteRequest(key=k) for k in keys[:2]]))
        assert [c.value(k) for k in keys[:3]] == [None, None, f"value of {keys[2]}".encode()]

    def bulk_set_reports_exactly_the_failed_key():
        a, b, cc = key("bsa"), key("bsb"), key("bsc")
        c.set(b, "old")
        items = [pb.SetRequest(key=a, value=b"a"), pb.SetRequest(key=b, value=b"new", etag=pb.Etag(value="999999999")),
                 pb.SetRequest(key=cc, value=b"c")]
        error = rpc_error(lambda: c.BulkSet(pb.BulkSetRequest(items=items)))
        assert_etag_error(error, grpc.StatusCode.FAILED_PRECONDITION, f"etag mismatch for key `{b}`")
        assert bulk_failures(error) == [{"key": b, "code": "etag-mismatch", "message": f"etag mismatch for key `{b}`"}]
        assert (c.value(a), c.value(b), c.value(cc)) == (b"a", b"old", b"c")
        # Mixed failures: code of the first, no detail, every key in the trailer.
        items = [pb.DeleteRequest(key=a), pb.DeleteRequest(key=b, etag=pb.Etag(value="1")),
                 pb.DeleteRequest(key=cc, etag=pb.Etag(value="x"))]
        error = rpc_error(lambda: c.BulkDelete(pb.BulkDeleteRequest(items=items)))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and rpc_status.from_call(error) is None
        assert [(f["key"], f["code"]) for f in bulk_failures(error)] == [(b, "etag-mismatch"), (cc, "etag-invalid")]
        assert (c.value(a), c.value(b), c.value(cc)) == (None, b"old", b"c")

    def ttl():
        k = key("ttl")
        for bad in ("foo", "-2", "1.5"):
            error = rpc_error(lambda: c.set(k, "x", metadata={"ttlInSeconds": bad}))
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
            assert rpc_status.from_call(error) is None, "no details for a bad ttl"
        before = time.time()
        c.set(k, "short-lived", metadata={"ttlInSeconds": "1"})
        expires = c.get(k).metadata["ttlExpireTime"]
        from datetime import datetime

        delta = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp() - before
        assert expires.endswith("Z") and 0.9 <= delta <= 1.6, (expires, delta)
        bulk = c.BulkGet(pb.BulkGetRequest(items=[pb.GetRequest(key=k)])).items
        assert "ttlExpireTime" in bulk[0].metadata
        deadline = time.time() + 10
        while c.value(k) is not None:
            assert time.time() < deadline, "value did not expire"
            time.sleep(0.1)
        for never in ("-1", "0"):
            c.set(k, "forever", metadata={"ttlInSeconds": never})
            assert "ttlExpireTime" not in c.get(k).metadata

    def transactions():
        existing, fresh, missing = key("tx-existing"), key("tx-fresh"), key("tx-missing")
        c.set(existing, "before")
        op_set = lambda k, v, etag=None: pb.TransactionalStateOperation(  # noqa: E731
            set=pb.SetRequest(key=k, value=v.encode(), etag=None if etag is None else pb.Etag(value=etag)))
        op_del = lambda k: pb.TransactionalStateOperation(delete=pb.DeleteRequest(key=k))  # noqa: E731
        ops = [op_del(existing), op_set(fresh, "first"), op_del(fresh), op_set(fresh, "second"), op_del(missing),
               op_set(existing, "after")]
        c.Transact(pb.TransactionalStateRequest(operations=ops))
        assert (c.value(existing), c.value(fresh), c.value(missing)) == (b"after", b"second", None)
        a, b = key("rb-a"), key("rb-b")
        c.set(a, "a0")
        ops = [op_set(a, "a1"), op_set(b, "b1"), op_set(a, "a2", etag="123456789")]
        error = rpc_error(lambda: c.Transact(pb.TransactionalStateRequest(operations=ops)))
        assert_etag_error(error, grpc.StatusCode.FAILED_PRECONDITION, f"etag mismatch for key `{a}`")
        assert c.value(a) == b"a0" and c.value(b) is None, "rolled back"

    def content_type_binary_big_unicode():
        k = key("ct")
        c.set(k, '{"a":1}', metadata={"contentType": "application/json"}, content_type="application/json")
        got = c.get(k)
        assert got.content_type == "application/json" and got.data == b'{"a":1}'
        c.set(k, "plain")
        assert c.get(k).content_type == ""
        all_bytes = bytes(range(256)) + bytes(reversed(range(256)))
        c.set(k, all_bytes)
        assert c.value(k) == all_bytes
        big = bytes(((i * 2654435761) & 0xFFFFFFFF) >> 24 for i in range(1 << 20))
        started = time.monotonic()
        c.set(k, big)
        assert c.value(k) == big
        print(f"     1 MiB set+get over the socket: {time.monotonic() - started:.3f} s")
        keys = [f"{u}-{next(n)}" for u in ["ключ", "键/値", "emoji-🔑", "spaces and\ttabs", "a||b", "ǅ-\u0301"]]
        for i, uk in enumerate(keys):
            c.set(uk, f"v{i}")
        assert [c.value(uk) for uk in keys] == [f"v{i}".encode() for i in range(len(keys))]

    def instances_are_isolated():
        k = key("iso")
        a, b, default = Client(path, "store-a"), Client(path, "store-b"), Client(path)
        for client in (a, b, default):
            client.Init(pb.InitRequest())
        a.set(k, "in a")
        assert a.value(k) == b"in a"
        assert b.value(k) is None and default.value(k) is None and c.value(k) is None
        default.set(k, "in default")
        assert a.value(k) == b"in a" and default.value(k) == b"in default"
        for client in (a, b, default):
            client.channel.close()

    for name, fn in list(locals().items()):
        if callable(fn) and name != "key":
            check(name, fn)
    c.channel.close()


def run_fault_checks(folder, generated):
    path = os.path.join(folder, "faulty.sock")
    proc = start(path, target="faulty:Faulty")
    state = generated.state_pb2
    c = Client(path, "faulty")

    def failing_init_is_an_error_and_creates_nothing():
        error = rpc_error(lambda: c.Init(state.InitRequest(metadata=common.MetadataRequest(properties={"fail": "yes"}))))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and "fail" in error.details(), error
        assert rpc_error(lambda: c.get("k")).code() == grpc.StatusCode.FAILED_PRECONDITION
        c.Init(state.InitRequest())
        c.set("k", "v")
        assert c.value("k") == b"v"

    def a_bug_in_the_component_is_internal_and_the_server_lives_on():
        error = rpc_error(lambda: c.get("boom"))
        assert error.code() == grpc.StatusCode.INTERNAL and "ZeroDivisionError" in error.details(), error
        error = rpc_error(lambda: c.get("wrong-type"))
        assert error.code() == grpc.StatusCode.INTERNAL, error
        assert c.value("k") == b"v"

    def bulk_delete_row_mismatch_has_dapr_error_info():
        items = [state.DeleteRequest(key="rows"), state.DeleteRequest(key="other"), state.DeleteRequest(key="x")]
        error = rpc_error(lambda: c.BulkDelete(state.BulkDeleteRequest(items=items)))
        assert error.code() == grpc.StatusCode.INTERNAL, error
        details = rpc_status.from_call(error).details
        info = error_details_pb2.ErrorInfo()
        assert len(details) == 1 and details[0].Unpack(info), details
        assert dict(info.metadata) == {"expected": "3", "affected": "1"}, info

    def reflection_lists_only_what_is_served():
        # No transact override: no TransactionalStateStore.
        expected = EXPECTED_SERVICES - {"dapr.proto.components.v1.TransactionalStateStore"}
        assert list_services(c.channel, "v1alpha") == expected
        assert list_services(c.channel, "v1") == expected

    try:
        for name, fn in list(locals().items()):
            if callable(fn) and name.endswith(("_nothing", "_on", "_info", "_served")):
                check(name, fn)
    finally:
        c.channel.close()
        check("faulty server exits 0", lambda: require(stop(proc) == 0, "exit code"))


def run_kind_checks(folder, generated):
    g = generated
    md = [("x-component-instance", "k")]

    def with_server(target, name, checks):
        path = os.path.join(folder, f"{name}.sock")
        proc = start(path, target=target)
        channel = grpc.insecure_channel(f"unix:{path}")
        try:
            checks(channel, path)
        finally:
            channel.close()
            stop(proc)

    def pubsub(channel, path):
        stub = g.pubsub_pb2_grpc.PubSubStub(channel)
        names = list_services(channel, "v1alpha")
        assert "dapr.proto.components.v1.PubSub" in names and not any("StateStore" in n for n in names), names
        stub.Init(g.pubsub_pb2.PubSubInitRequest(), metadata=md, timeout=10)
        requests = __import__("queue").Queue()
        requests.put(g.pubsub_pb2.PullMessagesRequest(topic=g.pubsub_pb2.Topic(name="orders")))

        def request_stream():
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item

        stream = stub.PullMessages(request_stream(), metadata=md, timeout=30)
        time.sleep(0.2)  # the subscription starts with the stream
        for i in range(3):
            stub.Publish(g.pubsub_pb2.PublishRequest(topic="orders", data=f"o{i}".encode()), metadata=md, timeout=10)
        got = []
        for response in stream:
            got.append(response.data)
            if response.data == b"o1" and got.count(b"o1") == 1:  # nack once: delivered again
                requests.put(g.pubsub_pb2.PullMessagesRequest(
                    ack_message_id=response.id, ack_error=g.pubsub_pb2.AckMessageError(message="retry")))
            else:
                requests.put(g.pubsub_pb2.PullMessagesRequest(ack_message_id=response.id))
            if len(got) == 4:
                break
        requests.put(None)
        stream.cancel()
        assert sorted(got) == [b"o0", b"o1", b"o1", b"o2"], got
        error = rpc_error(lambda: stub.Publish(g.pubsub_pb2.PublishRequest(topic="forbidden"), metadata=md, timeout=10))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error

    def input_binding(channel, path):
        stub = g.bindings_pb2_grpc.InputBindingStub(channel)
        stub.Init(g.bindings_pb2.InputBindingInitRequest(), metadata=md, timeout=10)
        requests = __import__("queue").Queue()

        def request_stream():
            while True:
                item = requests.get()
                if item is None:
                    return
                yield item

        stream = stub.Read(request_stream(), metadata=md, timeout=30)
        events = []
        for event in stream:
            events.append((event.message_id, event.data, dict(event.metadata)))
            requests.put(g.bindings_pb2.ReadRequest(message_id=event.message_id, response_data=b"ok"))
            if len(events) == 3:
                break
        requests.put(None)
        stream.cancel()
        assert [e[0] for e in events] == ["e0", "e1", "e2"] and events[1][1:] == (b"tick 1", {"n": "1"}), events

    def output_binding(channel, path):
        stub = g.bindings_pb2_grpc.OutputBindingStub(channel)
        stub.Init(g.bindings_pb2.OutputBindingInitRequest(
            metadata=common.MetadataRequest(properties={"prefix": "> "})), metadata=md, timeout=10)
        assert list(stub.ListOperations(g.bindings_pb2.ListOperationsRequest(), metadata=md).operations) == ["echo"]
        out = stub.Invoke(g.bindings_pb2.InvokeRequest(operation="echo", data=b"hi"), metadata=md, timeout=10)
        assert (out.data, dict(out.metadata), out.content_type) == (b"> hi", {"op": "echo"}, "text/plain"), out
        error = rpc_error(lambda: stub.Invoke(g.bindings_pb2.InvokeRequest(operation="nope"), metadata=md, timeout=10))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED, error

    def secret_store(channel, path):
        stub = g.secretstore_pb2_grpc.SecretStoreStub(channel)
        stub.Init(g.secretstore_pb2.SecretStoreInitRequest(
            metadata=common.MetadataRequest(properties={"secret.db": "pw"})), metadata=md, timeout=10)
        assert dict(stub.Get(g.secretstore_pb2.GetSecretRequest(key="db"), metadata=md).data) == {"db": "pw"}
        error = rpc_error(lambda: stub.Get(g.secretstore_pb2.GetSecretRequest(key="nope"), metadata=md, timeout=10))
        assert error.code() == grpc.StatusCode.NOT_FOUND and "nope" in error.details(), error
        bulk = stub.BulkGet(g.secretstore_pb2.BulkGetSecretRequest(), metadata=md, timeout=10).data
        assert {k: dict(v.secrets) for k, v in bulk.items()} == {"db": {"db": "pw"}}, bulk

    for target, name, fn in [("kinds:Broker", "broker", pubsub), ("kinds:Ticker", "ticker", input_binding),
                             ("kinds:Echo", "echo", output_binding), ("kinds:Secrets", "secrets", secret_store)]:
        check(f"{name} ({target}) over gRPC", lambda: with_server(target, name, fn))


def run_socket_checks(folder):
    path = os.path.join(folder, "life.sock")

    def stale_socket_is_replaced():
        proc = start(path)
        proc.kill()  # leaves the socket file behind
        proc.wait()
        assert os.path.exists(path), "kill -9 leaves the socket"
        assert not answers(path)
        proc = start(path)  # waits until the new server answers on the same path
        assert list_services(Client(path).channel, "v1alpha") == EXPECTED_SERVICES
        assert stop(proc) == 0

    def live_socket_is_refused():
        proc = start(path)
        second = start(path, expect_ready=False)
        rc = second.wait(timeout=20)
        message = second.stderr.read()
        assert rc != 0 and "already listening" in message, (rc, message)
        assert list_services(Client(path).channel, "v1alpha") == EXPECTED_SERVICES, "first server unharmed"
        assert stop(proc) == 0

    def regular_file_is_not_touched():
        other = os.path.join(folder, "not-a-socket.sock")
        with open(other, "w") as f:
            f.write("keep me")
        proc = start(other, expect_ready=False)
        rc = proc.wait(timeout=20)
        assert rc != 0 and "not a socket" in proc.stderr.read()
        assert open(other).read() == "keep me"

    def socket_folder_comes_from_either_variable():
        plural, singular = os.path.join(folder, "plural"), os.path.join(folder, "singular")
        for env_extra, where in [({"DAPR_COMPONENTS_SOCKETS_FOLDER": plural}, plural),
                                 ({"DAPR_COMPONENT_SOCKETS_FOLDER": singular}, singular),
                                 ({"DAPR_COMPONENTS_SOCKETS_FOLDER": plural,
                                   "DAPR_COMPONENT_SOCKETS_FOLDER": singular}, singular)]:
            sock = os.path.join(where, "envtest.sock")
            proc = start(sock, target="faulty:Faulty", env_extra=env_extra)
            assert stop(proc) == 0 and not os.path.exists(sock), env_extra

    def sigterm_and_sigint_exit_cleanly():
        for sig in (signal.SIGTERM, signal.SIGINT):
            proc = start(path)
            try:
                client = Client(path)
                client.Init(pb.InitRequest())
                client.get("x")
            except BaseException:
                stop(proc)
                raise
            assert stop(proc, sig) == 0, sig
            assert not os.path.exists(path), f"socket left after {sig.name}"

    for name, fn in list(locals().items()):
        if callable(fn):
            check(name, fn)


def main():
    global pb, pb_grpc, common
    folder = tempfile.mkdtemp(prefix="pysdk-")
    SCRATCH["dir"] = os.path.join(folder, "tmp")
    os.mkdir(SCRATCH["dir"])
    try:
        generated = stubs.load()
        pb, pb_grpc, common = generated.state_pb2, generated.state_pb2_grpc, generated.common_pb2
        path = os.path.join(folder, "statestore.sock")
        started = time.monotonic()
        proc = start(path)
        print(f"     server ready in {time.monotonic() - started:.2f} s", flush=True)
        try:
            run_state_checks(path)
        finally:
            rc = stop(proc)
            check("server exits 0 on SIGTERM and removes its socket",
                  lambda: require(rc == 0 and not os.path.exists(path), f"rc={rc}, socket left={os.path.exists(path)}"))
        run_fault_checks(folder, generated)
        run_kind_checks(folder, generated)
        run_socket_checks(folder)
    finally:
        for proc in PROCS:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        shutil.rmtree(folder, ignore_errors=True)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
