-- A client of one L@billetterie site: validates a call against the
-- catalogue, adds the credentials its service's auth mode needs, sends it
-- through the transport and turns the answer into payload, statut or nil, err.
local catalogue = require "billetterie.catalogue"
local core = require "billetterie.core"
local envelope = require "billetterie.envelope"
local errors = require "billetterie.error"
local json = require "billetterie.json"
local params = require "billetterie.params"
local transport = require "billetterie.transport"
local runner = require "billetterie.runner"
local limits = require "billetterie.limits"

local Client = {}
Client.__index = Client

-- A method called with "." gets its first argument as self: a clear error
-- then, rather than a failure deep inside. Proxies of an object pass.
local function not_mine(self)
  return type(self) ~= "table" or self.call ~= Client.call
end

local byte = string.byte

-- Secret option values live here, not in the client table, so printing or
-- dumping a client never shows them.
local secrets_of = setmetatable({}, { __mode = "k" })

local OPTIONS = {
  url = "string", login = "string", password = "string", client_id = "number",
  timeout = "number", connect_timeout = "number", max_size = "number",
  verify = "boolean", cainfo = "string", capath = "string", strict = "boolean",
  pwd_key = "string", api_url = "string", api_login = "string", api_key = "string",
  transport = "table", clock = "function", sync_overlap = "number", cache = "table",
  retries = "number", retry_base = "number", retry_max = "number", retry_after_max = "number",
  rate = "number", max_in_flight = "number", sleep = "function", random = "function",
}
local SECRET_OPTIONS = { password = true, pwd_key = true, api_key = true }
-- What each number option may be (NaN fails every comparison, so it is refused too).
local NUMBER_RANGES = {
  client_id = { 0, 2^53, whole = true, says = "a whole number >= 0" },
  sync_overlap = { 0, 86400, says = "between 0 and 86400 seconds" },
  rate = { 1e-6, 1e9, says = "a number of calls a second > 0" },
  max_in_flight = { 1, 1e6, whole = true, says = "a whole number >= 1" },
}
for k, range in pairs(limits.NUMBER_RANGES) do NUMBER_RANGES[k] = range end

local function with_slash(url)
  return url:sub(-1) == "/" and url or url .. "/"
end


