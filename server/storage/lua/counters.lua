-- counters.lua: what record_event.lua and refund.lua share, put before each of them by
-- server.storage.store.LuaScript (after their #!lua line); not a script of its own.
--
-- Constants of the stored formats, the check of every key's type before the first write, and
-- exact integer arithmetic on counters (Lua numbers are doubles).

local SEPARATOR = "\31"
local DIGESTS = 16777216  -- 2^24: the low part of a score is the content digest
local EXACT = 9007199254740991  -- 2^53 - 1: Lua numbers (doubles) are exact integers up to here
local SQUARE_SPLIT = 10000  -- a total t = high·10^4 + low, so that t² splits into exact parts

-- an error reply naming the first of KEYS whose type is not the expected one, or nil
local function wrong_type(expected)
  for k = 1, #KEYS do
    local found = redis.call("TYPE", KEYS[k])["ok"]
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
  if value == nil or value % 1 ~= 0 or math.abs(value) > EXACT then
    return nil
  end
  return value
end

-- t² as {high, low} with t² = high·10^8 + low, each part exact for |t| <= ~9·10^11
local function square(total)
  local t = math.abs(total)
  local high, low = math.floor(t / SQUARE_SPLIT), t % SQUARE_SPLIT
  local cross = 2 * high * low
  return high * high + math.floor(cross / SQUARE_SPLIT),
    (cross % SQUARE_SPLIT) * SQUARE_SPLIT + low * low
end

-- value cap (issue 13): a visitor's total winsorised to [-cap, cap] for the statistics
local function capped(total, cap)
  return math.max(-cap, math.min(cap, total))
end

-- a·b as {high, low} with a·b = high·10^8 + low, like square (issue 21: the cross sums of a
-- visitor's refunded revenue and total, for the return rate's variance)
local function product(a, b)
  local sign = ((a < 0) ~= (b < 0)) and -1 or 1
  a, b = math.abs(a), math.abs(b)
  local a_high, a_low = math.floor(a / SQUARE_SPLIT), a % SQUARE_SPLIT
  local b_high, b_low = math.floor(b / SQUARE_SPLIT), b % SQUARE_SPLIT
  local cross = a_high * b_low + a_low * b_high
  return sign * (a_high * b_high + math.floor(cross / SQUARE_SPLIT)),
    sign * ((cross % SQUARE_SPLIT) * SQUARE_SPLIT + a_low * b_low)
end
