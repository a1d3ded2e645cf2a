-- billetterie.sandbox.s360: the S-360 Contact API in the sandbox (issue 7):
-- ContactInformationPublicService and ContactAuthenticationPublicService
-- v2_21, ContactSocialLoginService v1_0, SOAP and REST on their real paths,
-- over the same SQLite file as the rest of the sandbox.
--
-- This file routes and authenticates; the methods live in s360_contacts.lua,
-- s360_auth.lua and s360_social.lua, parameters and results go through
-- s360_wire.lua (driven by billetterie.s360.catalogue), envelopes through
-- s360_soap.lua, bearer tokens through s360_jwt.lua. services.lua hands
-- every /tnco/ path (and /{instit}/tnco/...) to M.handle.
--
-- Configuration (services.new{ s360 = {...} }, all optional):
--   institutions  {"DEMO", "MOSA"}: each has its own contacts
--   channel       "B2C": the operator of institution I is I_B2C
--   password      the operators' WS-Security password and JWT secret
--   rate_limit    calls per minute per institution (180; 0 = none)
--   rate_status   HTTP status past the limit (509; S-360 announced 429)
--   remember_days lifetime of remember-me pairs (30)

local cat = require "billetterie.s360.catalogue"
local codec = require "billetterie.sandbox.codec"
local core = require "billetterie.core"
local jwt = require "billetterie.sandbox.s360_jwt"
local soap = require "billetterie.sandbox.s360_soap"
local V = require "billetterie.sandbox.s360_values"
local wire = require "billetterie.sandbox.s360_wire"

local M = {}

M.DEFAULTS = {
  institutions = { "DEMO", "MOSA" },
  channel = "B2C",
  password = "s360-sandbox-secret",
  rate_limit = 180,
  rate_status = 509,
  remember_days = 30,
}

local GROUPS = {
  "billetterie.sandbox.s360_contacts",
  "billetterie.sandbox.s360_auth",
  "billetterie.sandbox.s360_social",
}

-- The methods' implementations, by operation name; each must be in the
-- catalogue (and every catalogue method should be here: checked by the spec).
local METHODS = {}
M.schema = {}
for _, name in ipairs(GROUPS) do
  local g = require(name)
  for op, fn in pairs(g.methods) do
    assert(cat.methods[op], "s360: " .. op .. " is not in the catalogue")
    METHODS[op] = fn
  end
  for _, stmt in ipairs(g.schema or {}) do M.schema[#M.schema + 1] = stmt end
end
M.methods = METHODS

-- Idempotent creation (seed: "all those methods are transactionnal and
-- idempotent"; reference 4: repeating an identical save must not create
-- duplicates). A method that creates when a parameter is absent remembers,
-- per institution, a fingerprint of the request (method and decoded
-- parameters, requestId aside) with its result: the same request again,
-- over either protocol, gets that result instead of a second contact.
local CREATES = {
  saveIndividualContactData = function(p) return p.contactNumber == nil end,
  saveStructureContactData = function(p) return p.contactNumber == nil end,
  saveStructureMember = function(p) return p.memberContactNumber == nil end,
  createUser = function() return true end,
}
M.schema[#M.schema + 1] = [[CREATE TABLE IF NOT EXISTS s360_repeats (
    instit      TEXT NOT NULL,
    fingerprint TEXT NOT NULL,   -- HMAC-SHA256 of the method and its parameters
    result      TEXT NOT NULL,   -- what the first request answered, JSON
    at          INTEGER NOT NULL,
    PRIMARY KEY (instit, fingerprint))]]

