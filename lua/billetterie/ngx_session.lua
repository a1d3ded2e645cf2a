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
--   sessions:start{ token = s.token, name = "..." }   -- after login: a new id, Set-Cookie
--   local data = sessions:get()                        -- the visitor's table, or nil
--   sessions:destroy()                                 -- logout: entry and cookie gone
--   ngx_session.no_store()                             -- Cache-Control: no-store
local json = require "billetterie.json"

local M = {}
M.__index = M

-- 16 random bytes from the kernel, as 32 hex digits.
function M.random_id()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

-- Appends a Set-Cookie header to those the response already has.
function M.add_cookie(cookie)
  local h = ngx.header["Set-Cookie"]
  if h == nil then
    ngx.header["Set-Cookie"] = cookie
  elseif type(h) == "table" then
    h[#h + 1] = cookie
    ngx.header["Set-Cookie"] = h
  else
    ngx.header["Set-Cookie"] = { h, cookie }
  end
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
  if type(ttl) ~= "number" or ttl <= 0 then error("ngx_session.new: ttl must be a positive number", 2) end
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
  if secure == nil then secure = ngx.var.scheme == "https" end
  M.add_cookie(("%s=%s; Path=%s; Max-Age=%d; HttpOnly; SameSite=Lax%s"):format(
    self.cookie, id, self.path, max_age, secure and "; Secure" or ""))
end

-- The visitor's data, or nil (no cookie, unknown or expired id).
function M:get()
  local id = self:_id()
  if not id then return nil end
  local text = self.dict:get("s:" .. id)
  if type(text) ~= "string" then return nil end
  return (json.decode(text))
end

-- Starts a session holding `data` (a table of strings, numbers, booleans)
-- under a fresh id, dropping the visitor's previous one (no fixation).
-- ttl: seconds, at most the store's (pass the vendor session's remaining
-- time). -> true | nil, err
function M:start(data, ttl)
  local text, err = json.encode(data)
  if not text then return nil, err end
  ttl = math.floor(math.min(ttl or self.ttl, self.ttl))
  if ttl <= 0 then return nil, "the session has no time left" end
  local old = self:_id()
  if old then self.dict:delete("s:" .. old) end
  local id = M.random_id()
  local ok, why = self.dict:set("s:" .. id, text, ttl)
  if not ok then return nil, "cannot store the session: " .. tostring(why) end
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
