-- state.redis: writes and deletes, all or nothing, on Dapr's layout (a hash
-- per key with `data`, `version` and, once a first-write save touched it,
-- `first-write`; plughost adds `contentType`). See docs/redis-layout.md.
--
-- KEYS[1]    the ETag counter (new versions are above every version it issued)
-- KEYS[i+1]  the key of operation i
-- ARGV       6 per operation: kind ("set" | "del"), ETag ("" = none),
--            first-write ("1" | "0"), value, content type ("" = none),
--            TTL in ms ("0" = no expiry)
--
-- Phase 1 checks every operation in order against the state the earlier
-- ones leave; the first refusal returns an error and nothing is written.
-- Phase 2 applies them all. A script runs atomically, so no other client
-- sees a half-applied transaction and no write slips in between.

local n = #ARGV / 6
local seen = {}

local function stored(key)
  local s = seen[key]
  if s == nil then
    s = { version = false, first_write = false }
    if redis.call("TYPE", key).ok == "hash" then
      local v = redis.call("HMGET", key, "version", "first-write")
      if v[1] and v[1] ~= "" then s.version = v[1] end
      s.first_write = v[2] ~= false
    end
    seen[key] = s
  end
  return s
end

for i = 0, n - 1 do
  local key, kind, etag, first_write = KEYS[i + 2], ARGV[i * 6 + 1], ARGV[i * 6 + 2], ARGV[i * 6 + 3]
  local s = stored(key)
  if etag ~= "" then
    if s.version ~= etag then
      return redis.error_reply("ETAG_MISMATCH " .. i)
    end
  elseif s.version and (first_write == "1" or (kind == "set" and s.first_write)) then
    return redis.error_reply("FIRST_WRITE " .. i)
  end
  if kind == "set" then
    seen[key] = { version = "(written)", first_write = s.first_write or first_write == "1" }
  else
    seen[key] = { version = false, first_write = false }
  end
end

for i = 0, n - 1 do
  local key, b = KEYS[i + 2], i * 6
  if ARGV[b + 1] == "del" then
    redis.call("DEL", key)
  else
    local old = 0
    if redis.call("TYPE", key).ok == "hash" then
      old = tonumber(redis.call("HGET", key, "version")) or 0
    else
      redis.call("DEL", key) -- a legacy plain value, as Dapr does
    end
    local counter = redis.call("INCR", KEYS[1])
    local version = math.max(counter, old + 1)
    if version > counter then
      redis.call("SET", KEYS[1], version)
    end
    redis.call("HSET", key, "data", ARGV[b + 4], "version", version)
    if ARGV[b + 3] == "1" then
      redis.call("HSET", key, "first-write", 0)
    end
    if ARGV[b + 5] ~= "" then
      redis.call("HSET", key, "contentType", ARGV[b + 5])
    else
      redis.call("HDEL", key, "contentType")
    end
    local ttl = tonumber(ARGV[b + 6])
    if ttl > 0 then
      redis.call("PEXPIRE", key, ttl)
    else
      redis.call("PERSIST", key)
    end
  end
end
return n
