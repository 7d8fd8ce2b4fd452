"""A state store that misbehaves on purpose, for wire_test.py."""

from plughost_component import BulkDeleteRowMismatch, InvalidArgument, StateItem, StateStore


class Faulty(StateStore):
    def init(self, metadata):
        if metadata.get("fail") == "yes":
            raise InvalidArgument("metadata `fail` says no")
        self.values = {}

    def get(self, request):
        if request.key == "boom":
            return 1 / 0  # a bug in the component
        if request.key == "wrong-type":
            return "not a StateItem"
        value = self.values.get(request.key)
        return None if value is None else StateItem(value, "1")

    def set(self, request):
        self.values[request.key] = request.value

    def delete(self, request):
        self.values.pop(request.key, None)

    def bulk_delete(self, requests):
        if any(r.key == "rows" for r in requests):
            raise BulkDeleteRowMismatch(expected=len(requests), affected=1)
        return super().bulk_delete(requests)
