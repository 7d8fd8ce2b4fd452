"""An in-memory state store with Dapr's ETag, TTL and transaction rules, written once
with plughost_component and run in both modes:

    python3 store.py /path/to/NAME.sock                          # gRPC (Dapr pluggable)
    python3 -m plughost_component build store:MemoryStore -o store.wasm   # WASM

It mirrors `components/state-logic` (the Rust store) rule for rule:

- ETags are decimal version numbers, new on every write, never reissued (a new version
  is at least the current time in microseconds, so also not across restarts).
- A non-numeric ETag is invalid; a numeric one that differs from the stored one (or any
  ETag for an absent key) is a mismatch. First-write without an ETag only creates.
- `ttlInSeconds`: a positive integer expires the value; `-1`, `0` or empty mean none;
  anything else is an invalid argument. Reads report `ttlExpireTime` (RFC 3339, UTC).
- Transactions apply in order, all or nothing. Bulk writes report the failed keys
  (the SDK's default one-by-one bulk calls do that).
"""

import re
import sys
import time

from plughost_component import (
    Concurrency,
    EtagInvalid,
    EtagMismatch,
    InvalidArgument,
    SetRequest,
    StateItem,
    StateStore,
)
from plughost_component.state import ETAG, TRANSACTIONAL, TTL, TTL_EXPIRE_TIME, TTL_IN_SECONDS

# Rust's `str::parse::<i64>()` / `parse::<u64>()`: optional sign, ASCII digits only.
_I64 = re.compile(r"[+-]?[0-9]+")
_U64 = re.compile(r"\+?[0-9]+")
_I64_MIN, _I64_MAX, _U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def now_ms():
    return time.time_ns() // 1_000_000


class _Entry:
    __slots__ = ("data", "version", "content_type", "expires_at")

    def __init__(self, data, version, content_type, expires_at):
        self.data, self.version, self.content_type, self.expires_at = data, version, content_type, expires_at

    def live(self, now):
        return self.expires_at is None or self.expires_at > now


def parse_ttl(metadata):
    """Milliseconds until expiry, or None."""
    raw = metadata.get(TTL_IN_SECONDS, "")
    if raw == "":
        return None
    text = raw.strip()
    if not _I64.fullmatch(text) or not _I64_MIN <= int(text) <= _I64_MAX:
        raise InvalidArgument(f"{TTL_IN_SECONDS} must be an integer, got `{raw}`")
    seconds = int(text)
    if seconds < -1:
        raise InvalidArgument(f"{TTL_IN_SECONDS} must be -1 or positive, got {seconds}")
    return seconds * 1000 if seconds > 0 else None


def check_etag(key, stored, given, first_write):
    """`stored`: the live version (int) or None; `given`: the request's ETag."""
    if given:
        if not _U64.fullmatch(given) or int(given) > _U64_MAX:
            raise EtagInvalid(key)
        if stored != int(given):
            raise EtagMismatch(key)
    elif first_write and stored is not None:
        raise EtagMismatch(key)


class MemoryStore(StateStore):
    def __init__(self):
        self._entries = {}
        self._version = 0
        self._writes = 0
        self.properties = {}

    def init(self, metadata):
        self.properties = dict(metadata)

    def features(self):
        return [ETAG, TRANSACTIONAL, TTL]

    def get(self, request):
        now = now_ms()
        entry = self._entries.get(request.key)
        if entry is None:
            return None
        if not entry.live(now):
            del self._entries[request.key]
            return None
        metadata = {} if entry.expires_at is None else {TTL_EXPIRE_TIME: rfc3339(entry.expires_at)}
        return StateItem(entry.data, str(entry.version), metadata, entry.content_type)

    def set(self, request):
        self.transact([request], {})

    def delete(self, request):
        self.transact([request], {})

    def transact(self, operations, metadata):
        now = now_ms()
        changes = {}
        for op in operations:
            first_write = op.concurrency == Concurrency.FIRST_WRITE
            if isinstance(op, SetRequest):
                ttl = parse_ttl(op.metadata)
                stored = self._current(changes, op.key, now)
                check_etag(op.key, None if stored is None else stored.version, op.etag, first_write)
                self._version = max(self._version + 1, now * 1000)
                changes[op.key] = _Entry(bytes(op.value), self._version, op.content_type,
                                         None if ttl is None else now + ttl)
            else:
                stored = self._current(changes, op.key, now)
                check_etag(op.key, None if stored is None else stored.version, op.etag, first_write)
                changes[op.key] = None
        for key, entry in changes.items():
            if entry is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = entry
        self._writes += 1
        if self._writes % 1024 == 0:
            self._entries = {k: e for k, e in self._entries.items() if e.live(now)}

    def _current(self, changes, key, now):
        if key in changes:
            return changes[key]
        entry = self._entries.get(key)
        return entry if entry is not None and entry.live(now) else None


def rfc3339(millis):
    """Epoch milliseconds as RFC 3339 UTC (`2026-11-21T17:06:22.123Z`), as in Rust."""
    secs, ms = divmod(millis, 1000)
    days, rem = divmod(secs, 86_400)
    # Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    z = days + 719_468
    era, doe = divmod(z, 146_097)
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04}-{month:02}-{day:02}T{rem // 3600:02}:{rem % 3600 // 60:02}:{rem % 60:02}.{ms:03}Z"


if __name__ == "__main__":
    from plughost_component import serve

    sys.exit(serve(MemoryStore, socket=sys.argv[1] if len(sys.argv) > 1 else None, name="python-state"))
