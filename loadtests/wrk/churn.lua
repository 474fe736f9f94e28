-- churn.lua: connection turnover for the bench's wrk scripts, loaded by dofile("churn.lua").
--
-- wrk opens all its connections in one burst and keeps them for the whole run. gunicorn's
-- gthread workers accept greedily, so one worker can take all 16 and the run then measures one
-- core instead of two: the same bare app gave 2,259 req/s in one run and 6,500 in the next.
-- Real clients turn connections over (browsers, keep-alive timeouts, proxies that cap requests
-- per connection), and a worker with less to do is the one that accepts the new ones. So one
-- request in CLOSE_EVERY asks the server to close its connection; wrk then reconnects.

CLOSE_EVERY = 100  -- requests per connection turnover, counted over all of a thread's requests

local churn_sent = 0

-- The headers for the next request: `headers` itself, or a copy that says "Connection: close".
function with_churn(headers)
  churn_sent = churn_sent + 1
  if churn_sent % CLOSE_EVERY ~= 0 then
    return headers
  end
  local closing = {}
  for name, value in pairs(headers) do
    closing[name] = value
  end
  closing["Connection"] = "close"
  return closing
end
