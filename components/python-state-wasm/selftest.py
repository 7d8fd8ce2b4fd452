"""Runs the built component under wasmtime (the Python package) and checks the state rules.

Usage: python3 selftest.py [STATE.wasm]
Without an argument it builds the component first (build.sh into a temp dir).
Needs `wasmtime` (pinned in ../requirements.txt). The checks follow
tests/all/conformance/state.rs; plughost's Rust host runs the real suite.
"""

import os
import subprocess
import sys
import tempfile
import time
from types import SimpleNamespace as Rec

import wasmtime
from wasmtime import component as cm

HERE = os.path.dirname(os.path.abspath(__file__))
PKG = "plughost:components/{}@0.1.0"
RESULTS = {"passed": 0, "failed": 0}


class Guest:
    """One instance of the component, with typed-ish wrappers around its exports."""

    def __init__(self, path):
        self.logs = []
        engine = wasmtime.Engine()
        started = time.monotonic()
        self.component = cm.Component.from_file(engine, path)
        self.compile_seconds = time.monotonic() - started
        kinds = self.component.type
        kinds = kinds() if callable(kinds) else kinds
        self.imports = sorted(kinds.imports(engine))
        self.exports = sorted(kinds.exports(engine))

        linker = cm.Linker(engine)
        linker.add_wasip2()
        with linker.root() as root:
            with root.add_instance(PKG.format("log")) as log:
                log.add_func("log", lambda _store, level, message: self.logs.append((level, message)))
            with root.add_instance(PKG.format("types")):
                pass
        self.store = wasmtime.Store(engine)
        wasi = wasmtime.WasiConfig()
        wasi.inherit_stdout()
        wasi.inherit_stderr()
        self.store.set_wasi(wasi)
        started = time.monotonic()
        self.instance = linker.instantiate(self.store, self.component)
        self.instantiate_seconds = time.monotonic() - started
        self._funcs = {}

    def call(self, interface, name, *args):
        key = (interface, name)
        if key not in self._funcs:
            iface = self.instance.get_export_index(self.store, PKG.format(interface))
            index = self.instance.get_export_index(self.store, name, iface)
            self._funcs[key] = self.instance.get_func(self.store, index)
        func = self._funcs[key]
        result = func(self.store, *args)
        post_return = getattr(func, "post_return", None)
        if post_return is not None:
            try:
                post_return(self.store)
            except wasmtime.WasmtimeError:
                pass  # newer wasmtime runs post-return itself
        return result


def is_err(value):
    return isinstance(value, cm.Variant)


def options(concurrency="unspecified"):
    return Rec(concurrency=concurrency, consistency="unspecified")


def set_req(key, value, etag=None, metadata=(), concurrency="unspecified", content_type=None):
    if isinstance(value, str):
        value = value.encode()
    return Rec(key=key, value=value, etag=etag, metadata=list(metadata), options=options(concurrency),
               **{"content-type": content_type})


def del_req(key, etag=None):
    return Rec(key=key, etag=etag, metadata=[], options=options())


def get_req(key):
    return Rec(key=key, metadata=[], consistency="unspecified")


class Api:
    def __init__(self, guest):
        self.g = guest

    def set(self, *args, **kwargs):
        return self.g.call("state", "set", set_req(*args, **kwargs))

    def get(self, key):
        return self.g.call("state", "get", get_req(key))

    def value(self, key):
        item = self.get(key)
        assert not is_err(item), item
        return None if item is None else item.data

    def etag(self, key):
        return self.get(key).etag

    def delete(self, key, etag=None):
        return self.g.call("state", "delete", del_req(key, etag))


def check(name, fn):
    try:
        fn()
    except Exception as error:  # report and go on
        RESULTS["failed"] += 1
        print(f"FAIL {name}: {type(error).__name__}: {error}")
    else:
        RESULTS["passed"] += 1
        print(f"ok   {name}")


