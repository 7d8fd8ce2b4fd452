"""Generates the Python stubs of `dapr.proto.components.v1` state services with grpcio-tools.

Nothing generated is committed: server.py calls `generate()` into a temp dir at
start-up (well under a second). Run it by hand to look at the code:

    python3 genstubs.py OUT_DIR [PROTO_DIR]

PROTO_DIR defaults to `$PLUGHOST_PROTO_DIR`, else `../../proto` next to this file.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_FILES = ["dapr/proto/components/v1/common.proto", "dapr/proto/components/v1/state.proto"]


def default_proto_dir():
    return os.environ.get("PLUGHOST_PROTO_DIR") or os.path.normpath(os.path.join(HERE, "..", "..", "proto"))


def generate(out_dir, proto_dir=None):
    """Writes `dapr/proto/components/v1/{common,state}_pb2{,_grpc}.py` under `out_dir`.

    The folders get `__init__.py` files, so with `out_dir` first on `sys.path` the
    stubs win over any installed `dapr` package (the Dapr Python SDK has one).
    """
    import grpc_tools
    from grpc_tools import protoc

    proto_dir = proto_dir or default_proto_dir()
    missing = [f for f in PROTO_FILES if not os.path.isfile(os.path.join(proto_dir, f))]
    if missing:
        raise RuntimeError(f"proto files not found under {proto_dir}: {', '.join(missing)}")
    well_known = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    os.makedirs(out_dir, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTO_FILES,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed on {PROTO_FILES} under {proto_dir}")
    package = out_dir
    for part in ["dapr", "proto", "components", "v1"]:
        package = os.path.join(package, part)
        open(os.path.join(package, "__init__.py"), "a").close()
    return out_dir


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(f"usage: {sys.argv[0]} OUT_DIR [PROTO_DIR]")
    try:
        generate(sys.argv[1], sys.argv[2] if len(sys.argv) == 3 else None)
    except RuntimeError as error:
        sys.exit(f"genstubs: error: {error}")
    print(f"stubs written under {sys.argv[1]}")
