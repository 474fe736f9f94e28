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
-- Returns: {1, index} newly enrolled; {0, index} already enrolled (the stored variant);
--          {-1, -1} not enrolled and no record.

local SEPARATOR = "\31"  -- ASCII unit separator between the variant index and segment values

local existing = redis.call("HGET", KEYS[1], ARGV[1])
if existing then
  local index = string.match(existing, "^(%d+)")
  return {0, tonumber(index)}
end
local variant = ARGV[2]
if variant == "" then
  return {-1, -1}
end

local segments = #KEYS - 2
local limit = tonumber(ARGV[4])
local record = variant
redis.call("HINCRBY", KEYS[2], "e:" .. variant, 1)
redis.call("HINCRBY", KEYS[2], "e:" .. variant .. ":d:" .. ARGV[3], 1)
for i = 1, segments do
  local attribute = ARGV[4 + i]
  local value = ARGV[4 + segments + i]
  -- first touch wins; a value beyond the cap is "other", so a flood of values cannot grow Redis
  if redis.call("SISMEMBER", KEYS[2 + i], value) == 0 then
    if redis.call("SCARD", KEYS[2 + i]) < limit then
      redis.call("SADD", KEYS[2 + i], value)
    else
      value = "other"
    end
  end
  record = record .. SEPARATOR .. value
  redis.call("HINCRBY", KEYS[2], "e:" .. variant .. ":" .. attribute .. "=" .. value, 1)
end
redis.call("HSET", KEYS[1], ARGV[1], record)
return {1, tonumber(variant)}