def run(guest):
    api = Api(guest)
    n = iter(range(1_000_000))

    def key(prefix):
        return f"{prefix}-{next(n)}"

    def lifecycle():
        assert guest.call("lifecycle", "init", [("a", "b")]) is None
        assert set(guest.call("lifecycle", "features")) >= {"ETAG", "TRANSACTIONAL", "TTL"}
        assert guest.call("lifecycle", "ping") is None

    def set_get_delete():
        k = key("sgd")
        assert api.set(k, "v1") is None
        assert api.value(k) == b"v1"
        api.set(k, "v2")
        assert api.value(k) == b"v2"
        assert api.delete(k) is None
        assert api.value(k) is None

    def missing_key():
        k = key("missing")
        assert api.get(k) is None
        assert api.delete(k) is None

    def bulk():
        keys = [key(f"bulk{i}") for i in range(5)]
        failed = guest.call("state", "bulk-set", [set_req(k, f"value of {k}") for k in keys[:3]])
        assert failed == [], failed
        items = guest.call("state", "bulk-get", [get_req(k) for k in keys])
        assert [i.key for i in items] == keys
        for i, item in enumerate(items):
            assert item.error is None
            if i < 3:
                assert item.item.data == f"value of {keys[i]}".encode() and item.item.etag
            else:
                assert item.item is None
        assert guest.call("state", "bulk-delete", [del_req(k) for k in keys[:2]]) == []
        assert api.value(keys[0]) is None and api.value(keys[1]) is None and api.value(keys[2]) is not None

    def bulk_set_failed_key():
        a, b, c = key("bsa"), key("bsb"), key("bsc")
        api.set(b, "old")
        failed = guest.call("state", "bulk-set",
                            [set_req(a, "a"), set_req(b, "new", etag="999999999"), set_req(c, "c")])
        assert len(failed) == 1 and failed[0].key == b, failed
        assert failed[0].error == cm.Variant("etag-mismatch", b), failed[0].error
        assert (api.value(a), api.value(b), api.value(c)) == (b"a", b"old", b"c")
        failed = guest.call("state", "bulk-delete", [del_req(a), del_req(b, "1"), del_req(c, "x")])
        assert [(f.key, f.error.tag) for f in failed] == [(b, "etag-mismatch"), (c, "etag-invalid")], failed
        assert api.value(a) is None and api.value(b) == b"old"

    def etag_rules():
        k = key("etag")
        api.set(k, "one")
        first = api.etag(k)
        assert first.isdigit()
        assert api.set(k, "two", etag=first) is None
        second = api.etag(k)
        assert second != first and int(second) > int(first)
        assert api.set(k, "three", etag=first) == cm.Variant("etag-mismatch", k)
        assert api.value(k) == b"two"
        assert api.set(k, "four", etag="not-an-etag") == cm.Variant("etag-invalid", k)
        other = key("etag-new")
        assert api.set(other, "x", etag=second) == cm.Variant("etag-mismatch", other)
        assert api.delete(k, first) == cm.Variant("etag-mismatch", k)
        assert api.delete(k, second) is None
        assert api.value(k) is None

    def first_write():
        k = key("fw")
        assert api.set(k, "created", concurrency="first-write") is None
        assert api.set(k, "again", concurrency="first-write").tag == "etag-mismatch"
        assert api.value(k) == b"created"
        tag = api.etag(k)
        assert api.set(k, "w1", etag=tag, concurrency="first-write") is None
        assert api.set(k, "w2", etag=tag, concurrency="first-write").tag == "etag-mismatch"
        for v in ("a", "b", "c"):
            assert api.set(k, v, concurrency="last-write") is None
        assert api.value(k) == b"c"

    def ttl():
        k = key("ttl")
        for bad in ("foo", "-2", "1.5", "0x10"):
            err = api.set(k, "x", metadata=[("ttlInSeconds", bad)])
            assert is_err(err) and err.tag == "invalid-argument", (bad, err)
        before = time.time()
        assert api.set(k, "short-lived", metadata=[("ttlInSeconds", "1")]) is None
        item = api.get(k)
        meta = dict(item.metadata)
        expires = meta["ttlExpireTime"]
        assert expires.endswith("Z") and "T" in expires, expires
        from datetime import datetime
        at = datetime.fromisoformat(expires.replace("Z", "+00:00")).timestamp()
        assert 0.9 <= at - before <= 1.6, at - before
        bulk = guest.call("state", "bulk-get", [get_req(k)])
        assert "ttlExpireTime" in dict(bulk[0].item.metadata)
        deadline = time.time() + 10
        while api.value(k) is not None:
            assert time.time() < deadline, "value did not expire"
            time.sleep(0.1)
        for never in ("-1", "0", ""):
            assert api.set(k, "forever", metadata=[("ttlInSeconds", never)]) is None
            assert "ttlExpireTime" not in dict(api.get(k).metadata)

    def transaction_order():
        existing, fresh, missing = key("tx-existing"), key("tx-fresh"), key("tx-missing")
        api.set(existing, "before")
        ops = [
            cm.Variant("delete", del_req(existing)),
            cm.Variant("set", set_req(fresh, "first")),
            cm.Variant("delete", del_req(fresh)),
            cm.Variant("set", set_req(fresh, "second")),
            cm.Variant("delete", del_req(missing)),
            cm.Variant("set", set_req(existing, "after")),
        ]
        assert guest.call("state", "transact", ops, []) is None
        assert (api.value(existing), api.value(fresh), api.value(missing)) == (b"after", b"second", None)

    def transaction_rolls_back():
        a, b = key("rb-a"), key("rb-b")
        api.set(a, "a0")
        ops = [
            cm.Variant("set", set_req(a, "a1")),
            cm.Variant("set", set_req(b, "b1")),
            cm.Variant("set", set_req(a, "a2", etag="123456789")),
        ]
        assert guest.call("state", "transact", ops, []) == cm.Variant("etag-mismatch", a)
        assert api.value(a) == b"a0" and api.value(b) is None

    def content_type():
        k = key("ct")
        api.set(k, '{"a":1}', metadata=[("contentType", "application/json")], content_type="application/json")
        item = api.get(k)
        assert getattr(item, "content-type") == "application/json" and item.data == b'{"a":1}'
        api.set(k, "plain")
        assert getattr(api.get(k), "content-type") is None

    def binary_and_big():
        k = key("bin")
        all_bytes = bytes(range(256)) + bytes(reversed(range(256)))
        api.set(k, all_bytes)
        assert api.value(k) == all_bytes
        big = bytes(((i * 2654435761) & 0xFFFFFFFF) >> 24 for i in range(1 << 20))
        started = time.monotonic()
        api.set(k, big)
        assert api.value(k) == big
        print(f"     1 MiB set+get: {time.monotonic() - started:.3f} s")

    def unicode_keys():
        keys = [f"{k}-{next(n)}" for k in ["ключ", "键/値", "emoji-🔑", "spaces and\ttabs", "a||b", "ǅ-\u0301"]]
        for i, k in enumerate(keys):
            assert api.set(k, f"v{i}") is None
        for i, k in enumerate(keys):
            assert api.value(k) == f"v{i}".encode(), k

    for name, fn in list(locals().items()):
        if callable(fn) and name not in ("key",):
            check(name, fn)


def main():
    if len(sys.argv) > 1:
        path = sys.argv[1]
        tmp = None
    else:
        tmp = tempfile.TemporaryDirectory()
        path = os.path.join(tmp.name, "state.wasm")
        subprocess.run([os.path.join(HERE, "build.sh"), path], check=True)
    guest = Guest(path)
    print(f"compiled in {guest.compile_seconds:.2f} s, instantiated in {guest.instantiate_seconds:.3f} s")
    print("imports:", ", ".join(guest.imports))
    print("exports:", ", ".join(guest.exports))
    run(guest)
    if guest.logs:
        print("guest log:", guest.logs)
    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed")
    if tmp:
        tmp.cleanup()
    sys.exit(1 if RESULTS["failed"] else 0)


if __name__ == "__main__":
    main()
