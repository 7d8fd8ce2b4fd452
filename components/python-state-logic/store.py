"""An in-memory key/value store with Dapr's ETag, TTL and transaction rules.

Pure Python, no I/O and no clock of its own: every call takes `now`, milliseconds
since the Unix epoch. It mirrors `components/state-logic/src/lib.rs` rule for rule,
so the Python components behave like the Rust ones:

- ETags are decimal version numbers, new on every write, never reissued.
- A non-numeric ETag is *invalid*; a numeric one that differs from the stored one
  (or any ETag for an absent key) is a *mismatch*.
- First-write concurrency without an ETag only creates keys.
- `ttlInSeconds`: a positive integer expires the value; `-1` or `0` means none;
  anything else is an invalid argument. Reads report `ttlExpireTime` (RFC 3339, UTC).
- Transactions apply in order, all or nothing. Bulk set/delete report exactly the
  failed keys.

One difference, on top of the Rust rules: a new version is never below the current
time in microseconds, so ETags stay unique across restarts of the process as well.

This file is shared, byte for byte, by `python-state-wasm` (where componentize-py
bundles it into the component) and `python-state-grpc`; the gRPC self-test checks
that the two copies are identical.
"""

import re

TTL_IN_SECONDS = "ttlInSeconds"
TTL_EXPIRE_TIME = "ttlExpireTime"
FEATURES = ["ETAG", "TRANSACTIONAL", "TTL"]

# Rust's `str::parse::<i64>()` / `parse::<u64>()`: optional sign, ASCII digits only.
_I64 = re.compile(r"[+-]?[0-9]+")
_U64 = re.compile(r"\+?[0-9]+")
_I64_MIN, _I64_MAX, _U64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


class StoreError(Exception):
    """Why a call failed: `kind` is one of the WIT `error` variant names."""

    ETAG_MISMATCH = "etag-mismatch"
    ETAG_INVALID = "etag-invalid"
    INVALID_ARGUMENT = "invalid-argument"

    def __init__(self, kind, value):
        super().__init__(kind, value)
        self.kind = kind
        # The key for ETag errors, the message for invalid arguments.
        self.value = value

    @property
    def message(self):
        if self.kind == self.ETAG_MISMATCH:
            return f"etag mismatch for key `{self.value}`"
        if self.kind == self.ETAG_INVALID:
            return f"invalid etag for key `{self.value}`"
        return self.value

    def __str__(self):
        return self.message


class Item:
    """A stored value as read back."""

    __slots__ = ("data", "etag", "content_type", "metadata")

    def __init__(self, data, etag, content_type, metadata):
        self.data = data
        self.etag = etag
        self.content_type = content_type
        # [(ttlExpireTime, rfc3339)] when the value has a TTL, else [].
        self.metadata = metadata


class Set:
    """A write. `metadata` is a list of (name, value) pairs."""

    __slots__ = ("key", "value", "etag", "metadata", "first_write", "content_type")

    def __init__(self, key, value=b"", etag=None, metadata=(), first_write=False, content_type=None):
        self.key = key
        self.value = bytes(value)
        self.etag = etag
        self.metadata = list(metadata)
        self.first_write = first_write
        self.content_type = content_type


class Delete:
    """A delete."""

    __slots__ = ("key", "etag", "first_write")

    def __init__(self, key, etag=None, first_write=False):
        self.key = key
        self.etag = etag
        self.first_write = first_write


class _Entry:
    __slots__ = ("data", "version", "content_type", "expires_at")

    def __init__(self, data, version, content_type, expires_at):
        self.data = data
        self.version = version
        self.content_type = content_type
        self.expires_at = expires_at

    def live(self, now):
        return self.expires_at is None or self.expires_at > now


def parse_ttl(metadata):
    """Milliseconds until expiry, or None. Raises StoreError(invalid-argument)."""
    raw = next((v for k, v in metadata if k == TTL_IN_SECONDS and v != ""), None)
    if raw is None:
        return None
    text = raw.strip()
    if not _I64.fullmatch(text) or not _I64_MIN <= int(text) <= _I64_MAX:
        raise StoreError(StoreError.INVALID_ARGUMENT, f"{TTL_IN_SECONDS} must be an integer, got `{raw}`")
    seconds = int(text)
    if seconds < -1:
        raise StoreError(StoreError.INVALID_ARGUMENT, f"{TTL_IN_SECONDS} must be -1 or positive, got {seconds}")
    if seconds <= 0:
        return None
    return seconds * 1000


def check_etag(key, stored, given, first_write):
    """`stored` is the live version (int) or None; `given` the request's ETag."""
    if given:  # None and "" both mean "no ETag"
        if not _U64.fullmatch(given) or int(given) > _U64_MAX:
            raise StoreError(StoreError.ETAG_INVALID, key)
        if stored != int(given):
            raise StoreError(StoreError.ETAG_MISMATCH, key)
    elif first_write and stored is not None:
        raise StoreError(StoreError.ETAG_MISMATCH, key)


class Store:
    """The store. Not thread-safe: callers serialise calls."""

    def __init__(self):
        self._entries = {}
        self._version = 0
        self._writes = 0

    def _next_version(self, now):
        self._version = max(self._version + 1, now * 1000)
        return self._version

    def _current(self, changes, key, now):
        if key in changes:
            return changes[key]
        entry = self._entries.get(key)
        return entry if entry is not None and entry.live(now) else None

    def _stage_set(self, changes, request, now):
        ttl = parse_ttl(request.metadata)
        stored = self._current(changes, request.key, now)
        check_etag(request.key, None if stored is None else stored.version, request.etag, request.first_write)
        changes[request.key] = _Entry(
            request.value,
            self._next_version(now),
            request.content_type,
            None if ttl is None else now + ttl,
        )

    def _stage_delete(self, changes, request, now):
        stored = self._current(changes, request.key, now)
        check_etag(request.key, None if stored is None else stored.version, request.etag, request.first_write)
        changes[request.key] = None

    def _commit(self, changes, now):
        for key, entry in changes.items():
            if entry is None:
                self._entries.pop(key, None)
            else:
                self._entries[key] = entry
        self._writes += 1
        if self._writes % 1024 == 0:
            self._entries = {k: e for k, e in self._entries.items() if e.live(now)}

    def get(self, key, now):
        """The live value under `key`, or None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if not entry.live(now):
            del self._entries[key]
            return None
        metadata = [] if entry.expires_at is None else [(TTL_EXPIRE_TIME, rfc3339(entry.expires_at))]
        return Item(entry.data, str(entry.version), entry.content_type, metadata)

    def set(self, request, now):
        self.transact([request], now)

    def delete(self, request, now):
        """Deleting an absent key without an ETag succeeds."""
        self.transact([request], now)

    def transact(self, ops, now):
        """Applies `ops` (Set and Delete objects) in order, all or nothing."""
        changes = {}
        for op in ops:
            if isinstance(op, Set):
                self._stage_set(changes, op, now)
            else:
                self._stage_delete(changes, op, now)
        self._commit(changes, now)

    def bulk_set(self, requests, now):
        """Each write on its own; returns [(key, StoreError)] for the ones that failed."""
        return self._each(self.set, requests, now)

    def bulk_delete(self, requests, now):
        """Each delete on its own; returns [(key, StoreError)] for the ones that failed."""
        return self._each(self.delete, requests, now)

    @staticmethod
    def _each(apply, requests, now):
        failed = []
        for request in requests:
            try:
                apply(request, now)
            except StoreError as error:
                failed.append((request.key, error))
        return failed


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
