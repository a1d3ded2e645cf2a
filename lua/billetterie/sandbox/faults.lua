-- billetterie.sandbox.faults: injected failures, so that a client's error
-- handling can be tested against the sandbox (the GUIDE's "fault rules per
-- operation" of stripe-mock, moto, LocalStack).
--
-- A rule is written TARGET:EFFECT[,EFFECT...][,count=N][,probability=P], the
-- same text on the command line (--fault) and at POST /_sandbox/faults:
--
--   ws_idsession:latency=200            every ws_idsession answer 200 ms late
--   *:status=503,count=2                the next two calls, whatever the service
--   ws_info_*:maintenance,probability=0.1
--   *:status=429,retry_after=2          a refusal with Retry-After: 2 (seconds)
--
-- TARGET is a web service name, `*`, or a glob with `*` (ws_info_*). The
-- effects are the EFFECTS table below; `latency` combines with any one other.
-- Every rule whose target matches and whose probability draw succeeds fires
-- (and uses one of its count); their latencies add up, and the first of them
-- (in the order the rules were given) that has another effect decides it.
-- A rule whose count is used up is removed.

local codec = require "billetterie.sandbox.codec"
local services = require "billetterie.sandbox.services"

local M = {}

local REASONS = { [200] = "Maintenance", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout" }

local function integer(v, lo, hi)
  local n = type(v) == "string" and v:match("^%d+$") and math.tointeger(tonumber(v))
  return n and n >= lo and n <= hi and n or nil
end

local MAX_MS = 600000 -- the HTTP module's limit on a delay or a trickle interval

-- Each effect: how to read its value (nil when the text is wrong, with the
-- expected form as second result), and whether the service still runs.
-- short = true: the answer replaces the service's (it never sees the
-- request); otherwise the service answers and the delivery is altered.
local EFFECTS = {
  latency = { short = false, parse = function(v) return integer(v, 0, MAX_MS), "milliseconds" end },
  maintenance = { short = true, parse = function(v) return v == nil or nil, "no value" end },
  status = { short = true, parse = function(v) return integer(v, 400, 599), "an HTTP status from 400 to 599" end },
  html = { short = true, parse = function(v)
    if v == nil then return 200 end
    return integer(v, 200, 599), "an HTTP status (default 200)"
  end },
  truncate = { short = false, parse = function(v)
    if v == nil then return "half" end
    return integer(v, 0, math.maxinteger), "the number of bytes sent (default half the body)"
  end },
  drop = { short = true, parse = function(v) return v == nil or nil, "no value" end },
  trickle = { short = false, parse = function(v)
    if v == nil then return { 1, 100 } end
    local b, ms = v:match("^(%d+)/(%d+)$")
    b, ms = integer(b, 1, 1073741824), integer(ms, 1, MAX_MS)
    return b and ms and { b, ms } or nil, "BYTES/MS, e.g. 16/100 (default 1/100)"
  end },
}
-- The order rules are printed back in.
local EFFECT_ORDER = { "latency", "maintenance", "status", "html", "truncate", "drop", "trickle" }

-- Longest rule text accepted: a rule is a short line, and every check
-- below stays cheap on what is let in.
M.MAX_RULE = 1024

-- A target as the pieces between its stars ("ws_*_x" -> {"ws_", "_x"}; no
-- star: one piece, matched whole). Matched with plain finds, left to right:
-- one pass per piece, never the backtracking of a Lua pattern.
local function glob_pieces(target)
  local pieces = {}
  for piece in (target .. "*"):gmatch("([^*]*)%*") do pieces[#pieces + 1] = piece end
  return pieces
end

local function glob_match(pieces, name)
  local n = #pieces
  if n == 1 then return name == pieces[1] end
  local first, last = pieces[1], pieces[n]
  if #name < #first + #last or name:sub(1, #first) ~= first
      or (last ~= "" and name:sub(-#last) ~= last) then
    return false
  end
  -- the middle pieces, each at its leftmost place between the two ends
  local pos, stop = #first + 1, #name - #last
  for i = 2, n - 1 do
    local a, b = name:find(pieces[i], pos, true)
    if not a or b > stop then return false end
    pos = b + 1
  end
  return true
end

-- Surrounding white space off, in linear time (a pattern like "(.-)%s*$"
-- is quadratic on a long run of spaces).
local function trim(s)
  local a = s:find("%S")
  if not a then return "" end
  return s:sub(a, (s:find("%S%s*$")))
end

-- The canonical text of a rule (what GET /_sandbox/faults shows).
local function rule_text(r)
  local parts = {}
  for _, name in ipairs(EFFECT_ORDER) do
    local v = r[name]
    if name == "latency" and v then
      parts[#parts + 1] = "latency=" .. v
    elseif v and r.effect == name then
      if v == true or (name == "html" and v == 200) or v == "half" then
        parts[#parts + 1] = name
      elseif name == "trickle" then
        parts[#parts + 1] = ("trickle=%d/%d"):format(v[1], v[2])
      else
        parts[#parts + 1] = name .. "=" .. v
      end
    end
  end
  if r.retry_after then parts[#parts + 1] = "retry_after=" .. r.retry_after end
  if r.count then parts[#parts + 1] = "count=" .. r.count end
  if r.probability then parts[#parts + 1] = "probability=" .. r.probability end
  return r.target .. ":" .. table.concat(parts, ",")
end

-- "TARGET:EFFECT,..." -> rule, or nil, err
function M.parse(text)
  if type(text) ~= "string" then return nil, "a fault rule is a string" end
  if #text > M.MAX_RULE then
    return nil, ("a fault rule has at most %d characters (this one has %d)"):format(M.MAX_RULE, #text)
  end
  local colon = text:find(":", 1, true)
  local target = colon and trim(text:sub(1, colon - 1))
  if not target or not target:find("^[%w_%*]+$") then
    return nil, ("%q: TARGET:EFFECT[,EFFECT...] expected (TARGET a web service name or a glob with *)"):format(text)
  end
  local r = { target = target, pieces = glob_pieces(target) }
  local list, items, from = text:sub(colon + 1), {}, 1
  while true do -- split on commas with plain finds
    local comma = list:find(",", from, true)
    items[#items + 1] = trim(list:sub(from, (comma or 0) - 1))
    if not comma then break end
    from = comma + 1
  end
  for _, item in ipairs(items) do
    local name, value = item:match("^([%w_]+)%s*=%s*(.*)$")
    name = name or item
    local effect = EFFECTS[name]
    if name == "count" then
      r.count = integer(value, 1, math.maxinteger)
      if not r.count then return nil, ("%q: count must be a whole number >= 1"):format(text) end
    elseif name == "retry_after" then   -- a header of the refusal (status or html)
      r.retry_after = integer(value, 0, 86400)
      if not r.retry_after then return nil, ("%q: retry_after must be whole seconds from 0 to 86400"):format(text) end
    elseif name == "probability" then
      r.probability = value and value:match("^[%d.]+$") and tonumber(value)
      if not r.probability or r.probability > 1 then
        return nil, ("%q: probability must be a number from 0 to 1"):format(text)
      end
    elseif effect then
      local v, want = effect.parse(value)
      if v == nil then return nil, ("%q: %s takes %s"):format(text, name, want) end
      if name ~= "latency" then
        if r.effect then
          return nil, ("%q: %s and %s cannot be combined (only latency combines)"):format(text, r.effect, name)
        end
        r.effect = name
      end
      r[name] = v
    elseif item ~= "" then
      return nil, ("%q: unknown effect %q (known: %s, count, probability)"):format(text, name,
        table.concat(EFFECT_ORDER, ", "))
    end
  end
  if not r.effect and not r.latency then return nil, ("%q: no effect given"):format(text) end
  if r.retry_after and r.effect ~= "status" and r.effect ~= "html" then
    return nil, ("%q: retry_after goes with status or html"):format(text)
  end
  r.text = rule_text(r)
  return r
end

-- A rule as JSON gives it: a string in the syntax above, or an object
-- { target =, latency =, status =, html =, count =, ... } (true for a
-- flag). -> rule, or nil, err
function M.from_json(v)
  if type(v) == "string" then return M.parse(v) end
  if type(v) ~= "table" or type(v.target) ~= "string" then
    return nil, "a fault rule is a string or an object with a target"
  end
  local parts = {}
  for k, x in pairs(v) do
    if k ~= "target" then
      if x == true then
        parts[#parts + 1] = k
      elseif type(x) == "table" and #x == 2 then -- trickle = { bytes, ms }
        parts[#parts + 1] = ("%s=%s/%s"):format(k, tostring(x[1]), tostring(x[2]))
      elseif x ~= false and x ~= codec.null then
        parts[#parts + 1] = k .. "=" .. tostring(x)
      end
    end
  end
  table.sort(parts) -- pairs order is random; the checks do not depend on order
  return M.parse(v.target .. ":" .. table.concat(parts, ","))
end

---- the rule set ----

local Faults = {}
Faults.__index = Faults

-- initial: rules given at start (texts); random: function -> [0, 1)
-- (math.random by default; injectable for tests). -> set, or nil, err
function M.new(initial, random)
  local self = setmetatable({ rules = {}, initial = initial or {}, random = random or math.random,
    next_id = 0 }, Faults)
  local ok, err = self:add(self.initial)
  if not ok then return nil, err end
  return self
end

-- Appends rules (texts or JSON values), or replaces the list with them;
-- all or none. -> true, or nil, err
function Faults:add(list, replace)
  local parsed = {}
  for i, v in ipairs(list) do
    local r, err = M.from_json(v)
    if not r then return nil, err end
    parsed[i] = r
  end
  if replace then self.rules = {} end
  for _, r in ipairs(parsed) do
    self.next_id = self.next_id + 1
    r.id = self.next_id
    self.rules[#self.rules + 1] = r
  end
  return true
end

function Faults:clear() self.rules = {} end

-- Back to the rules given at start, with their counts whole again.
function Faults:reset()
  self:clear()
  assert(self:add(self.initial))
end

-- Removes rule `id`. -> true if there was one
function Faults:remove(id)
  for i, r in ipairs(self.rules) do
    if r.id == id then table.remove(self.rules, i); return true end
  end
  return false
end

-- The rules as JSON shows them.
function Faults:list()
  local out = {}
  for i, r in ipairs(self.rules) do
    out[i] = { id = r.id, rule = r.text, target = r.target, effect = r.effect or "latency",
      latency = r.latency, count = r.count, probability = r.probability, retry_after = r.retry_after,
      fired = r.fired or 0 }
  end
  return codec.array(out)
end

-- The faults for one request to `name` (a web service name), or nil: the
-- cheap answer when no rule is set, which is the usual case.
-- -> plan { latency = ms, effect = rule or nil, text = "rule; rule" }
function Faults:pick(name)
  local rules = self.rules
  if #rules == 0 then return nil end
  local plan, used, texts
  for _, r in ipairs(rules) do
    if glob_match(r.pieces, name) and (not r.probability or self.random() < r.probability) then
      plan = plan or { latency = 0 }
      texts = texts or {}
      texts[#texts + 1] = r.text
      plan.latency = plan.latency + (r.latency or 0)
      if r.effect and not plan.effect then plan.effect = r end
      r.fired = (r.fired or 0) + 1
      if r.count then
        r.count = r.count - 1
        if r.count == 0 then used = true end
      end
    end
  end
  if used then
    local keep = {}
    for _, r in ipairs(rules) do if r.count ~= 0 then keep[#keep + 1] = r end end
    self.rules = keep
  end
  if plan then plan.text = table.concat(texts, "; ") end
  return plan
end

---- applying a plan ----

local function html_page(status)
  local title = ("%d %s"):format(status, REASONS[status] or "Error")
  return ("<!DOCTYPE html>\n<html><head><title>%s</title></head>\n<body><h1>%s</h1>"
    .. "<p>The server is temporarily unable to service your request.</p></body></html>\n"):format(title, title)
end

-- True when the plan's answer replaces the service's.
function M.short_circuits(plan)
  return plan.effect ~= nil and EFFECTS[plan.effect.effect].short
end

-- The answer of a short-circuiting plan. -> status, headers, body
function M.answer(plan, request_id)
  local r = plan.effect
  local after = r.retry_after and tostring(r.retry_after)
  if r.effect == "maintenance" then
    return services.answer(200, request_id, services.ko(7))
  elseif r.effect == "status" then
    return services.http_error(r.status, request_id, "injected fault: HTTP " .. r.status,
      after and { ["Retry-After"] = after })
  elseif r.effect == "html" then
    return r.html, { ["Content-Type"] = "text/html; charset=utf-8", ["X-Request-Id"] = request_id,
      ["Retry-After"] = after }, html_page(r.html)
  end
  return 200, { ["X-Request-Id"] = request_id }, "" -- drop: nothing is sent
end

-- The delivery options (billetterie.httpd's fourth handler result) that
-- carry the plan out on `body`, or nil.
function M.delivery(plan, body)
  local d, r = {}, plan.effect
  -- within what billetterie.httpd accepts (a delay of MAX_MS at most, a
  -- chunk of the body's size at most), or the answer would become a 500:
  -- several latencies add up, and a chunk may be larger than a short body
  if plan.latency > 0 then d.delay = math.min(plan.latency, MAX_MS) end
  if r and r.effect == "drop" then
    d.drop = true
  elseif r and r.effect == "truncate" then
    d.send = r.truncate == "half" and math.floor(#body / 2) or math.min(r.truncate, math.max(#body - 1, 0))
  elseif r and r.effect == "trickle" then
    d.chunk, d.interval = math.min(r.trickle[1], math.max(#body, 1)), r.trickle[2]
  end
  return next(d) and d or nil
end

return M
