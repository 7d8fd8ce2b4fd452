"""The `input-binding` and `output-binding` interfaces over the binding classes."""

from .. import bindings as sdk
from . import call


def output_adapter(holder):
    from wit_world.exports import output_binding as wit

    class OutputBinding:
        def operations(self):
            if holder.component is None:
                return []
            return [str(o) for o in holder.component.operations()]

        def invoke(self, request):
            r = sdk.InvokeRequest(request.operation, bytes(request.data), dict(request.metadata))
            response = call(holder, lambda c: c.invoke(r)) or sdk.InvokeResponse()
            return wit.InvokeResponse(bytes(response.data),
                                      [(str(k), str(v)) for k, v in (response.metadata or {}).items()],
                                      response.content_type)

    return OutputBinding


def input_adapter(holder):
    from componentize_py_types import Ok
    from wit_world.exports import input_binding as wit

    class InputBinding:
        def open(self):
            return int(call(holder, lambda c: c.open()))

        def poll(self, reader, max):
            events = call(holder, lambda c: list(c.poll(reader, max)))
            return [wit.Event(str(e.id), bytes(e.data), [(str(k), str(v)) for k, v in (e.metadata or {}).items()],
                              e.content_type) for e in events]

        def answer(self, reader, event_id, reply):
            if isinstance(reply, Ok):
                call(holder, lambda c: c.answer(reader, event_id, bytes(reply.value), None))
            else:
                call(holder, lambda c: c.answer(reader, event_id, b"", str(reply.value)))

        def close(self, reader):
            if holder.component is not None:
                holder.component.close(reader)

    return InputBinding
