-- A client of the S-360 Contact API (ContactInformationPublicService,
-- ContactAuthenticationPublicService v2_21, ContactSocialLoginService v1_0)
-- over SOAP or REST_RPC, both driven by billetterie.s360.catalogue.
--
--   local s360 = require "billetterie.s360"
--   local c = s360.new{ institution = "mosa", environment = "demo",  -- or url = ...
--                       operator = "MOSA_B2C", password = secret, protocol = "soap" }
--   local r, err = c:getContactData{ contactNumber = "4711", details = { "GENERAL" } }
--   -- r: the result as a Lua table (statusCode = "success", business fields)
--   -- err: billetterie.error (kind, code = statusCode, message = statusDetail, retryable)
--
-- Every catalogue method is a method under its wire name and its alias
-- (c:get_contact_data). The four static lists are cached (2 h by default),
-- and calls are paced to the vendor's limit (180 a minute per institution).
local catalogue = require "billetterie.s360.catalogue"
local schema = require "billetterie.s360.schema"
local soap = require "billetterie.s360.soap"
local rest = require "billetterie.s360.rest"
local cookie = require "billetterie.s360.cookie"
local core = require "billetterie.core"
local errors = require "billetterie.error"
local transport = require "billetterie.transport"
local runner = require "billetterie.runner"
local limits = require "billetterie.limits"

local S360 = {}
S360.__index = S360

-- A method called with "." gets its first argument as self: a clear error
-- then, rather than a failure deep inside. Proxies of an object pass.
local function not_mine(self)
  return type(self) ~= "table" or self.call ~= S360.call
end

local M = { catalogue = catalogue, cookie = cookie }

local secrets_of = setmetatable({}, { __mode = "k" })

local OPTIONS = {
  institution = "string", environment = "string", url = "string", operator = "string",
  password = "string", protocol = "string", version = "string", partner = "string",
  timeout = "number", connect_timeout = "number", max_size = "number", verify = "boolean",
  cainfo = "string", capath = "string", strict = "boolean", transport = "table",
  clock = "function", now = "function", sleep = "function", random = "function",
  retries = "number", retry_base = "number", retry_max = "number", retry_after_max = "number",
  cache = { table = true, boolean = true }, cache_ttl = "number", dict = "table",
  rate_limit = { table = true, boolean = true }, sale_channel = "string",
}

-- One limiter per institution base URL in this Lua state (the vendor
-- counts calls per institution, all services together); clients with an
-- injected clock get their own.
local shared_limiters = setmetatable({}, { __mode = "v" })

local function check_options(opts)
  if type(opts) ~= "table" then error("s360.new needs a table of options", 3) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("s360.new: unknown option '" .. tostring(k) .. "'", 3) end
    if type(want) == "table" then
      if not want[type(v)] or v == true then error("s360.new: bad value for option " .. k, 3) end
    elseif type(v) ~= want then
      error(("s360.new: option %s must be a %s"):format(k, want), 3)
    end
  end
end

-- Paths and namespace of a service at a version: the catalogue's entry, or
-- for a version it does not list, the default one with the token replaced.
local function service_at(key, version)
  local svc = catalogue.services[key]
  local v = version or svc.default_version
  local entry = svc.versions[v]
  if entry then return entry end
  local base, dv = svc.versions[svc.default_version], svc.default_version:gsub("_", "%%_")
  local function swap(s) return (s:gsub(dv, v)) end
  return { soap_path = swap(base.soap_path), namespace = swap(base.namespace), rest_path = swap(base.rest_path) }
end

