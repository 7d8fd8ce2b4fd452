"""The `state` interface over a StateStore."""

from .. import state as sdk
from . import call, wit_error


def adapter(holder):
    from wit_world.exports import state as wit

    concurrency = {wit.Concurrency.FIRST_WRITE: sdk.Concurrency.FIRST_WRITE,
                   wit.Concurrency.LAST_WRITE: sdk.Concurrency.LAST_WRITE}
    consistency = {wit.Consistency.EVENTUAL: sdk.Consistency.EVENTUAL,
                   wit.Consistency.STRONG: sdk.Consistency.STRONG}

    def get_req(r):
        return sdk.GetRequest(r.key, dict(r.metadata), consistency.get(r.consistency, sdk.Consistency.UNSPECIFIED))

    def set_req(r):
        return sdk.SetRequest(r.key, bytes(r.value), r.etag or None, dict(r.metadata),
                              concurrency.get(r.options.concurrency, sdk.Concurrency.UNSPECIFIED),
                              consistency.get(r.options.consistency, sdk.Consistency.UNSPECIFIED), r.content_type)

    def delete_req(r):
        return sdk.DeleteRequest(r.key, r.etag or None, dict(r.metadata),
                                 concurrency.get(r.options.concurrency, sdk.Concurrency.UNSPECIFIED),
                                 consistency.get(r.options.consistency, sdk.Consistency.UNSPECIFIED))

    def item(found):
        if found is None:
            return None
        return wit.StateItem(bytes(found.data), found.etag, [(str(k), str(v)) for k, v in (found.metadata or {}).items()],
                             found.content_type)

    def key_errors(failed):
        return [wit.KeyError(key, wit_error(error)) for key, error in failed]

    def bulk_items(answers):
        out = []
        for a in answers:
            a = a if isinstance(a, sdk.BulkItem) else sdk.BulkItem(*a)
            out.append(wit.BulkItem(a.key, item(a.item), a.error))
        return out

    class State:
        def get(self, request):
            return call(holder, lambda c: item(c.get(get_req(request))))

        def set(self, request):
            call(holder, lambda c: c.set(set_req(request)))

        def delete(self, request):
            call(holder, lambda c: c.delete(delete_req(request)))

        def bulk_get(self, requests):
            return call(holder, lambda c: bulk_items(c.bulk_get([get_req(r) for r in requests])))

        def bulk_set(self, requests):
            return call(holder, lambda c: key_errors(c.bulk_set([set_req(r) for r in requests])))

        def bulk_delete(self, requests):
            return call(holder, lambda c: key_errors(c.bulk_delete([delete_req(r) for r in requests])))

        def transact(self, operations, metadata):
            ops = [set_req(op.value) if isinstance(op, wit.Operation_Set) else delete_req(op.value) for op in operations]
            call(holder, lambda c: c.transact(ops, dict(metadata)))

    return State
