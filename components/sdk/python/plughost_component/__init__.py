"""plughost_component: write a component once, run it as a Dapr pluggable gRPC
component (`serve`) or build it into an in-process WebAssembly component
(`python -m plughost_component build`).

    from plughost_component import StateStore, StateItem, EtagMismatch, serve

    class Store(StateStore):
        ...

    if __name__ == "__main__":
        serve(Store, "mystore")        # gRPC on <sockets folder>/mystore.sock

This module is pure Python (no grpcio import), so it is bundled into WASM builds;
`serve` imports grpcio only when called.
"""

from .bindings import Event, InputBinding, InvokeRequest, InvokeResponse, OutputBinding
from .component import Component
from .errors import (
    BulkDeleteRowMismatch,
    ComponentError,
    EtagInvalid,
    EtagMismatch,
    Internal,
    InvalidArgument,
    NotFound,
    NotSupported,
    Unavailable,
)
from .pubsub import BulkEntry, Message, PubSub, PublishRequest
from .secrets import SecretStore
from .state import (
    BulkItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    GetRequest,
    SetRequest,
    StateItem,
    StateStore,
)

__version__ = "0.1.0"

KINDS = {
    "state": StateStore,
    "pubsub": PubSub,
    "input-binding": InputBinding,
    "output-binding": OutputBinding,
    "secret-store": SecretStore,
}


def kind_of(cls):
    """The one kind `cls` implements ("state", "pubsub", ...); TypeError otherwise."""
    found = [kind for kind, base in KINDS.items() if isinstance(cls, type) and issubclass(cls, base)]
    if len(found) != 1:
        what = "none" if not found else ", ".join(found)
        raise TypeError(
            f"{getattr(cls, '__name__', cls)!r} must subclass exactly one of plughost_component's "
            f"StateStore, PubSub, InputBinding, OutputBinding, SecretStore (found: {what})"
        )
    return found[0]


def serve(cls, name=None, socket=None):
    """Runs `cls` as a Dapr pluggable component until SIGTERM / SIGINT; see
    `plughost_component.server.serve`."""
    from .server import serve as _serve

    return _serve(cls, name=name, socket=socket)


__all__ = [
    "BulkDeleteRowMismatch", "BulkEntry", "BulkItem", "Component", "ComponentError", "Concurrency", "Consistency", "DeleteRequest",
    "EtagInvalid", "EtagMismatch", "Event", "GetRequest", "InputBinding", "Internal", "InvalidArgument",
    "InvokeRequest", "InvokeResponse", "Message", "NotFound", "NotSupported", "OutputBinding", "PubSub",
    "PublishRequest", "SecretStore", "SetRequest", "StateItem", "StateStore", "Unavailable", "kind_of", "serve",
]