function M.new(opts)
  check_options(opts)
  limits.check_ranges(opts, limits.NUMBER_RANGES, "s360.new", 2)
  local protocol = opts.protocol or "soap"
  if protocol ~= "soap" and protocol ~= "rest" then error("s360.new: protocol must be soap or rest", 2) end
  if opts.version and not opts.version:match("^v%d+_%d+$") then
    error("s360.new: version must look like v2_21", 2)
  end
  local institution = opts.institution
  if institution and not institution:match("^[%w%-]+$") then error("s360.new: bad institution code", 2) end
  local base = opts.url
  if base then
    if not base:match("^https?://[^/]") then error("s360.new: url must be an http:// or https:// address", 2) end
    -- a space or CR/LF would split the request line (as billetterie.new)
    if base:find("[%s%c]") then error("s360.new: url must not contain spaces or control characters", 2) end
    local problem = errors.url_problem(base)
    if problem then error("s360.new: url: " .. problem, 2) end
    base = base:gsub("/+$", "")
  else
    if not institution then error("s360.new: give institution (and environment) or url", 2) end
    local pattern = catalogue.hosts[opts.environment or "prod"]
    if not pattern then error("s360.new: environment must be prod, demo or pp", 2) end
    base = pattern:format(institution:lower())
  end
  if not opts.operator then error("s360.new: operator (the virtual operator login) is required", 2) end
  if not opts.password then error("s360.new: password is required", 2) end
  if #opts.password < 4 then error("s360.new: password is too short to be real (4 characters at least)", 2) end
  if protocol == "rest" and not institution then error("s360.new: REST needs institution (the JWT subject)", 2) end

  local clock = opts.clock
  local self = setmetatable({
    url = base,
    institution = institution and institution:upper(),
    -- the operator is <InstitutionCode>_<saleChannelCode> (seed) and an
    -- institution code has no "_": the channel follows the FIRST one
    -- (MOSA_WEB_SHOP -> WEB_SHOP), as cookie.parse reads virtualOperator
    sale_channel = opts.sale_channel or opts.operator:match("^[^_]+_(.+)$"),
    operator = opts.operator,
    protocol = protocol,
    version = opts.version,
    partner = opts.partner or "billetterie",
    strict = opts.strict ~= false,
    transport = opts.transport or transport.curl,
    now = opts.now or clock or os.time,            -- wall clock, seconds: JWT iat
    retries = opts.retries or 2,
    retry_base = opts.retry_base or 0.5,
    retry_max = opts.retry_max or 8,
    retry_after_max = opts.retry_after_max or 60,
    sleep = opts.sleep or runner.sleep,
    random = opts.random or math.random,
    rate_window = catalogue.rate_limit.per,   -- the vendor's window (seconds)
  }, S360)
  self._services = {}
  for key in pairs(catalogue.services) do
    self._services[key] = service_at(key, key ~= "social" and opts.version or nil)
  end

  -- static-list cache: a private memory store unless given one, or none
  if opts.cache == false then
    self._cache = nil
  elseif type(opts.cache) == "table" then
    self._cache = opts.cache
  else
    local cache = require "billetterie.cache"
    self._cache = cache.new{ dict = opts.dict, clock = clock }
  end
  -- given to every set: a shared store keeps its own default for others
  self.cache_ttl = opts.cache_ttl or catalogue.cache_ttl
  if not (self.cache_ttl > 0) then error("s360.new: cache_ttl must be a positive number of seconds", 2) end

  -- pacing: at most `calls` per `per` seconds, in bursts of at most `burst`
  -- (the rate is lowered by the burst so no `per`-second window exceeds `calls`)
  if opts.rate_limit ~= false then
    local rl = type(opts.rate_limit) == "table" and opts.rate_limit or {}
    local calls = rl.calls or catalogue.rate_limit.calls
    local per = rl.per or catalogue.rate_limit.per
    local burst = rl.burst or math.max(1, math.min(10, math.floor(calls / 10)))
    if not (calls > burst and per > 0) then error("s360.new: rate_limit.calls must exceed its burst", 2) end
    self.rate_window = per
    local key = base
    if clock or opts.sleep or opts.rate_limit then
      self._rate = limits.rate((calls - burst) / per, burst, clock or core.now, opts.sleep)
    else
      self._rate = shared_limiters[key] or limits.rate((calls - burst) / per, burst)
      shared_limiters[key] = self._rate
    end
  end

  self._request = {
    timeout = opts.timeout or 30, connect_timeout = opts.connect_timeout or 10,
    max_size = opts.max_size or 16 * 1024 * 1024, verify = opts.verify ~= false,
    cainfo = opts.cainfo, capath = opts.capath,
  }
  self._request.config = core.http_config(self._request)
  -- a password in the URL (http://user:pw@host/) is scrubbed too
  local url_pw, url_plain = errors.url_password(base)
  secrets_of[self] = { password = opts.password, url_password = url_pw, url_plain = url_plain }
  return self
end

function S360:__tostring()
  return ("billetterie s360 client %s (%s, operator %s)"):format(errors.shown_url(self.url), self.protocol,
    self.operator)
end

-- The secrets an error of this call must not show.
local function secret_list(self, values, extra)
  local own = secrets_of[self]
  local list = { own.password, own.url_password, own.url_plain }
  local function walk(v, depth)
    if type(v) ~= "table" or depth > 8 then return end
    for k, x in pairs(v) do
      if catalogue.secrets[k] and type(x) == "string" then list[#list + 1] = x end
      walk(x, depth + 1)
    end
  end
  walk(values, 0)
  if extra then list[#list + 1] = extra end
  return list
end

-- HTTP statuses that mean "too many calls": back off and retry.
local RATE_LIMITED = { [429] = true, [509] = true }
local MAX_RATE_WAIT = 120   -- seconds: the longest wait after a rate-limit refusal

-- Turns a transport answer into result | nil, err fields. secrets() gives
-- the call's secret values: a body excerpt or a fault text is scrubbed
-- before it is shortened.
function S360:_answer(method, status, body, errkind, errmsg, request_id, secrets, retry_after)
  if errkind then
    local e = errors.from_transport(errkind, errmsg, status)
    e.request_id = request_id
    return nil, e
  end
  body = body or ""
  local function http_error(text)
    return nil, { kind = "http", http_status = status, request_id = request_id,
                  retryable = RATE_LIMITED[status] or nil,
                  retry_after = errors.retry_after(retry_after, self.now()),
                  message = ("HTTP %d%s"):format(status,
                    text and (": " .. errors.excerpt(text, secrets()))
                    or body:match("%S") and (": " .. errors.excerpt(body, secrets())) or "") }
  end
  if not body:match("%S") then
    if status >= 400 then return http_error() end
    return nil, { kind = "decode", http_status = status, request_id = request_id, message = "empty answer" }
  end
  -- a rate-limit refusal is one whatever its body (a SOAP fault, Client or
  -- Server, included): nothing was done, it is retried after the wait
  if RATE_LIMITED[status] then
    local _, fault
    if self.protocol == "soap" then _, fault = soap.read(method, body) end
    return http_error(fault and fault.fault and fault.message or nil)
  end
  local result, err
  if self.protocol == "soap" then
    result, err = soap.read(method, body)
    -- a SOAP fault explains a 500 better than the status does
    if not result and not err.fault and status >= 400 then return http_error() end
  else
    if status >= 400 then return http_error() end
    result, err = rest.read(method, body)
  end
  if not result then
    err.http_status, err.request_id = err.http_status or status, request_id
    if err.fault then err.message = errors.excerpt(err.message, secrets()) end   -- may echo the request
    err.fault = nil
    return nil, err
  end
  local lf = catalogue.methods[method].list_field
  if lf and result[lf] == nil then result[lf] = {} end
  local code = result.statusCode
  if type(code) ~= "string" or code == "" then   -- [], {}, statusCode null: not an answer
    return nil, { kind = "decode", http_status = status, request_id = request_id,
                  message = "the answer has no statusCode" }
  end
  if code ~= catalogue.success then
    local detail = result.statusDetail
    return nil, { kind = "vendor", code = code, http_status = status, request_id = request_id,
                  message = type(detail) == "string" and detail ~= "" and detail or ("status " .. code),
                  payload = errors.mask(result, catalogue.secrets, secrets()), retryable = false }
  end
  return result
end

-- Builds URL, body and headers for a checked call, once for all its
-- attempts (REST's last header, the JWT, is forged for each attempt).
function S360:_prepare(method, values)
  local m = catalogue.methods[method]
  local svc = self._services[m.service]
  if self.protocol == "soap" then
    local body, err = soap.envelope(method, values, {
      namespace = svc.namespace, operator = self.operator, password = secrets_of[self].password })
    if not body then return nil, err end
    return self.url .. svc.soap_path, body,
      { "Content-Type: " .. catalogue.soap.content_type, "Accept: text/xml",
        'SOAPAction: "' .. catalogue.soap.soap_action .. '"' }
  end
  local body, err = rest.body(method, values)
  if not body then return nil, err end
  return self.url .. svc.rest_path .. method, body,
    { "Content-Type: application/json", "Accept: application/json", false }
end

-- A fresh JWT (its exp is 30 s after now, so a retry needs another).
function S360:_jwt()
  return rest.jwt{ institution = self.institution, operator = self.operator, partner = self.partner,
                   secret = secrets_of[self].password, now = self.now() }
end

-- The options of one call; a mistake there is a programmer's: it raises.
local CALL_OPTIONS = {
  idempotent = { "a boolean", function(v) return type(v) == "boolean" end },
  retries = { "a whole number between 0 and 100",
              function(v) return type(v) == "number" and v >= 0 and v <= 100 and v == math.floor(v) end },
  refresh = { "a boolean", function(v) return type(v) == "boolean" end },
}

local function check_call_options(opts)
  if opts == nil then return end
  if type(opts) ~= "table" then error("call options must be a table (idempotent, retries, refresh)", 3) end
  for k, v in pairs(opts) do
    local o = CALL_OPTIONS[k]
    if not o then error("unknown call option '" .. tostring(k) .. "' (idempotent, retries, refresh)", 3) end
    if not o[2](v) then error("call option " .. k .. " must be " .. o[1], 3) end
  end
end

-- c:call(method, params [, { idempotent = false|true, retries = n, refresh = true }])
--   -> result | nil, err
function S360:call(method, given, opts)
  if not_mine(self) then error("use c:call(method, params), with a colon", 2) end
  if type(method) ~= "string" then error("call needs a method name", 2) end
  check_call_options(opts)
  if given ~= nil and type(given) ~= "table" then error("call parameters must be a table", 2) end
  local m = catalogue.methods[method]
  if not m then
    return nil, errors.new{ kind = "invalid_param", ws = method, retryable = false,
                            message = "unknown S-360 method " .. method }
  end
  given = given or {}
  local values, why, where = schema.check(method, given, self.strict)
  if not values then
    return nil, errors.new({ kind = "invalid_param", ws = method, param = where, retryable = false,
                             message = ("parameter %s %s"):format(where, why) }, secret_list(self, given))
  end

  local key
  if m.static and self._cache then
    local copy = {}
    for k, v in pairs(values) do if k ~= "requestId" then copy[k] = v end end
    key = require("billetterie.cache").key("s360", self.url, self._services[m.service].namespace, method, copy)
    if not (opts and opts.refresh) then
      local hit = self._cache:get(key)
      if hit ~= nil then
        -- the answer echoes this call's requestId, not the one that filled the cache
        if type(hit) == "table" then hit.requestId = values.requestId end
        return hit
      end
    end
  end

  local result, err = self:_send(method, m, values, opts)
  if result and key then self._cache:set(key, result, self.cache_ttl) end
  return result, err
end

-- Sends, pacing each attempt and retrying what may be retried: any
-- retryable failure of a repeatable method (every method but those the
-- catalogue marks `unrepeatable`; opts.idempotent overrides), and the
-- rate-limit refusals (429, 509: nothing was done) of every method.
function S360:_send(method, m, values, opts)
  local retries = opts and opts.retries or self.retries
  local repeatable = opts and opts.idempotent
  if repeatable == nil then repeatable = not m.unrepeatable end
  local url, body, headers = self:_prepare(method, values)
  if not url then
    return nil, errors.new({ kind = "invalid_param", ws = method, retryable = false,
                             message = "cannot encode the request: " .. tostring(body) }, secret_list(self, values))
  end
  local attempt = 0
  local request = self._request
  while true do
    -- paced first: take() may sleep, and the JWT lives only 30 s
    if self._rate then self._rate:take() end
    local token
    if self.protocol == "rest" then
      token = self:_jwt()
      headers[3] = "Authorization: Bearer " .. token
    end
    request.url, request.method, request.body, request.headers = url, "POST", body, headers
    local status, rbody, _, errkind, errmsg, request_id, retry_after = self.transport:request(request)
    -- the body holds the operator password, the headers the JWT: not to be
    -- left in the client's table
    request.body, request.headers = nil, nil
    local result, e = self:_answer(method, status, rbody, errkind, errmsg, request_id,
      function() return secret_list(self, values, token) end, retry_after)
    if result then return result end
    e.ws, e.attempts = method, attempt + 1
    e = errors.new(e, secret_list(self, values, token))
    local asked = e.retry_after
    if not e.retryable or attempt >= retries or not (repeatable or RATE_LIMITED[e.http_status])
        or (asked and asked > self.retry_after_max) then   -- err.retry_after tells the caller
      return nil, e
    end
    attempt = attempt + 1
    local wait = limits.backoff(attempt, self.retry_base, self.retry_max, self.random)
    if asked then
      wait = math.max(wait, asked)
    elseif RATE_LIMITED[e.http_status] then
      -- No Retry-After (the seed documents none): wait one whole rate
      -- window, so the retry falls in the vendor's next minute whatever its phase.
      wait = math.max(wait, math.min(self.rate_window, MAX_RATE_WAIT))
    end
    self.sleep(wait)
  end
end

-- c:remember_me_cookie(auth_result, pos [, opts]) -> Set-Cookie value, name, value | nil, err
-- (institution from the client; auth and pos as cookie.build takes them: a
-- nil auth, what a failed authenticate returned, gives nil, err)
function S360:remember_me_cookie(auth, pos, opts)
  if not_mine(self) then error("use c:remember_me_cookie(auth, pos), with a colon", 2) end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.institution = o.institution or self.institution
  if type(pos) ~= "table" then o.sale_channel = o.sale_channel or self.sale_channel end
  return cookie.build(auth, pos, o)
end

-- A method per catalogue method, under its wire name and its alias.
M.methods = {}
for name, m in pairs(catalogue.methods) do
  local fn = function(self, params, opts)
    if not_mine(self) then error("use c:" .. name .. "{...}, with a colon", 2) end
    return self:call(name, params, opts)
  end
  assert(S360[name] == nil and S360[m.alias] == nil or m.alias == name, "method name clash: " .. name)
  S360[name] = fn
  if m.alias and m.alias ~= name then S360[m.alias] = fn end
  M.methods[#M.methods + 1] = name
end
table.sort(M.methods)

M.Client = S360
return M
