"""Runs one RPC against an instance: the lock, the error mapping, never a crash."""

import traceback

import grpc

from ..errors import ComponentError, as_component_error
from . import status
from .instances import Failure


class Calls:
    def __init__(self, instances, log):
        self.instances = instances
        self.log = log

    def run(self, context, action):
        """`action(component)` on the caller's instance, under its lock. A ComponentError
        ends the call with its status; any other exception with INTERNAL (logged)."""
        try:
            instance = self.instances.get(context)
            with instance.lock:
                return action(instance.component)
        except Failure as failure:
            context.abort_with_status(failure.status)
        except ComponentError as error:
            context.abort_with_status(status.of_error(error))
        except Exception as error:  # a bug in the component: report it, keep serving
            self.log(f"error in the component: {traceback.format_exc().rstrip()}")
            context.abort_with_status(status.of_error(as_component_error(error)))

    def init(self, context, metadata):
        try:
            self.instances.init(context, metadata)
        except Failure as failure:
            context.abort_with_status(failure.status)

    def ping(self, context):
        """OK for an instance not initialised yet (the process is alive; daprd 1.9 pinged
        before Init); the instance's `ping` otherwise."""
        if self.instances.known(context) is None:
            return
        self.run(context, lambda c: c.ping())

    def features(self, context):
        return self.run(context, lambda c: [str(f) for f in c.features()])

    def bad_request(self, context, message):
        context.abort_with_status(status.Status(grpc.StatusCode.INVALID_ARGUMENT, message))