-- Values in one canonical text: keys sorted, types written.
local function canonical(v, out)
  if type(v) ~= "table" then
    out[#out + 1] = type(v):sub(1, 1) .. ("%q"):format(tostring(v))
    return out
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  out[#out + 1] = "{"
  for _, k in ipairs(keys) do
    out[#out + 1] = ("%q="):format(tostring(k))
    canonical(v[k], out)
    out[#out + 1] = ","
  end
  out[#out + 1] = "}"
  return out
end

local function fingerprint(name, p)
  local copy = {}
  for k, v in pairs(p) do if k ~= "requestId" then copy[k] = v end end
  local mac = core.hmac_sha256("s360-repeats", name .. "\0" .. table.concat(canonical(copy, {})))
  return (mac:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- Whether what a remembered creation made is still there: a member
-- deleted (deleteStructureMember) or a link removed (removeLink) since, an
-- identical request creates again instead of answering from memory.
local function contact_exists(_, res, env)
  return res.contactNumber == nil or env.db:one(
    "SELECT 1 AS x FROM s360_contacts WHERE instit = ? AND number = ?", env.instit, tostring(res.contactNumber))
end
local STILL_THERE = {
  saveIndividualContactData = contact_exists,
  saveStructureContactData = contact_exists,
  saveStructureMember = function(p, res, env)
    return res.contactNumber ~= nil and env.db:one([[SELECT 1 AS x FROM s360_members m
        JOIN s360_contacts s ON s.id = m.structure_id JOIN s360_contacts c ON c.id = m.member_id
        WHERE s.instit = ? AND s.number = ? AND c.number = ?]],
      env.instit, tostring(p.structureContactNumber), tostring(res.contactNumber))
  end,
  createUser = function(p, _, env)
    return env.db:one("SELECT 1 AS x FROM s360_social WHERE instit = ? AND provider = ? AND reference = ?",
      env.instit, p.provider, p.providerUserReference)
  end,
}

-- The method itself, or the remembered result of an identical creation
-- whose work is still in place.
local function perform(name, p, env)
  local fp = CREATES[name] and CREATES[name](p) and fingerprint(name, p)
  if fp then
    local seen = env.db:one("SELECT result FROM s360_repeats WHERE instit = ? AND fingerprint = ?", env.instit, fp)
    if seen then
      local res = codec.decode(seen.result)
      if STILL_THERE[name](p, res, env) then return res end
    end
  end
  local res = METHODS[name](p, env)
  if fp then
    env.db:exec("INSERT OR REPLACE INTO s360_repeats (instit, fingerprint, result, at) VALUES (?, ?, ?, ?)",
      env.instit, fp, codec.encode(res), env.now)
  end
  return res
end

-- path -> { service key, version, namespace } for both protocols
local SOAP_PATHS, REST_PATHS = {}, {}
for key, s in pairs(cat.services) do
  for ver, v in pairs(s.versions) do
    local entry = { service = key, version = ver, namespace = v.namespace }
    SOAP_PATHS[v.soap_path] = entry
    REST_PATHS[v.rest_path] = entry
  end
end

---- configuration ----

local function config_of(cfg)
  if cfg._s360 then return cfg._s360 end
  local c = {}
  for k, v in pairs(M.DEFAULTS) do c[k] = v end
  for k, v in pairs(cfg.s360 or {}) do c[k] = v end
  c.by_code = {}
  for _, i in ipairs(c.institutions) do c.by_code[i:upper()] = i:upper() end
  c.default = c.institutions[1]:upper()
  c.windows = {} -- rate limit: institution -> { start, count }
  cfg._s360 = c
  return c
end

-- The operators' password (also the JWT secret), for the request journal's
-- list of values to blank (sandbox/init.lua).
function M.password(cfg) return config_of(cfg).password end

-- The institution of a request: path prefix, X-Institution header, then the
-- Host's first label when it names one, else the first configured one.
-- -> code, path without the prefix | nil (unknown one given explicitly)
local function institution(c, req, path)
  local first, rest = path:match("^/([^/]+)(/tnco/.*)$")
  local given
  if first and first ~= "tnco" then given, path = first, rest end
  given = given or (req.headers or {})["x-institution"]
  if given then return c.by_code[given:upper()], path end
  local label = ((req.headers or {}).host or ""):match("^([^.:]+)%.")
  return label and c.by_code[label:upper()] or c.default, path
end

local function over_limit(c, instit, now)
  if not c.rate_limit or c.rate_limit <= 0 then return false end
  local w = c.windows[instit]
  if not w or now - w.start >= 60 then
    w = { start = now, count = 0 }
    c.windows[instit] = w
  end
  w.count = w.count + 1
  return w.count > c.rate_limit, 60 - (now - w.start)
end

---- the call itself ----

-- Runs one method in a savepoint. -> result table (business fields and
-- status) or nil, err (a bug: 500).
local function run(name, raw, env)
  local ok, res = pcall(function()
    local p = wire.decode_params(name, raw)
    env.request_id = p.requestId
    return env.db:tx(function() return perform(name, p, env) end)
  end)
  if not ok and not V.is_failure(res) then return nil, res end
  local out = ok and res or { statusDetail = res.detail }
  out.statusCode = ok and cat.success or V.STATUS[res.reason]
  local rid = raw.requestId
  out.requestId = env.request_id or (type(rid) ~= "table" and math.tointeger(tonumber(rid or ""))) or nil
  return out
end

local function header(headers, name) return (headers or {})[name] end

-- httpd parses form bodies only, so an S-360 request reaches the request
-- journal (which records req.params) without parameters: the operation, the
-- protocol and the parameters (as JSON) are added, masked as the journal
-- masks L@billetterie's: a secret field (catalogue.secrets, any letter case,
-- whatever its type) becomes "***", and its values, the operator password
-- and the credentials of the request (`known`) are blanked wherever else
-- they appear (a password typed into the login field).
local MASK = "***"
local SECRET_KEYS = {}
for k in pairs(cat.secrets) do SECRET_KEYS[k:lower()] = true end
local function secret_key(k) return type(k) == "string" and SECRET_KEYS[k:lower()] end

-- A number as its JSON text (123456789, not 1.23457e+08).
local function number_text(v)
  return (v == math.floor(v) and math.abs(v) < 2 ^ 53) and ("%d"):format(v) or tostring(v)
end

-- Every leaf of a secret field's value (nested ones included) as text.
local function leaves(v, out)
  if type(v) == "table" then
    for _, x in pairs(v) do leaves(x, out) end
  elseif type(v) == "string" then
    out[#out + 1] = v
  elseif type(v) == "number" then
    out[#out + 1] = number_text(v)
  end
  return out
end

local function scrub(text, secrets)
  for _, s in ipairs(secrets) do
    local a, b = text:find(s, 1, true)
    while a do
      text = text:sub(1, a - 1) .. MASK .. text:sub(b + 1)
      a, b = text:find(s, a + #MASK, true)
    end
  end
  return text
end

local function blank(v, secrets)
  if type(v) == "string" then return scrub(v, secrets) end
  if type(v) == "number" then
    local text = number_text(v)
    local clean = scrub(text, secrets)
    return clean == text and v or clean
  end
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    local key = type(k) == "string" and scrub(k, secrets) or k
    out[key] = secret_key(k) and MASK or blank(x, secrets)
  end
  return out
end

-- -> the JSON text of raw for the journal
local function masked_json(raw, known)
  local all = {}
  local function walk(v)
    if type(v) ~= "table" then return end
    for k, x in pairs(v) do
      if secret_key(k) then leaves(x, all) else walk(x) end
    end
  end
  walk(raw)
  for _, s in ipairs(known) do all[#all + 1] = s end
  -- 4 characters or more (shorter ones would blank ordinary words), the
  -- longest first (so that no part of a longer one is left)
  local secrets = {}
  for _, s in ipairs(all) do if type(s) == "string" and #s >= 4 then secrets[#secrets + 1] = s end end
  table.sort(secrets, function(a, b) return #a > #b end)
  return codec.encode(blank(raw, secrets))
end

local function journal_note(req, name, value)
  req.params = req.params or {}
  req.params[#req.params + 1] = { name, value }
end

local function serve_soap(svc, c, req, env, entry, rid)
  local xml = { ["Content-Type"] = soap.CONTENT_TYPE, ["X-Request-Id"] = rid }
  if req.method ~= "POST" then
    return svc.http_error(405, rid, "SOAP endpoints answer POST", { Allow = "POST" })
  end
  local r, fault = soap.read(req.body)
  if not r then return 500, xml, soap.fault(fault.code, fault.string) end
  local raw = wire.plain(r.operation)
  journal_note(req, "s360_operation", r.operation.name)
  journal_note(req, "s360_protocol", "soap")
  if type(raw) == "table" then
    journal_note(req, "s360_params", masked_json(raw, { c.password, r.password }))
  end
  if not r.username then
    return 500, xml, soap.fault("InvalidSecurity", "a WS-Security UsernameToken header is required")
  end
  if (r.username or ""):upper() ~= env.operator or r.password ~= c.password then
    return 500, xml, soap.fault("FailedAuthentication",
      "The security token could not be authenticated or authorized")
  end
  local op = r.operation
  local m = cat.methods[op.name]
  if op.ns ~= entry.namespace or not m or m.service ~= entry.service or not METHODS[op.name] then
    return 500, xml, soap.fault("Client", ("no operation {%s}%s on this endpoint"):format(tostring(op.ns), op.name))
  end
  if type(raw) ~= "table" then raw = {} end
  local out, err = run(op.name, raw, env)
  if not out then
    svc.log_error(rid, req.path, err)
    return 500, xml, soap.fault("Server", "internal error")
  end
  return 200, xml, soap.answer(entry.namespace, op.name, m.result, wire.to_elements(m.result, out))
end

local function serve_rest(svc, c, req, env, entry, name, rid)
  journal_note(req, "s360_operation", name)
  journal_note(req, "s360_protocol", "rest")
  local m = cat.methods[name]
  if not m or m.service ~= entry.service or not METHODS[name] then
    return svc.http_error(404, rid, "no method " .. name .. " in this service")
  end
  if req.method ~= "POST" then return svc.http_error(405, rid, "REST_RPC answers POST", { Allow = "POST" }) end
  local ct = (header(req.headers, "content-type") or ""):lower()
  if not ct:find("^application/json") then
    return svc.http_error(415, rid, "Content-Type: application/json is required")
  end
  local token = (header(req.headers, "authorization") or ""):match("^[Bb]earer%s+(%S+)%s*$")
  local claims, why
  if token then
    claims, why = jwt.verify(token, { institution = env.instit, operator = env.operator, secret = c.password,
      now = env.now })
  else
    why = "an Authorization: Bearer JWT is required"
  end
  if not claims then
    return svc.http_error(401, rid, why, { ["WWW-Authenticate"] = 'Bearer error="invalid_token"' })
  end
  local raw = {}
  if (req.body or ""):find("%S") then
    raw = codec.decode(req.body)
    -- cjson decodes [] as {}: the text tells an array from an object
    if type(raw) ~= "table" or (raw[1] ~= nil) or not req.body:match("^%s*{") then
      return svc.http_error(400, rid, "the body must be a JSON object")
    end
  end
  journal_note(req, "s360_params", masked_json(raw, { c.password, token }))
  local out, err = run(name, raw, env)
  if not out then
    svc.log_error(rid, req.path, err)
    return svc.http_error(500, rid, "internal error")
  end
  return 200, { ["Content-Type"] = "application/json; charset=utf-8", ["X-Request-Id"] = rid },
    codec.encode(wire.to_json(m.result, out))
end

-- svc: the services module (http_error); cfg: the sandbox configuration
-- (db, clock, random_hex, s360). -> status, headers, body
function M.handle(svc, cfg, req, rid)
  local c = config_of(cfg)
  local instit, path = institution(c, req, req.path)
  if not instit then return svc.http_error(404, rid, "unknown institution") end
  local env = { db = cfg.db, instit = instit, operator = instit .. "_" .. c.channel:upper(),
    now = cfg.clock(), random_hex = cfg.random_hex, config = c }
  -- a NUL byte (raw, or \u0000 in JSON) cannot be stored as sent (SQLite
  -- text would cut it): refused before anything runs
  local body = req.body or ""
  if body:find("\0", 1, true) or body:find("\\u0000", 1, true) then
    return svc.http_error(400, rid, "a NUL byte in the request")
  end
  local limited, retry = over_limit(c, instit, env.now)
  local entry = SOAP_PATHS[path]
  if limited then
    local after = tostring(math.max(1, retry))
    if entry then
      -- a SOAP endpoint refuses with a SOAP fault, as a SOAP stack in front
      -- would: a client must still read the status as the rate limit
      return c.rate_status, { ["Content-Type"] = soap.CONTENT_TYPE, ["X-Request-Id"] = rid,
        ["Retry-After"] = after }, soap.fault("Client", "call rate limit exceeded")
    end
    return svc.http_error(c.rate_status, rid, "call rate limit exceeded", { ["Retry-After"] = after })
  end
  if entry then return serve_soap(svc, c, req, env, entry, rid) end
  local base, name = path:match("^(/tnco/backend%-apis/[^/]+/[^/]+/)([^/]+)$")
  entry = base and REST_PATHS[base]
  if entry then return serve_rest(svc, c, req, env, entry, name, rid) end
  return svc.http_error(404, rid, "no such S-360 service: " .. path)
end

---- sandbox routes (services.lua GROUPS) ----

-- GET /_sandbox/s360/outbox: the e-mails S-360 would have sent (the new
-- passwords of recoverPassword), newest first; ?institution=DEMO.
local routes = {
  ["_sandbox/s360/outbox"] = {
    auth = "none",
    run = function(p, env)
      local services = require "billetterie.sandbox.services"
      local rows = env.db:rows([[SELECT id, instit AS institution, at, recipient, subject, body
          FROM s360_outbox WHERE ? IS NULL OR instit = upper(?) ORDER BY id DESC LIMIT 100]],
        p.institution, p.institution)
      return services.raw(200, "application/json; charset=utf-8", codec.encode { mails = codec.array(rows) })
    end,
  },
}

M.routes = routes
return M