-- billetterie.new{ url=, login=, password=, client_id=, timeout=10, ... }
-- Option mistakes are programmer mistakes: they raise.
function Client.new(opts)
  if type(opts) ~= "table" then error("billetterie.new needs a table of options", 2) end
  for k, v in pairs(opts) do
    local want = OPTIONS[k]
    if not want then error("billetterie.new: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then error(("billetterie.new: option %s must be a %s"):format(k, want), 2) end
  end
  if not opts.url or not opts.url:match("^https?://[^/]") then
    error("billetterie.new: url must be an http:// or https:// address", 2)
  end
  for _, k in ipairs{ "url", "api_url" } do   -- a space or CR/LF would split the request line
    if opts[k] and opts[k]:find("[%s%c]") then
      error("billetterie.new: " .. k .. " must not contain spaces or control characters", 2)
    end
    local problem = errors.url_problem(opts[k])
    if problem then error("billetterie.new: " .. k .. ": " .. problem, 2) end
  end
  for k in pairs(SECRET_OPTIONS) do
    if opts[k] and #opts[k] < 4 then error("billetterie.new: " .. k .. " is too short to be real", 2) end
  end
  limits.check_ranges(opts, NUMBER_RANGES, "billetterie.new", 2)
  local self = setmetatable({
    url = with_slash(opts.url),
    api_url = opts.api_url and with_slash(opts.api_url),
    login = opts.login,
    api_login = opts.api_login,
    client_id = opts.client_id,
    timeout = opts.timeout or 30,
    connect_timeout = opts.connect_timeout or 10,
    max_size = opts.max_size or 64 * 1024 * 1024,
    verify = opts.verify ~= false,
    cainfo = opts.cainfo,
    capath = opts.capath,
    strict = opts.strict ~= false,
    transport = opts.transport or transport.curl,
    cache = opts.cache,   -- a billetterie.cache store (see billetterie.client_cache)
    clock = opts.clock or os.time,   -- for session expiry; injectable for tests
    sync_overlap = opts.sync_overlap or 60,
    -- Retries of retryable errors on operations safe to repeat: two by
    -- default, exponential backoff from retry_base seconds with full jitter,
    -- capped at retry_max; a Retry-After (429, 503) up to retry_after_max
    -- seconds is waited instead when longer, beyond it the error is
    -- returned at once. sleep and random are injectable for tests.
    retries = opts.retries or 2,
    retry_base = opts.retry_base or 0.5,
    retry_max = opts.retry_max or 8,
    retry_after_max = opts.retry_after_max or 60,
    sleep = opts.sleep or runner.sleep,
    random = opts.random or math.random,
  }, Client)
  -- Client-wide pacing: at most `rate` calls a second, `max_in_flight`
  -- calls at once (both off unless set; the vendors publish call-rate limits).
  -- (c.rate and c.max_in_flight say what was asked: billetterie.bulk reads them)
  self.rate, self.max_in_flight = opts.rate, opts.max_in_flight
  if opts.rate then self._rate = limits.rate(opts.rate) end
  if opts.max_in_flight then self._in_flight = limits.semaphore(opts.max_in_flight) end
  -- One request table per client, refilled by each call (transports read it
  -- before yielding), so a call does not build it again.
  local request = {
    timeout = self.timeout, connect_timeout = self.connect_timeout, max_size = self.max_size,
    verify = self.verify, cainfo = self.cainfo, capath = self.capath,
  }
  request.config = core.http_config(request)  -- the same settings, prepared once for libcurl
  self._request = request
  self._urls = {}   -- service -> full URL, built on first use
  -- prefixes: auth mode -> its credentials form-encoded (see _prepare)
  local secrets = { password = opts.password, pwd_key = opts.pwd_key, api_key = opts.api_key, list = {},
                    prefixes = {} }
  for k in pairs(SECRET_OPTIONS) do
    if opts[k] then secrets.list[#secrets.list + 1] = opts[k] end
  end
  -- a password written into a URL is a secret too: scrubbed from every
  -- error text (as written and percent-decoded)
  for _, u in ipairs{ self.url, self.api_url or "" } do
    local pw, plain = errors.url_password(u)
    if pw then
      secrets.list[#secrets.list + 1] = pw
      if plain ~= pw then secrets.list[#secrets.list + 1] = plain end
    end
  end
  secrets_of[self] = secrets
  return self
end

function Client:__tostring()
  return ("billetterie client %s (login %s)"):format(errors.shown_url(self.url), tostring(self.login))
end

-- code: the vendor's code for the same refusal where the spec has one
-- (523 for a password that breaks annex 4.7), so callers handle both alike.
local function invalid(ws, name, reason, code)
  return nil, errors.new{
    kind = "invalid_param", ws = ws, param = name, retryable = false, code = code,
    message = ("parameter %s %s"):format(name, reason),
  }
end

-- Which client option fills each credential parameter, and the hint given
-- when neither the caller nor the client has it.
local CREDENTIAL_SOURCES = {
  x_rsi_ws_login = { "login", "needs the client's login option" },
  x_rsi_ws_mdp = { "password", "needs the client's password option", secret = true },
  x_rsi_client = { "client_id", "needs the client's client_id option" },
  x_rsi_token = { nil, "is required (a session token)" },
  x_rsi_pwd_key = { "pwd_key", "needs the client's pwd_key option", secret = true },
  x_rsi_login = { "api_login", "needs the client's api_login option" },
  x_rsi_api_key = { "api_key", "needs the client's api_key option", secret = true },
}

-- The credentials of the client's own account, by the option holding each:
-- given as call parameters they would switch the account behind the
-- client's back, so a strict client refuses them (a session token,
-- x_rsi_token, is the caller's to give: sessions rely on it).
local ACCOUNT_CREDENTIALS = {}
for name, source in pairs(CREDENTIAL_SOURCES) do
  if source[1] then ACCOUNT_CREDENTIALS[name] = source[1] end
end

-- -> nil, err when a strict client was given one of its account's credentials.
local function account_credential(self, service, given)
  if not self.strict then return nil end
  for param, option in pairs(ACCOUNT_CREDENTIALS) do
    if given[param] ~= nil then
      return invalid(service.name, param, ("is the account's credential: set the client's %s option "
        .. "(billetterie.new), or make the client with strict = false to pass it per call"):format(option))
    end
  end
end

-- Fills the credential fields of an auth mode from the client's options;
-- values the caller passed (a session token; an account's credential on a
-- client with strict = false) win. Returns the name of a missing one and
-- why, or nil.
local function add_credentials(self, names, fields)
  local secrets = secrets_of[self]
  for i = 1, #names do
    local name = names[i]
    if fields[name] == nil then
      local source = CREDENTIAL_SOURCES[name]
      if source and source[1] then
        fields[name] = (source.secret and secrets or self)[source[1]]
      end
      if fields[name] == nil then return name, source and source[2] or "is required" end
    end
  end
end

local function credential_names(mode)
  local names = {}
  local list = catalogue.credentials[mode] or {}
  if list.one_of then
    for _, m in ipairs(list.one_of) do
      for _, n in ipairs(catalogue.credentials[m]) do names[n] = true end
    end
  else
    for _, n in ipairs(list) do names[n] = true end
  end
  return names
end
local CREDENTIAL_NAMES = {}
local NO_NAMES = {}
local NO_PARAMS = {}   -- read only: params.prepare never writes to what it is given
for mode in pairs(catalogue.credentials) do CREDENTIAL_NAMES[mode] = credential_names(mode) end

-- "Some of it failed, see the per-item errors" (annex 4.2).
local PARTIAL_CODES = { [1111] = true }

local xml  -- loaded on the first XML answer only
local client_cache  -- loaded on the first call of a client with a cache

-- Decoder options per XML service: its list elements as a set, so a list of
-- one item is still an array.
local XML_OPTIONS = {}
local XML_INTEGERS = {}
local function set_of(list)
  local set = {}
  for _, n in ipairs(list) do set[n] = true end
  return set
end
for _, service in pairs(catalogue.services) do
  if service.xml_arrays then XML_OPTIONS[service] = { arrays = set_of(service.xml_arrays) } end
  if service.xml_integers then XML_INTEGERS[service] = set_of(service.xml_integers) end
end
Client._xml_options, Client._xml_integers = XML_OPTIONS, XML_INTEGERS   -- streamed calls decode alike

-- The secret values an error of this call must not show: the client's own,
-- and the secret parameters of the call (a session token, a password).
-- Built only when an error is made.
local function call_secrets(self, fields)
  local list = {}
  for _, v in ipairs(secrets_of[self].list) do list[#list + 1] = v end
  for name in pairs(catalogue.secrets) do
    local v = fields[name]
    if type(v) == "string" then list[#list + 1] = v end
  end
  return list
end

-- A payload kept on an error has its secret fields masked (a vendor may
-- echo a contact's password, web_passe, in clear).
local function fail(self, fields, err)
  if err.payload ~= nil then err.payload = errors.mask(err.payload, catalogue.secrets, call_secrets(self, fields)) end
  return nil, errors.new(err, call_secrets(self, fields))
end

-- Up to 160 characters of an unexpected body, tags stripped, for messages,
-- with the call's secrets scrubbed first.
local function excerpt(self, fields, body)
  return errors.excerpt(body, call_secrets(self, fields))
end

-- An HTML page, whatever its status: told apart before any XML parsing (an
-- error page is seldom well-formed: <hr>, <br> unclosed).
local function html_page(body)
  local head = body:sub(1, 256):lower()
  return head:match("^%s*<!doctype html") or head:match("^%s*<html[%s>]")
end

-- Turns what the transport returned into payload, statut | nil, err.
function Client:_answer(service, fields, status, body, content_type, errkind, errmsg, request_id, retry_after)
  local ws = service.name
  if errkind then
    local e = errors.from_transport(errkind, errmsg, status)
    e.ws, e.request_id = ws, request_id
    return fail(self, fields, e)
  end
  -- A JSON object first byte is the common case: no pattern to run.
  local b1 = byte(body, 1)
  if b1 == 239 and body:sub(1, 3) == "\239\187\191" then   -- a UTF-8 byte order mark: no JSON parser takes it
    body = body:sub(4)
    b1 = byte(body, 1)
  end
  local first = b1 == 123 and "{" or body:match("^%s*(.)")
  if status >= 400 then
    local text = first and (": " .. excerpt(self, fields, body)) or ""
    return fail(self, fields, { kind = "http", ws = ws, http_status = status, request_id = request_id,
                             retry_after = errors.retry_after(retry_after, self.clock()),
                             message = ("HTTP %d%s"):format(status, text) })
  end
  if not first then
    return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                             message = "empty answer" })
  end
  if first == "<" and html_page(body) then
    return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                             message = "expected " .. service.response:upper() .. ", got an HTML page: "
                               .. excerpt(self, fields, body) })
  end
  if first == "<" then
    xml = xml or require "billetterie.xml"
    local doc, root = xml.decode(body, XML_OPTIONS[service])
    if doc == nil then
      return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                               message = "malformed XML: " .. tostring(root) })
    end
    if root:lower() == "html" or service.response ~= "xml" then
      return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                               message = "expected " .. service.response:upper() .. ", got "
                                 .. (root:lower() == "html" and "an HTML page: " or "XML: ")
                                 .. excerpt(self, fields, body) })
    end
    -- A document is always a table, even an empty one (<xmlrequest/>: no cart).
    if type(doc) ~= "table" then doc = doc == "" and {} or { _text = doc } end
    if XML_INTEGERS[service] then xml.integers(doc, XML_INTEGERS[service]) end
    return doc, { traitement = "ok", root = root }
  end
  local doc, err = json.decode(body)
  if doc == nil then
    return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                             message = "malformed JSON (" .. err .. "): " .. excerpt(self, fields, body) })
  end
  local payload, statut = envelope.open(doc, ws)
  if payload == nil and type(statut) ~= "table" then
    return fail(self, fields, { kind = "decode", ws = ws, http_status = status, request_id = request_id,
                             message = statut })
  end
  if not envelope.ok(statut) then
    -- A ko may still carry results: ws_organisme_contacts answers 1111 when
    -- some contacts failed, with every contact's successes and errors.
    local kept = type(payload) == "table" and next(payload) ~= nil and payload or nil
    return fail(self, fields, { kind = "vendor", ws = ws, code = statut.code, http_status = status,
                             request_id = request_id, message = envelope.message(statut),
                             detail = statut.detail, payload = kept, partial = PARTIAL_CODES[statut.code] })
  end
  return payload, statut
