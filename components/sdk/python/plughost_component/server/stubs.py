"""The generated code of `dapr.proto.components.v1`, made at start-up.

Nothing generated is shipped: the `.proto` files travel in the package
(`_data/proto`, copies of the repository's `proto/`), and `load()` runs grpcio-tools'
protoc on them into a temp dir (about 0.2 s), rewrites the generated imports into
the private package `_plughost_pb`, and imports it. The private name keeps the stubs
apart from the Dapr Python SDK's `dapr` package, which a component may import too.
"""

import atexit
import importlib
import os
import re
import shutil
import sys
import tempfile

PROTO_ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "_data", "proto")
FILES = ["common", "state", "pubsub", "bindings", "secretstore"]
PACKAGE = "_plughost_pb"

_loaded = None


def load():
    """-> the module `_plughost_pb` with `common_pb2`, `state_pb2`, `state_pb2_grpc`, ..."""
    global _loaded
    if _loaded is not None:
        return _loaded
    import grpc_tools
    from grpc_tools import protoc

    out = tempfile.mkdtemp(prefix="plughost-pb-")
    atexit.register(shutil.rmtree, out, True)
    sources = [f"dapr/proto/components/v1/{name}.proto" for name in FILES]
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", f"--python_out={out}", f"--grpc_python_out={out}", *sources]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {sources} under {PROTO_ROOT}")
    generated = os.path.join(out, "dapr", "proto", "components", "v1")
    package = os.path.join(out, PACKAGE)
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    for name in os.listdir(generated):
        if name.endswith(".py"):
            with open(os.path.join(generated, name)) as f:
                code = f.read()
            code = re.sub(r"^from dapr\.proto\.components\.v1 import", "from . import", code, flags=re.M)
            with open(os.path.join(package, name), "w") as f:
                f.write(code)
    sys.path.insert(0, out)
    try:
        module = importlib.import_module(PACKAGE)
        for name in FILES:
            importlib.import_module(f"{PACKAGE}.{name}_pb2")
            importlib.import_module(f"{PACKAGE}.{name}_pb2_grpc")
    finally:
        sys.path.remove(out)
    _loaded = module
    return module
