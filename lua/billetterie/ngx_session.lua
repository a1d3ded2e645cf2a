-- Per-visitor server-side sessions for OpenResty pages: what a visitor's
-- pages need to remember (the vendor's session token x_rsi_token, a name)
-- lives in a lua_shared_dict under a random opaque id; the browser only
-- holds that id, in an HttpOnly, SameSite=Lax cookie (Secure over https).
-- The token itself never goes into a cookie, and every page that shows
-- links carrying it must not be cached (spec 3.15.2): no_store().
--
--   lua_shared_dict billetterie_sessions 1m;             # nginx.conf
--
--   local ngx_session = require "billetterie.ngx_session"
--   local sessions = ngx_session.new{ dict = ngx.shared.billetterie_sessions,
--                                     cookie = "billetterie_sid", ttl = 1800 }
--   sessions:start({ token = s.token, name = "..." }, s:remaining())  -- after login: a new id, Set-Cookie
--   local data = sessions:get()        -- the visitor's table, or nil; extends the session
--   sessions:destroy()                                 -- logout: entry and cookie gone
--   ngx_session.no_store()                             -- Cache-Control: no-store
local json = require "billetterie.json"
local errors = require "billetterie.error"
local cache = require "billetterie.cache"

local M = {}
M.__index = M

-- 16 random bytes from the kernel, as 32 hex digits. (The sandbox's
-- hex_reader in lua/billetterie/sandbox/init.lua does the same for its
-- tokens; the two are kept apart: the sandbox is not loaded in nginx.)
function M.random_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

-- Adds a Set-Cookie header to those the response already has, replacing
-- one already set for the same cookie name (the last word wins, and only
-- one is sent).
function M.add_cookie(cookie)
  local name = cookie:match("^([^=]*)=")
  local h = ngx.header["Set-Cookie"]
  if type(h) == "string" then h = { h } end
  local out = {}
  for _, c in ipairs(h or {}) do
    if c:match("^([^=]*)=") ~= name then out[#out + 1] = c end
  end
  out[#out + 1] = cookie
  ngx.header["Set-Cookie"] = #out == 1 and out[1] or out
end

-- True when the visitor's request came over https (cookies get Secure).
function M.https()
  return ngx.var.scheme == "https"
end

-- Headers of a page that holds a session token (in links, say): no cache,
-- no proxy, no browser history copy may keep it.
function M.no_store()
  ngx.header["Cache-Control"] = "no-store"
  ngx.header["Pragma"] = "no-cache"
end

-- new{ dict = ngx.shared.NAME, cookie = "billetterie_sid", ttl = 1800,
--      secure = nil (true when the request came over https), path = "/" }
function M.new(opts)
  if type(opts) ~= "table" or opts.dict == nil then
    error("ngx_session.new needs { dict = ngx.shared.NAME }", 2)
  end
  local ttl = opts.ttl or 1800
  -- whole seconds (cookies' Max-Age, the dict's expire): a dict reads a TTL
  -- of 0, NaN, inf or one too large as "never expires"
  if not cache.valid_ttl(ttl) or ttl < 1 then
    error("ngx_session.new: ttl must be a number of seconds from 1 to a year", 2)
  end
  local cookie = opts.cookie or "billetterie_sid"
  if not cookie:match("^[%w_]+$") then error("ngx_session.new: cookie must be a plain name", 2) end
  return setmetatable({ dict = opts.dict, cookie = cookie, ttl = ttl, secure = opts.secure,
                        path = opts.path or "/" }, M)
end

local function valid_id(id)
  return type(id) == "string" and #id == 32 and not id:find("[^0-9a-f]")
end

function M:_id()
  local id = ngx.var["cookie_" .. self.cookie]
  if valid_id(id) then return id end
end

function M:_set_cookie(id, max_age)
  local secure = self.secure
  if secure == nil then secure = M.https() end
  M.add_cookie(("%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s"):format(
    self.cookie, id, self.path, max_age, secure and "; Secure" or ""))
end

-- The visitor's data, or nil (no cookie, unknown or expired id). Each use
-- extends the session (sliding expiry) to the store's ttl, never past the
-- vendor session's end when start() was told it; the cookie follows.
function M:get()
  local id = self:_id()
  if not id then return nil end
  local text = self.dict:get("s:" .. id)
  if type(text) ~= "string" then return nil end
  local entry = json.decode(text)
  if type(entry) ~= "table" or type(entry.d) ~= "table" then return nil end
  local ttl = self.ttl
  if entry.u then ttl = math.min(ttl, entry.u - ngx.time()) end
  ttl = math.floor(ttl)
  if ttl <= 0 then
    self.dict:delete("s:" .. id)
    return nil
  end
  if self.dict:expire("s:" .. id, ttl) then self:_set_cookie(id, ttl) end
  return entry.d
end

-- Starts a session holding `data` (a table of strings, numbers, booleans)
-- under a fresh id, dropping the visitor's previous one (no fixation).
-- vendor_remaining: seconds the vendor's session has left (s:remaining()),
-- if known: the visitor's never outlives it. -> true | nil, err (a
-- billetterie error: vendor 605 with is_local when the vendor's session
-- has no time left, as a call on it would give; invalid_param for data
-- JSON cannot hold; http 503, retryable, when the shared dict is full)
function M:start(data, vendor_remaining)
  if vendor_remaining ~= nil and (type(vendor_remaining) ~= "number" or vendor_remaining ~= vendor_remaining) then
    error("ngx_session:start: vendor_remaining must be a number of seconds", 2)
  end
  local ttl = math.floor(math.min(vendor_remaining or self.ttl, self.ttl))
  if vendor_remaining and vendor_remaining < 1 then
    -- a vendor session closed or expired: the error a call on it gives (session.lua)
    return nil, errors.new{ kind = "vendor", code = 605, ws = "ngx_session", retryable = false, is_local = true,
                            message = "the vendor session has no time left (closed or expired): log in again" }
  end
  if ttl <= 0 then
    return nil, errors.new{ kind = "invalid_param", ws = "ngx_session", retryable = false,
                            message = "the session has no time left" }
  end
  local text, err = json.encode{ d = data, u = vendor_remaining and ngx.time() + math.floor(vendor_remaining) or nil }
  if not text then
    return nil, errors.new{ kind = "invalid_param", ws = "ngx_session", retryable = false,
                            message = "the session data cannot be stored: " .. tostring(err) }
  end
  local old = self:_id()
  if old then self.dict:delete("s:" .. old) end
  local id = M.random_id()
  -- safe_set: never evict other visitors' sessions to make room
  local ok, why = self.dict:safe_set("s:" .. id, text, ttl)
  if not ok then
    return nil, errors.new{ kind = "http", http_status = 503, ws = "ngx_session", retryable = true,
                            message = "cannot store the session: " .. tostring(why) }
  end
  self:_set_cookie(id, ttl)
  return true
end

-- Ends the visitor's session: its entry is deleted and the cookie expired.
function M:destroy()
  local id = self:_id()
  if id then self.dict:delete("s:" .. id) end
  self:_set_cookie("deleted", 0)
end

return M
