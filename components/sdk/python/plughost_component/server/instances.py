"""One object of the component class per `x-component-instance` header value,
created by `Init`; a call without the header uses the default instance (`""`)."""

import threading

import grpc

from ..errors import as_component_error
from . import status

INSTANCE_HEADER = "x-component-instance"


class Failure(Exception):
    """Ends a call with `status` (a grpc.Status)."""

    def __init__(self, status):
        super().__init__(status.details)
        self.status = status


def instance_name(context):
    for key, value in context.invocation_metadata() or ():
        if key == INSTANCE_HEADER:
            return value
    return ""


class Instance:
    def __init__(self, name, component):
        self.name = name
        self.component = component
        self.lock = threading.Lock()


class Instances:
    def __init__(self, cls, log):
        self.cls = cls
        self.log = log
        self._lock = threading.Lock()
        self._by_name = {}

    def init(self, context, metadata):
        """Creates the instance (or re-initialises the existing one) and calls `init`.
        A fresh instance whose `init` fails is dropped."""
        name = instance_name(context)
        with self._lock:
            instance = self._by_name.get(name)
            fresh = instance is None
            if fresh:
                try:
                    instance = Instance(name, self.cls())
                except Exception as error:
                    raise Failure(status.of_error(as_component_error(error))) from error
        with instance.lock:
            try:
                instance.component.init(dict(metadata))
            except Exception as error:
                raise Failure(status.of_error(as_component_error(error))) from error
        with self._lock:
            self._by_name.setdefault(name, instance)
        self.log(f"{'init' if fresh else 're-init'} of instance {name or '(default)'!r} "
                 f"with {len(metadata)} metadata entries")

    def get(self, context):
        name = instance_name(context)
        with self._lock:
            instance = self._by_name.get(name)
        if instance is None:
            message = (f"component instance `{name}` is not initialised: call Init first"
                       if name else "the default component instance is not initialised: call Init first")
            raise Failure(status.Status(grpc.StatusCode.FAILED_PRECONDITION, message))
        return instance

    def known(self, context):
        with self._lock:
            return self._by_name.get(instance_name(context))