end

-- The change feed (2.7.3) answers what changed since `ts` but says nothing
-- of where to start next time. statut.next_ts is the time this call was
-- sent, less `sync_overlap` seconds (default 60) for clock skew and writes
-- still committing: a sync loop that always passes it on may see a record
-- twice, never miss one. The vendor's ts is local time without a zone: this
-- machine's local time is sent, right when both share a zone (a machine
-- east of the vendor must add the difference to sync_overlap: README).
local FINISH = {
  ws_liste_fiches_modifiees = function(self, started, payload, statut)
    if payload ~= nil then
      statut.next_ts = os.date("%Y-%m-%dT%H:%M:%S", started - self.sync_overlap)
    end
    return payload, statut
  end,
}

-- Services that change the vendor's data: repeating one after a timeout
-- could apply it twice, so they are retried only when the caller says the
-- call is idempotent. Everything else reads (ws_idsession and ws_login
-- only open or bind a session).
local WRITES = {
  ws_ccontact = true, ws_modification_contact = true, ws_modification_pwd = true,
  ws_suppression_compte = true, ws_deconnexion_session = true,
  ws_organisme_creation = true, ws_organisme_modification = true, ws_organisme_contacts = true,
}

-- One attempt: the transport's answer as payload, statut | nil, err.
local function exchange(self, service, fields, url, body)
  local request = self._request
  request.url, request.method, request.body = url, service.method, body
  local status, answer, ctype, errkind, errmsg, request_id, retry_after = self.transport:request(request)
  -- body and URL (a GET's query) hold the credentials: not to be left in the client's table
  request.url, request.body = nil, nil
  return self:_answer(service, fields, status, answer, ctype, errkind, errmsg, request_id, retry_after)
end

-- Sends a prepared request, pacing it and retrying what may be retried.
-- `fetch` replaces the one-attempt exchange (billetterie.stream's one
-- writes the answer to a file): it returns a value | nil, err as exchange does.
function Client:_send(service, fields, url, body, opts, fetch)
  local request = self._request
  fetch = fetch or exchange
  local retries = opts and opts.retries or self.retries
  if WRITES[service.name] and not (opts and opts.idempotent) then retries = 0 end
  local attempt = 0
  while true do
    if self._rate then self._rate:take() end
    local payload, statut
    local in_flight = self._in_flight
    if in_flight then
      -- the slot is given back whatever happens: a raising transport (a
      -- programmer's mistake) must not leave the client unusable
      in_flight:acquire()
      local ok
      ok, payload, statut = pcall(fetch, self, service, fields, url, body)
      in_flight:release()
      if not ok then
        request.url, request.body = nil, nil
        error(payload, 0)
      end
    else
      payload, statut = fetch(self, service, fields, url, body)
    end
    -- a server asking for a longer wait than retry_after_max is answered
    -- at once: the caller has err.retry_after to plan with
    local asked = payload == nil and statut.retry_after
    if payload ~= nil or not statut.retryable or attempt >= retries
        or (asked and asked > self.retry_after_max) then
      if payload == nil then statut.attempts = attempt + 1 end
      return payload, statut
    end
    attempt = attempt + 1
    local wait = limits.backoff(attempt, self.retry_base, self.retry_max, self.random)
    self.sleep(asked and asked > wait and asked or wait)
  end
end

-- The options of one call and the check of each value (client_cache.lua
-- reads cache and cache_ttl). A mistake there is a programmer's: it raises.
local CALL_OPTIONS = {
  idempotent = function(v) return type(v) == "boolean" end,
  retries = function(v) return type(v) == "number" and v >= 0 and v <= 100 and v == math.floor(v) end,
  cache = function(v) return type(v) == "boolean" end,
  -- a shared dict reads NaN, inf, < 1 ms or huge TTLs as "never expires"
  cache_ttl = function(v) return require("billetterie.cache").valid_ttl(v) end,
}
local CALL_OPTION_TYPES = { idempotent = "a boolean", retries = "a whole number between 0 and 100", cache = "a boolean",
                            cache_ttl = "a number of seconds from 0.001 to a year" }

-- level: the error's level as error() takes it, from this function (3: the
-- caller of the function that called it).
local function check_call_options(opts, level)
  if opts == nil then return end
  level = level or 3
  if type(opts) ~= "table" then
    error("call options must be a table (idempotent, retries, cache, cache_ttl)", level)
  end
  for k, v in pairs(opts) do
    local ok = CALL_OPTIONS[k]
    if not ok then
      error("unknown call option '" .. tostring(k) .. "' (idempotent, retries, cache, cache_ttl)", level)
    end
    if not ok(v) then error("call option " .. k .. " must be " .. CALL_OPTION_TYPES[k], level) end
  end
end
Client._check_call_options = check_call_options   -- for sessions: checked before one closes

-- c:call("ws_name", { params } [, { idempotent = true, retries = n, cache = false, cache_ttl = s }])
--   -> payload, statut | nil, err
-- A success payload is the vendor's answer as it came: it may hold a
-- contact's password in clear (web_passe of ws_modification_contact) and is
-- the caller's to keep out of logs. The payload kept on an error has its
-- secret fields (catalogue.secrets) masked as "***".
function Client:call(name, given, opts)
  if not_mine(self) then error("use c:call(name, params), with a colon", 2) end
  if type(name) ~= "string" then error("call needs a web service name", 2) end
  if opts ~= nil then check_call_options(opts) end
  if given ~= nil and type(given) ~= "table" then error("call parameters must be a table", 2) end
  local service = catalogue.services[name]
  if not service then
    return nil, errors.new{ kind = "invalid_param", ws = name, retryable = false,
                            message = "unknown web service " .. name }
  end
  local each = given and given.each
  if each ~= nil then   -- streamed: billetterie.stream
    if type(each) ~= "string" then error("each must be one tag name (a string)", 2) end
    if service.response ~= "xml" then
      error("each = \"TAG\" streams the elements of an XML answer; " .. name .. " does not answer XML", 2)
    end
    return require("billetterie.stream").call(self, service, given, opts)
  end
  local fields, url, body = self:_prepare(service, given or NO_PARAMS)
  if not fields then return nil, url end
  if self.cache then   -- static or slow-changing answers: billetterie.client_cache
    client_cache = client_cache or require "billetterie.client_cache"
    if client_cache.applies(service, fields, opts) then
      return client_cache.through(self, service, fields, opts, self._send, url, body)
    end
  end
  local finish = FINISH[name]
  if finish then
    return finish(self, self.clock(), self:_send(service, fields, url, body, opts))
  end
  return self:_send(service, fields, url, body, opts)
end

-- The credentials of an auth mode, form-encoded once per client (kept with
-- the secrets: it holds the password): most calls give none of them, so
-- their body is this prefix and the caller's fields.
-- -> prefix | nil, missing name, hint
-- The public fields a prefix is made of are the client's own (c.client_id =
-- 100 after new() is allowed): a prefix is kept with the values it was made
-- from and made again when one changed.
local function credentials_prefix(self, mode)
  local prefixes = secrets_of[self].prefixes
  local p = prefixes[mode]
  if p and p.login == self.login and p.client_id == self.client_id and p.api_login == self.api_login then
    return p.text
  end
  local creds = {}
  local missing, hint = add_credentials(self, catalogue.credentials[mode] or {}, creds)
  if missing then return nil, missing, hint end
  p = { text = core.form_encode(creds), login = self.login, client_id = self.client_id, api_login = self.api_login }
  prefixes[mode] = p
  return p.text
