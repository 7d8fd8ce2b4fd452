-- state.redis: one read, with the remaining TTL in the same atomic step.
-- Returns nil (absent) or {type, data, version, contentType, pttl}: type
-- "hash" for Dapr's layout, "string" for a legacy plain value (old Dapr),
-- which has no version, as Dapr reads it.
local kind = redis.call("TYPE", KEYS[1]).ok
if kind == "none" then
  return false
elseif kind == "string" then
  return { "string", redis.call("GET", KEYS[1]), false, false, redis.call("PTTL", KEYS[1]) }
elseif kind ~= "hash" then
  return redis.error_reply("WRONGTYPE key holds a " .. kind .. ", not a state value")
end
local v = redis.call("HMGET", KEYS[1], "data", "version", "contentType")
return { "hash", v[1], v[2], v[3], redis.call("PTTL", KEYS[1]) }
