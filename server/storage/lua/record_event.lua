#!lua
-- record_event.lua: attribute a batch of conversions and orders, all of one experiment phase,
-- to the variants their visitors are enrolled in; each event counts once.
--
-- KEYS[1]  sw:{exp}:p<phase>:enrolments   hash  pseudonym -> "<variant>␟<segment values…>"
-- KEYS[2]  sw:{exp}:p<phase>:totals       hash  "<pseudonym>:<goal>" -> visitor total (cents)
-- KEYS[3]  sw:{exp}:p<phase>:counts       hash  aggregate counters (see storage/keys.py)
-- KEYS[4]  sw:{exp}:p<phase>:seen         zset  applied event ids -> unix time
-- KEYS[5]  sw:{exp}:p<phase>:orders       hash  order id -> order record (for refunds)
-- ARGV[1]  now, unix seconds
-- ARGV[2]  trim ids older than this unix time from KEYS[4] ("" to skip: once per batch is plenty)
-- ARGV[3]  value cap in cents: a visitor's total of a value goal counts at most this much (and at
--          least minus this much) in the capped sums cs/cq; s/q stay uncapped (issue 13)
-- ARGV[4]  number of segment attributes n
-- ARGV[5..4+n]  segment attribute names, in the order of the enrolment record
-- then per event: pseudonym, idempotency member ("<pseudonym>:<event id>"), UTC day
--   (YYYY-MM-DD), order id ("" for a conversion), order gross cents, order net cents, number of
--   goals g, then g triples: goal key, kind letter (c conversion, r revenue, m margin), cents
-- Returns one reply per event: 1 counted; 0 duplicate (same event id, or an order id seen
-- before); -1 the visitor is not enrolled (nothing changes).

local SEPARATOR = "\31"
local counts, totals = KEYS[3], KEYS[2]

-- integers up to 2^53 are exact in Lua's doubles; %.0f writes them without an exponent
local function add(field, amount)
  if amount ~= 0 then
    redis.call("HINCRBY", counts, field, string.format("%.0f", amount))
  end
end

if ARGV[2] ~= "" then
  redis.call("ZREMRANGEBYSCORE", KEYS[4], "-inf", ARGV[2])
end
local now = ARGV[1]
local segments = tonumber(ARGV[4])
local names = {}
for i = 1, segments do
  names[i] = ARGV[4 + i]
end

-- value cap (issue 13): winsorise each visitor's total for the statistics
local cap = tonumber(ARGV[3])
local function capped(total)
  return math.max(-cap, math.min(cap, total))
end

local replies = {}
local i = 5 + segments
while i <= #ARGV do
  local visitor, member, day, order_id = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local gross, net, goals = ARGV[i + 4], ARGV[i + 5], tonumber(ARGV[i + 6])
  local first_goal = i + 7
  i = first_goal + 3 * goals
  local record = redis.call("HGET", KEYS[1], visitor)
  if not record then
    replies[#replies + 1] = -1
  elseif order_id ~= "" and redis.call("HEXISTS", KEYS[5], order_id) == 1 then
    replies[#replies + 1] = 0
  elseif redis.call("ZADD", KEYS[4], "NX", now, member) == 0 then
    replies[#replies + 1] = 0
  else
    local parts = {}
    for part in string.gmatch(record .. SEPARATOR, "(.-)" .. SEPARATOR) do
      parts[#parts + 1] = part
    end
    local variant = parts[1]
    local value_goals = {}
    for g = first_goal, i - 1, 3 do
      local goal, kind, value = ARGV[g], ARGV[g + 1], tonumber(ARGV[g + 2])
      local base = variant .. ":" .. goal
      local daily = base .. ":d:" .. day
      local field = visitor .. ":" .. goal
      local converted, square = 0, 0
      local capped_value, capped_square = 0, 0
      if kind == "c" then
        -- the visitor's number of events of this goal; the first one makes them converted
        if redis.call("HINCRBY", totals, field, 1) == 1 then
          converted = 1
        end
      else
        -- the visitor's total in cents (refunds lower it, so 0 does not mean "never")
        local old = redis.call("HGET", totals, field)
        if not old then
          converted = 1
        end
        local before = tonumber(old or "0")
        local after = redis.call("HINCRBY", totals, field, string.format("%.0f", value))
        square = after * after - before * before
        local capped_before, capped_after = capped(before), capped(after)
        capped_value = capped_after - capped_before
        capped_square = capped_after * capped_after - capped_before * capped_before
        value_goals[#value_goals + 1] = goal .. "=" .. kind
      end
      add("c:" .. base, converted)
      add("n:" .. base, 1)
      add("s:" .. base, value)
      add("q:" .. base, square)
      add("c:" .. daily, converted)
      add("s:" .. daily, value)
      add("q:" .. daily, square)
      for s = 1, segments do
        local segment = base .. ":" .. names[s] .. "=" .. (parts[1 + s] or "unknown")
        add("c:" .. segment, converted)
        add("s:" .. segment, value)
        add("q:" .. segment, square)
      end
      -- capped sums (issue 13), for the statistics: whole phase, day, segment values
      add("cs:" .. base, capped_value)
      add("cq:" .. base, capped_square)
      add("cs:" .. daily, capped_value)
      add("cq:" .. daily, capped_square)
      for s = 1, segments do
        local segment = base .. ":" .. names[s] .. "=" .. (parts[1 + s] or "unknown")
        add("cs:" .. segment, capped_value)
        add("cq:" .. segment, capped_square)
      end
    end
    if order_id ~= "" then
      local order = {visitor, variant, gross, net, "0", table.concat(value_goals, ",")}
      for s = 1, segments do
        order[#order + 1] = parts[1 + s] or "unknown"
      end
      redis.call("HSET", KEYS[5], order_id, table.concat(order, SEPARATOR))
    end
    replies[#replies + 1] = 1
  end
end
return replies
