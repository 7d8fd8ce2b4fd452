// A state store component in JavaScript: world `state-component` of
// `plughost:components@0.1.0` (../../wit), built with the Bytecode Alliance's
// componentize-js (build.sh). The rules are those of ../state-logic (the Rust store)
// and ../python-state, so plughost's state conformance suite applies unchanged:
//
// - ETags are decimal version numbers, new on every write, never reissued (a new
//   version is at least the current time in microseconds, so also not after a restart).
// - A non-numeric ETag is `etag-invalid`; a numeric one that differs from the stored
//   one (or any ETag for an absent key) is `etag-mismatch`. First-write without an
//   ETag only creates.
// - `ttlInSeconds`: a positive integer expires the value; -1, 0 or empty mean none;
//   anything else is `invalid-argument`. Reads report `ttlExpireTime` (RFC 3339 UTC).
// - Transactions apply in order, all or nothing; bulk writes report the failed keys.
//
// WIT <-> JS (componentize-js / jco conventions): records are objects with camelCase
// fields, `option` is a value or undefined, `list<u8>` a Uint8Array, `metadata` an
// array of [name, value] pairs, enums and variant tags are the WIT names as strings;
// an error result is thrown as `{ tag, val }`.
//
// Module-level code runs at build time (the engine is pre-initialised then), so the
// store reads the clock only inside calls.

import { log } from "plughost:components/log@0.1.0";

const TTL_IN_SECONDS = "ttlInSeconds";
const TTL_EXPIRE_TIME = "ttlExpireTime";
const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;

const entries = new Map(); // key -> { data, version (BigInt), contentType, expiresAt (ms) }
let lastVersion = 0n;
let writes = 0;

const fail = (tag, val) => {
  throw { tag, val };
};

const live = (entry, now) => entry.expiresAt === undefined || entry.expiresAt > now;

function current(changes, key, now) {
  if (changes.has(key)) return changes.get(key);
  const entry = entries.get(key);
  return entry !== undefined && live(entry, now) ? entry : undefined;
}

function metadataValue(metadata, name) {
  const pair = metadata.find(([k]) => k === name);
  return pair === undefined ? "" : pair[1];
}

// Milliseconds until expiry, or undefined.
function parseTtl(metadata) {
  const raw = metadataValue(metadata, TTL_IN_SECONDS);
  if (raw === "") return undefined;
  const text = raw.trim();
  if (!/^[+-]?[0-9]+$/.test(text) || BigInt(text) < I64_MIN || BigInt(text) > I64_MAX) {
    fail("invalid-argument", `${TTL_IN_SECONDS} must be an integer, got \`${raw}\``);
  }
  const seconds = BigInt(text);
  if (seconds < -1n) fail("invalid-argument", `${TTL_IN_SECONDS} must be -1 or positive, got ${seconds}`);
  return seconds > 0n ? Number(seconds) * 1000 : undefined;
}

function checkEtag(key, stored, given, firstWrite) {
  if (given) {
    if (!/^\+?[0-9]+$/.test(given) || BigInt(given) > U64_MAX) fail("etag-invalid", key);
    if (stored === undefined || stored.version !== BigInt(given)) fail("etag-mismatch", key);
  } else if (firstWrite && stored !== undefined) {
    fail("etag-mismatch", key);
  }
}

function stage(changes, op, now) {
  const request = op.val;
  const firstWrite = request.options.concurrency === "first-write";
  if (op.tag === "set") {
    const ttl = parseTtl(request.metadata);
    checkEtag(request.key, current(changes, request.key, now), request.etag, firstWrite);
    const floor = BigInt(now) * 1000n;
    lastVersion = lastVersion + 1n > floor ? lastVersion + 1n : floor;
    changes.set(request.key, {
      data: new Uint8Array(request.value),
      version: lastVersion,
      contentType: request.contentType,
      expiresAt: ttl === undefined ? undefined : now + ttl,
    });
  } else {
    checkEtag(request.key, current(changes, request.key, now), request.etag, firstWrite);
    changes.set(request.key, undefined);
  }
}

function transact(ops) {
  const now = Date.now();
  const changes = new Map();
  for (const op of ops) stage(changes, op, now);
  for (const [key, entry] of changes) {
    if (entry === undefined) entries.delete(key);
    else entries.set(key, entry);
  }
  writes += 1;
  if (writes % 1024 === 0) {
    for (const [key, entry] of entries) if (!live(entry, now)) entries.delete(key);
  }
}

function read(key, now) {
  const entry = entries.get(key);
  if (entry === undefined) return undefined;
  if (!live(entry, now)) {
    entries.delete(key);
    return undefined;
  }
  const metadata = entry.expiresAt === undefined ? [] : [[TTL_EXPIRE_TIME, new Date(entry.expiresAt).toISOString()]];
  return { data: entry.data, etag: entry.version.toString(), metadata, contentType: entry.contentType };
}

// Bulk writes: each on its own; the failed keys with their errors.
function each(requests, tag) {
  const failed = [];
  for (const request of requests) {
    try {
      transact([{ tag, val: request }]);
    } catch (error) {
      if (error === null || typeof error !== "object" || typeof error.tag !== "string") throw error;
      failed.push({ key: request.key, error });
    }
  }
  return failed;
}

export const lifecycle = {
  init(metadata) {
    log("debug", `javascript state store ready (${metadata.length} metadata entries)`);
  },
  features() {
    return ["ETAG", "TRANSACTIONAL", "TTL"];
  },
  ping() {},
};

export const state = {
  get(request) {
    return read(request.key, Date.now());
  },
  set(request) {
    transact([{ tag: "set", val: request }]);
  },
  delete(request) {
    transact([{ tag: "delete", val: request }]);
  },
  bulkGet(requests) {
    const now = Date.now();
    return requests.map((request) => ({ key: request.key, item: read(request.key, now), error: undefined }));
  },
  bulkSet(requests) {
    return each(requests, "set");
  },
  bulkDelete(requests) {
    return each(requests, "delete");
  },
  transact(operations, _metadata) {
    transact(operations);
  },
};
