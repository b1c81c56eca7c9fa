-- wrk script for scripts/bench-webhook: POSTs BATCH firing alerts per
-- request, every alert with labels (and fingerprint) never sent before, so
-- that each one is new work for the receiver (no deduplication shortcut).
--
--   FORMAT=octrix  Alertmanager's webhook payload, for octrix's POST /api/v1/alerts
--   FORMAT=am      Alertmanager's own API body, for its POST /api/v2/alerts
--   BATCH=n        alerts per request (default 1)
--   TOKEN=...      sent as a bearer token when set

local format = os.getenv("FORMAT") or "octrix"
local batch = tonumber(os.getenv("BATCH") or "1")
local token = os.getenv("TOKEN")
local run = os.getenv("RUN") or tostring(os.time())
local threads = {}
local counter = 0


function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if token and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

local starts = "2026-11-23T09:06:35Z"

local function octrix_alert(id)
  return string.format(
    '{"status":"firing","labels":{"alertname":"BenchAlert","instance":"%s","service":"bench","severity":"warning"},' ..
    '"annotations":{"summary":"bench %s"},"startsAt":"%s","endsAt":"0001-01-01T00:00:00Z",' ..
    '"generatorURL":"http://bench","fingerprint":"%s"}', id, id, starts, id)
end

local function am_alert(id)
  return string.format(
    '{"labels":{"alertname":"BenchAlert","instance":"%s","service":"bench","severity":"warning"},' ..
    '"annotations":{"summary":"bench %s"},"startsAt":"%s","generatorURL":"http://bench"}', id, id, starts)
end

function request()
  local alerts = {}
  for i = 1, batch do
    counter = counter + 1
    local id = string.format("%s-%d-%d", run, thread_id or 0, counter)
    if format == "am" then
      alerts[i] = am_alert(id)
    else
      alerts[i] = octrix_alert(id)
    end
  end
  local list = "[" .. table.concat(alerts, ",") .. "]"
  local body
  if format == "am" then
    body = list
  else
    body = '{"receiver":"octrix","status":"firing","alerts":' .. list ..
      ',"groupLabels":{},"commonLabels":{},"commonAnnotations":{},' ..
      '"externalURL":"http://bench","version":"4","groupKey":"{}:{}","truncatedAlerts":0}'
  end
  return wrk.format(nil, nil, nil, body)
end

-- One line the bench script parses: requests, non-2xx, errors, latencies.
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d non2xx=%d connect=%d read=%d write=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, errors.status, errors.connect, errors.read, errors.write,
    errors.timeout, latency:percentile(50), latency:percentile(99), latency.max))
end
