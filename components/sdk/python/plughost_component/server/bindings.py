"""`dapr.proto.components.v1.InputBinding` / `OutputBinding` over the binding classes."""

from ..bindings import InvokeRequest, InvokeResponse
from .instances import Failure
from .streams import BATCH, pump


def output_services(pb, calls, cls):
    b, common_pb2 = pb.bindings_pb2, pb.common_pb2

    class OutputBinding(pb.bindings_pb2_grpc.OutputBindingServicer):
        def Init(self, request, context):
            calls.init(context, request.metadata.properties)
            return b.OutputBindingInitResponse()

        def Ping(self, request, context):
            calls.ping(context)
            return common_pb2.PingResponse()

        def ListOperations(self, request, context):
            return calls.run(context, lambda c: b.ListOperationsResponse(operations=[str(o) for o in c.operations()]))

        def Invoke(self, request, context):
            invoke = InvokeRequest(request.operation, bytes(request.data), dict(request.metadata))
            def call(component):
                response = component.invoke(invoke) or InvokeResponse()
                return b.InvokeResponse(data=bytes(response.data), metadata=dict(response.metadata or {}),
                                        content_type=response.content_type or "")

            return calls.run(context, call)

    return [("dapr.proto.components.v1.OutputBinding", pb.bindings_pb2_grpc.add_OutputBindingServicer_to_server,
             OutputBinding())]


def input_services(pb, calls, cls):
    b, common_pb2 = pb.bindings_pb2, pb.common_pb2

    class InputBinding(pb.bindings_pb2_grpc.InputBindingServicer):
        def Init(self, request, context):
            calls.init(context, request.metadata.properties)
            return b.InputBindingInitResponse()

        def Ping(self, request, context):
            calls.ping(context)
            return common_pb2.PingResponse()

        def Read(self, request_iterator, context):
            try:
                instance = calls.instances.get(context)
            except Failure as failure:
                context.abort_with_status(failure.status)
            reader = calls.run(context, lambda c: c.open())

            def on_answer(component, request):
                error = request.response_error.message if request.HasField("response_error") else None
                component.answer(reader, request.message_id, bytes(request.response_data), error)

            def event(e):
                return b.ReadResponse(data=bytes(e.data), metadata=dict(e.metadata or {}),
                                      content_type=e.content_type or "", message_id=str(e.id))

            yield from pump(calls, context, instance, lambda c: list(c.poll(reader, BATCH)), on_answer,
                            request_iterator, lambda c: c.close(reader), event)

    return [("dapr.proto.components.v1.InputBinding", pb.bindings_pb2_grpc.add_InputBindingServicer_to_server,
             InputBinding())]
