#!lua
-- enrol.lua: record a visitor's first enrolment in one experiment phase and count it once.
-- A visitor already recorded keeps the recorded variant (sticky): nothing is counted again.
--
-- KEYS[1]  sw:{exp}:p<phase>:enrolments        hash  pseudonym -> record
-- KEYS[2]  sw:{exp}:p<phase>:counts            hash  aggregate counters
-- KEYS[3..2+n]  sw:{exp}:p<phase>:segment-values:<attr>  set per segment attribute, in order
-- ARGV[1]  pseudonymous visitor id
-- ARGV[2]  variant index to enrol with, or "" to only look up the existing record
-- ARGV[3]  UTC day, YYYY-MM-DD
-- ARGV[4]  distinct values allowed per segment attribute; later values count as "other"
-- ARGV[5..4+n]      segment attribute names (same order as KEYS[3..])
-- ARGV[5+n..4+2n]   this visitor's value of each attribute (already normalised)
-- ARGV[5+2n]        per-visitor extras appended to the record as they are ("\30t:<unix
--                   minute>" for windowed goals, storage/keys.py); "" or absent for none
-- ARGV[6+2n]        the visitor's CUPED covariate in hundredths, or "" (none; issue 20)
-- Uses square from counters.lua, which LuaScript puts before this file.
-- Returns: {1, index} newly enrolled; {0, index} already enrolled (the stored variant);
--          {-1, -1} not enrolled and no record; an error (nothing written) when a key has
--          the wrong type or a counter is not an integer that stays exact.

local SEPARATOR = "\31"  -- ASCII unit separator between the variant index and segment values
local EXACT = 9007199254740991  -- 2^53 - 1: Lua numbers (doubles) are exact integers up to here

local existing = redis.call("HGET", KEYS[1], ARGV[1])
if existing then
  local index = string.match(existing, "^(%d+)")
  return {0, tonumber(index)}
end
local variant = ARGV[2]
if variant == "" then
  return {-1, -1}
end

-- All or nothing: key types, the segment value sets and the counters are read and checked
-- before the first write, so a failure (an odd stored value) writes nothing. (KEYS[1] has
-- already been read: a wrong type there failed the HGET.)
for k = 2, #KEYS do
  local found = redis.call("TYPE", KEYS[k])["ok"]
  local expected = k == 2 and "hash" or "set"
  if found ~= "none" and found ~= expected then
    return redis.error_reply("WRONGTYPE " .. KEYS[k] .. " is a " .. found)
  end
end
local segments = #KEYS - 2
local limit = tonumber(ARGV[4])
local record = variant
local fields = {"e:" .. variant, "e:" .. variant .. ":d:" .. ARGV[3]}
local new_values = {}
for i = 1, segments do
  local attribute = ARGV[4 + i]
  local value = ARGV[4 + segments + i]
  -- first touch wins; a value beyond the cap is "other", so a flood of values cannot grow Redis
  if redis.call("SISMEMBER", KEYS[2 + i], value) == 0 then
    if redis.call("SCARD", KEYS[2 + i]) < limit then
      new_values[i] = value
    else
      value = "other"
    end
  end
  record = record .. SEPARATOR .. value
  fields[#fields + 1] = "e:" .. variant .. ":" .. attribute .. "=" .. value
end
local steps = {}  -- what each field changes by; 1 when absent

-- CUPED covariate (issue 20): kept in the record as "\30x:<hundredths>" and summed per
-- variant, whole phase and day: xn visitors with one, xs Σx, xqh·10^8 + xq Σx² (two-part as q)
local covariate = tonumber(ARGV[6 + 2 * segments] or "")
if covariate then
  record = record .. "\30x:" .. string.format("%.0f", covariate)
  local high, low = square(covariate)
  for _, suffix in ipairs({"", ":d:" .. ARGV[3]}) do
    for name, step in pairs({xn = 1, xs = covariate, xqh = high, xq = low}) do
      if step ~= 0 then
        fields[#fields + 1] = name .. ":" .. variant .. suffix
        steps[#fields] = step
      end
    end
  end
end

local current = redis.call("HMGET", KEYS[2], unpack(fields))
local counters = {}
for f = 1, #fields do
  local value = tonumber(current[f] or 0)
  local after = value and value + (steps[f] or 1)
  if after == nil or value % 1 ~= 0 or math.abs(after) >= EXACT then
    return redis.error_reply("ERR counter " .. fields[f] .. " of " .. KEYS[2] .. " is not a count")
  end
  counters[#counters + 1] = fields[f]
  counters[#counters + 1] = string.format("%.0f", after)
end

-- every check passed: from here on, only writes
for i = 1, segments do
  if new_values[i] then
    redis.call("SADD", KEYS[2 + i], new_values[i])
  end
end
redis.call("HSET", KEYS[2], unpack(counters))
-- per-visitor extras (issue 21): the enrolment time of windowed goals
record = record .. (ARGV[5 + 2 * segments] or "")
redis.call("HSET", KEYS[1], ARGV[1], record)
return {1, tonumber(variant)}
