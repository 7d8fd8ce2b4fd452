"""A Dapr pluggable state store in Python: `dapr.proto.components.v1` over a Unix socket.

Usage: python3 server.py /path/to/NAME.sock [--proto-dir DIR]

Serves `StateStore` and `TransactionalStateStore`, plus gRPC server reflection
(v1alpha, which daprd asks, and v1) listing exactly those services. One store per
`x-component-instance` header value; calls without the header use a default
instance. The rules live in store.py (shared with python-state-wasm). Stops cleanly
on SIGTERM or SIGINT and removes its socket.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha import reflection
from grpc_reflection.v1alpha import reflection_pb2 as reflection_v1alpha_pb2

import genstubs

# The rules live in ../python-state-logic/store.py, shared with the WASM build
# of the same store (python-state-wasm), so the component can move between modes.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python-state-logic"))
import store as logic  # noqa: E402

PROG = "python-state-grpc"
INSTANCE_HEADER = "x-component-instance"
# Per-key failures of a failed BulkSet / BulkDelete: JSON [{"key", "code", "message"}],
# `code` being the WIT error variant name (etag-mismatch, etag-invalid, invalid-argument).
BULK_FAILURES_TRAILER = "x-bulk-failures-bin"
REFLECTION_V1 = "grpc.reflection.v1.ServerReflection"
MAX_MESSAGE = 64 * 1024 * 1024
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes, NUL included

common_pb2 = state_pb2 = state_pb2_grpc = None  # set by load_stubs()


def log(message):
    print(f"{PROG}: {message}", file=sys.stderr, flush=True)


def load_stubs(proto_dir):
    """Generates the stubs into a temp dir and imports them. Returns the temp dir."""
    global common_pb2, state_pb2, state_pb2_grpc
    out = tempfile.mkdtemp(prefix="plughost-pystubs-")
    genstubs.generate(out, proto_dir)
    sys.path.insert(0, out)
    from dapr.proto.components.v1 import common_pb2 as common, state_pb2 as pb2, state_pb2_grpc as pb2_grpc

    common_pb2, state_pb2, state_pb2_grpc = common, pb2, pb2_grpc
    return out


def now_ms():
    return time.time_ns() // 1_000_000


# ---------------------------------------------------------------- errors


class _Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata):
        self.code = code
        self.details = details
        self.trailing_metadata = trailing_metadata


_CODES = {
    logic.StoreError.ETAG_MISMATCH: grpc.StatusCode.FAILED_PRECONDITION,
    logic.StoreError.ETAG_INVALID: grpc.StatusCode.INVALID_ARGUMENT,
    logic.StoreError.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
}
_ETAG_KINDS = (logic.StoreError.ETAG_MISMATCH, logic.StoreError.ETAG_INVALID)


def _abort(context, code, message, etag_detail, trailers=()):
    """Ends the call. With `etag_detail`, the status carries exactly one
    google.rpc.BadRequest with one field violation `etag` (spec A12)."""
    status = status_pb2.Status(code=code.value[0], message=message)
    if etag_detail:
        violation = error_details_pb2.BadRequest.FieldViolation(field="etag", description=message)
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status.details.append(detail)
        metadata = (("grpc-status-details-bin", status.SerializeToString()),)
    else:
        metadata = ()
    context.abort_with_status(_Status(code, message, metadata + tuple(trailers)))


def abort_store_error(context, error):
    _abort(context, _CODES[error.kind], error.message, error.kind in _ETAG_KINDS)


def abort_bulk(context, operation, failed, total):
    """A BulkSet / BulkDelete where some items failed (the others were applied).

    All failures ETag mismatches -> FAILED_PRECONDITION + etag detail; all invalid
    ETags -> INVALID_ARGUMENT + etag detail; otherwise the code of the first failure,
    without detail. The exact keys are always in the `x-bulk-failures-bin` trailer."""
    kinds = {error.kind for _, error in failed}
    first = failed[0][1]
    messages = "; ".join(error.message for _, error in failed)
    etag_detail = len(kinds) == 1 and first.kind in _ETAG_KINDS
    # With one failure the message is exactly the item's (daprd shows the detail's text).
    message = messages if len(failed) == 1 else f"{operation} failed for {len(failed)} of {total} keys: {messages}"
    report = [{"key": key, "code": error.kind, "message": error.message} for key, error in failed]
    trailer = (BULK_FAILURES_TRAILER, json.dumps(report, ensure_ascii=False).encode("utf-8"))
    _abort(context, _CODES[first.kind], message, etag_detail, (trailer,))


# ---------------------------------------------------------------- instances


class Instance:
    """One configured component: its store, its Init properties, a lock."""

    def __init__(self, name):
        self.name = name
        self.store = logic.Store()
        self.properties = {}
        self.lock = threading.Lock()


class Instances:
    def __init__(self):
        self._lock = threading.Lock()
        self._by_name = {}

    def of(self, context):
        name = ""
        for key, value in context.invocation_metadata():
            if key == INSTANCE_HEADER:
                name = value
                break
        with self._lock:
            instance = self._by_name.get(name)
            if instance is None:
                instance = self._by_name[name] = Instance(name)
            return instance


# ---------------------------------------------------------------- conversions


def _etag(message):
    return message.etag.value if message.HasField("etag") else None


def _first_write(options):
    return options.concurrency == state_pb2.StateOptions.CONCURRENCY_FIRST_WRITE


def to_set(request):
    return logic.Set(
        request.key,
        request.value,
        _etag(request),
        sorted(request.metadata.items()),
        _first_write(request.options),
        request.content_type or None,
    )


def to_delete(request):
    return logic.Delete(request.key, _etag(request), _first_write(request.options))


def _item_fields(item):
    return dict(
        data=item.data,
        etag=state_pb2.Etag(value=item.etag),
        metadata=dict(item.metadata),
        content_type=item.content_type or "",
    )


# ---------------------------------------------------------------- services


class StateStore:
    """`dapr.proto.components.v1.StateStore` and `TransactionalStateStore`."""

    def __init__(self, instances):
        self.instances = instances

    def Init(self, request, context):
        instance = self.instances.of(context)
        with instance.lock:
            instance.properties = dict(request.metadata.properties)
        log(f"init instance {instance.name or '(default)'!r} with {len(instance.properties)} properties")
        return state_pb2.InitResponse()

    def Features(self, request, context):
        return common_pb2.FeaturesResponse(features=logic.FEATURES)

    def Ping(self, request, context):
        return common_pb2.PingResponse()

    def Get(self, request, context):
        instance = self.instances.of(context)
        with instance.lock:
            item = instance.store.get(request.key, now_ms())
        if item is None:
            return state_pb2.GetResponse()  # missing key: OK, empty data, no etag
        return state_pb2.GetResponse(**_item_fields(item))

    def Set(self, request, context):
        self._apply(context, lambda s, now: s.set(to_set(request), now))
        return state_pb2.SetResponse()

    def Delete(self, request, context):
        self._apply(context, lambda s, now: s.delete(to_delete(request), now))
        return state_pb2.DeleteResponse()

    def BulkGet(self, request, context):
        instance = self.instances.of(context)
        items = []
        with instance.lock:
            now = now_ms()
            for get in request.items:
                item = instance.store.get(get.key, now)
                fields = {} if item is None else _item_fields(item)
                items.append(state_pb2.BulkStateItem(key=get.key, **fields))
        return state_pb2.BulkGetResponse(items=items)

    def BulkSet(self, request, context):
        self._bulk(context, "bulk set", lambda s, now: s.bulk_set([to_set(r) for r in request.items], now),
                   len(request.items))
        return state_pb2.BulkSetResponse()

    def BulkDelete(self, request, context):
        self._bulk(context, "bulk delete",
                   lambda s, now: s.bulk_delete([to_delete(r) for r in request.items], now), len(request.items))
        return state_pb2.BulkDeleteResponse()

    def Transact(self, request, context):
        ops = []
        for op in request.operations:
            which = op.WhichOneof("request")
            if which == "set":
                ops.append(to_set(op.set))
            elif which == "delete":
                ops.append(to_delete(op.delete))
            else:
                _abort(context, grpc.StatusCode.INVALID_ARGUMENT, "transaction operation without a request", False)
        self._apply(context, lambda s, now: s.transact(ops, now))
        return state_pb2.TransactionalStateResponse()

    def _apply(self, context, action):
        instance = self.instances.of(context)
        try:
            with instance.lock:
                action(instance.store, now_ms())
        except logic.StoreError as error:
            abort_store_error(context, error)

    def _bulk(self, context, operation, action, total):
        instance = self.instances.of(context)
        with instance.lock:
            failed = action(instance.store, now_ms())
        if failed:
            abort_bulk(context, operation, failed, total)


# ---------------------------------------------------------------- reflection


def _add_reflection_v1_descriptor():
    """Registers `grpc.reflection.v1` (wire-identical to v1alpha) in the default pool,
    so that reflection can also describe the v1 service it lists."""
    old, new = "grpc.reflection.v1alpha", "grpc.reflection.v1"
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(REFLECTION_V1)
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto()
    reflection_v1alpha_pb2.DESCRIPTOR.CopyToProto(proto)
    proto.name = "grpc/reflection/v1/reflection.proto"
    proto.package = new

    def rename(type_name):
        prefix = f".{old}."
        return f".{new}.{type_name[len(prefix):]}" if type_name.startswith(prefix) else type_name

    def fix(messages):
        for message in messages:
            for field in message.field:
                if field.HasField("type_name"):
                    field.type_name = rename(field.type_name)
            fix(message.nested_type)

    fix(proto.message_type)
    for service in proto.service:
        for method in service.method:
            method.input_type = rename(method.input_type)
            method.output_type = rename(method.output_type)
    pool.AddSerializedFile(proto.SerializeToString())


def add_reflection(server, service_names):
    names = [*service_names, reflection.SERVICE_NAME, REFLECTION_V1]
    servicer = reflection.ReflectionServicer(names)
    # v1alpha, the one daprd asks.
    reflection.enable_server_reflection(names, server)
    # v1: same messages on the wire, other service name (grpcio-reflection serves only v1alpha).
    try:
        _add_reflection_v1_descriptor()
    except Exception as error:  # listing still works without the descriptor
        log(f"warning: cannot describe {REFLECTION_V1}: {error}")
    handler = grpc.method_handlers_generic_handler(
        REFLECTION_V1,
        {
            "ServerReflectionInfo": grpc.stream_stream_rpc_method_handler(
                servicer.ServerReflectionInfo,
                request_deserializer=reflection_v1alpha_pb2.ServerReflectionRequest.FromString,
                response_serializer=reflection_v1alpha_pb2.ServerReflectionResponse.SerializeToString,
            )
        },
    )
    server.add_generic_rpc_handlers((handler,))


# ---------------------------------------------------------------- socket and main


class Refused(Exception):
    pass


def prepare_socket(path):
    """Removes a stale socket at `path`; refuses if something answers there."""
    if len(os.fsencode(path)) > MAX_SOCKET_PATH:
        raise Refused(f"socket path is {len(os.fsencode(path))} bytes, the limit is {MAX_SOCKET_PATH}: {path}")
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Refused(f"{path} exists and is not a socket; not touching it")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(2)
    try:
        probe.connect(path)
    except (ConnectionRefusedError, FileNotFoundError):
        os.unlink(path)
        log(f"removed stale socket {path}")
        return
    except OSError as error:
        raise Refused(f"cannot check the existing socket {path}: {error}")
    finally:
        probe.close()
    raise Refused(f"another server is already listening on {path}; stop it first")


def build_server(path):
    instances = Instances()
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="state"),
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ],
    )
    servicer = StateStore(instances)
    state_pb2_grpc.add_StateStoreServicer_to_server(servicer, server)
    state_pb2_grpc.add_TransactionalStateStoreServicer_to_server(servicer, server)
    descriptor = state_pb2.DESCRIPTOR
    add_reflection(
        server,
        [
            descriptor.services_by_name["StateStore"].full_name,
            descriptor.services_by_name["TransactionalStateStore"].full_name,
        ],
    )
    server.add_insecure_port(f"unix:{path}")
    return server


def main(argv=None):
    parser = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n")[0])
    parser.add_argument("socket", help="Unix socket path to serve on, e.g. /tmp/dapr-components-sockets/NAME.sock")
    parser.add_argument("--proto-dir", help="folder holding dapr/proto/... (default: ../../proto)")
    args = parser.parse_args(argv)
    path = os.path.abspath(args.socket)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    stubs = None
    try:
        prepare_socket(path)
        stubs = load_stubs(args.proto_dir)
        server = build_server(path)
        server.start()
        ours = os.stat(path).st_ino
    except Exception as error:
        if stubs:
            shutil.rmtree(stubs, ignore_errors=True)
        if isinstance(error, Refused):
            log(f"error: refusing to start: {error}")
            return 2
        log(f"error: cannot start on {path}: {error}")
        return 1

    log(f"serving dapr.proto.components.v1.StateStore on unix:{path} (pid {os.getpid()})")
    try:
        while not stop.wait(0.5):
            pass
        log("stopping")
        server.stop(grace=2).wait()
    finally:
        try:
            if os.stat(path).st_ino == ours:
                os.unlink(path)
        except FileNotFoundError:
            pass
        shutil.rmtree(stubs, ignore_errors=True)
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
