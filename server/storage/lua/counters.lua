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

-- a·b as {high, low} with a·b = high·10^8 + low, each part exact for |a|, |b| <= ~9·10^11
-- (CUPED's Σxy, issue 20: a covariate of up to 10^8 hundredths times a total in cents; the
-- return rate's cross sums of refunded revenue and total, issue 21)
local function product(a, b)
  local x, y = math.abs(a), math.abs(b)
  local x_high, x_low = math.floor(x / SQUARE_SPLIT), x % SQUARE_SPLIT
  local y_high, y_low = math.floor(y / SQUARE_SPLIT), y % SQUARE_SPLIT
  local cross = x_high * y_low + x_low * y_high
  local high = x_high * y_high + math.floor(cross / SQUARE_SPLIT)
  local low = (cross % SQUARE_SPLIT) * SQUARE_SPLIT + x_low * y_low
  if (a < 0) ~= (b < 0) then
    return -high, -low
  end
  return high, low
end

-- the CUPED covariate (hundredths) of an enrolment record "…\30x:<value>…", or nil; the
-- record without its extras, each "\30<letter>:<value>" (storage/keys.py; issue 20)
local function covariate_of(record)
  local plain, extras = string.match(record, "^([^\30]*)(.*)$")
  return tonumber(string.match(extras, "\30x:(%-?%d+)")), plain
end

-- value cap (issue 13): a visitor's total winsorised to [-cap, cap] for the statistics
local function capped(total, cap)
  return math.max(-cap, math.min(cap, total))
end
