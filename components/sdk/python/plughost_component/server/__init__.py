"""The gRPC runtime: Dapr's pluggable component protocol (`dapr.proto.components.v1`)
on a Unix socket, for a class of `plughost_component`. See `serve`."""

import os
import signal
import socket as _socket
import stat
import sys
import threading
from concurrent import futures

from .. import kind_of

SOCKETS_FOLDER_VARS = ("DAPR_COMPONENT_SOCKETS_FOLDER", "DAPR_COMPONENTS_SOCKETS_FOLDER")
DEFAULT_SOCKETS_FOLDER = "/tmp/dapr-components-sockets"
MAX_SOCKET_PATH = 107  # sun_path is 108 bytes, NUL included
MAX_MESSAGE = 64 * 1024 * 1024


class Refused(Exception):
    """The server cannot start on that path; the message says why."""


def sockets_folder():
    """`DAPR_COMPONENT_SOCKETS_FOLDER` (the Go component SDK's variable, read first as
    in plughost's Rust SDK), else `DAPR_COMPONENTS_SOCKETS_FOLDER` (daprd's and
    plughost's), else the default."""
    for var in SOCKETS_FOLDER_VARS:
        if os.environ.get(var):
            return os.environ[var]
    return DEFAULT_SOCKETS_FOLDER


def prepare_socket(path, log):
    """Creates the folder; removes a stale socket at `path`; refuses a live one or a
    file that is not a socket."""
    size = len(os.fsencode(path))
    if size > MAX_SOCKET_PATH:
        raise Refused(f"socket path is {size} bytes, the limit is {MAX_SOCKET_PATH}: {path}")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise Refused(f"{path} exists and is not a socket; not touching it")
    probe = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
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


def build_server(cls, path, log):
    """A started grpc.Server for `cls` on `unix:path`; -> (server, service names)."""
    import grpc

    from . import bindings, pubsub, reflection, secrets, state, stubs
    from .calls import Calls
    from .instances import Instances

    pb = stubs.load()
    kind = kind_of(cls)
    calls = Calls(Instances(cls, log), log)
    make = {
        "state": state.services,
        "pubsub": pubsub.services,
        "input-binding": bindings.input_services,
        "output-binding": bindings.output_services,
        "secret-store": secrets.services,
    }[kind]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=32, thread_name_prefix="component"),
        options=[("grpc.max_receive_message_length", MAX_MESSAGE), ("grpc.max_send_message_length", MAX_MESSAGE)],
    )
    served = make(pb, calls, cls)
    for _, add, servicer in served:
        add(servicer, server)
    names = [name for name, _, _ in served]
    reflection.add(server, names, log)
    if server.add_insecure_port(f"unix:{path}") == 0:
        raise RuntimeError(f"cannot listen on unix:{path}")
    server.start()
    return server, names


def serve(cls, name=None, socket=None, ready=None):
    """Serves `cls` (a subclass of one of StateStore, PubSub, InputBinding,
    OutputBinding, SecretStore) until SIGTERM or SIGINT, then stops gracefully (2 s for
    calls in flight) and removes the socket. Returns the exit code (0; 1 when it cannot
    start; 2 when it refuses to: a live server or a non-socket file at the path).

    The socket is `socket` if given, else `<sockets folder>/<name>.sock` (see
    `sockets_folder()`); `name` defaults to the class name in lower case. `ready`, if
    given, is called with the socket path once the server listens.
    """
    prog = f"plughost_component[{getattr(cls, '__name__', cls)}]"

    def log(message):
        print(f"{prog}: {message}", file=sys.stderr, flush=True)

    if socket is None:
        socket = os.path.join(sockets_folder(), f"{name or cls.__name__.lower()}.sock")
    path = os.path.abspath(socket)
    stop = threading.Event()
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
        except ValueError:  # not the main thread: the caller stops the process its own way
            log(f"not in the main thread: {sig.name} is not handled by serve")
    try:
        try:
            kind_of(cls)
            prepare_socket(path, log)
            server, names = build_server(cls, path, log)
            ours = os.stat(path).st_ino
        except Refused as error:
            log(f"error: refusing to start: {error}")
            return 2
        except Exception as error:
            log(f"error: cannot start on {path}: {error}")
            return 1
        log(f"serving {', '.join(names)} on unix:{path} (pid {os.getpid()})")
        if ready is not None:
            ready(path)
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
        log("stopped")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
