"""The errors a component raises. They mirror the WIT `error` variant (and plughost's
`ComponentError`) one for one, so both runtimes map them without guessing:

| exception        | WIT variant        | gRPC status (spec A12)                                  |
|------------------|--------------------|---------------------------------------------------------|
| `EtagMismatch`   | `etag-mismatch`    | FAILED_PRECONDITION + google.rpc.BadRequest field `etag` |
| `EtagInvalid`    | `etag-invalid`     | INVALID_ARGUMENT + google.rpc.BadRequest field `etag`    |
| `NotFound`       | `not-found`        | NOT_FOUND                                               |
| `InvalidArgument`| `invalid-argument` | INVALID_ARGUMENT                                        |
| `NotSupported`   | `not-supported`    | UNIMPLEMENTED                                           |
| `Unavailable`    | `unavailable`      | UNAVAILABLE                                             |
| `Internal`       | `internal`         | INTERNAL                                                |

Any other exception raised by a component is reported as `Internal` with its type and text.
`BulkDeleteRowMismatch(expected, affected)` (a bulk delete that removed another number of rows
than asked, for SQL-like stores) is an `Internal` that the gRPC runtime sends with Dapr's
`google.rpc.ErrorInfo` detail (metadata `expected`, `affected`).
"""


class ComponentError(Exception):
    """Base class. `tag` is the WIT variant name; `value` its payload (the key for the
    ETag errors, the message otherwise)."""

    tag = "internal"

    def __init__(self, value, message=None):
        super().__init__(value)
        self.value = str(value)
        self._message = message

    @property
    def message(self):
        return self._message or self.value

    def __str__(self):
        return self.message


class EtagMismatch(ComponentError):
    """The ETag differs from the stored one, the key is absent, or first-write found a
    value. `key` is the key."""

    tag = "etag-mismatch"

    @property
    def key(self):
        return self.value

    @property
    def message(self):
        return self._message or f"etag mismatch for key `{self.value}`"


class EtagInvalid(ComponentError):
    """The ETag is not one this store could have issued. `key` is the key."""

    tag = "etag-invalid"

    @property
    def key(self):
        return self.value

    @property
    def message(self):
        return self._message or f"invalid etag for key `{self.value}`"


class NotFound(ComponentError):
    """The thing asked for does not exist (a secret, a file); not for missing state keys."""

    tag = "not-found"


class InvalidArgument(ComponentError):
    """The request is malformed (a bad `ttlInSeconds`, missing metadata, ...)."""

    tag = "invalid-argument"


class NotSupported(ComponentError):
    """The operation is not implemented by this component."""

    tag = "not-supported"


class Unavailable(ComponentError):
    """A dependency of the component is unavailable; retrying may help."""

    tag = "unavailable"


class Internal(ComponentError):
    """Anything else."""

    tag = "internal"


class BulkDeleteRowMismatch(Internal):
    """A bulk delete affected `affected` rows instead of `expected` (raise it from
    `bulk_delete`)."""

    def __init__(self, expected, affected):
        super().__init__(f"bulk delete affected {affected} rows, expected {expected}")
        self.expected = int(expected)
        self.affected = int(affected)


BY_TAG = {cls.tag: cls for cls in (EtagMismatch, EtagInvalid, NotFound, InvalidArgument, NotSupported, Unavailable, Internal)}


def as_component_error(error):
    """`error` itself if it is a ComponentError, else an `Internal` naming its type."""
    if isinstance(error, ComponentError):
        return error
    return Internal(f"{type(error).__name__}: {error}")
