"""The lifecycle every component has, whatever its kind and mode."""


class Component:
    """Base of every kind. One object of your class is one configured component
    (one `x-component-instance` over gRPC, one instance in WASM).

    The runtimes create the object with no arguments, then call `init` with the
    component's `spec.metadata`, before anything else. Calls into one object are
    serialised in both modes (a WASM instance is single-threaded; the gRPC runtime
    holds a lock per object), so a component needs no locking of its own.
    """

    def init(self, metadata):
        """`metadata`: dict of the YAML `spec.metadata` (name -> string). Raise a
        ComponentError (e.g. InvalidArgument) to refuse the configuration. May be
        called again on the same object (the host re-initialises after a reconnect)."""

    def features(self):
        """Feature strings, e.g. ["ETAG", "TRANSACTIONAL", "TTL"] for a state store."""
        return []

    def ping(self):
        """Liveness probe; raise Unavailable when a dependency is down."""
