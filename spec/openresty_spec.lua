-- The OpenResty slice of issue 6: Debian's nginx with the Lua module runs
-- examples/openresty/nginx.conf (one worker) in front of a sandbox whose
-- ws_idsession answers 200 ms late, and the pages are driven with curl.
local sandbox = require "spec.support.sandbox"

local ROOT = (function()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  local dir = src:match("^(.*)/spec/[^/]*$")
  if dir == nil or dir == "" then dir = "." end
  if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
  return dir
end)()

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- A location only the tests use: the same proxy with a 100 ms read timeout.
local SHORT = [[
    location = /_billetterie_upstream_short {
      internal;
      set $billetterie_target $billetterie_target;
      proxy_pass $billetterie_target;
      proxy_pass_request_headers off;
      proxy_set_header Content-Type "application/x-www-form-urlencoded";
      proxy_read_timeout 100ms;
    }
]]

local function start_nginx(sandbox_url)
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. q(dir)))
  local template = read(ROOT .. "/examples/openresty/nginx.conf")
  assert(template:find("@PORT@", 1, true), "examples/openresty/nginx.conf not found from " .. ROOT)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for _ = 1, 20 do
    local port = math.random(20000, 45000)
    local conf = template:gsub("@PREFIX@", dir):gsub("@PORT@", tostring(port))
      :gsub("@SANDBOX@", sandbox_url):gsub("@REPO@", ROOT)
      :gsub("    location = /probe {", function(s) return SHORT .. s end)
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    if sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>>%s/start.log"):format(q(dir), q(dir), q(dir))) then
      for _ = 1, 50 do
        if sh("test -s " .. q(dir .. "/nginx.pid")) then break end
        sh("sleep 0.1")
      end
      return { dir = dir, port = port, url = ("http://127.0.0.1:%d"):format(port) }
    end
  end
  error("could not start nginx on a free port: " .. read(dir .. "/start.log"))
end

local function stop_nginx(server)
  if not server then return end
  sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(q(server.dir), q(server.dir)))
end

