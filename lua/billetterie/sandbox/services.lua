-- billetterie.sandbox.services: from an HTTP request to a vendor answer.
--
-- A dispatch table maps "/ws_name" to a route { auth =, params =, run = }
-- (and optionally scalars = { name = true }: undeclared scalar parameters,
-- envelope = a RESHAPE name)
-- (routes live in one file per group of the spec: sessions.lua,
-- organismes.lua). This file does what every route shares: merging query and
-- body, credential checks by auth mode (spec 1.3), parameter checks, the
-- JSON envelope (spec 1.4) and the HTTP side (404, 405, 500, X-Request-Id).

local codes = require "billetterie.codes"
local codec = require "billetterie.sandbox.codec"

local M = {}

-- One module per group of the spec; each returns { schema = { SQL... },
-- routes = { ws_name = route } }. Schemas run in this order: organismes'
-- migration reads the contacts' contact_niveaux, so contacts come first.
local GROUPS = {
  "billetterie.sandbox.sessions",   -- 2.2
  "billetterie.sandbox.contacts",   -- 2.3 (and ws_info_formulaire)
  "billetterie.sandbox.catalogue",  -- 2.1 (XML)
  "billetterie.sandbox.purchases",  -- 2.4
  "billetterie.sandbox.lists",      -- 2.5
  "billetterie.sandbox.organismes", -- 2.6
  "billetterie.sandbox.changes",    -- 2.7.3 ws_liste_fiches_modifiees (api host)
  "billetterie.sandbox.s360",       -- S-360 Contact API: the /tnco/ paths (docs/sandbox-s360.md)
}

local DEFAULTS = {
  login = "xrsitest",
  password = "xrsimdp",
  clients = { 677, 100 },
  session_duration = 172800, -- PT48H, the ws_idsession example
  -- Code for wrong credentials on ws_idsession: 3 "Accès web service refusé"
  -- like every other service; 610 is the other reading of the spec.
  idsession_denied_code = 3,
  -- The api host (ws_liste_fiches_modifiees): operator code and API key,
  -- the values of the spec's example (2.7.3.2).
  api_login = "WSCE",
  api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a",
}

---- envelope (spec 1.4) ----

local function statut(code)
  local c = codes[code] or error("no message for code " .. tostring(code))
  return { code = code, traitement = c.ok and "ok" or "ko", message = c.message }
end

-- {"retour":{"message":message,"statut":{...}}} plus extra retour fields
-- (e.g. detail for the retour_detail services).
function M.ok(code, message, extra)
  local retour = { statut = statut(code), message = message or {} }
  for k, v in pairs(extra or {}) do retour[k] = v end
  return { retour = retour }
end

-- Same envelope; ko codes mostly carry an empty message object.
function M.ko(code, message, extra)
  return M.ok(code, message, extra)
end

-- A route's answer that is not JSON (the XML services): sent as given.
local RAW = {}
function M.raw(status, content_type, body)
  return setmetatable({ status = status, content_type = content_type, body = body }, RAW)
end

---- parameters ----

-- Last value wins; query fields come before body fields in req.params, so
-- the body wins over the query string (spec 1.2).
local function merge_params(req)
  local p = {}
  for _, kv in ipairs(req.params or {}) do p[kv[1]] = kv[2] end
  return p
end

local function present(v) return v ~= nil and v ~= "" end

-- A NUL byte in a name or a value: refused as a parameter problem (code 4)
-- before anything runs; SQLite's escaping would cut the text there, and
-- store (or compare) a different password than the one sent.
local function has_nul(req)
  for _, kv in ipairs(req.params or {}) do
    if kv[1]:find("\0", 1, true) or kv[2]:find("\0", 1, true) then return true end
  end
  return false
end

-- The credentials of every auth mode (spec 1.3): scalars on every route.
local AUTH_KEYS = { x_rsi_ws_login = true, x_rsi_ws_mdp = true, x_rsi_client = true, x_rsi_token = true,
  x_rsi_modele = true, x_rsi_login = true, x_rsi_api_key = true }

