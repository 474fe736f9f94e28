-- events.lua: wrk script that POSTs /v1/events with batches of conversions and orders.
-- Arguments (after "--" on the wrk command line):
--   1  events per batch
--   2  orders per batch (the rest are add_to_cart conversions)
--   3  visitor id prefix of enrolled visitors (the bench's returning pool)
--   4  pool size: visitors are <prefix>-t0-<0..pool-1>
--   5  ingest key (X-Splitwerk-Ingest-Key), needed for orders
--   6  hex run id, 8 digits; with the thread and a counter it makes every event id unique

local batch, orders, prefix, pool, run_id
local headers
local counter = 0
local threads_created = 0

-- done() prints the figures, with_churn() turns connections over; wrk runs with this folder
-- as its working directory.
dofile("report.lua")
dofile("churn.lua")

function setup(thread)
  thread:set("thread_id", threads_created)
  threads_created = threads_created + 1
end

function init(args)
  batch = tonumber(args[1])
  orders = tonumber(args[2])
  prefix = args[3] .. "-t0-"
  pool = tonumber(args[4])
  headers = {["Content-Type"] = "application/json", ["X-Splitwerk-Ingest-Key"] = args[5]}
  run_id = args[6]
end

-- A UUID-shaped id (version 4 layout) that is unique per run, thread and event.
local function event_id()
  counter = counter + 1
  return string.format("%s-%04x-4000-8000-%012x", run_id, thread_id or 0, counter)
end

function request()
  local items = {}
  for i = 1, batch do
    local visitor = prefix .. tostring((counter * 7 + i) % pool)
    if i <= orders then
      items[i] = string.format(
        '{"type": "order", "id": "%s", "visitor": "%s", "order_id": "o-%s-%d", ' ..
        '"revenue": "49.90", "cost_of_goods": "20.00", "shipping": "4.90", ' ..
        '"payment_fee": "0.95", "tax": "7.97"}',
        event_id(), visitor, run_id, counter)
    else
      items[i] = string.format(
        '{"type": "conversion", "id": "%s", "visitor": "%s", "goal": "add_to_cart"}',
        event_id(), visitor)
    end
  end
  local body = '{"events": [' .. table.concat(items, ", ") .. "]}"
  return wrk.format("POST", "/v1/events", with_churn(headers), body)
end
