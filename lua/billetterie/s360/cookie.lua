-- The S-360 ticket-shop "remember me" cookie (seed: Contact API, "Remember
-- me cookie"), built from an authenticate result and a point of sales, and
-- read back.
--
--   cookie.build(auth, pos, opts) -> "Set-Cookie" value, name, value | nil, err
--     (err: a billetterie error of kind invalid_param; a wrong option type,
--     or an auth that is neither a table nor nil/false, is a programmer's
--     mistake and raises)
--     auth  the authenticate result: identification, uniqueToken; nil (a
--           failed authenticate returns nil, err) or a result whose
--           statusCode is not success gives nil, err
--     pos   a point of sales: a listAuthorizedPOS entry { id, saleChannelCode }
--           or { id = 12, sale_channel = "B2C" } or just its id (then
--           opts.sale_channel)
--     opts  institution (required; upper-cased), sale_channel, layout =
--           "seed" (default: the seed's four lines) | "compact" (one line,
--           no spaces), encode = "url" (default) | "raw" (compact only),
--           path ("/"), domain, max_age (seconds; default 30 days, false =
--           a session cookie), same_site ("Lax" | "Strict" | "None")
--   cookie.parse(text) -> { name, institution, sale_channel, pointOfSalesId,
--     rememberUniqueId, token, virtualOperator, attributes = {...} } | nil, err
--     text: a Set-Cookie value, a Cookie request header (several cookies),
--     or just the cookie's value; URL-encoded or raw, any whitespace; nil
--     (no Cookie header: ngx.var.http_cookie) gives nil, err. Another type
--     raises.
--
-- The seed gives the content, one pair per line, as
--   pointOfSalesId = "<pointOfSalesId>",
--   rememberUniqueId = "<ContactAuthenticationResult .identification>",
--   token = "<ContactAuthenticationResult .uniqueToken>",
--   virtualOperator = "<InstitutionCode>_<saleChannelCode>"
-- Line breaks, quotes, commas and spaces cannot travel raw in a Set-Cookie
-- header (RFC 6265 cookie-octets; nginx refuses CR/LF), so by default that
-- exact text is percent-encoded: decoding the value gives the seed's layout
-- byte for byte. HttpOnly and Secure are always set.
local errors = require "billetterie.error"

local cookie = {}

-- An expected failure: what was given cannot make (or is not) a cookie.
local function invalid(message)
  return nil, errors.new{ kind = "invalid_param", ws = "remember-me cookie", retryable = false, message = message }
end

local KEYS = { "pointOfSalesId", "rememberUniqueId", "token", "virtualOperator" }
local DEFAULT_MAX_AGE = 30 * 24 * 3600   -- remember-me tokens live at most one month
local MAX_HEADER = 32 * 1024   -- a Cookie header longer than this is not read
local MAX_CONTENT = 4096       -- a remember-me value is a few hundred bytes
local SAME_SITE = { Lax = true, Strict = true, None = true }

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function url_decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A code of the cookie name: letters, digits, - and _ only.
local function code(v, what)
  if type(v) == "number" and v == math.floor(v) then v = ("%d"):format(v) end
  if type(v) ~= "string" or not v:match("^[%w%-_]+$") then
    return nil, what .. " must be a code of letters, digits, - or _"
  end
  return v
end

-- A value put between double quotes: no quote, backslash or control char.
local function quoted_value(v, what)
  if type(v) == "number" and v == math.floor(v) then v = ("%d"):format(v) end
  if type(v) ~= "string" or v == "" then return nil, what .. " is missing" end
  if v:find('[%c"\\]') then return nil, what .. " holds a quote, backslash or control character" end
  return v
end

function cookie.name(institution, sale_channel)
  return "stx_rememberMe_" .. institution:upper() .. "_" .. sale_channel
end

-- The cookie's content, before encoding.
function cookie.content(fields, layout)
  local pairs_ = {}
  for i, k in ipairs(KEYS) do
    if layout == "compact" then
      pairs_[i] = ('%s="%s"'):format(k, fields[k])
    else
      pairs_[i] = ('%s = "%s"'):format(k, fields[k])
    end
  end
  return table.concat(pairs_, layout == "compact" and "," or ",\n")
end

function cookie.build(auth, pos, opts)
  opts = opts or {}
  -- a failed authenticate gave nil, err: an ordinary outcome, not a mistake
  if auth == nil or auth == false then
    return invalid("no authenticate result (authentication failed?): no remember-me cookie to build")
  end
  if type(auth) ~= "table" then error("cookie.build: auth must be the authenticate result", 2) end
  if auth.statusCode ~= nil and auth.statusCode ~= "success" then
    return invalid("the authentication did not succeed (statusCode " .. tostring(auth.statusCode)
      .. "): no remember-me cookie to build")
  end
  local layout, encode = opts.layout or "seed", opts.encode or "url"
  if layout ~= "seed" and layout ~= "compact" then error("cookie.build: layout must be seed or compact", 2) end
  if encode ~= "url" and encode ~= "raw" then error("cookie.build: encode must be url or raw", 2) end
  if encode == "raw" and layout ~= "compact" then
    error("cookie.build: the seed layout has line breaks and spaces, which cannot be sent raw", 2)
  end
  local pos_id, channel = pos, opts.sale_channel
  if type(pos) == "table" then
    pos_id = pos.id or pos.pointOfSalesId
    channel = channel or pos.saleChannelCode or pos.sale_channel
  end
  local institution, err = code(opts.institution, "institution")
  if not institution then return invalid(err) end
  -- virtualOperator is <InstitutionCode>_<saleChannelCode>: read back, it
  -- splits at its first "_" (an institution code is a DNS label: no "_")
  if institution:find("_", 1, true) then
    return invalid("institution must be a code of letters, digits or - (no _)")
  end
  channel, err = code(channel, "the sale channel code")
  if not channel then return invalid(err) end
  local fields = { virtualOperator = institution:upper() .. "_" .. channel }
  fields.pointOfSalesId, err = quoted_value(pos_id, "the point of sales id")
  if not fields.pointOfSalesId then return invalid(err) end
  fields.rememberUniqueId, err = quoted_value(auth.identification, "identification (authenticate with rememberMe = true)")
  if not fields.rememberUniqueId then return invalid(err) end
  fields.token, err = quoted_value(auth.uniqueToken, "uniqueToken (authenticate with rememberMe = true)")
  if not fields.token then return invalid(err) end

  local content = cookie.content(fields, layout)
  local value = content
  if encode == "url" then
    value = url_encode(content)
  elseif value:find("[%s;\\]") then
    return invalid("a value holds characters a raw cookie cannot carry: use encode = \"url\"")
  end
  local name = cookie.name(institution, channel)
  local path = opts.path or "/"
  if type(path) ~= "string" or not path:match("^/[^%c;]*$") then
    error("cookie.build: path must start with / and hold no ; or control character", 2)
  end
  local parts = { name .. "=" .. value, "Path=" .. path }
  if opts.domain then
    if type(opts.domain) ~= "string" or not opts.domain:match("^%.?[%w%-%.]+$") then
      error("cookie.build: domain must be a host name", 2)
    end
    parts[#parts + 1] = "Domain=" .. opts.domain
  end
  local max_age = opts.max_age
  if max_age == nil then max_age = DEFAULT_MAX_AGE end
  if max_age then
    if type(max_age) ~= "number" or max_age < 0 or max_age ~= math.floor(max_age) or max_age == math.huge then
      error("cookie.build: max_age must be a whole number of seconds (0 or more) or false", 2)
    end
    parts[#parts + 1] = ("Max-Age=%d"):format(max_age)
  end
  if opts.same_site then
    if not SAME_SITE[opts.same_site] then error("cookie.build: same_site must be Lax, Strict or None", 2) end
    parts[#parts + 1] = "SameSite=" .. opts.same_site
  end
  parts[#parts + 1] = "Secure"
  parts[#parts + 1] = "HttpOnly"
  return table.concat(parts, "; "), name, value
end

-- Reads the four pairs from the (decoded) content: key = "value" or
-- key=value, separated by commas and any whitespace. named: the content
-- came under a stx_rememberMe_ name.
local function read_content(content, named)
  local out = {}
  -- from word starts only (%f): a long run of letters costs its length once
  for k, rest in content:gmatch('%f[%a](%a+)%s*=%s*(%b"")') do out[k] = rest:sub(2, -2) end
  local found, missing = 0, nil
  for _, k in ipairs(KEYS) do
    if out[k] == nil then   -- a whole key: "csrftoken=" is no token
      local v = content:match("%f[%w]" .. k .. '%s*=%s*([^,;%s"]+)')
      out[k] = v
    end
    if out[k] == nil then missing = missing or k else found = found + 1 end
  end
  -- not a remember-me cookie at all (a Cookie header of other cookies, one
  -- of them maybe named token), which is not the same as a damaged one
  if found == 0 and named then return nil, "the remember-me cookie is damaged: none of its four fields" end
  if found == 0 or (found == 1 and not named) then
    return nil, "no remember-me cookie (stx_rememberMe_...) in what was given"
  end
  if missing then return nil, "the remember-me cookie has no " .. missing end
  return out
end

-- The attributes a Set-Cookie value may carry after its pair (RFC 6265 §4.1).
local ATTRIBUTES = { path = true, domain = true, ["max-age"] = true, expires = true, secure = true,
                     httponly = true, samesite = true }

-- s without its leading and trailing whitespace, in one pass (a pattern
-- such as "%s+$" retries a run of spaces from each of its positions: a
-- visitor's header would cost its length squared)
local function trim(s)
  local first = s:find("%S")
  if not first then return "" end
  local last = #s
  local b = s:byte(last)
  while b == 32 or (b >= 9 and b <= 13) do
    last = last - 1
    b = s:byte(last)
  end
  return s:sub(first, last)
end

-- The pieces of `text` between `sep` (plain), each given to fn(piece,
-- start, stop) until fn returns true. One pass.
local function each_piece(text, sep, fn)
  local pos = 1
  while pos <= #text do
    local stop = text:find(sep, pos, true)
    if fn(text:sub(pos, (stop or #text + 1) - 1), pos, stop) or not stop then return end
    pos = stop + 1
  end
end

function cookie.parse(text)
  -- no Cookie header at all (ngx.var.http_cookie is nil): an ordinary request
  if text == nil then return invalid("no cookie (no Cookie header): no remember-me cookie") end
  if type(text) ~= "string" then error("cookie.parse needs a string (or nil)", 2) end
  -- a visitor's header: bounded (nginx's default allows 8 KB a line), and
  -- read in one pass, cookie by cookie
  if #text > MAX_HEADER then return invalid("the Cookie header is too long (no remember-me cookie read)") end
  -- a header's name, in any case, with spaces before its colon or not
  local head = text:sub(1, 64):lower()
  local request = false
  local after = head:match("^%s*set%-cookie%s*:%s*()")
  if not after then
    after = head:match("^%s*cookie%s*:%s*()")
    request = after ~= nil
  end
  if after then text = text:sub(after) end
  local name, value, attrs
  -- the stx_rememberMe_ pair among other cookies (after a ';', or a ','
  -- of folded Set-Cookie values), or the bare value
  each_piece(text, ";", function(piece, start, stop)
    local n, v = piece:match("^%s*(stx_rememberMe_[%w%-_]+)=(.*)$")
    local at = 1
    if not n then
      at = piece:find(",%s*stx_rememberMe_[%w%-_]+=")
      if at then n, v = piece:match("^,%s*(stx_rememberMe_[%w%-_]+)=(.*)$", at) end
    end
    if not n then return false end
    name, value, attrs = n, v, stop and text:sub(stop) or ""
    -- other cookies before it: a Cookie request header, which has no attributes
    if (text:sub(1, start - 1) .. piece:sub(1, at - 1)):find("[^%s,]") then request = true end
    return true
  end)
  if not name then value, attrs = text, "" end
  if #value > MAX_CONTENT then
    return invalid(name and "the remember-me cookie is damaged: too long"
      or "no remember-me cookie (stx_rememberMe_...) in what was given")
  end
  if request then attrs = "" end
  value = trim(value)
  -- RFC 6265 allows a value in double quotes
  local quoted = #value >= 2 and value:sub(1, 1) == '"' and value:sub(-1) == '"' and value:sub(2, -2)
  if quoted and quoted:match("^[%w%-%._~%%]+$") then value = quoted end
  -- only the encoded form is decoded: a raw value (quotes, =) is kept as is
  if value:find("%%%x%x") and value:match("^[%w%-%._~%%]+$") then value = url_decode(value) end
  local fields, err = read_content(value, name ~= nil)
  if not fields then return invalid(err) end
  local institution, channel = fields.virtualOperator:match("^([^_]+)_(.+)$")
  if name then
    local ni, nc = name:match("^stx_rememberMe_([^_]+)_(.+)$")
    if ni and (ni ~= institution or nc ~= channel) then
      return invalid("the cookie name " .. name .. " does not match virtualOperator " .. fields.virtualOperator)
    end
  end
  fields.name = name or (institution and cookie.name(institution, channel))
  fields.institution, fields.sale_channel = institution, channel
  fields.attributes = {}
  each_piece(attrs, ";", function(a)
    local eq = a:find("=", 1, true)
    local k, v = trim(eq and a:sub(1, eq - 1) or a), eq and trim(a:sub(eq + 1)) or true
    -- another cookie (name=value) is not an attribute of this one
    if ATTRIBUTES[k:lower()] then fields.attributes[k] = v end
    return false
  end)
  return fields
end

return cookie