-- A scalar parameter sent in array or map form (`etat_caddy[]=A`,
-- `etat_caddy[0]=A`, `ts[x]=...`): refused as a parameter problem (code 4)
-- before anything runs, rather than read as absent, which would answer with
-- the default (the paid carts for etat_caddy). Scalars are the
-- credentials, the route's declared `params` and its `scalars` (those it
-- reads without declaring them); the names a route takes as lists (liste[],
-- code_envoi[]...) are none of these, and unknown names stay ignored.
local function scalar_as_array(req, route)
  for _, kv in ipairs(req.params or {}) do
    local base = kv[1]:match("^([^%[]+)%[")
    if base and (AUTH_KEYS[base] or (route.params or {})[base] or (route.scalars or {})[base]) then
      return true
    end
  end
  return false
end

-- Route parameter specs: { name = "integer" | "string", ... }, a trailing
-- "!" marks a required one. Integers are converted in place.
-- -> nil when fine, or the code 4 answer.
local function check_params(spec, p)
  for name, kind in pairs(spec or {}) do
    local required = kind:sub(-1) == "!"
    kind = required and kind:sub(1, -2) or kind
    local v = p[name]
    if not present(v) then
      if required then return M.ko(4) end
      p[name] = nil
    elseif kind == "integer" then
      p[name] = v:match("^%s*%-?%d+%s*$") and math.tointeger(tonumber(v))
      if not p[name] then return M.ko(4) end
    end
  end
end

local TOKEN = "^%x+$"

-- Auth modes (spec 1.3). Missing or malformed credentials answer 4, wrong
-- ones 3; a well-formed token is looked up and handed to the route as
-- env.session (nil when unknown): the route decides what an unknown or
-- expired session means.
local AUTH = {}

function AUTH.none() end

function AUTH.ws(p, env)
  local cfg = env.config
  if not (present(p.x_rsi_ws_login) and present(p.x_rsi_ws_mdp) and present(p.x_rsi_client)) then
    return M.ko(4)
  end
  local client = p.x_rsi_client:match("^%s*%d+%s*$") and math.tointeger(tonumber(p.x_rsi_client))
  if not client then return M.ko(4) end
  if p.x_rsi_ws_login ~= cfg.login or p.x_rsi_ws_mdp ~= cfg.password or not cfg.client_set[client] then
    -- a route may name a setting that picks its own code (ws_idsession)
    return M.ko(cfg[env.route.denied_code_setting] or 3)
  end
  env.client = client
end

function AUTH.token(p, env)
  local t = p.x_rsi_token
  if not present(t) then return M.ko(4) end
  if #t ~= 32 or not t:find(TOKEN) then return M.ko(4) end
  env.token = t:upper() -- tokens are printed upper case; accept either
  env.session = env.db:session_get(env.token)
end

function AUTH.ws_and_token(p, env)
  return AUTH.ws(p, env) or AUTH.token(p, env)
end

-- Two alternative modes (ws_info_contact, ws_modification_contact): ws
-- when id_contact is sent without x_rsi_token (seed 2.3.3.3: the token must
-- be absent), token otherwise; env.mode tells the route which.
function AUTH.ws_or_token(p, env)
  env.mode = (present(p.id_contact) and not present(p.x_rsi_token)) and "ws" or "token"
  return AUTH[env.mode](p, env)
end

-- The api host (spec 2.7.3): an operator code and an API key instead of the
-- web-service account; x_rsi_modele names the programme (checked by the route).
function AUTH.api_key(p, env)
  local cfg = env.config
  for _, k in ipairs { "x_rsi_modele", "x_rsi_login", "x_rsi_client", "x_rsi_api_key" } do
    if not present(p[k]) then return M.ko(4) end
  end
  local client = p.x_rsi_client:match("^%s*%d+%s*$") and math.tointeger(tonumber(p.x_rsi_client))
  if not client then return M.ko(4) end
  if p.x_rsi_login ~= cfg.api_login or p.x_rsi_api_key ~= cfg.api_key or not cfg.client_set[client] then
    return M.ko(3)
  end
  env.client = client
