#!lua
-- refund.lua: take a refund off the order it belongs to, in the variant the order counted for.
--
-- All or nothing: every key's type, the order record, the visitor's totals and every counter
-- the refund changes are read and checked before the first write; a failed check writes nothing.
--
-- KEYS[1]  sw:{exp}:p<phase>:orders   hash  order id -> order record (record_event.lua)
-- KEYS[2]  sw:{exp}:p<phase>:totals   hash  totals of versions before ("<pseudonym>:<goal>")
--                                            (the totals are in the enrolment record now:
--                                            read_totals in counters.lua)
-- KEYS[3]  sw:{exp}:p<phase>:counts   hash  aggregate counters
-- KEYS[4]  sw:{exp}:p<phase>:seen     zset  idempotency members -> minute·2^24 + digest
-- KEYS[5]  sw:{exp}:p<phase>:enrolments  hash  pseudonym -> record (the CUPED covariate and
--                                               the visitor's totals)
-- ARGV[1]  order id
-- ARGV[2]  idempotency member (storage/keys.py refund_member)
-- ARGV[3]  score: minute·2^24 + the refund's 24-bit content digest
-- ARGV[4]  trim members scored below this (the idempotency window)
-- ARGV[5]  UTC day of the refund, YYYY-MM-DD
-- ARGV[6]  refunded gross amount in cents
-- ARGV[7]  net revenue cents the refund removes (computed exactly by server.core.money)
-- ARGV[8]  largest |visitor total| of a revenue or margin goal, in cents
-- ARGV[9]  number of segment attributes n
-- ARGV[10..9+n]  segment attribute names, in the order of the order record
-- ARGV[10+n]  value cap in cents for the capped sums (see record_event.lua; issue 13)
-- ARGV[11+n]  "1": the capped sums are kept as differences from the uncapped ones (ds and
--             dqh·10^8 + dq), "0": as cs and cqh·10^8 + cq (record_event.lua's ARGV[6])
-- Returns: 1 applied; 2 sent before with the same content (applied then); -1 no such order
-- here; -2 the refund exceeds what is left; -4 sent before with other content; -5 a visitor
-- total would leave ±ARGV[8]; -6 a stored figure is not a number this script can add to exactly;
-- -7 sent after the deadline of every (windowed) goal of the order.
--
-- Uses SEPARATOR, DIGESTS, EXACT, wrong_type, number, square, capped, capped_changes, product,
-- covariate_of, read_totals, set_total and write_totals from counters.lua, which LuaScript puts
-- before this file.

local orders, totals, counts, seen = KEYS[1], KEYS[2], KEYS[3], KEYS[4]

local wrong = wrong_type({"hash", "hash", "hash", "zset", "hash"})
if wrong then
  return wrong
end

local record = redis.call("HGET", orders, ARGV[1])
if not record then
  return -1
end
local previous = redis.call("ZSCORE", seen, ARGV[2])
if previous then
  return (tonumber(previous) % DIGESTS == tonumber(ARGV[3]) % DIGESTS) and 2 or -4
end
local parts = {}
for part in string.gmatch(record .. SEPARATOR, "(.-)" .. SEPARATOR) do
  parts[#parts + 1] = part
end
local visitor, variant = parts[1], parts[2]
local gross, refunded = number(parts[3]), number(parts[5])
local amount, reduction, limit = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if gross == nil or refunded == nil then
  return -6
end
if refunded + amount > gross then
  return -2
end

-- CUPED (issue 20): the buyer's covariate, for Σxy (nil without one, or without KEYS[5])
-- (the record also holds the buyer's totals: read_totals below)
local enrolments = KEYS[5]
local enrolment = enrolments and redis.call("HGET", enrolments, visitor)
local covariate = enrolment and covariate_of(enrolment)

local segments = tonumber(ARGV[9])
local day = ":d:" .. ARGV[5]
local cap = tonumber(ARGV[10 + segments])
local as_differences = ARGV[11 + segments] == "1"
-- attribution windows (issue 21): a windowed goal of the order ("<goal>=<kind>/<cohort>/
-- <deadline>", record_event.lua) takes refunds sent by the visitor's deadline (unix minute)
local arrival = math.floor(tonumber(ARGV[3]) / DIGESTS)
local goal_kinds = {}
for goal_kind in string.gmatch(parts[6] or "", "[^,]+") do
  local deadline = tonumber(string.match(goal_kind, "/%d+/(%d+)$"))
  if not deadline or arrival <= deadline then
    goal_kinds[#goal_kinds + 1] = goal_kind
  end
end
if (parts[6] or "") ~= "" and #goal_kinds == 0 then
  return -7
end

local deltas = {}
local function add(field, value)
  if value ~= 0 then
    deltas[field] = (deltas[field] or 0) + value
  end
end
-- the buyer's totals of the order's goals, and refunded revenue of its revenue goals, from
-- their enrolment record (read_totals, counters.lua)
local names = {}
for _, goal_kind in ipairs(goal_kinds) do
  local goal = string.match(goal_kind, "^(.-)=")
  names[#names + 1] = goal
  if string.match(goal_kind, "=r") then
    names[#names + 1] = goal .. ":r"
  end
end
local found = #names > 0 and read_totals(enrolment or nil, totals, visitor, names)
for _, goal_kind in ipairs(goal_kinds) do
  local goal = string.match(goal_kind, "^(.-)=")
  local before = number(found.values[goal])
  if before == nil then
    return -6
  end
  local after = before - reduction
  if math.abs(after) > limit or math.abs(before) > limit then
    return -5
  end
  set_total(found, goal, string.format("%.0f", after))
  local high_after, low_after = square(after)
  local high_before, low_before = square(before)
  local high, low = high_after - high_before, low_after - low_before
  -- capped sums (issue 13), two-part like q
  local capped_before, capped_after = capped(before, cap), capped(after, cap)
  local capped_value = capped_after - capped_before
  local capped_high_after, capped_low_after = square(capped_after)
  local capped_high_before, capped_low_before = square(capped_before)
  local capped_high = capped_high_after - capped_high_before
  local capped_low = capped_low_after - capped_low_before
  local base = variant .. ":" .. goal
  local suffixes = {"", day}
  for i = 1, segments do
    suffixes[#suffixes + 1] = ":" .. ARGV[9 + i] .. "=" .. (parts[6 + i] or "unknown")
  end
  local cohort = string.match(goal_kind, "/(%d+)/%d+$")
  if cohort then
    suffixes[#suffixes + 1] = ":k:" .. cohort  -- the visitor's cohort (issue 21)
  end
  if string.match(goal_kind, "=r") then
    -- the return rate of a revenue goal (issue 21): the visitor's refunded net revenue
    -- ("<goal>:r" in the packed totals), its sum, sum of squares and cross sum with the total
    local refunded = number(found.values[goal .. ":r"])
    if refunded == nil then
      return -6
    end
    local refunded_after = refunded + reduction
    set_total(found, goal .. ":r", string.format("%.0f", refunded_after))
    local squares_high_after, squares_low_after = square(refunded_after)
    local squares_high_before, squares_low_before = square(refunded)
    local cross_high_after, cross_low_after = product(refunded_after, after)
    local cross_high_before, cross_low_before = product(refunded, before)
    for _, suffix in ipairs({"", cohort and ":k:" .. cohort}) do
      add("rf:" .. base .. suffix, reduction)
      add("rfq:" .. base .. suffix, squares_low_after - squares_low_before)
      add("rfqh:" .. base .. suffix, squares_high_after - squares_high_before)
      add("rt:" .. base .. suffix, cross_low_after - cross_low_before)
      add("rth:" .. base .. suffix, cross_high_after - cross_high_before)
    end
  end
  -- CUPED (issue 20): Σxy += x·Δ(capped total), two-part as q, whole phase and day
  if covariate then
    local cross_high, cross_low = product(covariate, capped_value)
    for _, suffix in ipairs({"", day}) do
      add("xy:" .. base .. suffix, cross_low)
      add("xyh:" .. base .. suffix, cross_high)
    end
  end
  local sum_prefix, sum_change, low_prefix, low_change, high_prefix, high_change =
    capped_changes(as_differences, -reduction, high, low, capped_value, capped_high, capped_low)
  for _, suffix in ipairs(suffixes) do
    add("s:" .. base .. suffix, -reduction)
    add("q:" .. base .. suffix, low)
    add("qh:" .. base .. suffix, high)
    add(sum_prefix .. base .. suffix, sum_change)
    add(low_prefix .. base .. suffix, low_change)
    add(high_prefix .. base .. suffix, high_change)
  end
end

local fields, values = {}, {}
for field in pairs(deltas) do
  fields[#fields + 1] = field
end
if #fields > 0 then
  local current = redis.call("HMGET", counts, unpack(fields))
  for f = 1, #fields do
    local old = number(current[f])
    local new = old and old + deltas[fields[f]]
    if new == nil or math.abs(new) > EXACT then
      return -6
    end
    values[#values + 1] = fields[f]
    values[#values + 1] = string.format("%.0f", new)
  end
end

-- every check passed: from here on, only writes
redis.call("ZREMRANGEBYSCORE", seen, "-inf", "(" .. ARGV[4])
redis.call("ZADD", seen, ARGV[3], ARGV[2])
parts[5] = string.format("%.0f", refunded + amount)
redis.call("HSET", orders, ARGV[1], table.concat(parts, SEPARATOR))
if found then
  write_totals(enrolments, totals, visitor, found)
end
if #values > 0 then
  redis.call("HSET", counts, unpack(values))
end
return 1
