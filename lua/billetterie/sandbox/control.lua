-- billetterie.sandbox.control: what the sandbox adds around the emulated web
-- services. Every request to a vendor path goes through the fault rules and
-- into the request journal; `/` is the dashboard and `/_sandbox/...` the
-- control endpoints (never a vendor path: the vendor's are ws_*):
--
--   GET    /_sandbox/faults          the active fault rules
--   POST   /_sandbox/faults          adds rules (JSON, or form fields `fault`);
--                                    ?replace=1 replaces the whole list
--   DELETE /_sandbox/faults[/ID]     removes every rule, or rule ID
--   GET    /_sandbox/requests        the journal (?limit=N&since=ID&path=ws_x)
--   DELETE /_sandbox/requests        empties the journal
--   POST   /_sandbox/reset           as started: data back to the seed, fault
--                                    rules back to --fault, journal emptied
--
-- Other /_sandbox/ paths are routes of the groups (services.lua), exempt
-- from faults and journal like these.

local httpd = require "billetterie.httpd"
local codec = require "billetterie.sandbox.codec"
local dashboard = require "billetterie.sandbox.dashboard"
local faultsmod = require "billetterie.sandbox.faults"
local services = require "billetterie.sandbox.services"

local M = {}

local now = httpd.time

local log_error = services.log_error

-- The rules a POST /_sandbox/faults carries: a JSON body (a rule, a list of
-- rules, or { faults = list }), else the `fault` form or query fields.
-- -> list, or nil, err
local function posted_rules(req)
  if req.body and req.body:find("%S") then
    local v = codec.decode(req.body)
    if v == nil then return nil, "the body is not JSON" end
    if type(v) == "table" and v.faults ~= nil then v = v.faults end
    if type(v) == "table" and (#v > 0 or next(v) == nil) then return v end
    return { v }
  end
  local list = {}
  for _, kv in ipairs(req.params) do
    if kv[1] == "fault" then list[#list + 1] = kv[2] end
  end
  return list
end

local function param(req, name)
  for i = #req.params, 1, -1 do
    if req.params[i][1] == name then return req.params[i][2] end
  end
end

local function number(v) return v and tonumber(v) and math.tointeger(tonumber(v)) end

-- Each endpoint: method -> function(ctx, req, id) -> status, table.
local ENDPOINTS = {
  ["/_sandbox/faults"] = {
    GET = function(ctx) return 200, { faults = ctx.faults:list() } end,
    POST = function(ctx, req)
      local list, err = posted_rules(req)
      local ok
      if list then ok, err = ctx.faults:add(list, param(req, "replace") == "1") end
      if not ok then return 400, nil, err end
      return 200, { faults = ctx.faults:list() }
    end,
    DELETE = function(ctx, _, id, sub)
      if sub then -- /_sandbox/faults/ID; an id that is no rule's (or no id) is not all of them
        if not (id and ctx.faults:remove(id)) then return 404, nil, "no fault rule '" .. sub .. "'" end
      else
        ctx.faults:clear()
      end
      return 200, { faults = ctx.faults:list() }
    end,
  },
  ["/_sandbox/requests"] = {
    GET = function(ctx, req)
      if not ctx.journal:enabled() then return 200, { requests = codec.array({}) } end
      local rows = ctx.journal:list { limit = number(param(req, "limit")),
        since = number(param(req, "since")), path = param(req, "path") }
      return 200, { requests = codec.array(rows) }
    end,
    DELETE = function(ctx)
      if ctx.journal:enabled() then ctx.journal:clear() end
      return 200, { requests = codec.array({}) }
    end,
  },
  ["/_sandbox/reset"] = {
    POST = function(ctx)
      ctx.reset()
      return 200, { reset = true }
    end,
  },
}

local function allowed(methods)
  local list = {}
  for m in pairs(methods) do list[#list + 1] = m end
  table.sort(list)
  return table.concat(list, ", ")
end

local HTML = "text/html; charset=utf-8"

local function control(ctx, req)
  local rid = ctx.svc.request_id(req)
  if req.path == "/" then
    if req.method ~= "GET" and req.method ~= "HEAD" then
      return services.http_error(405, rid, "the dashboard is read-only", { Allow = "GET" })
    end
    local ok, page = pcall(dashboard.render, ctx.db, ctx.faults, ctx.journal, { url = ctx.url })
    if not ok then return services.http_error(500, rid, "dashboard: " .. tostring(page)) end
    return 200, { ["Content-Type"] = HTML, ["X-Request-Id"] = rid, ["Cache-Control"] = "no-store" }, page
  end
  local path, id = req.path:gsub("/$", ""), nil
  -- /_sandbox/faults/ID: a rule, DELETE only; ID a whole number in range
  -- (else no rule has it: 404, never "every rule"). Matched before the
  -- trailing "/" is dropped: /_sandbox/faults/ is an empty ID, not the list.
  local base, sub = req.path:match("^(/_sandbox/faults)/([^/]*)/?$")
  if base then
    path = base
    id = sub:find("^%d+$") and math.tointeger(tonumber(sub)) or nil
  end
  local methods = ENDPOINTS[path]
  -- other /_sandbox/ paths are the groups' own (purchases' /_sandbox/notify):
  -- served as routes, but without faults nor journal; unknown ones get 404
  if not methods then return ctx.svc.handle(req) end
  local fn = methods[req.method == "HEAD" and "GET" or req.method]
  if sub and req.method ~= "DELETE" then
    return services.http_error(405, rid, "use DELETE", { Allow = "DELETE" })
  end
  if not fn then
    return services.http_error(405, rid, "use " .. allowed(methods), { Allow = allowed(methods) })
  end
  local ok, status, body, err = pcall(fn, ctx, req, id, sub)
  if not ok then
    log_error(rid, req.path, status)
    return services.http_error(500, rid, "internal error")
  end
  if status ~= 200 then return services.http_error(status, rid, err) end
  return services.answer(200, rid, body)
end

-- A vendor request: the fault rules, then the service (unless a rule
-- answers instead). -> status, headers, body, delivery, plan
local function serve(ctx, req)
  local plan = ctx.faults:pick((req.path:gsub("^/", ""):gsub("/$", "")))
  local status, headers, body
  if plan and faultsmod.short_circuits(plan) then
    status, headers, body = faultsmod.answer(plan, ctx.svc.request_id(req))
    if plan.effect.effect == "maintenance" then req.code = 7 end
  else
    status, headers, body = ctx.svc.handle(req)
  end
  return status, headers, body, plan and faultsmod.delivery(plan, body), plan
end

-- The handler for billetterie.httpd. ctx: { svc (services.new), db, faults
-- (faults.new), journal (journal.new), url, reset = function }.
-- With the journal on, a request's writes and its journal row are one
-- transaction (the services' own transactions become savepoints of it):
-- one commit per request instead of two, and no answer is sent for writes
-- that were not committed.
function M.handler(ctx)
  local db, journal = ctx.db, ctx.journal
  return function(req)
    local path = req.path
    if path == "/" or path:find("^/_sandbox/") then return control(ctx, req) end
    if journal.max <= 0 then return serve(ctx, req) end
    local t0 = now()
    local status, headers, body, delivery, plan
    local ok, err = pcall(db.tx, db, function()
      status, headers, body, delivery, plan = serve(ctx, req)
      -- what httpd would refuse (and answer 500 for) is answered 500 here,
      -- so that the journal records the status really sent
      local sendable, refusal = httpd.check(status, headers, body, delivery)
      if not sendable then
        log_error(ctx.svc.request_id(req), path, refusal)
        status, headers, body = services.http_error(500, ctx.svc.request_id(req), "internal error")
        delivery = nil
      end
      -- a journal failure undoes its own row only: the answer still goes out
      local logged, why = pcall(journal.record, journal, {
        at = t0, request_id = headers["X-Request-Id"], method = req.method, path = path,
        params = req.params, status = not (delivery and delivery.drop) and status or nil,
        -- the delay applied (faults.delivery caps the rules' sum), not asked
        code = req.code, duration_ms = (now() - t0) * 1000, latency_ms = delivery and delivery.delay,
        fault = plan and plan.text,
      })
      if not logged then log_error(headers["X-Request-Id"], "journal", why) end
    end)
    if not ok then -- the commit failed: what the service answered did not happen
      local rid = ctx.svc.request_id(req)
      log_error(rid, path, err)
      return services.http_error(500, rid, "internal error")
    end
    return status, headers, body, delivery
  end
end

return M
