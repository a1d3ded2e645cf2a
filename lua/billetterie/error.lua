-- The one error value of the SDK. Expected failures come back as
-- `nil, err` (as OpenResty libraries do); err is a table:
--   kind        "vendor" | "http" | "network" | "timeout" | "decode" | "invalid_param"
--   code        the vendor's code (904, 3...) or nil
--   message     readable text, never holding a secret (scrubbed in every
--               encoding an echoed request may use, then cut to 300 bytes)
--   ws          the web service name
--   http_status the HTTP status when there was an answer
--   retryable   true when repeating the same request may succeed
--   request_id  the server's X-Request-Id when it sent one
--   detail      extra vendor text (retour.detail, erreur.détail) when present
--   param       the offending parameter for invalid_param
--   payload     what a vendor ko still carried (per-item results), if anything,
--               its secret fields (web_passe...) masked as "***"
--   attempts    how many times the request was sent (retries included)
--   partial     true when the vendor says part of the request succeeded
--               (1111: the successes are in payload)
--   retry_after the seconds the server asked to wait (Retry-After of a 429
--               or 503), when it said so
-- tostring(err) gives one readable line.
local error_mt = {}
error_mt.__index = error_mt

local KINDS = { vendor = true, http = true, network = true, timeout = true,
                decode = true, invalid_param = true }

-- Vendor codes that mean "try again later": 5 no communication with the
-- server, 7 site in maintenance (annex 4.2).
local RETRYABLE_CODES = { [5] = true, [7] = true }
-- 429 "too many requests": nothing was done, later may succeed.
local RETRYABLE_HTTP = { [429] = true, [502] = true, [503] = true, [504] = true }

