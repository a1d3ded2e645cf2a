-- A session of the online shop: the token of ws_idsession, and the services
-- that take it as methods.
--   local s = assert(c:session())
--   s.token                           -- x_rsi_token, for page links (3.15.2)
--   s:login(ident, password)          -- ws_login: binds a contact
--   s:info_contact{}; s:status(); s:logout()   -- closed locally from then on
-- The session knows when it expires (temps_restant) and refuses to send a
-- dead token: the call returns the error the vendor gives for one (kind
-- "vendor", code 605, not retryable) with err.is_local = true, nothing sent.
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"

local Session = {}
Session.__index = Session

-- A method called with "." gets its first argument as self: a clear error
-- then, rather than a failure deep inside. Proxies of an object pass.
local function not_mine(self)
  return type(self) ~= "table" or self.call ~= Session.call
end

local M = { methods = {} }

-- Opens a session for `client`. -> session | nil, err
function M.open(client)
  local msg, statut = client:call("ws_idsession")
  if not msg then return nil, statut end
  -- the token is 32 hex digits (2.2.1.3); anything else is a broken answer
  local jeton = type(msg) == "table" and msg.jeton
  if type(jeton) ~= "string" or not jeton:match("^%x+$") or #jeton ~= 32 then
    return nil, errors.new{ kind = "decode", ws = "ws_idsession", retryable = false,
                            message = "the answer has no session token (jeton, 32 hex digits)" }
  end
  local now = client.clock()
  return setmetatable({
    client = client,
    token = msg.jeton,
    duree = msg.duree,
    commande = msg.commande,
    expires_at = now + (tonumber(msg.temps_restant) or 0),
  }, Session)
end

function Session:__tostring()
  -- never the token: it is a credential
  return ("billetterie session (%s, %s)"):format(self.closed and "closed" or "open", self.duree or "?")
end

-- Seconds left as far as this side knows (refreshed by status()).
function Session:remaining()
  if not_mine(self) then error("use s:remaining(), with a colon", 2) end
  if self.closed then return 0 end
  return math.max(0, self.expires_at - self.client.clock())
end

-- The local refusal of a dead token: the same kind and code as the vendor's
-- "Session invalide" (605), so callers handle a session closed or expired
-- here and one the vendor dropped alike; err.is_local tells them apart.
local function dead(self, name)
  return nil, errors.new{
    kind = "vendor", code = 605, ws = name, retryable = false, is_local = true,
    message = self.closed and "session closed on this side (logout); nothing sent; open a new one with c:session()"
      or "session expired on this side (its temps_restant elapsed); nothing sent; open a new one with c:session()",
  }
end

-- s:call("ws_name", params): the service with this session's token.
local close

function Session:call(name, params, opts)
  if not_mine(self) then error("use s:call(name, params), with a colon", 2) end
  self.client._check_call_options(opts, 3)   -- raised at the caller's line
  if name == "ws_deconnexion_session" then   -- the logout, whichever way it is called
    if params ~= nil and type(params) ~= "table" then error("call parameters must be a table", 2) end
    return close(self, params, opts)
  end
  if self:remaining() <= 0 then return dead(self, name) end
  local p = {}
  for k, v in pairs(params or {}) do p[k] = v end
  p.x_rsi_token = self.token
  return self.client:call(name, p, opts)
end

-- s:page(name, params): a shop page opened already logged in (3.15.2).
-- A dead session gives nil, err (605) rather than a link whose token the
-- shop no longer knows.
function Session:page(name, given)
  if not_mine(self) then error("use s:page(name, params), with a colon", 2) end
  if self:remaining() <= 0 then return dead(self, nil) end
  local p = {}
  for k, v in pairs(given or {}) do p[k] = v end
  p.x_rsi_token = self.token
  return self.client:page(name, p)
end

-- ws_login with the web identifier and password of a contact:
-- s:login(ident, password [, opts]), or as every session method,
-- s:login{ web_ident = ident, web_passe = password } [, opts] (checked
-- against the catalogue like any call).
function Session:login(ident, password, opts)
  if not_mine(self) then error("use s:login(ident, password), with a colon", 2) end
  if type(ident) == "table" then
    if password ~= nil and type(password) ~= "table" then
      error("s:login{ web_ident =, web_passe = } takes the call options as its second argument", 2)
    end
    return self:call("ws_login", ident, password)
  end
  if type(ident) ~= "string" or type(password) ~= "string" then
    error("s:login needs the identifier and the password as strings "
      .. "(s:login(ident, password) or s:login{ web_ident = ident, web_passe = password })", 2)
  end
  return self:call("ws_login", { web_ident = ident, web_passe = password }, opts)
end

-- ws_status_session; also refreshes the expiry from temps_restant.
function Session:status()
  if not_mine(self) then error("use s:status(), with a colon", 2) end
  local msg, statut = self:call("ws_status_session")
  if msg and tonumber(msg.temps_restant) then
    self.expires_at = self.client.clock() + tonumber(msg.temps_restant)
  end
  return msg, statut
end

-- ws_deconnexion_session. The session is closed on this side as soon as
-- logout is called, whatever the answer: no other call sends its token
-- again (they fail locally with 605), and remaining() is 0. A logout that
-- failed (network, HTTP 5xx, a vendor ko: the vendor may still hold the
-- session) may be retried with s:logout(), which sends again until one
-- succeeds; s.logged_out is then true and a further logout fails locally
-- (605). A session that expired before any logout is not sent either.
-- opts: c:call's options ({ idempotent = true } lets the client retry it).
-- given: the caller's parameters (s:deconnexion_session{...}), checked
-- before the session is closed, as the options are by every caller of
-- close: a mistake there closes nothing.
function close(self, given, opts)
  if self.logged_out or (not self.closed and self:remaining() <= 0) then
    return dead(self, "ws_deconnexion_session")
  end
  local p = {}
  for k, v in pairs(given or {}) do p[k] = v end
  p.x_rsi_token = self.token
  if given and next(given) ~= nil then
    local ok, err = self.client:_prepare(catalogue.services.ws_deconnexion_session, p)
    if not ok then return nil, err end
  end
  self.closed = true
  local msg, statut = self.client:call("ws_deconnexion_session", p, opts)
  if msg then self.logged_out = true end
  return msg, statut
end

function Session:logout(opts)
  if not_mine(self) then error("use s:logout(), with a colon", 2) end
  self.client._check_call_options(opts, 3)   -- a mistake there closes nothing
  return close(self, nil, opts)
end

-- The generated method of ws_deconnexion_session is the logout: the same
-- local closing whichever name is called.
function Session:deconnexion_session(given, opts)
  if not_mine(self) then error("use s:deconnexion_session{}, with a colon", 2) end
  if given ~= nil and type(given) ~= "table" then error("call parameters must be a table", 2) end
  self.client._check_call_options(opts, 3)
  return close(self, given, opts)
end

-- Every service that takes a token is a method named without its ws_
-- prefix: s:info_contact{}, s:ccontact{...}, s:historique_contact{...}.
local TOKEN_MODES = { token = true, ws_or_token = true, ws_and_token = true }
for name, service in pairs(catalogue.services) do
  if TOKEN_MODES[service.auth] then
    local method = name:gsub("^ws_", "")
    if not Session[method] then
      Session[method] = function(self, params, opts)
        if not_mine(self) then error("use s:" .. method .. "{...}, with a colon", 2) end
        return self:call(name, params, opts)
      end
    end
    M.methods[#M.methods + 1] = { method = method, ws = name }
  end
end
table.sort(M.methods, function(a, b) return a.method < b.method end)

return M
