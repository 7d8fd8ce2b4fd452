"""The WASM runtime: the classes componentize-py calls for the exported interfaces of
a `plughost:components` world, over a class of `plughost_component`.

`python -m plughost_component build MODULE:CLASS` writes an app module that does

    from plughost_component.wasm import exports
    globals().update(exports(CLASS))

which defines `Lifecycle` and the kind's class (`State`, `Pubsub`, `InputBinding`,
`OutputBinding`, `SecretStore`). The component object is created by the first `init`
(never at build time, when componentize-py pre-initialises the module); a later `init`
re-initialises the same object, as over gRPC. Only importable inside a componentize-py
build: the `wit_world` bindings exist only there.
"""

from .. import kind_of
from ..errors import Internal, as_component_error


class Holder:
    """The one component object of this WASM instance."""

    def __init__(self, cls):
        self.cls = cls
        self.component = None

    def get(self):
        if self.component is None:
            raise Internal(f"component {self.cls.__name__} is not initialised: the host must call init first")
        return self.component


def wit_error(error):
    """A ComponentError (or any exception) as the WIT `error` variant."""
    from wit_world.imports import types

    error = as_component_error(error)
    variant = {
        "etag-mismatch": types.Error_EtagMismatch,
        "etag-invalid": types.Error_EtagInvalid,
        "not-found": types.Error_NotFound,
        "invalid-argument": types.Error_InvalidArgument,
        "not-supported": types.Error_NotSupported,
        "unavailable": types.Error_Unavailable,
    }.get(error.tag, types.Error_Internal)
    # The ETag variants carry the key; the others the message.
    return variant(error.value if error.tag in ("etag-mismatch", "etag-invalid") else error.message)


def call(holder, action):
    """`action(component)`; any exception becomes `Err(<WIT error>)`."""
    from componentize_py_types import Err

    try:
        return action(holder.get())
    except Exception as error:
        raise Err(wit_error(error))


def exports(cls):
    """-> {class name: class} for componentize-py: `Lifecycle` and the kind's class."""
    kind = kind_of(cls)
    holder = Holder(cls)

    class Lifecycle:
        def init(self, metadata):
            from componentize_py_types import Err

            try:
                component = holder.component if holder.component is not None else cls()
                component.init(dict(metadata))
            except Exception as error:  # a fresh object whose init failed is dropped
                raise Err(wit_error(error))
            holder.component = component

        def features(self):
            if holder.component is None:
                return []
            return [str(f) for f in holder.component.features()]

        def ping(self):
            return call(holder, lambda c: c.ping())

    if kind == "state":
        from .state import adapter
        name = "State"
    elif kind == "pubsub":
        from .pubsub import adapter
        name = "Pubsub"
    elif kind == "input-binding":
        from .bindings import input_adapter as adapter
        name = "InputBinding"
    elif kind == "output-binding":
        from .bindings import output_adapter as adapter
        name = "OutputBinding"
    else:
        from .secrets import adapter
        name = "SecretStore"
    return {"Lifecycle": Lifecycle, name: adapter(holder)}
