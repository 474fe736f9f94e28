#!lua
-- record_event.lua: attribute a batch of conversions and orders, all of one experiment phase,
-- to the variants their visitors are enrolled in; each event counts once.
--
-- All or nothing per event: every key's type is checked before the first write of the batch,
-- and each event reads and checks everything it will change (counters, totals, the visitor's
-- daily count) before its first write; an event that fails a check writes nothing. The
-- counters of the batch are read once each and kept here as the events change them (each
-- event checked against what the events before it left), and written at the end, in HSETs of
-- at most 500 fields: a field many events of the batch change costs one read and one write.
-- The same for the rest: the visitors' records, the idempotency scores and the order ids are
-- read for all events at the start, and the idempotency members, changed records and new
-- orders written at the end, one command each (a command from a script costs several times
-- its own work); each event sees what the events before it wrote.
--
-- KEYS[1]  sw:{exp}:p<phase>:enrolments   hash  pseudonym -> "<variant>␟<segment values…>"
--                                               and extras "\30x:<covariate>", "\30t:<minute>"
--                                               and the visitor's totals "\30g:<goal>=<cents>;…"
--                                               (read_totals in counters.lua; keys.py)
-- KEYS[2]  sw:{exp}:p<phase>:totals       hash  totals of versions before, "<pseudonym>:<goal>"
--                                               -> cents: read where the record lacks them
-- KEYS[3]  sw:{exp}:p<phase>:counts       hash  aggregate counters (see storage/keys.py)
-- KEYS[4]  sw:{exp}:p<phase>:seen         zset  idempotency members -> minute·2^24 + digest
-- KEYS[5]  sw:{exp}:p<phase>:orders       hash  order id -> order record (for refunds)
-- ARGV[1]  trim members scored below this ("" to skip: once per batch is plenty)
-- ARGV[2]  today (server clock), YYYY-MM-DD: the day of the per-visitor conversion count
-- ARGV[3]  new conversion ids allowed per visitor and day
-- ARGV[4]  largest |visitor total| of a revenue or margin goal, in cents
-- ARGV[5]  value cap in cents: a visitor's total of a value goal counts at most this much (and at
--          least minus this much) in the capped sums; s, qh and q stay uncapped (issue 13)
-- ARGV[6]  "1": the capped sums are kept as their differences from the uncapped ones, ds and
--          dqh·10^8 + dq (zero, so not written, while a visitor's total stays within the cap);
--          "0" (phases begun before that format): as the capped sums cs and cqh·10^8 + cq
-- ARGV[7]  number of segment attributes n
-- ARGV[8..7+n]  segment attribute names, in the order of the enrolment record
-- then per event: pseudonym, idempotency member (storage/keys.py), score (minute·2^24 + the
--   event's 24-bit content digest), UTC day (YYYY-MM-DD), order id ("" for a conversion),
--   order gross cents, order net cents, number of goals g, then g triples: goal key, kind
--   letter (c conversion, r revenue, m margin), cents; a windowed goal's kind is
--   "<letter>/<window>/<settle>/<event minute>" (minutes; issue 21): it counts an event dated
--   within <window> of the visitor's enrolment time ("\30t:<minute>" in the enrolment record)
--   and sent within <settle>, and also under the visitor's cohort (enrolment day) counters
-- Returns one reply per event: 1 counted; 2 sent before with the same content (counted then);
-- 0 duplicate (an order counted longer ago than the idempotency window); -1 the visitor is not
-- enrolled; -3 the visitor's conversions of today are at the limit; -4 sent before with other
-- content; -5 a visitor total would leave ±ARGV[4]; -6 a stored counter is not a number this
-- script can add to exactly; -7 outside every goal's attribution window. Nothing is written for
-- any reply but 1.
--
-- Uses SEPARATOR, DIGESTS, EXACT, wrong_type, number, square, capped, capped_changes, product,
-- older_totals_exist, read_totals, set_total, totals_record and drop_older_totals from
-- counters.lua, which LuaScript puts before this file, and its locals for library functions
-- (call, format, match, gmatch, find, sub, abs, floor, min, concat).

local enrolments, totals, counts, seen, orders = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]

local wrong = wrong_type({"hash", "hash", "hash", "zset", "hash"})
if wrong then
  return wrong
end

local trim_below, today = ARGV[1], ARGV[2]
local daily_limit, total_limit = tonumber(ARGV[3]), tonumber(ARGV[4])
local cap = tonumber(ARGV[5])
local as_differences = ARGV[6] == "1"
local segments = tonumber(ARGV[7])
local names = {}
for s = 1, segments do
  names[s] = ARGV[7 + s]
end
if trim_below ~= "" then
  call("ZREMRANGEBYSCORE", seen, "-inf", "(" .. trim_below)
end

-- A command over many items, sent in parts of at most CHUNK items (unpack's stack has a
-- limit): read_all returns the replies of all parts as one list, write_all sends the parts.
local CHUNK = 1000
local function read_all(command, key, items)
  if #items == 0 then
    return {}
  elseif #items <= CHUNK then  -- one part (a call holds at most 500 events): no copy
    return call(command, key, unpack(items))
  end
  local replies = {}
  for first = 1, #items, CHUNK do
    local part = call(command, key, unpack(items, first, min(first + CHUNK - 1, #items)))
    for k = 1, #part do
      replies[first + k - 1] = part[k]
    end
  end
  return replies
end
local function write_all(command, key, items)
  for first = 1, #items, CHUNK do
    call(command, key, unpack(items, first, min(first + CHUNK - 1, #items)))
  end
end

-- The call's reads, one command each for all its events (a command from a script costs
-- several times its own work): every visitor's enrolment record, every event's idempotency
-- score, whether each order id is recorded. An event that counts writes into these tables,
-- so that the events after it in the call see it, and its writes leave in one command each
-- at the end (below), with the counters'.
local records, scores, recorded_orders = {}, {}, {}
do
  local visitors, members, order_ids = {}, {}, {}
  local j = 8 + segments
  while j <= #ARGV do
    visitors[#visitors + 1], members[#members + 1] = ARGV[j], ARGV[j + 1]
    if ARGV[j + 4] ~= "" then
      order_ids[#order_ids + 1] = ARGV[j + 4]
    end
    j = j + 8 + 3 * tonumber(ARGV[j + 7])
  end
  local found = read_all("HMGET", enrolments, visitors)
  local stored = read_all("ZMSCORE", seen, members)
  for k = 1, #visitors do
    records[visitors[k]] = found[k]
    scores[members[k]] = stored[k]
  end
  local known = read_all("HMGET", orders, order_ids)
  for k = 1, #order_ids do
    recorded_orders[order_ids[k]] = known[k] ~= false
  end
end

-- an empty table where most events need none (windowed goals, legacy names, order goals);
-- writing to it is an error
local NONE = setmetatable({}, {__newindex = function() error("NONE is read-only") end})
local PART = "([^" .. SEPARATOR .. "]*)" .. SEPARATOR  -- a field of a record, then its separator
-- a record's variant and its n segment values in one match (records with another number of
-- parts take the loop over PART in plan)
local VALUE = "([^" .. SEPARATOR .. "]*)"
local PARTS = "^" .. VALUE .. string.rep(SEPARATOR .. VALUE, segments) .. "$"

-- the counters an event changes (each field once) and by how much, in two arrays that plan
-- starts afresh for each event; add and add_sums are made once per call, not per event
local fields, deltas
-- (the field's name is built only when it changes: most of a conversion's do not)
local function add(prefix, name, amount)
  if amount ~= 0 then
    fields[#fields + 1] = prefix .. name
    deltas[#deltas + 1] = amount
  end
end
-- a value goal's sums in a scope: its total's change and its square's (two parts), and the
-- capped sums' changes as the phase keeps them (issue 13; capped_changes, counters.lua), as
-- plan sets them per goal
local value, high, low, capped_value, capped_high, capped_low
local sum_prefix, sum_change, low_prefix, low_change, high_prefix, high_change
local function add_sums(scope)
  add("s:", scope, value)
  add("q:", scope, low)
  add("qh:", scope, high)
  if sum_change ~= 0 or low_change ~= 0 or high_change ~= 0 then  -- a difference: over the cap
    add(sum_prefix, scope, sum_change)
    add(low_prefix, scope, low_change)
    add(high_prefix, scope, high_change)
  end
end

-- one event: its reply and, when it counts, the counters it changes (fields and deltas), the
-- totals to write (field, value, field, value, …) and what its order record needs
local function plan(visitor, member, score, day, order_id, first_goal, last_goal)
  local record = records[visitor]
  if not record then
    return -1
  end
  local previous = scores[member]
  if previous then
    return (tonumber(previous) % DIGESTS == tonumber(score) % DIGESTS) and 2 or -4
  end
  if order_id ~= "" and recorded_orders[order_id] then
    return 0
  end
  -- the record's variant and segment values, and its extras: the CUPED covariate (issue 20)
  -- and the enrolment minute ("\30t:", below); one match each where the record has the usual
  -- number of parts
  local extra = find(record, "\30", 1, true)  -- plain search: patterns step through each byte
  local plain, extras = record, ""
  if extra then
    plain, extras = sub(record, 1, extra - 1), sub(record, extra)
  end
  local covariate = find(extras, "\30x:", 1, true) and tonumber(match(extras, "\30x:(%-?%d+)"))
  local parts = {match(plain, PARTS)}
  if parts[1] == nil then
    parts = {}
    for part in gmatch(plain .. SEPARATOR, PART) do
      parts[#parts + 1] = part
    end
  end
  local variant = parts[1]

  -- attribution windows (issue 21): the goals this event counts in, their kind letters, and
  -- the visitor's cohort (enrolment day number) and settle minute for windowed goals (a kind
  -- longer than its letter; the enrolment minute is read for the first of them)
  local enrolled_at, arrival
  local positions, kinds, cohorts, deadlines = {}, {}, NONE, NONE  -- tables where windowed
  for g = first_goal, last_goal, 3 do
    local kind = ARGV[g + 1]
    if #kind == 1 then
      positions[#positions + 1], kinds[g] = g, kind
    else
      local letter, window, settle, moment = match(kind, "^(%a)/(%d+)/(%d+)/(%d+)$")
      if arrival == nil then
        enrolled_at = tonumber(match(extras, "\30t:(%d+)"))
        arrival = floor(tonumber(score) / DIGESTS)
      end
      if not letter then
        positions[#positions + 1], kinds[g] = g, kind
      elseif enrolled_at and tonumber(moment) <= enrolled_at + tonumber(window)
          and arrival <= enrolled_at + tonumber(settle) then
        positions[#positions + 1], kinds[g] = g, letter
        if cohorts == NONE then
          cohorts, deadlines = {}, {}
        end
        cohorts[g], deadlines[g] = floor(enrolled_at / 1440), enrolled_at + tonumber(settle)
      end
    end
  end
  if #positions == 0 then
    return -7
  end

  -- the visitor's totals of these goals (and refunded revenue of revenue goals), and (for a
  -- conversion) today's count, from their enrolment record (read_totals, counters.lua); the
  -- names to look for in the totals hash of versions before only where that hash exists
  local wanted = NONE
  if older_totals_exist(totals) then
    wanted = {"@day"}
    for _, g in ipairs(positions) do
      wanted[#wanted + 1] = ARGV[g]
      if kinds[g] == "r" then
        wanted[#wanted + 1] = ARGV[g] .. ":r"
      end
    end
  end
  local found = read_totals(record, totals, visitor, wanted)
  if order_id == "" then
    local count = 0
    local counted_day, counted = match(found.values["@day"] or "", "^(.-):(%d+)$")
    if counted_day == today then
      count = tonumber(counted)
    end
    if count >= daily_limit then
      return -3
    end
    set_total(found, "@day", today .. ":" .. (count + 1))
  end

  -- the counters this event changes: add and add_sums (above) fill these
  fields, deltas = {}, {}
  local order_goals = order_id ~= "" and {} or NONE
  for _, g in ipairs(positions) do
    local goal, kind = ARGV[g], kinds[g]
    value = tonumber(ARGV[g + 2])
    local raw = found.values[goal]
    local before = number(raw)
    if before == nil then
      return -6
    end
    local converted = 0
    high, low, capped_value, capped_high, capped_low = 0, 0, 0, 0, 0
    -- customer metrics (issue 21): a second event makes a repeat buyer, the squared counts
    -- give events per visitor a variance; refunded × total is the return rate's cross sum
    local repeated, count_squares, cross_high, cross_low = 0, 0, 0, 0
    if kind == "c" then
      repeated, count_squares = before == 1 and 1 or 0, 2 * before + 1
    elseif kind == "r" then
      local refunded = number(found.values[goal .. ":r"])
      if refunded == nil then
        return -6
      end
      cross_high, cross_low = product(refunded, value)
    end
    if kind == "c" then
      -- the visitor's number of events of this goal; the first one makes them converted
      converted = before == 0 and 1 or 0
      set_total(found, goal, format("%.0f", before + 1))
    else
      -- the visitor's total in cents (refunds lower it, so 0 does not mean "never")
      converted = raw and 0 or 1
      local after = before + value
      if abs(after) > total_limit or abs(before) > total_limit then
        return -5
      end
      set_total(found, goal, format("%.0f", after))
      local high_after, low_after = square(after)
      local high_before, low_before = square(before)
      high, low = high_after - high_before, low_after - low_before
      -- the capped total's change and its square's, two-part like q: a capped total is at most
      -- the cap, but the sum of capped squares over many visitors exceeds 2^53
      if abs(before) <= cap and abs(after) <= cap then
        capped_value, capped_high, capped_low = value, high, low  -- within the cap: the same
      else
        local capped_before, capped_after = capped(before, cap), capped(after, cap)
        capped_value = capped_after - capped_before
        local capped_high_after, capped_low_after = square(capped_after)
        local capped_high_before, capped_low_before = square(capped_before)
        capped_high = capped_high_after - capped_high_before
        capped_low = capped_low_after - capped_low_before
      end
      sum_prefix, sum_change, low_prefix, low_change, high_prefix, high_change =
        capped_changes(as_differences, value, high, low, capped_value, capped_high, capped_low)
      if order_id ~= "" then  -- what the order record keeps for refunds
        order_goals[#order_goals + 1] = goal .. "=" .. kind
        if cohorts[g] then
          -- refunds of a windowed goal count under the cohort until the visitor's deadline
          order_goals[#order_goals] = order_goals[#order_goals] .. "/" .. cohorts[g] .. "/"
            .. deadlines[g]
        end
      end
    end
    -- (a conversion goal's value, sums and squares are 0, a value goal's rp and nq: each adds
    -- only what it changes, so that a conversion, most events, does little work)
    local base = variant .. ":" .. goal
    local daily = base .. ":d:" .. day
    local cohort = cohorts[g] and base .. ":k:" .. cohorts[g]
    add("n:", base, 1)
    if converted ~= 0 then
      add("c:", base, converted)
      add("c:", daily, converted)
    end
    if kind == "c" then
      -- customer metrics (issue 21), also per cohort below
      add("rp:", base, repeated)
      add("nq:", base, count_squares)
    else
      -- sums and capped sums for the statistics: whole phase, day, cohort, segment values
      add_sums(base)
      add_sums(daily)
      -- the return rate's cross sums (issue 21), also per cohort below
      add("rt:", base, cross_low)
      add("rth:", base, cross_high)
    end
    if cohort then
      -- cohort counters (issue 21): matured figures are sums over cohorts whose windows closed
      add("c:", cohort, converted)
      add("n:", cohort, 1)
      if kind == "c" then
        add("rp:", cohort, repeated)
        add("nq:", cohort, count_squares)
      else
        add("rt:", cohort, cross_low)
        add("rth:", cohort, cross_high)
        add_sums(cohort)
      end
    end
    -- CUPED (issue 20): Σxy += x·Δy, y being converted (0/1) or the capped total, two-part
    -- as q (xyh·10^8 + xy), whole phase and day
    if covariate then
      local cross_high, cross_low = product(covariate, kind == "c" and converted or capped_value)
      add("xy:", base, cross_low)
      add("xyh:", base, cross_high)
      add("xy:", daily, cross_low)
      add("xyh:", daily, cross_high)
    end
    if kind ~= "c" or converted ~= 0 then
      for s = 1, segments do
        local segment = base .. ":" .. names[s] .. "=" .. (parts[1 + s] or "unknown")
        add("c:", segment, converted)
        if kind ~= "c" then
          add_sums(segment)
        end
      end
    end
  end
  return 1, fields, deltas, found, variant, parts, order_goals
end

-- The counters of the whole batch, read once each (HMGET of the fields not read yet) and kept
-- here as numbers as the events change them; written at the end (below). An event is
-- checked against what the events before it in the batch left, so all or nothing per event
-- holds as if each wrote its own; a field that is not a number this script can add to is kept
-- as false.
local current, changed = {}, {}

-- whether every change of an event keeps its counter exact; if so, the changes are made here
local function apply(fields, deltas)
  local unread, count = nil, #fields
  for f = 1, count do
    if current[fields[f]] == nil then
      unread = unread or {}
      unread[#unread + 1] = fields[f]
    end
  end
  if unread then
    local stored = call("HMGET", counts, unpack(unread))
    for u = 1, #unread do
      current[unread[u]] = number(stored[u]) or false
    end
  end
  -- each change in turn; at the first one that would leave a counter inexact, the ones made
  -- before it are taken back (exact: integers within 2^53), as are the marks of the counters
  -- it was the first to change, and nothing of the event counts
  local marked = #changed
  for f = 1, count do
    local field = fields[f]
    local old = current[field]
    if not old or abs(old + deltas[f]) > EXACT then
      for back = f - 1, 1, -1 do
        current[fields[back]] = current[fields[back]] - deltas[back]
      end
      for mark = #changed, marked + 1, -1 do
        changed[changed[mark]] = nil
        changed[mark] = nil
      end
      return false
    end
    current[field] = old + deltas[f]
    if not changed[field] then
      changed[#changed + 1] = field
      changed[field] = true
    end
  end
  return true
end

-- what the counted events write besides the counters, sent at the end: the idempotency
-- members (score, member, …), the visitors' records (latest per visitor) and the orders
local members_added, records_changed, changed_visitors, orders_added = {}, {}, {}, {}
local replies = {}
local i = 8 + segments
while i <= #ARGV do
  local visitor, member, score, day = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local order_id, gross, net, goals = ARGV[i + 4], ARGV[i + 5], ARGV[i + 6], tonumber(ARGV[i + 7])
  local first_goal = i + 8
  i = first_goal + 3 * goals
  local reply, fields, deltas, found, variant, parts, order_goals =
    plan(visitor, member, score, day, order_id, first_goal, i - 1)
  if reply == 1 and not apply(fields, deltas) then
    reply = -6
  end
  if reply == 1 then
    scores[member] = score
    members_added[#members_added + 1] = score
    members_added[#members_added + 1] = member
    if found.changed then
      records[visitor] = totals_record(found)
      if not records_changed[visitor] then
        changed_visitors[#changed_visitors + 1] = visitor
      end
      records_changed[visitor] = true
      drop_older_totals(totals, found)
    end
    if order_id ~= "" then
      local order = {visitor, variant, gross, net, "0", concat(order_goals, ",")}
      for s = 1, segments do
        order[#order + 1] = parts[1 + s] or "unknown"
      end
      recorded_orders[order_id] = true
      orders_added[#orders_added + 1] = order_id
      orders_added[#orders_added + 1] = concat(order, SEPARATOR)
    end
  end
  replies[#replies + 1] = reply
end
-- the changed counters, then the counted events' other writes: at most 500 fields or members
-- a command (write_all)
local values = {}
for _, field in ipairs(changed) do
  values[#values + 1] = field
  values[#values + 1] = format("%.0f", current[field])
end
write_all("HSET", counts, values)
write_all("ZADD", seen, members_added)
local record_fields = {}
for _, visitor in ipairs(changed_visitors) do
  record_fields[#record_fields + 1] = visitor
  record_fields[#record_fields + 1] = records[visitor]
end
write_all("HSET", enrolments, record_fields)
write_all("HSET", orders, orders_added)
return replies
