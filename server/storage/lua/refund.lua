#!lua
-- refund.lua: take a refund off the order it belongs to, in the variant the order counted for.
--
-- KEYS[1]  sw:{exp}:p<phase>:orders   hash  order id -> order record (record_event.lua)
-- KEYS[2]  sw:{exp}:p<phase>:totals   hash  "<pseudonym>:<goal>" -> visitor total (cents)
-- KEYS[3]  sw:{exp}:p<phase>:counts   hash  aggregate counters
-- KEYS[4]  sw:{exp}:p<phase>:seen     zset  applied event ids -> unix time
-- ARGV[1]  order id
-- ARGV[2]  idempotency member ("r:<order id>:<refund id>")
-- ARGV[3]  now, unix seconds
-- ARGV[4]  idempotency window in seconds
-- ARGV[5]  UTC day of the refund, YYYY-MM-DD
-- ARGV[6]  refunded gross amount in cents
-- ARGV[7]  net revenue cents the refund removes (computed exactly by server.core.money)
-- ARGV[8]  number of segment attributes n
-- ARGV[9..8+n]  segment attribute names, in the order of the order record
-- ARGV[9+n] value cap in cents for the capped sums cs/cq (see record_event.lua; issue 13)
-- Returns: 1 applied; 0 duplicate; -1 no such order here; -2 the refund exceeds what is left.

local SEPARATOR = "\31"

local record = redis.call("HGET", KEYS[1], ARGV[1])
if not record then
  return -1
end
if redis.call("ZSCORE", KEYS[4], ARGV[2]) then
  return 0
end
local parts = {}
for part in string.gmatch(record .. SEPARATOR, "(.-)" .. SEPARATOR) do
  parts[#parts + 1] = part
end
local visitor, variant, gross, refunded = parts[1], parts[2], tonumber(parts[3]), tonumber(parts[5])
local amount = tonumber(ARGV[6])
if refunded + amount > gross then
  return -2
end

local now = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now - tonumber(ARGV[4]))
redis.call("ZADD", KEYS[4], now, ARGV[2])
parts[5] = string.format("%.0f", refunded + amount)
redis.call("HSET", KEYS[1], ARGV[1], table.concat(parts, SEPARATOR))

local reduction = tonumber(ARGV[7])
local segments = tonumber(ARGV[8])
local day = ":d:" .. ARGV[5]
local cap = tonumber(ARGV[9 + segments])
local function capped(total)
  return math.max(-cap, math.min(cap, total))
end
local function add(field, value)
  if value ~= 0 then
    redis.call("HINCRBY", KEYS[3], field, string.format("%.0f", value))
  end
end
for goal_kind in string.gmatch(parts[6], "[^,]+") do
  local goal = string.match(goal_kind, "^(.-)=")
  local total_field = visitor .. ":" .. goal
  local before = tonumber(redis.call("HGET", KEYS[2], total_field) or "0")
  local after = before - reduction
  redis.call("HSET", KEYS[2], total_field, string.format("%.0f", after))
  local square = after * after - before * before
  local base = variant .. ":" .. goal
  add("s:" .. base, -reduction)
  add("q:" .. base, square)
  add("s:" .. base .. day, -reduction)
  add("q:" .. base .. day, square)
  for i = 1, segments do
    local suffix = ":" .. ARGV[8 + i] .. "=" .. (parts[6 + i] or "unknown")
    add("s:" .. base .. suffix, -reduction)
    add("q:" .. base .. suffix, square)
  end
  -- capped sums (issue 13)
  local capped_before, capped_after = capped(before), capped(after)
  local capped_value = capped_after - capped_before
  local capped_square = capped_after * capped_after - capped_before * capped_before
  add("cs:" .. base, capped_value)
  add("cq:" .. base, capped_square)
  add("cs:" .. base .. day, capped_value)
  add("cq:" .. base .. day, capped_square)
  for i = 1, segments do
    local suffix = ":" .. ARGV[8 + i] .. "=" .. (parts[6 + i] or "unknown")
    add("cs:" .. base .. suffix, capped_value)
    add("cq:" .. base .. suffix, capped_square)
  end
end
return 1
