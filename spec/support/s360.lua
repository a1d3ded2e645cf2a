-- spec/support/s360.lua: what the S-360 client's specs share: a recording
-- transport (it stands for the network only: the answers a real server may
-- send and the sandbox does not) and a client of it.
local s360 = require "billetterie.s360"

local M = {}

M.SECRET = "operator-secret-42"   -- the operator password of M.client

-- recorder(default [, clock]) -> a transport recording each request (url,
-- body, headers by lower-case name, the clock's time when it left) and
-- playing back t.queue's answers, then `default` (each a list of the
-- transport's results: status, body, content_type, errkind, errmsg, ...).
function M.recorder(default, clock)
  local t = { sent = {}, queue = {} }
  function t:request(req)
    local headers = {}
    for _, h in ipairs(req.headers or {}) do
      local k, v = h:match("^([^:]+):%s*(.*)$")
      if k then headers[k:lower()] = v end
    end
    self.sent[#self.sent + 1] = { url = req.url, body = req.body, headers = headers, at = clock and clock() }
    local a = table.remove(self.queue, 1) or default
    return a[1], a[2], a[3], a[4], a[5], a[6], a[7]
  end
  return t
end

-- client(protocol, transport [, extra options]) -> an s360 client of MOSA's
-- demo host: no cache, no pacing, no wait, no retry unless `extra` says so.
function M.client(protocol, t, extra)
  local o = { institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = M.SECRET,
              protocol = protocol, transport = t, cache = false, rate_limit = false,
              sleep = function() end, retries = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return s360.new(o)
end

-- sandbox_client(sb, protocol [, extra]) -> an s360 client of a real
-- sandbox's DEMO institution (its operator DEMO_B2C), no cache, no pacing,
-- no retry unless `extra` says so.
M.SANDBOX_PASSWORD = "s360-sandbox-secret"   -- the sandbox's operators
function M.sandbox_client(sb, protocol, extra)
  local o = { url = sb.url .. "demo", institution = "DEMO", operator = "DEMO_B2C", password = M.SANDBOX_PASSWORD,
              protocol = protocol, rate_limit = false, retries = 0, cache = false }
  for k, v in pairs(extra or {}) do o[k] = v end
  return s360.new(o)
end

return M
