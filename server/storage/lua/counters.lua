-- counters.lua: what record_event.lua and refund.lua share, put before each of them by
-- server.storage.store.LuaScript (after their #!lua line); not a script of its own.
--
-- Constants of the stored formats, the check of every key's type before the first write, and
-- exact integer arithmetic on counters (Lua numbers are doubles).

local SEPARATOR = "\31"
local DIGESTS = 16777216  -- 2^24: the low part of a score is the content digest
local EXACT = 9007199254740991  -- 2^53 - 1: Lua numbers (doubles) are exact integers up to here
local SQUARE_SPLIT = 10000  -- a total t = high·10^4 + low, so that t² splits into exact parts

-- the library functions the scripts call per event, as locals: a global costs two table
-- lookups on every call
local call, tonumber = redis.call, tonumber
local format, match, gmatch = string.format, string.match, string.gmatch
local find, sub = string.find, string.sub
local abs, floor, max, min, concat = math.abs, math.floor, math.max, math.min, table.concat

-- an error reply naming the first of KEYS whose type is not the expected one, or nil
local function wrong_type(expected)
  for k = 1, #KEYS do
    local found = call("TYPE", KEYS[k])["ok"]
    if found ~= "none" and found ~= expected[k] then
      return redis.error_reply("WRONGTYPE " .. KEYS[k] .. " is a " .. found)
    end
  end
  return nil
end

-- a stored integer, or nil when it is not a number that is an integer exact here ("1e3"
-- reads as 1000 and is written back as "1000+…": odd, but a number)
local function number(raw)
  local value = tonumber(raw or 0)
  if value == nil or value % 1 ~= 0 or abs(value) > EXACT then
    return nil
  end
  return value
end

-- t² as {high, low} with t² = high·10^8 + low, each part exact for |t| <= ~9·10^11
local function square(total)
  local t = abs(total)
  local high, low = floor(t / SQUARE_SPLIT), t % SQUARE_SPLIT
  local cross = 2 * high * low
  return high * high + floor(cross / SQUARE_SPLIT),
    (cross % SQUARE_SPLIT) * SQUARE_SPLIT + low * low
end

-- a·b as {high, low} with a·b = high·10^8 + low, each part exact for |a|, |b| <= ~9·10^11
-- (CUPED's Σxy, issue 20: a covariate of up to 10^8 hundredths times a total in cents; the
-- return rate's cross sums of refunded revenue and total, issue 21)
local function product(a, b)
  local x, y = abs(a), abs(b)
  local x_high, x_low = floor(x / SQUARE_SPLIT), x % SQUARE_SPLIT
  local y_high, y_low = floor(y / SQUARE_SPLIT), y % SQUARE_SPLIT
  local cross = x_high * y_low + x_low * y_high
  local high = x_high * y_high + floor(cross / SQUARE_SPLIT)
  local low = (cross % SQUARE_SPLIT) * SQUARE_SPLIT + x_low * y_low
  if (a < 0) ~= (b < 0) then
    return -high, -low
  end
  return high, low
end

-- the CUPED covariate (hundredths) of an enrolment record "…\30x:<value>…", or nil; the
-- record without its extras, each "\30<letter>:<value>" (storage/keys.py; issue 20)
local function covariate_of(record)
  local plain, extras = match(record, "^([^\30]*)(.*)$")
  return tonumber(match(extras, "\30x:(%-?%d+)")), plain
end

-- value cap (issue 13): a visitor's total winsorised to [-cap, cap] for the statistics
local function capped(total, cap)
  return max(-cap, min(cap, total))
end

-- The counter prefixes and changes of a value goal's capped sums as a phase keeps them (the
-- scripts' format flag, storage/keys.py): the differences from the uncapped sums, ds and
-- dqh·10^8 + dq, which do not change while a total stays within the cap; or, in phases begun
-- before that format, the capped sums cs and cqh·10^8 + cq. value, high and low are the
-- uncapped total's change and its square's (two parts); the capped_* ones the capped total's.
local function capped_changes(as_differences, value, high, low, capped_value, capped_high,
                              capped_low)
  if as_differences then
    return "ds:", capped_value - value, "dq:", capped_low - low, "dqh:", capped_high - high
  end
  return "cs:", capped_value, "cq:", capped_low, "cqh:", capped_high
end

-- A visitor's totals (issue 21) live in their enrolment record, as the extra
-- "\30g:<name>=<value>;<name>=<value>…": the names are "<goal>" (the visitor's total of the
-- goal), "<goal>:r" (a revenue goal's refunded net revenue) and "@day" ("<YYYY-MM-DD>:<n>",
-- today's conversions). Versions before kept one field per name in the totals hash,
-- "<pseudonym>:<name>": a name the record lacks is read from there (one HMGET, only for the
-- missing names, and only where that hash exists at all: a phase started by this version has
-- none), and such a field is deleted when the record takes its value (write_totals).
-- ``record`` nil (no enrolment record, e.g. a refund of an erased visitor's order): only the
-- totals hash is read and written, as before.
local has_older_totals = nil  -- whether the totals hash exists: asked once per script call

local function older_totals_exist(totals)
  if has_older_totals == nil then
    has_older_totals = call("EXISTS", totals) == 1
  end
  return has_older_totals
end

local function read_totals(record, totals, visitor, names)
  -- the record's totals, and the rest of it (what write_totals keeps), found by plain search
  local text, rest = "", record
  local start = record and find(record, "\30g:", 1, true)
  if start then
    local stop = find(record, "\30", start + 3, true)
    text = sub(record, start + 3, stop and stop - 1 or -1)
    rest = sub(record, 1, start - 1) .. (stop and sub(record, stop) or "")
  end
  local found = {values = {}, order = {}, older = {}, record = record, rest = rest}
  for entry in gmatch(text, "[^;]+") do
    local name, value = match(entry, "^([^=]+)=(.*)$")
    if name and found.values[name] == nil then
      found.order[#found.order + 1] = name
      found.values[name] = value
    end
  end
  local missing, fields = {}, {}
  for n = 1, older_totals_exist(totals) and #names or 0 do
    if found.values[names[n]] == nil then
      missing[#missing + 1] = names[n]
      fields[#fields + 1] = visitor .. ":" .. names[n]
    end
  end
  if #fields > 0 then
    local stored = call("HMGET", totals, unpack(fields))
    for m = 1, #missing do
      if stored[m] then
        found.older[#found.older + 1] = fields[m]
        found.order[#found.order + 1] = missing[m]
        found.values[missing[m]] = stored[m]
      end
    end
  end
  return found
end

-- change one value of a visitor's totals read by read_totals (written by write_totals)
local function set_total(found, name, value)
  if found.values[name] == nil then
    found.order[#found.order + 1] = name
  end
  found.values[name] = value
  found.changed = true
end

-- a visitor's enrolment record with the totals read by read_totals as they are now
local function totals_record(found)
  local entries = {}
  for n, name in ipairs(found.order) do
    entries[n] = name .. "=" .. found.values[name]
  end
  return found.rest .. "\30g:" .. concat(entries, ";")
end

-- delete the fields of the totals hash of versions before that read_totals found: their
-- values now live in the visitor's enrolment record
local function drop_older_totals(totals, found)
  if #found.older > 0 then
    call("HDEL", totals, unpack(found.older))
  end
end

-- write a visitor's changed totals into their enrolment record; the older fields go
local function write_totals(enrolments, totals, visitor, found)
  if not found.changed then
    return
  end
  if not found.record then
    local fields = {}
    for _, name in ipairs(found.order) do
      fields[#fields + 1] = visitor .. ":" .. name
      fields[#fields + 1] = found.values[name]
    end
    call("HSET", totals, unpack(fields))
    return
  end
  call("HSET", enrolments, visitor, totals_record(found))
  drop_older_totals(totals, found)
end
