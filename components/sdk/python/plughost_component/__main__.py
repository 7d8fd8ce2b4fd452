"""`python -m plughost_component`: run or build a component.

    python -m plughost_component serve MODULE:CLASS [--name NAME | --socket PATH]
    python -m plughost_component build MODULE:CLASS -o OUT.wasm [--path DIR] [--wit DIR]

`serve` runs the gRPC component (see `plughost_component.serve`). `build` makes a
WebAssembly component with componentize-py (`pip install plughost-component[wasm]`)
against the WIT in this package: the world is the one of the class's kind
(`state-component`, `pubsub-component`, ...). It bundles the top-level modules and
packages of DIR (default: the current directory; not `test_*`) and this SDK, nothing else.
"""

import argparse
import importlib
import os
import shutil
import subprocess
import sys
import tempfile

from . import kind_of

HERE = os.path.dirname(os.path.abspath(__file__))
WIT = os.path.join(HERE, "_data", "wit")
SKIP = {"__pycache__", "build", "dist", "target", "node_modules"}


def load_class(target, path):
    module_name, sep, class_name = target.partition(":")
    if not sep or not module_name or not class_name:
        raise SystemExit(f"plughost_component: error: expected MODULE:CLASS, got `{target}`")
    sys.dont_write_bytecode = True  # leave no __pycache__ in the project
    sys.path.insert(0, os.path.abspath(path))
    try:
        module = importlib.import_module(module_name)
    except Exception as error:
        raise SystemExit(f"plughost_component: error: cannot import `{module_name}` from {path}: {error}")
    cls = getattr(module, class_name, None)
    if cls is None:
        raise SystemExit(f"plughost_component: error: module `{module_name}` has no `{class_name}`")
    try:
        kind_of(cls)
    except TypeError as error:
        raise SystemExit(f"plughost_component: error: {error}")
    return cls


def componentize_py():
    if shutil.which("componentize-py"):
        return ["componentize-py"]
    try:
        import componentize_py  # noqa: F401
    except ImportError:
        raise SystemExit("plughost_component: error: componentize-py not found; "
                         "run: python3 -m pip install 'componentize-py==0.25.1'")
    code = "import sys; from componentize_py import script; sys.argv[0] = 'componentize-py'; sys.exit(script())"
    return [sys.executable, "-c", code]


def build(target, out, path, wit=WIT):
    cls = load_class(target, path)
    kind = kind_of(cls)
    world = f"{kind}-component"
    out = os.path.abspath(out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    module_name, _, class_name = target.partition(":")
    with tempfile.TemporaryDirectory(prefix="plughost-build-") as work:
        src = os.path.join(work, "src")
        os.makedirs(src)
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if name.startswith(".") or name in SKIP:
                continue
            if name.startswith("test_") or name.endswith("_test.py"):
                continue  # tests stay out of the component
            if name.endswith(".py") and os.path.isfile(full):
                shutil.copy(full, src)
            elif os.path.isfile(os.path.join(full, "__init__.py")) and name != "plughost_component":
                shutil.copytree(full, os.path.join(src, name), ignore=shutil.ignore_patterns("__pycache__"))
        shutil.copytree(HERE, os.path.join(src, "plughost_component"),
                        ignore=shutil.ignore_patterns("__pycache__", "_data", "server", "__main__.py"))
        app = "plughost_app"
        with open(os.path.join(src, f"{app}.py"), "w") as f:
            f.write(f"# Written by `python -m plughost_component build`: the {world} exports of {target}.\n"
                    f"from plughost_component.wasm import exports\nfrom {module_name} import {class_name}\n\n"
                    f"globals().update(exports({class_name}))\n")
        # An empty VIRTUAL_ENV keeps componentize-py from bundling the host's site-packages.
        venv = os.path.join(work, "venv")
        os.makedirs(os.path.join(venv, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                                 "site-packages"))
        tmp_out = os.path.join(work, "out.wasm")
        command = [*componentize_py(), "-d", os.path.abspath(wit), "-w", world, "componentize", "-p", src, "-o", tmp_out, app]
        result = subprocess.run(command, cwd=work, env=dict(os.environ, VIRTUAL_ENV=venv))
        if result.returncode != 0:
            raise SystemExit(f"plughost_component: error: componentize-py failed (exit {result.returncode})")
        with open(tmp_out, "rb") as f:
            header = f.read(8)
        if header != b"\0asm\x0d\x00\x01\x00":
            raise SystemExit(f"plughost_component: error: the output is not a component (header {header.hex()})")
        shutil.move(tmp_out, out)
    print(f"plughost_component: wrote {out} ({os.path.getsize(out)} bytes, world {world})", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m plughost_component", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="run the component over gRPC (Dapr pluggable component protocol)")
    s.add_argument("target", metavar="MODULE:CLASS")
    s.add_argument("--name", help="socket name: <sockets folder>/<NAME>.sock (default: the class name, lower case)")
    s.add_argument("--socket", help="explicit socket path (overrides --name)")
    s.add_argument("--path", default=".", help="folder to import MODULE from (default: .)")
    b = sub.add_parser("build", help="build a WebAssembly component with componentize-py")
    b.add_argument("target", metavar="MODULE:CLASS")
    b.add_argument("-o", "--output", required=True, help="the .wasm file to write")
    b.add_argument("--path", default=".", help="the project folder: its modules are bundled (default: .)")
    b.add_argument("--wit", default=WIT, help="the WIT folder (default: the copy of plughost's wit/ in this package)")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.target, args.output, args.path, args.wit)
        return 0
    from .server import serve

    return serve(load_class(args.target, args.path), name=args.name, socket=args.socket)


if __name__ == "__main__":
    sys.exit(main())
