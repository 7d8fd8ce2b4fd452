"""`dapr.proto.components.v1.StateStore` and `TransactionalStateStore` over a StateStore."""

from ..errors import ComponentError
from ..state import (
    BulkItem,
    Concurrency,
    Consistency,
    DeleteRequest,
    GetRequest,
    SetRequest,
    implements_transact,
)
from . import status

_CONCURRENCY = [Concurrency.UNSPECIFIED, Concurrency.FIRST_WRITE, Concurrency.LAST_WRITE]
_CONSISTENCY = [Consistency.UNSPECIFIED, Consistency.EVENTUAL, Consistency.STRONG]


def _enum(values, number):
    return values[number] if 0 <= number < len(values) else values[0]


def _etag(message):
    return (message.etag.value or None) if message.HasField("etag") else None


def to_get(m):
    return GetRequest(m.key, dict(m.metadata), _enum(_CONSISTENCY, m.consistency))


def to_set(m):
    return SetRequest(m.key, bytes(m.value), _etag(m), dict(m.metadata), _enum(_CONCURRENCY, m.options.concurrency),
                      _enum(_CONSISTENCY, m.options.consistency), m.content_type or None)


def to_delete(m):
    return DeleteRequest(m.key, _etag(m), dict(m.metadata), _enum(_CONCURRENCY, m.options.concurrency),
                         _enum(_CONSISTENCY, m.options.consistency))


def services(pb, calls, cls):
    """-> [(service full name, add function, servicer)] for the state services `cls` serves."""
    state_pb2, common_pb2 = pb.state_pb2, pb.common_pb2

    def item_fields(item):
        fields = dict(data=bytes(item.data), metadata={str(k): str(v) for k, v in (item.metadata or {}).items()},
                      content_type=item.content_type or "")
        if item.etag is not None:
            fields["etag"] = state_pb2.Etag(value=item.etag)
        return fields

    class StateStore(pb.state_pb2_grpc.StateStoreServicer):
        def Init(self, request, context):
            calls.init(context, request.metadata.properties)
            return state_pb2.InitResponse()

        def Features(self, request, context):
            return common_pb2.FeaturesResponse(features=calls.features(context))

        def Ping(self, request, context):
            calls.ping(context)
            return common_pb2.PingResponse()

        def Get(self, request, context):
            def get(component):
                item = component.get(to_get(request))
                # A missing key is OK with empty data and no etag (spec A8).
                return state_pb2.GetResponse() if item is None else state_pb2.GetResponse(**item_fields(item))

            return calls.run(context, get)

        def Set(self, request, context):
            calls.run(context, lambda c: c.set(to_set(request)))
            return state_pb2.SetResponse()

        def Delete(self, request, context):
            calls.run(context, lambda c: c.delete(to_delete(request)))
            return state_pb2.DeleteResponse()

        def BulkGet(self, request, context):
            def bulk_get(component):
                items = []
                for answer in component.bulk_get([to_get(g) for g in request.items]):
                    answer = answer if isinstance(answer, BulkItem) else BulkItem(*answer)
                    fields = item_fields(answer.item) if answer.item is not None else {}
                    items.append(state_pb2.BulkStateItem(key=answer.key, error=answer.error or "", **fields))
                return state_pb2.BulkGetResponse(items=items)

            return calls.run(context, bulk_get)

        def BulkSet(self, request, context):
            self._bulk(context, "bulk set", lambda c: c.bulk_set([to_set(r) for r in request.items]),
                       len(request.items))
            return state_pb2.BulkSetResponse()

        def BulkDelete(self, request, context):
            self._bulk(context, "bulk delete", lambda c: c.bulk_delete([to_delete(r) for r in request.items]),
                       len(request.items))
            return state_pb2.BulkDeleteResponse()

        def _bulk(self, context, operation, action, total):
            def checked(component):
                failed = [tuple(f) for f in (action(component) or [])]
                for key, error in failed:
                    if not isinstance(error, ComponentError):
                        raise TypeError(f"bulk results must be (key, ComponentError), got {error!r} for {key!r}")
                return failed

            failed = calls.run(context, checked)
            if failed:
                context.abort_with_status(status.of_bulk(operation, failed, total))

    class Transactional(pb.state_pb2_grpc.TransactionalStateStoreServicer):
        def Transact(self, request, context):
            ops = []
            for i, op in enumerate(request.operations):
                which = op.WhichOneof("request")
                if which == "set":
                    ops.append(to_set(op.set))
                elif which == "delete":
                    ops.append(to_delete(op.delete))
                else:
                    calls.bad_request(context, f"transaction operation {i} has neither `set` nor `delete`")
            calls.run(context, lambda c: c.transact(ops, dict(request.metadata)))
            return state_pb2.TransactionalStateResponse()

    served = [("dapr.proto.components.v1.StateStore", pb.state_pb2_grpc.add_StateStoreServicer_to_server, StateStore())]
    if implements_transact(cls):
        served.append(("dapr.proto.components.v1.TransactionalStateStore",
                       pb.state_pb2_grpc.add_TransactionalStateStoreServicer_to_server, Transactional()))
    return served