describe("OpenResty: examples/openresty under nginx with transport_ngx", function()
  local sb, server, jar

  setup(function()
    sb = sandbox.start{ args = { "--seed", "demo", "--fault", "ws_idsession:latency=200" } }
    server = start_nginx(sb.url)
    jar = server.dir .. "/cookies"
  end)

  teardown(function()
    stop_nginx(server)
    if sb then sb:stop() end
  end)

  -- curl with the test's cookie jar -> status code, body
  local function curl(args)
    local out = run(("curl -s -b %s -c %s -w '\\n%%{http_code}' %s"):format(q(jar), q(jar), args))
    local body, code = out:match("^(.*)\n(%d+)$")
    return tonumber(code), body
  end

  local function form_token()
    local code, body = curl(q(server.url .. "/newsletter"))
    assert.are.equal(200, code)
    return body:match('name="csrf" value="(%x+)"'), body
  end

  local function post(fields)
    local parts = {}
    for _, kv in ipairs(fields) do
      parts[#parts + 1] = "--data-urlencode " .. q(kv[1] .. "=" .. kv[2])
    end
    return curl(table.concat(parts, " ") .. " " .. q(server.url .. "/newsletter"))
  end

  it("GET /newsletter shows the form with a CSRF token and no-store", function()
    local token, body = form_token()
    assert.truthy(body:find("<form", 1, true))
    assert.truthy(token and #token == 32)
    local headers = run(("curl -s -D - -o /dev/null %s"):format(q(server.url .. "/newsletter")))
    assert.truthy(headers:lower():find("set-cookie: csrf=", 1, true))
    assert.truthy(headers:lower():find("cache-control: no-store", 1, true))
  end)

  it("POST signs a new address up and escapes what it shows", function()
    local token = form_token()
    local code, body = post{ { "csrf", token }, { "mail", "anne.neuve@example.fr" },
                             { "surname", "Anne" }, { "name", "Neuve" } }
    assert.are.equal(200, code, body)
    assert.truthy(body:find('class="ok"', 1, true), body)
    assert.truthy(body:find("Anne Neuve", 1, true), body)

    token = form_token()
    code, body = post{ { "csrf", token }, { "mail", "script.kiddie@example.fr" },
                       { "surname", "Eve" }, { "name", "<script>alert(1)</script>" } }
    assert.are.equal(200, code, body)
    assert.truthy(body:find("&lt;script&gt;alert(1)&lt;/script&gt;", 1, true), body)
    assert.falsy(body:find("<script>", 1, true))
  end)

  it("POST for a known address links to the shop's newsletter page", function()
    local token = form_token()
    local code, body = post{ { "csrf", token }, { "mail", "herve.richon@example.org" },
                             { "surname", "Hervé" }, { "name", "Richon" } }
    assert.are.equal(200, code, body)
    assert.truthy(body:find('class="known"', 1, true), body)
    assert.truthy(body:find("3web_mailing_cherche?template=11783&amp;email=herve.richon%40example.org", 1, true), body)
  end)

  it("POST refuses a missing or wrong CSRF token and re-shows a bad form", function()
    form_token()
    local code, body = post{ { "csrf", string.rep("0", 32) }, { "mail", "x@example.fr" },
                             { "surname", "X" }, { "name", "Y" } }
    assert.are.equal(403, code)
    assert.falsy(body:find('class="ok"', 1, true))
    local token = form_token()
    code, body = post{ { "csrf", token }, { "mail", "not an address" }, { "surname", "<b>" }, { "name", "Y" } }
    assert.are.equal(400, code)
    assert.truthy(body:find("valid e-mail", 1, true))
    assert.truthy(body:find('value="&lt;b&gt;"', 1, true), body)
  end)

  it("does not block the worker: 20 simultaneous /slow (200 ms each) finish in under 2 s", function()
    local out = server.dir .. "/slow"
    sh("mkdir -p " .. q(out))
    local script = ([[
      start=$(date +%%s.%%N)
      for i in $(seq 1 20); do
        curl -s -o %s/body.$i -w '%%{http_code}' %s > %s/code.$i &
      done
      wait
      end=$(date +%%s.%%N)
      echo "$start $end"
    ]]):format(q(out), q(server.url .. "/slow"), q(out))
    local times = run("sh -c " .. q(script))
    local started, ended = times:match("([%d%.]+)%s+([%d%.]+)")
    local elapsed = tonumber(ended) - tonumber(started)
    for i = 1, 20 do
      assert.are.equal("200", read(out .. "/code." .. i), "request " .. i)
      assert.are.equal("603", (read(out .. "/body." .. i):gsub("%s+$", "")), "request " .. i)
    end
    assert.is_true(elapsed >= 0.2, "faster than the injected latency: " .. elapsed)
    assert.is_true(elapsed < 2, ("20 requests took %.2f s: the worker blocked"):format(elapsed))
  end)

  it("picks the ngx transport automatically and maps a refused upstream to a network error", function()
    local code, body = curl(q(server.url .. "/probe?url=" .. sb.url:gsub(":", "%%3A"):gsub("/", "%%2F")))
    assert.are.equal(200, code)
    assert.are.equal("ok 603", (body:gsub("%s+$", "")))
    code, body = curl(q(server.url .. "/probe?url=http%3A%2F%2F127.0.0.1%3A1%2F"))
    assert.are.equal(200, code)
    assert.truthy(body:match("^network could not reach http://127%.0%.0%.1:1/ws_idsession"), body)
  end)

  it("maps nginx's proxy timeout (504 with no answer) to a timeout error", function()
    local url = sb.url:gsub(":", "%%3A"):gsub("/", "%%2F")
    local code, body = curl(q(server.url .. "/probe?location=%2F_billetterie_upstream_short&url=" .. url))
    assert.are.equal(200, code)
    assert.truthy(body:match("^timeout "), body)
  end)

  it("left nothing in nginx's error log but the expected upstream errors", function()
    local log = read(server.dir .. "/error.log")
    for line in log:gmatch("[^\n]+") do
      if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then
        assert.truthy(line:find("Connection refused", 1, true) or line:find("timed out", 1, true), line)
      end
    end
  end)
end)

-- The transport's mapping, with a stand-in for ngx (no nginx needed).
describe("transport_ngx with a fake ngx", function()
  local transport_ngx = require "billetterie.transport_ngx"
  local transport = require "billetterie.transport"
  local answer, seen, phase

  before_each(function()
    phase = "content"
    _G.ngx = {
      HTTP_GET = 2, HTTP_POST = 8, HTTP_PUT = 16, HTTP_DELETE = 32, HTTP_HEAD = 4,
      get_phase = function() return phase end,
      location = { capture = function(uri, options) seen = { uri = uri, options = options }; return answer end },
    }
  end)
  after_each(function() _G.ngx = nil end)

  local function request(t, extra)
    local req = { url = "http://127.0.0.1:9/ws_idsession", method = "POST", body = "a=1", max_size = 100 }
    for k, v in pairs(extra or {}) do req[k] = v end
    return t:request(req)
  end

  it("passes method, body and target URL to the internal location", function()
    answer = { status = 200, body = '{"x":1}', header = { ["Content-Type"] = "application/json", ["X-Request-Id"] = "r1" } }
    local status, body, ctype, errkind, errmsg, rid = request(transport_ngx.new{ location = "/_up" })
    assert.are.same({ 200, '{"x":1}', "application/json", nil, nil, "r1" },
      { status, body, ctype, errkind, errmsg, rid })
    assert.are.equal("/_up", seen.uri)
    assert.are.same({ method = 8, body = "a=1", vars = { billetterie_target = "http://127.0.0.1:9/ws_idsession" } },
      seen.options)
  end)

  it("maps nginx's own 502/504 to network/timeout and keeps the vendor's", function()
    local t = transport_ngx.new()
    answer = { status = 502, body = "", truncated = true, header = {} }
    local status, _, _, errkind = request(t)
    assert.are.same({ 0, "network" }, { status, errkind })
    answer = { status = 504, body = "", truncated = true, header = {} }
    status, _, _, errkind = request(t)
    assert.are.same({ 0, "timeout" }, { status, errkind })
    answer = { status = 502, body = "<html>vendor down</html>", header = { ["Content-Type"] = "text/html" } }
    local body
    status, body, _, errkind = request(t)
    assert.are.same({ 502, "<html>vendor down</html>" }, { status, body })
    assert.is_nil(errkind)
    answer = { status = 200, body = '{"re', truncated = true, header = {} }
    status, _, _, errkind = request(t)
    assert.are.same({ 200, "network" }, { status, errkind })
    answer = { status = 200, body = string.rep("x", 101), header = {} }
    status, _, _, errkind = request(t)
    assert.are.same({ 200, "too_large" }, { status, errkind })
  end)

  it("is picked by the default transport only in a request phase", function()
    answer = { status = 200, body = "ok", header = {} }
    local status, body = transport.curl:request{ url = "http://127.0.0.1:9/x", method = "GET" }
    assert.are.same({ 200, "ok" }, { status, body })
    assert.are.equal("/_billetterie_upstream", seen.uri)
    assert.is_true(transport_ngx.available())
    phase = "timer"
    assert.is_false(transport_ngx.available())
    _G.ngx = nil
    assert.is_false(transport_ngx.available())
  end)
end)
