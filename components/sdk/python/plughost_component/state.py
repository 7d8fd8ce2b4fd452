"""State stores: `StateStore` and its requests, the `StateStore` trait of plughost and
the `state` interface of `wit/state.wit`, operation for operation."""

import enum
from dataclasses import dataclass, field
from typing import Optional

from .component import Component
from .errors import ComponentError, NotSupported

ETAG, TRANSACTIONAL, TTL = "ETAG", "TRANSACTIONAL", "TTL"
TTL_IN_SECONDS, TTL_EXPIRE_TIME = "ttlInSeconds", "ttlExpireTime"


class Concurrency(enum.Enum):
    UNSPECIFIED = "unspecified"
    FIRST_WRITE = "first-write"
    LAST_WRITE = "last-write"


class Consistency(enum.Enum):
    UNSPECIFIED = "unspecified"
    EVENTUAL = "eventual"
    STRONG = "strong"


@dataclass
class GetRequest:
    key: str
    metadata: dict = field(default_factory=dict)
    consistency: Consistency = Consistency.UNSPECIFIED


@dataclass
class StateItem:
    """A stored value. `etag` must change on every write of the key; `metadata` is
    response metadata (`ttlExpireTime`, RFC 3339, when the value has a TTL)."""

    data: bytes
    etag: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    content_type: Optional[str] = None


@dataclass
class SetRequest:
    """A write. With `etag`, it succeeds only if it equals the stored one; with
    `concurrency=FIRST_WRITE` and no ETag it only creates. `metadata["ttlInSeconds"]`
    sets an expiry (`-1`: none)."""

    key: str
    value: bytes = b""
    etag: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED
    content_type: Optional[str] = None


@dataclass
class DeleteRequest:
    key: str
    etag: Optional[str] = None
    metadata: dict = field(default_factory=dict)
    concurrency: Concurrency = Concurrency.UNSPECIFIED
    consistency: Consistency = Consistency.UNSPECIFIED


@dataclass
class BulkItem:
    """One answer of a bulk get: `item` None for a missing key; `error` a per-key failure."""

    key: str
    item: Optional[StateItem] = None
    error: Optional[str] = None


class StateStore(Component):
    """Implement `get`, `set` and `delete`; override the bulk calls when the store can
    do better than one by one, and `transact` (plus the `TRANSACTIONAL` feature) for
    transactions. Errors: raise `EtagMismatch(key)` / `EtagInvalid(key)` /
    `InvalidArgument(message)` / ... from `plughost_component.errors`."""

    def get(self, request):
        """-> StateItem, or None when the key is absent or expired."""
        raise NotSupported("get is not implemented")

    def set(self, request):
        raise NotSupported("set is not implemented")

    def delete(self, request):
        """Deleting an absent key without an ETag is not an error."""
        raise NotSupported("delete is not implemented")

    def bulk_get(self, requests):
        """-> [BulkItem], one per request, in order."""
        return [BulkItem(r.key, self.get(r)) for r in requests]

    def bulk_set(self, requests):
        """Applies what it can; -> [(key, ComponentError)] for the writes that failed."""
        return _each(self.set, requests)

    def bulk_delete(self, requests):
        """Applies what it can; -> [(key, ComponentError)] for the deletes that failed."""
        return _each(self.delete, requests)

    def transact(self, operations, metadata):
        """`operations`: SetRequest / DeleteRequest objects, applied in order, all or
        nothing. Advertise `TRANSACTIONAL` in `features()` when you implement it."""
        raise NotSupported("transactions are not supported by this store")


def _each(apply, requests):
    failed = []
    for request in requests:
        try:
            apply(request)
        except ComponentError as error:
            failed.append((request.key, error))
    return failed


def implements_transact(cls):
    return getattr(cls, "transact", None) is not StateStore.transact
