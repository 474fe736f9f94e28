-- record_event.lua: attribute one conversion or order to an enrolled visitor's variant, once.
--
-- KEYS[1]  sw:{exp}:p<phase>:enrolments   hash  pseudonym -> "<variant>␟<segment values…>"
-- KEYS[2]  sw:{exp}:p<phase>:totals       hash  "<pseudonym>:<goal>" -> visitor total (cents)
-- KEYS[3]  sw:{exp}:p<phase>:counts       hash  aggregate counters (see storage/keys.py)
-- KEYS[4]  sw:{exp}:p<phase>:seen         zset  applied event ids -> unix time
-- KEYS[5]  sw:{exp}:p<phase>:orders       hash  order id -> order record (for refunds)
-- ARGV[1]  pseudonymous visitor id
-- ARGV[2]  idempotency member ("<pseudonym>:<event id>")
-- ARGV[3]  now, unix seconds
-- ARGV[4]  idempotency window in seconds (older members are trimmed)
-- ARGV[5]  UTC day of the event, YYYY-MM-DD
-- ARGV[6]  order id, or "" for a conversion
-- ARGV[7]  order gross cents ("" for a conversion)
-- ARGV[8]  order net revenue cents ("" for a conversion)
-- ARGV[9]  number of segment attributes n
-- ARGV[10..9+n]  segment attribute names, in the order of the enrolment record
-- ARGV[10+n..]   goal triples: goal key, kind letter (c conversion, r revenue, m margin),
--                value in cents (0 for conversion goals)
-- Returns: 1 applied; 0 duplicate (same event id, or an order id seen before); -1 the visitor
--          is not enrolled (nothing changes).

local SEPARATOR = "\31"

local record = redis.call("HGET", KEYS[1], ARGV[1])
if not record then
  return -1
end
if redis.call("ZSCORE", KEYS[4], ARGV[2]) then
  return 0
end
local order_id = ARGV[6]
if order_id ~= "" and redis.call("HEXISTS", KEYS[5], order_id) == 1 then
  return 0
end

local now = tonumber(ARGV[3])
redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", now - tonumber(ARGV[4]))
redis.call("ZADD", KEYS[4], now, ARGV[2])

local parts = {}
for part in string.gmatch(record .. SEPARATOR, "(.-)" .. SEPARATOR) do
  parts[#parts + 1] = part
end
local variant = parts[1]
local segments = tonumber(ARGV[9])
local suffixes = {}
for i = 1, segments do
  suffixes[i] = ":" .. ARGV[9 + i] .. "=" .. (parts[1 + i] or "unknown")
end
local day = ":d:" .. ARGV[5]

-- integers up to 2^53 are exact in Lua's doubles; %.0f writes them without an exponent
local function add(field, amount)
  if amount ~= 0 then
    redis.call("HINCRBY", KEYS[3], field, string.format("%.0f", amount))
  end
end

local value_goals = {}
local first = 10 + segments
for i = first, #ARGV, 3 do
  local goal, kind, value = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  local base = variant .. ":" .. goal
  local total_field = ARGV[1] .. ":" .. goal
  local before = tonumber(redis.call("HGET", KEYS[2], total_field) or "-1")
  local is_first = before < 0
  if is_first then
    before = 0
  end
  local after = before + value
  if kind == "c" then
    after = before + 1  -- conversion goals keep the visitor's number of events
  end
  redis.call("HSET", KEYS[2], total_field, string.format("%.0f", after))
  local square = 0
  if kind ~= "c" then
    square = after * after - before * before
    value_goals[#value_goals + 1] = goal .. "=" .. kind
  end
  local converted = is_first and 1 or 0
  add("c:" .. base, converted)
  add("n:" .. base, 1)
  add("s:" .. base, value)
  add("q:" .. base, square)
  add("c:" .. base .. day, converted)
  add("n:" .. base .. day, 1)
  add("s:" .. base .. day, value)
  add("q:" .. base .. day, square)  -- summed up to a day: squares of the totals as of that day
  for j = 1, segments do
    add("c:" .. base .. suffixes[j], converted)
    add("n:" .. base .. suffixes[j], 1)
    add("s:" .. base .. suffixes[j], value)
    add("q:" .. base .. suffixes[j], square)
  end
end

if order_id ~= "" then
  local order = {ARGV[1], variant, ARGV[7], ARGV[8], "0", table.concat(value_goals, ",")}
  for i = 1, segments do
    order[#order + 1] = parts[1 + i] or "unknown"
  end
  redis.call("HSET", KEYS[5], order_id, table.concat(order, SEPARATOR))
end
return 1
