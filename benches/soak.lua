-- wrk script for benches/soak.sh: a mix of proxied requests, counted by status.
-- Reads SOAK_TOKEN (an admin access token) and SOAK_DELAY_MS (pause per request and
-- connection, which keeps the load modest) from the environment. At the end prints one
-- line: "status:count ..." for every status seen, then the socket errors.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
  local auth = { ["Authorization"] = "Bearer " .. os.getenv("SOAK_TOKEN") }
  local json = { ["Authorization"] = auth["Authorization"], ["Content-Type"] = "application/json" }
  local bad = { ["Authorization"] = "Bearer not.a.token" }
  -- Ten requests in turn: protected GETs mostly, a POST with a body, an admin-only
  -- route, public ones, and one with a malformed token (401 expected). No HEAD: wrk would
  -- wait for the body its Content-Length announces and stall the connection.
  reqs = {
    wrk.format("GET", "/api/items/1", auth),
    wrk.format("GET", "/api/items?page=2", auth),
    wrk.format("POST", "/api/items", json, '{"name":"soak","qty":3}'),
    wrk.format("GET", "/api/users/me", auth),
    wrk.format("GET", "/admin/stats", auth),
    wrk.format("GET", "/public/index.html"),
    wrk.format("GET", "/api/items/2", auth),
    wrk.format("GET", "/public/logo.png"),
    wrk.format("GET", "/api/orders/7", auth),
    wrk.format("GET", "/api/items/3", bad),
  }
  i = 0
  pause = tonumber(os.getenv("SOAK_DELAY_MS") or "0")
end

function request()
  i = i % #reqs + 1
  return reqs[i]
end

function delay()
  return pause
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("counts")) do
      total[status] = (total[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(total) do
    table.insert(parts, status .. ":" .. n)
  end
  table.sort(parts)
  local e = summary.errors
  io.write(string.format("STATUS %s ERRORS connect:%d read:%d write:%d timeout:%d P99_US %d\n",
    table.concat(parts, " "), e.connect, e.read, e.write, e.timeout, latency:percentile(99)))
end