end

-- Envelopes other than retour (reference 1.4), named by a route's
-- `envelope`: its answers, refusals of the checks above included, are
-- reshaped from the retour form the helpers build.
local RESHAPE = {
  statut_data = function(t) return { statut = t.retour.statut, data = t.retour.message } end,
  -- the lists (2.5, retour_traitement): traitement beside statut and
  -- message an array, refusals too (their message is the empty object)
  retour_traitement = function(t)
    local r = t.retour
    if type(r.statut) ~= "table" then return t end
    local msg = r.message
    if type(msg) ~= "table" or #msg == 0 then msg = codec.array({}) end
    return { retour = { statut = r.statut, traitement = r.statut.traitement, message = msg } }
  end,
  -- ws_modification_pwd (2.3.4): retour_traitement whose message is a
  -- text; refusals of the common checks get the statut's message as text
  retour_traitement_texte = function(t)
    local r = t.retour
    if type(r.statut) ~= "table" or type(r.message) == "string" then return t end
    return { retour = { statut = r.statut, traitement = r.statut.traitement, message = r.statut.message } }
  end,
  -- ws_historique_contact (2.4.5.4): a flat retour {historique, traitement,
  -- message}, refusals too (plus their code); its own answers are flat already
  retour_historique = function(t)
    local st = t.retour.statut
    if type(st) ~= "table" then return t end
    return { retour = { historique = codec.array({}), traitement = st.traitement, message = st.message,
                        code = st.code } }
  end,
}

---- HTTP side ----

local JSON_TYPE = "application/json; charset=utf-8"