end

-- Checks the parameters, adds the credentials, builds URL and body.
-- -> fields, url, body | nil, err
function Client:_prepare(service, given)
  local name, mode = service.name, service.auth
  local names = CREDENTIAL_NAMES[mode] or NO_NAMES
  if mode == "ws_or_token" then
    mode = given.x_rsi_token and "token" or "ws"
  end
  -- fields, own (the caller gave a credential), maps (the service's, for
  -- the form) | nil, bad name, reason, code
  local fields, own, maps, code = params.prepare(service, given, names, self.strict, mode)
  if not fields then return invalid(name, own, maps, code) end
  if own then   -- the caller gave a credential (rare): not the account's on a strict client
    local _, err = account_credential(self, service, given)
    if err then return nil, err end
  end
  local fixed = service.fixed
  if fixed then
    for k, v in pairs(fixed) do   -- x_rsi_modele of the api host
      if fields[k] == nil then fields[k] = v end
    end
    own = true   -- a fixed field can be a credential of the mode
  end

  -- A credential given by the caller (a session token, say) wins over the
  -- client's: then the whole form is encoded from fields.
  local body
  if own then
    local missing, hint = add_credentials(self, catalogue.credentials[mode] or {}, fields)
    if missing then return invalid(name, missing, hint) end
    body = core.form_encode(fields, nil, maps)
  else
    local prefix, missing, hint = credentials_prefix(self, mode)
    if not prefix then return invalid(name, missing, hint) end
    -- the catalogue's maps are written keyed, whatever their keys
    body = core.form_encode(fields, prefix, maps)
  end
  local url = self._urls[service]
  if not url then
    local base = service.host == "api" and self.api_url or self.url
    if not base then return invalid(name, "api_url", "is needed for " .. name .. " (the api host)") end
    url = base .. service.path
    self._urls[service] = url
  end
  if service.method == "GET" then
    url, body = url .. "?" .. body, nil
  end
  return fields, url, body
