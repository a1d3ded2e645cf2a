-- spec/support/echo_server.lua: a real HTTP server (billetterie.httpd in a
-- lua5.4 process of its own, so LuaJIT specs can use it too) for what the
-- clients make of odd answers.
--   local echo = require "spec.support.echo_server"
--   local srv = echo.start{ bodies = { name = { body = "...", status = 200, type = "text/html" } } }
--   srv.url .. "html500/"   -- /<mode>/...: an error page echoing the request (see MODES)
--   srv.url .. "name/"      -- /<name>/...: that fixed answer
--   srv:stop()
-- Echo modes show the request (method, path, form-encoded params, body) as a
-- proxy, a WAF or a vendor's error page might: html500[-PAD] (PAD x's first,
-- so a secret straddles the 160-character cut of an excerpt), html200,
-- text502, xmlesc (HTML, every & < > " ' escaped), pct20 (%20 for spaces),
-- pctlower (lower-case hex), badjson (cut-off JSON), jsonu (cut-off JSON
-- with \uXXXX escapes), soapfault (a SOAP 1.1 Server fault).
local M = {}

local SERVER = [==[
local httpd = require "billetterie.httpd"
local core = require "billetterie.core"
local cjson = require "cjson"
local bodies = assert(load("return " .. arg[1]))()
local function jsonu(s)
  local j = cjson.encode(s):sub(2, -2)
  return (j:gsub("[\xC2-\xF4][\x80-\xBF]+", function(ch)
    local b1, n = ch:byte(1), #ch
    local cp = b1 % (n == 2 and 32 or n == 3 and 16 or 8)
    for i = 2, n do cp = cp * 64 + ch:byte(i) % 64 end
    return ("\\u%04X"):format(cp)
  end))
end
local XML = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }
local srv = assert(httpd.new{ host = "127.0.0.1", port = 0, handler = function(req)
  local name = req.path:match("^/([%w_%-]+)/") or ""
  local fixed = bodies[name]
  if fixed then
    return fixed.status or 200, { ["Content-Type"] = fixed.type or "application/json" }, fixed.body
  end
  local parts = {}
  for _, kv in ipairs(req.params) do parts[#parts + 1] = core.form_escape(kv[1]) .. "=" .. core.form_escape(kv[2]) end
  local seen = req.method .. " " .. req.path .. " " .. table.concat(parts, "&") .. " " .. (req.body or "")
  local mode, pad = name:match("^(%a+)%-?(%d*)$")
  pad = ("x"):rep(tonumber(pad) or 0)
  if mode == "html500" then
    return 500, { ["Content-Type"] = "text/html" }, "<html><body><p>" .. pad .. seen .. "</p></body></html>"
  elseif mode == "html200" then
    return 200, { ["Content-Type"] = "text/html" }, "<html><body>" .. pad .. seen .. "</body></html>"
  elseif mode == "text502" then
    return 502, { ["Content-Type"] = "text/plain" }, pad .. seen
  elseif mode == "xmlesc" then
    return 500, { ["Content-Type"] = "text/html" },
      "<html><body>" .. pad .. seen:gsub("[&<>\"']", XML) .. "</body></html>"
  elseif mode == "pct20" then
    return 500, { ["Content-Type"] = "text/plain" }, pad .. seen:gsub("%+", "%%20")
  elseif mode == "pctlower" then
    return 500, { ["Content-Type"] = "text/plain" }, pad .. seen:gsub("%%%x%x", string.lower)
  elseif mode == "badjson" then
    return 200, { ["Content-Type"] = "application/json" },
      '{"retour": {"echo": "' .. pad .. cjson.encode(seen):sub(2, -2) .. '"'
  elseif mode == "jsonu" then
    return 200, { ["Content-Type"] = "application/json" }, '{"retour": {"echo": "' .. pad .. jsonu(seen) .. '"'
  elseif mode == "soapfault" then
    return 500, { ["Content-Type"] = "text/xml" }, '<?xml version="1.0"?><soapenv:Envelope '
      .. 'xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault>'
      .. '<faultcode>soapenv:Server</faultcode><faultstring>bad request: ' .. pad .. seen:gsub("[&<>]", XML)
      .. '</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>'
  end
  return 404, { ["Content-Type"] = "text/plain" }, "no such mode " .. name
end })
io.stdout:write(("http://127.0.0.1:%d/\n"):format(srv:port()))
io.stdout:flush()
srv:run()
]==]

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function serialize(v)
  if type(v) == "table" then
    local parts = {}
    for k, x in pairs(v) do parts[#parts + 1] = "[" .. serialize(k) .. "]=" .. serialize(x) end
    return "{" .. table.concat(parts, ",") .. "}"
  end
  if type(v) == "string" then return (("%q"):format(v):gsub("\n", "n")) end
  return tostring(v)
end

local read_file = require("spec.support.util").read   -- "" when missing

-- The 5.4 build of the C modules: billetterie.httpd exists only there.
local function cpath54()
  if not package.cpath:find("/jit/", 1, true) then return package.cpath end
  local own = {}
  for entry in package.cpath:gmatch("[^;]+") do
    if entry:find("/jit/", 1, true) then own[#own + 1] = (entry:gsub("/jit/", "/5.4/")) end
  end
  return table.concat(own, ";") .. ";;"   -- and lua5.4's own default path
end

-- start_script(code, args) -> srv { url, pid, stop }: code (a lua5.4
-- program that prints its URL "http://HOST:PORT/" first, then serves) run
-- in a process of its own with args (strings) as arg[1..]; name is for the
-- error raised when it does not start.
function M.start_script(code, args, name)
  local script, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local quoted = {}
  for i, a in ipairs(args or {}) do quoted[i] = q(a) end
  local pipe = io.popen(("unset LD_PRELOAD; LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s >%s 2>&1 & echo $!; wait $!"):format(
    q(package.path), q(cpath54()), q(script), table.concat(quoted, " "), q(out)))
  local pid = tonumber(pipe:read("*l"))
  local url
  for _ = 1, 250 do
    url = read_file(out):match("^(http://%S+/)")
    if url then break end
    os.execute("sleep 0.02")
  end
  local srv = { url = url, pid = pid }
  function srv.stop()
    if srv.stopped then return end
    srv.stopped = true
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
    os.remove(script)
    os.remove(out)
  end
  if not url then
    local text = read_file(out)
    srv.stop()
    error((name or "server") .. " did not start: " .. text, 2)
  end
  return srv
end

function M.start(opts)
  opts = opts or {}
  return M.start_script(SERVER, { serialize(opts.bodies or {}) }, "echo server")
end

-- serialize(v) -> Lua source that rebuilds v (tables of strings, numbers, booleans)
M.serialize = serialize

return M
