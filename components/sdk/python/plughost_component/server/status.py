"""ComponentError -> gRPC status with the `google.rpc` details daprd reads (spec A12).

| error                      | status                                                         |
|----------------------------|----------------------------------------------------------------|
| EtagMismatch               | FAILED_PRECONDITION + one BadRequest, one field violation `etag` |
| EtagInvalid                | INVALID_ARGUMENT + the same BadRequest / `etag` detail          |
| InvalidArgument            | INVALID_ARGUMENT                                               |
| NotFound                   | NOT_FOUND                                                      |
| NotSupported               | UNIMPLEMENTED                                                  |
| Unavailable                | UNAVAILABLE                                                    |
| Internal, other exceptions | INTERNAL                                                       |

The BadRequest's `description` is the error text (daprd shows it to the app).
"""

import json

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from ..errors import BulkDeleteRowMismatch, EtagInvalid, EtagMismatch

# Per-key failures of a failed BulkSet / BulkDelete: JSON [{"key", "code", "message"}],
# `code` being the WIT error variant name. Dapr's protocol has no per-key error on bulk
# writes; daprd ignores the trailer.
BULK_FAILURES_TRAILER = "x-bulk-failures-bin"

CODES = {
    "etag-mismatch": grpc.StatusCode.FAILED_PRECONDITION,
    "etag-invalid": grpc.StatusCode.INVALID_ARGUMENT,
    "invalid-argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not-found": grpc.StatusCode.NOT_FOUND,
    "not-supported": grpc.StatusCode.UNIMPLEMENTED,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "internal": grpc.StatusCode.INTERNAL,
}


class Status(grpc.Status):
    def __init__(self, code, details, trailing_metadata=()):
        self.code = code
        self.details = details
        self.trailing_metadata = tuple(trailing_metadata)


def _is_etag(error):
    return isinstance(error, (EtagMismatch, EtagInvalid))


def status(code, message, etag_detail=False, trailers=(), detail=None):
    """A grpc.Status; with `etag_detail`, carrying exactly one google.rpc.BadRequest
    with one field violation `etag` whose description is `message`; with `detail` (a
    google.rpc message), carrying that one instead."""
    metadata = list(trailers)
    if etag_detail:
        violation = error_details_pb2.BadRequest.FieldViolation(field="etag", description=message)
        detail = error_details_pb2.BadRequest(field_violations=[violation])
    if detail is not None:
        rpc = status_pb2.Status(code=code.value[0], message=message)
        packed = any_pb2.Any()
        packed.Pack(detail)
        rpc.details.append(packed)
        metadata.append(("grpc-status-details-bin", rpc.SerializeToString()))
    return Status(code, message, metadata)


def of_error(error):
    """The status for one ComponentError."""
    if isinstance(error, BulkDeleteRowMismatch):
        # Dapr's bulk-delete row mismatch: INTERNAL + one ErrorInfo with `expected` / `affected`.
        info = error_details_pb2.ErrorInfo(reason="BULK_DELETE_ROW_MISMATCH", domain="plughost_component",
                                           metadata={"expected": str(error.expected), "affected": str(error.affected)})
        return status(grpc.StatusCode.INTERNAL, error.message, detail=info)
    return status(CODES.get(error.tag, grpc.StatusCode.INTERNAL), error.message, _is_etag(error))


def of_bulk(operation, failed, total):
    """A BulkSet / BulkDelete where the items in `failed` ([(key, ComponentError)])
    failed and the others were applied: all mismatches -> FAILED_PRECONDITION + etag
    detail; all invalid ETags -> INVALID_ARGUMENT + etag detail; otherwise the code of
    the first failure, no detail. With one failure the message is exactly that item's."""
    tags = {error.tag for _, error in failed}
    first = failed[0][1]
    messages = "; ".join(error.message for _, error in failed)
    message = messages if len(failed) == 1 else f"{operation} failed for {len(failed)} of {total} keys: {messages}"
    report = [{"key": key, "code": error.tag, "message": error.message} for key, error in failed]
    trailer = (BULK_FAILURES_TRAILER, json.dumps(report, ensure_ascii=False).encode("utf-8"))
    code = CODES.get(first.tag, grpc.StatusCode.INTERNAL)
    return status(code, message, len(tags) == 1 and _is_etag(first), [trailer])
