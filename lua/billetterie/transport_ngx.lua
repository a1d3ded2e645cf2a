-- A non-blocking transport for OpenResty: each request is a subrequest
-- (ngx.location.capture) to an internal location that proxy_passes to the
-- target URL, so nginx's own upstream machinery does the I/O and the
-- worker never blocks. libcurl is never called.
--
--   local t = require("billetterie.transport_ngx").new{ location = "/_billetterie_upstream" }
--   local c = billetterie.new{ url = ..., transport = t }
--
-- The location (docs/openresty.md has it with TLS verification):
--
--   upstream billetterieweb.fr { server billetterieweb.fr:443; keepalive 16; }
--   # the request headers a call may set, with their defaults (http level)
--   map "" $billetterie_content_type  { default "application/x-www-form-urlencoded"; }
--   map "" $billetterie_accept        { default "application/json, application/xml;q=0.9, */*;q=0.1"; }
--   map "" $billetterie_authorization { default ""; }
--   map "" $billetterie_soapaction    { default ""; }
--   location = /_billetterie_upstream {
--     internal;
--     set $billetterie_target $billetterie_target;
--     # the probe: this location answers it itself (see probe below)
--     if ($billetterie_target = "billetterie:probe") { return 200 "billetterie-upstream"; }
--     proxy_pass $billetterie_target;        # the full URL, set by this transport
--     # the vendor's answer never redirects into this server's locations
--     proxy_ignore_headers X-Accel-Redirect X-Accel-Expires X-Accel-Limit-Rate X-Accel-Buffering X-Accel-Charset;
--     proxy_http_version 1.1;                # with the upstream block named after
--     proxy_set_header Connection "";        # the URL's host: a keep-alive pool
--     proxy_pass_request_headers off;        # never the visitor's headers or cookies
--     proxy_set_header Content-Type  $billetterie_content_type;
--     proxy_set_header Accept        $billetterie_accept;
--     proxy_set_header Authorization $billetterie_authorization;  # empty: not sent
--     proxy_set_header SOAPAction    $billetterie_soapaction;
--   }
--
-- `set $billetterie_target $billetterie_target;` in that location declares
-- the variable and keeps the value passed in (a `set ... ""` there or at
-- server level would run in the subrequest and overwrite it).
--
-- Request headers (req.headers, a list of "Name: value" as libcurl takes
-- them; S-360 sends them): only those of HEADER_VARS below, each through its
-- nginx variable (the subrequest's `vars`), which the location sends with
-- proxy_set_header. The `map "" $v { default ...; }` lines declare the
-- variables with the value a call that does not set them gets: L@billetterie's
-- form calls set none (their vars hold the URL only, as before), so they go
-- out as application/x-www-form-urlencoded; an empty value is not sent.
-- Another header name is an error value, never dropped silently; values
-- never appear in error messages (Authorization holds a bearer token).
--
-- transport:request(req) returns what the curl transport returns:
--   status, body, content_type, errkind, errmsg, request_id, retry_after
-- Error mapping (nginx answers for the upstream when it could not reach it):
--   * 502 or 504 with no upstream answer (truncated, empty body: nginx's
--     own error) -> status 0, errkind "network" (502: refused, reset, DNS,
--     TLS) or "timeout" (504: proxy_connect_timeout / proxy_read_timeout);
--   * a body cut short (res.truncated) -> "network";
--   * a body longer than req.max_size -> "too_large";
--   * any other status, 502/504 included when the vendor itself sent them,
--     comes back as is (the client turns >= 400 into an "http" error).
-- Refused before anything is sent (errkind "setup"): a URL that is not
-- http(s) or holds a space or control character (nginx would write it into
-- the request line), a location that does not answer the probe (below). A
-- POST without a body sends an empty one (given none, a subrequest forwards
-- the visitor's own body); a GET or HEAD sends none.
-- Timeouts are nginx's: proxy_connect_timeout and proxy_read_timeout in the
-- location (the per-client timeout option cannot change them per request).
local M = {}
M.__index = M

local METHODS  -- filled on first use: ngx is only there inside nginx

local function methods()
  if not METHODS then
    METHODS = { GET = ngx.HTTP_GET, POST = ngx.HTTP_POST, PUT = ngx.HTTP_PUT,
                DELETE = ngx.HTTP_DELETE, HEAD = ngx.HTTP_HEAD }
  end
  return METHODS
end

-- new{ location = "/_billetterie_upstream", variable = "billetterie_target" }
function M.new(opts)
  opts = opts or {}
  if opts.location ~= nil and (type(opts.location) ~= "string" or opts.location:sub(1, 1) ~= "/") then
    error("transport_ngx.new: location must be a path such as /_billetterie_upstream", 2)
  end
  return setmetatable({
    location = opts.location or "/_billetterie_upstream",
    variable = opts.variable or "billetterie_target",
  }, M)
end

-- Header name (lower case) -> the nginx variable the location sends it from.
local HEADER_VARS = {
  ["content-type"] = "billetterie_content_type",
  accept = "billetterie_accept",
  authorization = "billetterie_authorization",
  soapaction = "billetterie_soapaction",
}
M.HEADER_VARS = HEADER_VARS

-- Adds req.headers to the subrequest's vars. -> true | nil, message (which
-- names the header, never its value).
local function header_vars(vars, headers)
  for i = 1, #headers do
    local h = headers[i]
    local name, value = tostring(h):match("^([%w%-]+):[ \t]*(.-)[ \t]*$")
    if not name then return nil, ("request header %d is not \"Name: value\""):format(i) end
    local var = HEADER_VARS[name:lower()]
    if not var then
      return nil, "transport_ngx does not pass the request header " .. name
        .. " (only Content-Type, Accept, Authorization, SOAPAction: see docs/openresty.md)"
    end
    -- nginx would send a line break as is: a header injection
    if value:find("[\r\n]") then return nil, "request header " .. name .. " holds a line break" end
    vars[var] = value
  end
  return true
end

local function header(headers, name)
  local v = headers[name]
  if type(v) == "table" then v = v[1] end
  return v
end

-- No upstream answer: when nginx could not reach the upstream (refused,
-- reset, DNS failure, proxy timeout), the subrequest ends with its own
-- 502/504, an empty body and truncated set; a 502/504 the vendor sent has
-- its body and is not truncated.
local function unanswered(res)
  return res.truncated == true and (res.body == nil or res.body == "")
end

-- The probe: without the upstream location, the subrequest would land in
-- the site's own catch-all location and hand it the credentials. Before the
-- first call through a location, each worker sends it this target with no
-- body, and the location must answer PROBE_ANSWER itself (docs/openresty.md):
--   if ($billetterie_target = "billetterie:probe") { return 200 "billetterie-upstream"; }
-- An application or proxy behind another location does not answer that.
local PROBE, PROBE_ANSWER = "billetterie:probe", "billetterie-upstream"
M.PROBE, M.PROBE_ANSWER = PROBE, PROBE_ANSWER
local probed = {}   -- location .. " " .. variable -> true once it answered

local function capture_error(res, with_headers)
  local msg = "ngx.location.capture failed: " .. tostring(res)
  -- a configuration from before the header variables (nginx's error log
  -- names the one missing: "cannot be assigned a value")
  if with_headers and msg:find("failed to adjust the subrequest", 1, true) then
    msg = msg .. " (does the nginx configuration declare $billetterie_content_type, $billetterie_accept, "
      .. "$billetterie_authorization and $billetterie_soapaction? see docs/openresty.md)"
  end
  return msg
end

-- -> true | nil, message
local function probe(self)
  local key = self.location .. " " .. self.variable
  if probed[key] then return true end
  local ok, res = pcall(ngx.location.capture, self.location,
    { method = ngx.HTTP_GET, vars = { [self.variable] = PROBE } })
  if not ok then return nil, capture_error(res) end
  if res.status ~= 200 or res.body ~= PROBE_ANSWER then
    return nil, "the location " .. self.location .. " is not billetterie's upstream location (it did not answer "
      .. "the probe: is it missing? nothing was sent; see docs/openresty.md)"
  end
  probed[key] = true
  return true
end

function M:request(req)
  -- read everything from req before yielding: the client reuses it
  local url, method, body, max_size, file = req.url, req.method or "POST", req.body, req.max_size, req.file
  local headers = req.headers
  local m = methods()[method:upper()]
  if not m then return 0, nil, nil, "setup", "unsupported method " .. tostring(method) end
  -- nginx would write a space or line break of the URL into the request
  -- line: a header injection
  if type(url) ~= "string" or not url:match("^https?://") or url:find("[%s%c]") then
    return 0, nil, nil, "setup", "the URL must be http(s):// without spaces or control characters"
  end
  -- proxy_pass takes no user:password@ (nginx refuses it and logs the
  -- whole address, password included): as libcurl does with it, it goes
  -- as HTTP Basic authentication, and the address without it
  local scheme, userinfo, rest = url:match("^(https?://)([^/?#]*)@(.*)$")
  if userinfo then url = scheme .. rest end
  local vars = { [self.variable] = url }
  local with_headers = headers ~= nil and headers[1] ~= nil
  if with_headers then
    local ok, err = header_vars(vars, headers)
    if not ok then return 0, nil, nil, "setup", err end
  end
  if userinfo then
    if vars[HEADER_VARS.authorization] then
      return 0, nil, nil, "setup", "the URL's user:password@ and an Authorization header cannot both be sent"
    end
    -- %XX decoded only, as libcurl does (ngx.unescape_uri would make a '+' a space)
    local plain = userinfo:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    vars[HEADER_VARS.authorization] = "Basic " .. ngx.encode_base64(plain)
    with_headers = true
  end
  local options = { method = m, vars = vars }
  if m ~= ngx.HTTP_GET and m ~= ngx.HTTP_HEAD then
    -- never nil: the subrequest would forward the visitor's own body
    options.body = body or ""
  end
  local probed_ok, why = probe(self)
  if not probed_ok then return 0, nil, nil, "setup", why end
  local ok, res = pcall(ngx.location.capture, self.location, options)
  if not ok then
    local msg = capture_error(res, with_headers)
    return 0, nil, nil, "setup", msg
  end
  local status = res.status or 0
  -- messages name the address without its query: a GET carries credentials there
  local where = url and url:match("^[^?#]*") or "?"
  if (status == 502 or status == 504) and unanswered(res) then
    if status == 504 then
      return 0, nil, nil, "timeout", "timed out reaching " .. where .. " (nginx answered 504)"
    end
    return 0, nil, nil, "network", "could not reach " .. where .. " (nginx answered 502)"
  end
  local request_id = header(res.header, "X-Request-Id")
  if res.truncated then
    return status, nil, nil, "network", "the answer from " .. where .. " was cut short", request_id
  end
  local data = res.body or ""
  if max_size and #data > max_size then
    return status, nil, nil, "too_large", ("the answer is larger than max_size (%d bytes)"):format(max_size),
      request_id
  end
  local content_type = header(res.header, "Content-Type")
  if file then
    local f, err = io.open(file, "wb")
    if not f then return status, nil, content_type, "network", "cannot write " .. file .. ": " .. tostring(err) end
    local wrote, werr = f:write(data)
    local closed, cerr = f:close()
    if not wrote or not closed then   -- a full disk: a cut file must not pass for the answer
      return status, nil, content_type, "network", "cannot write " .. file .. ": " .. tostring(werr or cerr)
    end
    data = ""
  end
  return status, data, content_type, nil, nil, request_id,
    status >= 400 and header(res.header, "Retry-After") or nil
end

-- True when a request handler is running: the phases where
-- ngx.location.capture may be called.
local CAPTURE_PHASES = { rewrite = true, access = true, content = true }
function M.available()
  if type(ngx) ~= "table" or type(ngx.location) ~= "table" or type(ngx.get_phase) ~= "function" then
    return false
  end
  local ok, phase = pcall(ngx.get_phase)
  return ok and CAPTURE_PHASES[phase] == true
end

return M
