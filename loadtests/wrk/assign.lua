-- assign.lua: wrk script that POSTs /v1/assign, for fresh or returning visitors.
-- Arguments (after "--" on the wrk command line):
--   1  mode: "fresh" (a new visitor id per request) or "returning" (ids cycle through a pool)
--   2  experiment keys, comma-separated (each request names all of them)
--   3  visitor id prefix; a new one per run keeps fresh visitors fresh in a reused Redis
--   4  pool size for "returning"; ignored for "fresh"
--   5  number of the first visitor (optional, 0): a second warm-up continues the first
-- Every visitor keeps one traffic source and device, chosen from their number, so a returning
-- visitor sends the same attributes each time.

local mode, prefix, pool, experiments_json
local counter = 0
local threads_created = 0

-- Traffic sources in the proportions of a typical shop: search and social lead.
local SOURCES = {
  "search", "search", "search", "search", "search", "facebook", "facebook", "facebook",
  "instagram", "instagram", "direct", "direct", "direct", "newsletter", "youtube",
}
local DEVICES = {"mobile", "mobile", "mobile", "desktop", "desktop", "tablet"}
-- A real browser's User-Agent, so that bot detection runs as it does for shop pages.
local HEADERS = {
  ["Content-Type"] = "application/json",
  ["User-Agent"] = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    .. "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
}

-- done() prints the figures, with_churn() turns connections over; wrk runs with this folder
-- as its working directory.
dofile("report.lua")
dofile("churn.lua")

function setup(thread)
  -- each wrk thread runs its own Lua state; a thread id keeps their visitor ids apart
  thread:set("thread_id", threads_created)
  threads_created = threads_created + 1
end

function init(args)
  mode = args[1]
  local keys = {}
  for key in string.gmatch(args[2], "[^,]+") do
    keys[#keys + 1] = '"' .. key .. '"'
  end
  experiments_json = "[" .. table.concat(keys, ",") .. "]"
  prefix = args[3] .. "-t" .. tostring(thread_id or 0) .. "-"
  pool = tonumber(args[4])
  counter = tonumber(args[5] or "0")
end

function request()
  counter = counter + 1
  local number = counter
  if mode == "returning" then
    number = counter % pool
  end
  local body = string.format(
    '{"visitor": "%s%d", "experiments": %s, "attributes": {"source": "%s", "device": "%s"}}',
    prefix, number, experiments_json,
    SOURCES[number % #SOURCES + 1], DEVICES[number % #DEVICES + 1])
  return wrk.format("POST", "/v1/assign", with_churn(HEADERS), body)
end