end

-- c:page(name, params) -> URL of a shop page on this client's site.
function Client:page(name, given)
  if not_mine(self) then error("use c:page(name, params), with a colon", 2) end
  return require("billetterie.pages").url(self.url, name, given)
end

-- c:session() -> session | nil, err (see billetterie.session)
function Client:session()
  if not_mine(self) then error("use c:session(), with a colon", 2) end
  return require("billetterie.session").open(self)
end

-- A method per web service that works without a session token, named
-- without its ws_ prefix: c:info_organisme{ id_organisme = 5442 },
-- c:programmation{ filtre = 1, date_modif = "20190701" }. Services that need
-- a token are methods of the session (c:session()).
Client.methods = {}
for name, service in pairs(catalogue.services) do
  if service.auth ~= "token" and service.auth ~= "ws_and_token" then
    local method = name:gsub("^ws_", "")
    assert(Client[method] == nil and OPTIONS[method] == nil, "method name clash: " .. method)
    Client[method] = function(self, params, opts)
      if not_mine(self) then error("use c:" .. method .. "{...}, with a colon", 2) end
      return self:call(name, params, opts)
    end
    Client.methods[#Client.methods + 1] = { method = method, ws = name }
  end
end
table.sort(Client.methods, function(a, b) return a.method < b.method end)

-- c:historique_contact{} on a client (a session method) would fail with
-- "attempt to call a nil value": the name of a session-only method reads
-- as a callable that raises what to do instead. Not a function, so code
-- testing type(c[name]) == "function" still finds it on the session only.
-- c:login is not covered: `login` is the client's account name (an option
-- of billetterie.new) and must stay a string.
local SESSION_ONLY = { logout = true, status = true, remaining = true }
for name, service in pairs(catalogue.services) do
  if service.auth == "token" or service.auth == "ws_and_token" then SESSION_ONLY[(name:gsub("^ws_", ""))] = true end
end
SESSION_ONLY.login = nil
local hints = {}
for method in pairs(SESSION_ONLY) do
  local says = ("%s needs a session: local s = c:session(); s:login(...); s:%s%s"):format(method, method,
    (method == "logout" or method == "status" or method == "remaining") and "()" or "{}")
  hints[method] = setmetatable({}, {
    __call = function() error(says, 2) end,
    __tostring = function() return "session method " .. method .. " (not on a client)" end,
  })
end
setmetatable(Client, { __index = hints })

return Client