-- Never raises, whatever a field holds (a table from an odd answer, say).
local function describe(e)
  local parts = { "billetterie" }
  if e.ws ~= nil then parts[#parts + 1] = tostring(e.ws) end
  local head = tostring(e.kind) .. " error"
  if e.code ~= nil then head = head .. " " .. tostring(e.code) end
  parts[#parts + 1] = head
  local line = table.concat(parts, ": ") .. ": " .. tostring(e.message)
  if e.detail ~= nil and e.detail ~= "" then line = line .. " (" .. tostring(e.detail) .. ")" end
  if e.http_status ~= nil and e.kind ~= "vendor" then line = line .. " [HTTP " .. tostring(e.http_status) .. "]" end
  if e.request_id ~= nil then line = line .. " [request " .. tostring(e.request_id) .. "]" end
  return line
end
error_mt.__tostring = describe

local core  -- loaded on the first scrub (form_escape, as the request was encoded)

local function percent(s, keep, space)
  return (s:gsub("[^%w" .. keep .. "]", function(c)
    if c == " " and space then return space end
    return ("%%%02X"):format(c:byte())
  end))
end

-- JSON escapes of a text: cjson's (\/ and \u00XX for controls), without \/,
-- and with every non-ASCII character as \uXXXX (UTF-16, as some encoders do).
local JSON_SHORT = { ['"'] = '\\"', ["\\"] = "\\\\", ["/"] = "\\/", ["\b"] = "\\b", ["\f"] = "\\f",
                     ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function json_forms(s)
  local base = s:gsub('[%c"\\/]', function(c) return JSON_SHORT[c] or ("\\u%04x"):format(c:byte()) end)
  local ascii = base:gsub("[\xC2-\xF4][\x80-\xBF]+", function(ch)
    local b1, n = ch:byte(1), #ch
    local cp = b1 % (n == 2 and 32 or n == 3 and 16 or 8)
    for i = 2, n do cp = cp * 64 + ch:byte(i) % 64 end
    if cp < 0x10000 then return ("\\u%04x"):format(cp) end
    cp = cp - 0x10000
    return ("\\u%04x\\u%04x"):format(0xD800 + math.floor(cp / 1024), 0xDC00 + cp % 1024)
  end)
  return { base, (base:gsub("\\/", "/")), ascii, (ascii:gsub("\\u(%x+)", function(h) return "\\u" .. h:upper() end)) }
end

local XML_MIN = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" }
local XML_ALL = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }
local XML_NUM = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&#34;", ["'"] = "&#39;" }

-- Every way a secret may come back in an answer that echoes the request:
-- as it is, form-encoded (how it was sent: + or %20 for a space, upper or
-- lower hex), percent-encoded, XML/HTML-escaped, JSON-escaped. Longest first.
local function forms(s)
  core = core or require "billetterie.core"
  local list, seen = {}, {}
  local function add(f)
    if not seen[f] then seen[f] = true; list[#list + 1] = f end
  end
  local encoded = { core.form_escape(s), percent(s, "%-%._~", "+"), percent(s, "%-%._~") }
  encoded[#encoded + 1] = (encoded[1]:gsub("%+", "%%20"))
  add(s)
  for _, f in ipairs(encoded) do
    add(f); add((f:gsub("%%%x%x", string.lower)))
  end
  add((s:gsub("[&<>]", XML_MIN)))
  add((s:gsub("[&<>\"]", XML_ALL)))
  add((s:gsub("[&<>\"']", XML_ALL)))
  add((s:gsub("[&<>\"']", XML_NUM)))
  for _, f in ipairs(json_forms(s)) do add(f) end
  table.sort(list, function(a, b) return #a > #b end)
  return list
end

-- Every occurrence of f (plain text) in text replaced by ***, in one pass
-- (a large echoed body must not cost a copy per occurrence).
local function replace_all(text, f)
  if not text:find(f, 1, true) then return text end
  return (text:gsub(f:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0"), "***"))
end

-- Removes every known secret value, in each of its encoded forms, from a
-- text. Secrets shorter than four characters are not scrubbed (they would
-- mangle ordinary words) but such secrets are refused by the client anyway.
local function scrub(text, secrets)
  if type(text) ~= "string" or not secrets then return text end
  for i = 1, #secrets do
    local s = secrets[i]
    if type(s) == "string" and #s >= 4 then
      for _, f in ipairs(forms(s)) do text = replace_all(text, f) end
    end
  end
  return text
end

-- Longest message or detail an error keeps (scrubbed first, then cut).
local MAX_TEXT = 300

local function shorten(text)
  if type(text) == "string" and #text > MAX_TEXT then return text:sub(1, MAX_TEXT - 3) .. "..." end
  return text
end

local M = { KINDS = KINDS }

-- new{ kind=, message=, ... } -> err. `secrets` (a list of secret values)
-- is used to scrub the texts and is not kept.
function M.new(fields, secrets)
  assert(KINDS[fields.kind], "unknown error kind")
  local e = setmetatable({}, error_mt)
  for k, v in pairs(fields) do e[k] = v end
  local message = e.message or e.kind
  e.message = shorten(scrub(type(message) == "string" and message or tostring(message), secrets))
  e.detail = shorten(scrub(e.detail, secrets))
  if e.retryable == nil then
    e.retryable = (e.kind == "network" or e.kind == "timeout")
      or (e.kind == "http" and RETRYABLE_HTTP[e.http_status] == true)
      or (e.kind == "vendor" and RETRYABLE_CODES[e.code] == true)
  end
  return e
end

function M.is(value)
  return getmetatable(value) == error_mt
end

M.scrub = scrub

-- A site behind HTTP authentication may be given as http://user:pw@host/.
-- url_password(url) -> the userinfo's password, as written and
-- percent-decoded (both to scrub) | nil
function M.url_password(url)
  local pw = type(url) == "string" and url:match("^https?://[^/@]-:([^/@]*)@")
  if not pw or pw == "" then return nil end
  return pw, (pw:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- A user or password holding '/', '?' or '#' unencoded ends the address's
-- authority early: the password would be taken for a host and port, or
-- for a path, and escape the masking. So a base URL (a site's, not a
-- page's) with a port that is not a number, or with an '@' after its
-- authority, is refused. -> message (never the URL) | nil
function M.url_problem(url)
  if type(url) ~= "string" then return nil end
  local authority, rest = url:match("^https?://([^/?#]*)(.*)$")
  if not authority then return nil end
  local _, ats = authority:gsub("@", "")
  if ats > 1 then
    return "the URL's user or password holds an '@': it must be percent-encoded (%40)"
  end
  if ats == 0 and rest:find("@", 1, true) then
    return "the URL holds an '@' after its host: a user or password holding '/', '?' or '#' must be "
      .. "percent-encoded (%2F, %3F, %23), and an '@' of the path as %40"
  end
  local hostport = authority:match("@([^@]*)$") or authority
  local port = hostport:match("^%[.-%]:(.*)$")
  if not port and not hostport:find("^%[") then port = hostport:match(":(.*)$") end
  if port and not port:match("^%d*$") then
    return "the URL's port is not a number: a user or password holding '/', '?' or '#' must be "
      .. "percent-encoded (%2F, %3F, %23)"
  end
  return nil
end

-- The URL as it may be shown: the userinfo's password as ***.
function M.shown_url(url)
  return (url:gsub("^(https?://[^/@:]*):[^/@]*@", "%1:***@", 1))
end

-- The fields of an error for a transport failure (errkind and errmsg as
-- transport:request returns them; status 0 when nothing was answered), for
-- every client alike: { kind, message, retryable, http_status }.
function M.from_transport(errkind, errmsg, status)
  local kind, message, retryable = "network", errmsg, nil
  if errkind == "timeout" then
    kind = "timeout"
  elseif errkind == "tls" then
    message = errmsg .. " (TLS verification failed: give the CA bundle that signs this server with the cainfo or capath option)"
    retryable = false
  elseif errkind == "too_large" then
    kind, retryable = "http", false
  elseif errkind == "setup" then   -- the transport's configuration: retrying cannot help
    retryable = false
  end
  return { kind = kind, message = message, retryable = retryable, http_status = status ~= 0 and status or nil }
end

-- Retry-After (RFC 9110 10.2.3): delta-seconds, or an HTTP-date (IMF-fixdate,
-- always GMT) read against `now` (epoch seconds). -> seconds >= 0 | nil
-- for a missing or unreadable value (then the client's own backoff applies).
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }
-- Days from 1970-01-01 to y-m-d in the proleptic Gregorian calendar (no
-- os.time: it reads a date as local time).
local function days_from_epoch(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end
function M.retry_after(text, now)
  if type(text) ~= "string" then return nil end
  local digits = text:match("^%s*(%d+)%s*$")
  if digits then
    if #digits > 9 then return nil end   -- over 30 years: not a real request
    return tonumber(digits)
  end
  local d, mon, y, hh, mm, ss = text:match("^%s*%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT%s*$")
  local m = MONTHS[mon]
  if not m then return nil end
  d, y, hh, mm, ss = tonumber(d), tonumber(y), tonumber(hh), tonumber(mm), tonumber(ss)
  if d < 1 or d > 31 or hh > 23 or mm > 59 or ss > 60 then return nil end
  local at = days_from_epoch(y, m, d) * 86400 + hh * 3600 + mm * 60 + ss
  local wait = at - (now or os.time())
  return wait > 0 and wait or 0
end

-- Up to 160 characters of an unexpected body (its HTML title if it has
-- one), tags stripped, for messages. The secrets are scrubbed first: a cut
-- or a stripped tag must not leave part of one behind.
function M.excerpt(text, secrets)
  text = scrub(text, secrets)
  local title = text:match("<[Tt][Ii][Tt][Ll][Ee]>(.-)</[Tt][Ii][Tt][Ll][Ee]>")
  local s = title or text:gsub("<[^>]*>", " ")
  s = s:gsub("%s+", " "):gsub("^ ", "")
  if #s > 160 then s = s:sub(1, 157) .. "..." end
  return s
end

-- A copy of a payload kept on an error with the values of secret fields
-- (names: a set, as catalogue.secrets) masked, and the call's secret values
-- (`secrets`, a list) scrubbed from every other text: a vendor may echo a
-- contact's password in clear, under any key. Depth-bounded; other values
-- are shared.
function M.mask(value, names, secrets, depth)
  depth = depth or 0
  if type(value) == "string" then return scrub(value, secrets) end
  if type(value) ~= "table" or depth > 16 then return value end
  local copy = {}
  for k, v in pairs(value) do
    if names[k] and v ~= nil and type(v) ~= "table" and type(v) ~= "userdata" then copy[k] = "***"
    else copy[k] = M.mask(v, names, secrets, depth + 1) end
  end
  return setmetatable(copy, getmetatable(value))
end

return M
