"""A state store component in Python: world `state-component` of `plughost:components@0.1.0`.

componentize-py generates the `wit_world` bindings while it builds (see build.sh) and
calls the `Lifecycle` and `State` classes below for the exported interfaces. The
rules live in `store.py`; this file only converts between WIT records and the store.

The store is a module global: it lives as long as the component instance. The host
serialises calls into one instance, so no locking is needed.
"""

import time

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports import state as wit
from wit_world.imports import log, types

import store as logic

_store = logic.Store()
_properties = {}


def _now():
    return time.time_ns() // 1_000_000


def _error(error):
    """A store error as the WIT `error` variant."""
    if error.kind == logic.StoreError.ETAG_MISMATCH:
        return types.Error_EtagMismatch(error.value)
    if error.kind == logic.StoreError.ETAG_INVALID:
        return types.Error_EtagInvalid(error.value)
    return types.Error_InvalidArgument(error.value)


def _first_write(options):
    return options.concurrency == wit.Concurrency.FIRST_WRITE


def _set(request):
    return logic.Set(
        request.key,
        request.value,
        request.etag,
        request.metadata,
        _first_write(request.options),
        request.content_type,
    )


def _delete(request):
    return logic.Delete(request.key, request.etag, _first_write(request.options))


def _item(found):
    if found is None:
        return None
    return wit.StateItem(found.data, found.etag, list(found.metadata), found.content_type)


def _key_errors(failed):
    return [wit.KeyError(key, _error(error)) for key, error in failed]


class Lifecycle(exports.Lifecycle):
    def init(self, metadata):
        _properties.clear()
        _properties.update(metadata)
        log.log(log.Level.DEBUG, f"python state store ready ({len(_properties)} metadata entries)")

    def features(self):
        return list(logic.FEATURES)

    def ping(self):
        return None


class State(exports.State):
    def get(self, request):
        return _item(_store.get(request.key, _now()))

    def set(self, request):
        try:
            _store.set(_set(request), _now())
        except logic.StoreError as error:
            raise Err(_error(error))

    def delete(self, request):
        try:
            _store.delete(_delete(request), _now())
        except logic.StoreError as error:
            raise Err(_error(error))

    def bulk_get(self, requests):
        now = _now()
        return [wit.BulkItem(r.key, _item(_store.get(r.key, now)), None) for r in requests]

    def bulk_set(self, requests):
        return _key_errors(_store.bulk_set([_set(r) for r in requests], _now()))

    def bulk_delete(self, requests):
        return _key_errors(_store.bulk_delete([_delete(r) for r in requests], _now()))

    def transact(self, operations, metadata):
        ops = []
        for op in operations:
            if isinstance(op, wit.Operation_Set):
                ops.append(_set(op.value))
            else:
                ops.append(_delete(op.value))
        try:
            _store.transact(ops, _now())
        except logic.StoreError as error:
            raise Err(_error(error))