-- Text as valid UTF-8: each byte that does not start a well-formed sequence
-- (RFC 3629: no overlong form, no surrogate, nothing past U+10FFFF) becomes
-- U+FFFD. For what is echoed into answers labelled charset=utf-8 (paths,
-- journal rows). Plain Lua: LuaJIT has no utf8 library.
local REPLACEMENT = "\239\191\189"
function M.clean_utf8(s)
  local i = s:find("[\128-\255]")
  if not i then return s end
  local out, n, from = {}, #s, 1
  while i do
    local c = s:byte(i)
    local len = (c >= 0xC2 and c <= 0xDF) and 2 or (c >= 0xE0 and c <= 0xEF) and 3
      or (c >= 0xF0 and c <= 0xF4) and 4 or 0
    local lo, hi = 0x80, 0xBF -- the second byte's range
    if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
    elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    local ok = len > 0 and i + len - 1 <= n
    for k = 1, ok and len - 1 or 0 do
      local b = s:byte(i + k)
      if b < (k == 1 and lo or 0x80) or b > (k == 1 and hi or 0xBF) then ok = false; break end
    end
    out[#out + 1] = s:sub(from, i - 1)
    if ok then
      out[#out + 1] = s:sub(i, i + len - 1)
      from = i + len
    else
      out[#out + 1] = REPLACEMENT
      from = i + 1
    end
    i = s:find("[\128-\255]", from)
  end
  out[#out + 1] = s:sub(from)
  return table.concat(out)
end

-- Text for a log line: control characters (CR, LF, ESC...) and the
-- backslash as \xHH, so that a request cannot forge or colour log lines.
function M.log_text(s)
  return (tostring(s):gsub("[%c\\]", function(c) return ("\\x%02X"):format(c:byte()) end))
end

local function answer(status, request_id, body_table, extra_headers)
  local headers = { ["Content-Type"] = JSON_TYPE, ["X-Request-Id"] = request_id }
  for k, v in pairs(extra_headers or {}) do headers[k] = v end
  return status, headers, codec.encode(body_table)
end

local function http_error(status, request_id, message, extra_headers)
  return answer(status, request_id,
    { error = { status = status, message = M.clean_utf8(message), request_id = request_id } }, extra_headers)
end

-- For the sandbox's own endpoints (faults, journal): the same JSON answers.
M.answer, M.http_error = answer, http_error

-- The vendor code of an answer table, whatever its envelope (retour.statut,
-- statut_data, retour_flat), for the request journal.
local function vendor_code(t)
  if type(t) ~= "table" then return nil end
  local r = type(t.retour) == "table" and t.retour or t
  local st = type(r.statut) == "table" and r.statut or r
  return math.type(st.code) == "integer" and st.code or nil
end

-- One line on stderr (a log line must not be split by a traceback, nor
-- forged by a path holding CR LF: control characters are escaped).
local function log_error(request_id, path, err)
  io.stderr:write(("billetterie sandbox: %s %s: %s\n"):format(M.log_text(request_id), M.log_text(path),
    M.log_text((tostring(err):gsub("[\r\n]+", " | ")))))
  io.stderr:flush()
end
M.log_error = log_error   -- for control.lua and the S-360 handlers (sandbox/s360.lua)

-- The tables the groups need, for db.open.
function M.schemas()
  local out = {}
  for _, name in ipairs(GROUPS) do out[#out + 1] = require(name).schema or {} end
  return out
end

-- config: overrides of DEFAULTS plus db (an open billetterie.sandbox.db),
-- clock (function -> unix seconds), random_hex (n bytes -> hex),
-- request_id_prefix, routes (extra or replacement routes, e.g. in tests).
-- -> a service with :handle(req) for billetterie.httpd
function M.new(config)
  local cfg = {}
  for k, v in pairs(DEFAULTS) do cfg[k] = v end
  for k, v in pairs(config or {}) do cfg[k] = v end
  cfg.client_set = {}
  for _, c in ipairs(cfg.clients) do cfg.client_set[math.tointeger(c)] = true end
  cfg.clock = cfg.clock or os.time

  local routes = {}
  for _, name in ipairs(GROUPS) do
    for ws, route in pairs(require(name).routes) do routes["/" .. ws] = route end
  end
  for ws, route in pairs(cfg.routes or {}) do routes["/" .. ws] = route end

  local self = { config = cfg, routes = routes }

  function self.request_id(req)
    return (cfg.request_id_prefix or "req-") .. tostring(req.id or "")
  end

  -- -> status, headers, body; req.code is set to the vendor code answered.
  function self.handle(req)
    local rid = self.request_id(req)
    local path = req.path:gsub("(.)/$", "%1")
    -- S-360 (/tnco/..., or /{instit}/tnco/...): its own envelopes and auth
    if path:find("^/[^/]*/?tnco/") then return require("billetterie.sandbox.s360").handle(M, cfg, req, rid) end
    local route = routes[path]
    if not route then
      return http_error(404, rid, "no such web service: " .. path)
    end
    if req.method ~= "POST" and req.method ~= "GET" and req.method ~= "HEAD" then
      return http_error(405, rid, "use POST or GET", { Allow = "POST, GET" })
    end
    local p = merge_params(req)
    local env = { config = cfg, db = cfg.db, route = route, now = cfg.clock(), req = req,
      random_hex = cfg.random_hex }
    local ok, result = pcall(function()
      local refused = ((has_nul(req) or scalar_as_array(req, route)) and M.ko(4))
        or AUTH[route.auth or "ws"](p, env)
        or check_params(route.params, p)
      local res = refused or route.run(p, env)
      local reshape = RESHAPE[route.envelope]
      if reshape and type(res) == "table" and res.retour then res = reshape(res) end
      return res
    end)
    if not ok then
      log_error(rid, path, result)
      return http_error(500, rid, "internal error")
    end
    if getmetatable(result) == RAW then
      return result.status, { ["Content-Type"] = result.content_type, ["X-Request-Id"] = rid }, result.body
    end
    req.code = vendor_code(result)
    return answer(200, rid, result)
  end

  return self
end

return M
