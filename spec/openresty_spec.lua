-- The OpenResty slice of issue 6: Debian's nginx with the Lua module runs
-- examples/openresty/nginx.conf (one worker) in front of a sandbox whose
-- ws_idsession answers 200 ms late, and the pages are driven with curl.
local sandbox = require "spec.support.sandbox"
local support_nginx = require "spec.support.nginx"
local cjson = require "cjson"
local core = require "billetterie.core"

-- The repository's root, the core's build directory nginx loads, helpers.
local util = require "spec.support.util"
local BUILD, ROOT, sh, q, run, read = util.BUILD, util.ROOT, util.sh, util.q, util.run, util.read

-- What only the tests add to examples/openresty/nginx.conf: a proxy with a
-- 100 ms read timeout, one that trusts the wrong CA, pools named after the
-- TLS and plain listeners of spec/support/nginx.lua, /probe (a client of any
-- URL), a keep-alive reporter, a cache exercise on a real lua_shared_dict,
-- the stored notifications, and the newsletter's autofill script for
-- Chromium (injected only with ?autofill=1).
local HTTP_EXTRA = [[
  upstream localhost { server 127.0.0.1:@TLSPORT@; keepalive 4; }
  upstream billetterie-echo { server 127.0.0.1:@ECHOPORT@; keepalive 4; }
  map $arg_autofill $billetterie_autofill { default ""; "1" "<script src=/_test/fill.js></script>"; }
  # counts the libcurl engines made in the workers: a request handler must make none
  lua_shared_dict billetterie_test 64k;
  # libcurl in the master (init_by_lua): refused, the workers would inherit its connections
  init_by_lua_block {
    local _, _, _, errkind, errmsg = require("billetterie.transport").curl:request{ url = "@SANDBOX@ws_idsession",
      method = "POST", body = "a=1", timeout = 2, connect_timeout = 1 }
    ngx.shared.billetterie_test:set("init", tostring(errkind) .. " " .. tostring(errmsg))
  }
  init_worker_by_lua_block {
    -- a background job in a worker's timer: refused, libcurl would block the worker
    ngx.timer.at(0, function()
      local b = require("billetterie").new{ url = "@SANDBOX@", login = "xrsitest", password = "xrsimdp",
                                            client_id = 677, retries = 0 }
      local msg, err = b:call("ws_idsession")
      ngx.shared.billetterie_test:set("worker_timer", msg and "sent"
        or (err.kind .. " " .. tostring(err.retryable) .. " " .. err.message))
    end)
    local core = require "billetterie.core"
    local make = core.http_engine
    core.http_engine = function(...)
      ngx.shared.billetterie_test:incr("curl_engines", 1, 0)
      return make(...)
    end
  }
]]
-- Upstream locations that verify TLS: with the right CA, a wrong CA, and
-- the right CA but a name the certificate does not hold.
local TLS_LOCATION = [[
    location = /_billetterie_upstream_tls_@NAME@ {
      internal;
      set $billetterie_target $billetterie_target;
      if ($billetterie_target = "billetterie:probe") { return 200 "billetterie-upstream"; }
      proxy_pass $billetterie_target;
      proxy_pass_request_headers off;
      proxy_set_header Content-Type "application/x-www-form-urlencoded";
      proxy_ssl_verify on;
      proxy_ssl_trusted_certificate @CA@;
      proxy_ssl_server_name on;
      proxy_ssl_name @SSLNAME@;
    }
]]
local TLS_LOCATIONS = {}
for _, l in ipairs{ { "right", "@RIGHTCA@", "localhost" }, { "wrongca", "@WRONGCA@", "localhost" },
                    { "wrongname", "@RIGHTCA@", "billetterie.example" } } do
  TLS_LOCATIONS[#TLS_LOCATIONS + 1] = (TLS_LOCATION:gsub("@NAME@", l[1]):gsub("@CA@", l[2]):gsub("@SSLNAME@", l[3]))
end

local SERVER_EXTRA = [[
    # the same pages over https too, for the Secure cookies
    listen 127.0.0.1:@PAGESTLSPORT@ ssl;
    ssl_certificate @RIGHTCA@;
    ssl_certificate_key @RIGHTKEY@;
    location = /_billetterie_upstream_short {
      internal;
      set $billetterie_target $billetterie_target;
      if ($billetterie_target = "billetterie:probe") { return 200 "billetterie-upstream"; }
      proxy_pass $billetterie_target;
      proxy_pass_request_headers off;
      proxy_set_header Content-Type "application/x-www-form-urlencoded";
      proxy_read_timeout 100ms;
    }
    @TLSLOCATIONS@
    # the site's own app behind a location that is not the upstream one:
    # records any body it receives (the credentials must never arrive)
    location = /_test/app {
      content_by_lua_block {
        ngx.req.read_body()
        local b = ngx.req.get_body_data() or ""
        if b ~= "" then ngx.shared.billetterie_test:set("app_got", b) end
        ngx.say("app page")
      }
    }
    location = /_test/no_upstream {
      content_by_lua_block {
        local c = require("billetterie").new{ url = ngx.var.billetterie_url, login = "xrsitest", password = "xrsimdp",
          client_id = 677, retries = 0, transport = require("billetterie.transport_ngx").new{ location = "/_test/app" } }
        local msg, err = c:call("ws_idsession")
        ngx.say(msg and "ok" or (err.kind .. " " .. err.message), " | app got: ",
          tostring(ngx.shared.billetterie_test:get("app_got")))
      }
    }
    # transport_ngx on its own: ?case=nobody (a POST without a body from a
    # page the visitor posted to), crlf (a URL with a line break), accel (the
    # vendor answers X-Accel-Redirect to an internal location), busy (the
    # vendor answers 429 with Retry-After)
    location = /_test/transport {
      content_by_lua_block {
        ngx.req.read_body()
        local t = require("billetterie.transport_ngx").new()
        local case = ngx.var.arg_case
        local req
        if case == "nobody" then
          req = { url = "http://billetterie-echo/echo", method = "POST" }
        elseif case == "crlf" then
          req = { url = "http://billetterie-echo/echo?a=1 HTTP/1.1\r\nX-Injected: yes\r\nX-Pad: x", method = "POST",
                  body = "q=1" }
        else
          local vendor = case == "busy" and "/_test/busy_vendor" or "/_test/accel_vendor"
          req = { url = "http://127.0.0.1:" .. ngx.var.server_port .. vendor, method = "POST", body = "q=1" }
        end
        local status, body, _, errkind, errmsg, _, retry_after = t:request(req)
        ngx.say(require("cjson").encode{ status = status, body = body or "", errkind = errkind or "", errmsg = errmsg or "",
                                         retry_after = retry_after or "" })
      }
    }
    location = /_test/accel_vendor {
      content_by_lua_block { ngx.header["X-Accel-Redirect"] = "/_test/internal_secret"; ngx.print("vendor answer") }
    }
    location = /_test/internal_secret { internal; return 200 "internal secret"; }
    location = /_test/busy_vendor {
      content_by_lua_block { ngx.status = 429; ngx.header["Retry-After"] = "7"; ngx.print("slow down") }
    }
    # TTLs a shared dict would read as "never expires": each refused
    location = /_test/bad_ttls {
      content_by_lua_block {
        local cache = require "billetterie.cache"
        local ngx_session = require "billetterie.ngx_session"
        local d = ngx.shared.billetterie_cache
        local store = cache.new{ dict = d }
        local out = {}
        for i, ttl in ipairs { 0.0005, 0/0, math.huge, 1e300, 1e16, -1, 0 } do
          out[#out + 1] = pcall(store.set, store, "bad_ttl" .. i, "v", ttl) and ("stored:" .. tostring(d:ttl("bad_ttl" .. i)))
            or "refused"
          out[#out + 1] = pcall(cache.new, { dict = d, ttl = ttl }) and "made" or "refused"
          out[#out + 1] = pcall(ngx_session.new, { dict = ngx.shared.billetterie_sessions, ttl = ttl }) and "made" or "refused"
          local c = require("billetterie").new{ url = ngx.var.billetterie_url, login = "xrsitest", password = "xrsimdp",
                                                client_id = 677, retries = 0, cache = store }
          out[#out + 1] = pcall(c.call, c, "ws_cat_article", nil, { cache_ttl = ttl }) and "called" or "refused"
        end
        assert(store:set("good_ttl", "v", 0.5))
        local ttl = d:ttl("good_ttl")
        ngx.say(table.concat(out, " "), " | ", ttl > 0 and ttl <= 0.5 and "good" or tostring(ttl))
      }
    }
    # the account page with the vendor unreachable (its session check fails)
    location = /_test/account_down {
      set $billetterie_url "http://127.0.0.1:1/";
      error_log @PREFIX@/error.log crit;
      content_by_lua_block { require("account").handle() }
    }
    location = /_test/init { content_by_lua_block { ngx.say(ngx.shared.billetterie_test:get("init")) } }
    # /probe?url=...[&location=...]: ws_idsession against any URL with the
    # sandbox's account, through the default transport (picked by itself) or
    # transport_ngx on another location: "ok CODE" or the error kind and
    # message. Test-only: it sends the account to any URL given.
    location = /probe {
      content_by_lua_block {
        local location = ngx.var.arg_location and ngx.unescape_uri(ngx.var.arg_location)
        local c = require("billetterie").new{ url = ngx.unescape_uri(ngx.var.arg_url or ""), login = "xrsitest",
          password = "xrsimdp", client_id = 677, retries = 0,
          transport = location and require("billetterie.transport_ngx").new{ location = location } or nil }
        local msg, statut = c:call("ws_idsession")
        ngx.header["Content-Type"] = "text/plain"
        ngx.say(msg and "ok" or statut.kind, " ", msg and statut.code or tostring(statut.message))
      }
    }
    # the GET change feed (its api key in the query string) to a closed port,
    # from a location whose error_log keeps nginx's upstream errors out
    # (the subrequest logs through this, its main request's, location)
    location = /_test/api_key_failure {
      error_log @PREFIX@/error.log crit;
      content_by_lua_block {
        local c = require("billetterie").new{ url = ngx.var.billetterie_url, login = "xrsitest", password = "xrsimdp",
          client_id = 677, retries = 0, api_url = "http://127.0.0.1:1/", api_login = "WSCE",
          api_key = "TOPSECRETKEY0123456789" }
        local msg, err = c:liste_fiches_modifiees{ ts = "2020-12-22T10:00:00" }
        ngx.say(msg and "ok" or (err.kind .. " " .. tostring(err)))
      }
    }
    location = /_test/temp_password {
      content_by_lua_block {
        local n = require "newsletter"
        ngx.say(n.temporary_password(), " ", n.temporary_password(), " ", ngx.time())
      }
    }
    # n calls of one cached service, at once, from this request (?n=)
    location = /_test/stampede {
      content_by_lua_block {
        local c = require("web").client()
        local msg, statut = c:call("ws_cat_abonnement")
        ngx.say(msg and (statut.cached and "hit" or "miss") or statut.kind)
      }
    }
    # ngx_session with its own cookie and a 10 s ttl: start (?vendor= its
    # remaining time), get, shorten (as if time had passed); -> the entry's ttl
    location = /_test/session {
      content_by_lua_block {
        local ngx_session = require "billetterie.ngx_session"
        local dict = ngx.shared.billetterie_sessions
        local s = ngx_session.new{ dict = dict, cookie = "test_sid", ttl = 10 }
        local op, id = ngx.var.arg_op, ngx.var.cookie_test_sid
        if op == "start" then
          local ok, err = s:start({ who = "t" }, tonumber(ngx.var.arg_vendor))
          if not ok then return ngx.say(err.kind, " ", err.code, " ", tostring(err.is_local)) end
          return ngx.say("started")
        elseif op == "shorten" then
          dict:expire("s:" .. id, 3)
        elseif op == "get" then
          local data = s:get()
          if not data then return ngx.say("none") end
        end
        ngx.say(dict:ttl("s:" .. id))
      }
    }
    # fills the sessions dict until it refuses (no eviction), or empties it
    location = /_test/fill_sessions {
      content_by_lua_block {
        local dict = ngx.shared.billetterie_sessions
        if ngx.var.arg_flush then dict:flush_all(); dict:flush_expired(); return ngx.say("flushed") end
        local n = 0
        for _, size in ipairs { 4000, 1000, 250, 60, 1 } do   -- every slab size
          local filler = string.rep("x", size)
          while dict:safe_set("filler:" .. n, filler, 60) do n = n + 1 end
        end
        ngx.say(n)
      }
    }
    # the NOTIFY receiver with every body in a temporary file
    location = /_test/notify_file {
      client_body_in_file_only on;
      client_body_buffer_size 1k;
      content_by_lua_block { require("notify").handle() }
    }
    # n ws_idsession calls in one page to ?url=: "connection requests" per call
    location = /_test/keepalive {
      content_by_lua_block {
        local c = require("billetterie").new{ url = ngx.unescape_uri(ngx.var.arg_url), login = "xrsitest",
          password = "xrsimdp", client_id = 677, retries = 0 }
        for _ = 1, tonumber(ngx.var.arg_n) or 3 do
          local msg, statut = c:call("ws_idsession")
          if not msg then ngx.say(statut.kind, " ", statut.message) else ngx.say(msg.connection, " ", msg.requests) end
        end
      }
    }
    # billetterie.cache on a real lua_shared_dict
    location = /_test/cache {
      content_by_lua_block {
        local cache = require "billetterie.cache"
        local store = cache.new{ dict = ngx.shared.billetterie_cache, ttl = 60 }
        local out = {}
        out.set = store:set("t", { id = 5442, prix = 18.5, noms = { "a", "b" }, web = true })
        local v = store:get("t")
        v.noms[1] = "changed"
        out.copy = store:get("t")
        out.refused = select(2, store:set("bad", { [1] = 1, [3] = 3 }))
        out.short = store:set("short", "x", 0.2)
        out.before = store:get("short")
        ngx.sleep(0.3)
        out.after = store:get("short") == nil
        store:delete("t")
        out.deleted = store:get("t") == nil
        ngx.say(require("cjson").encode(out))
      }
    }
    # S-360's static lists in the shared dict: two clients, one store
    location = /_test/s360_cache {
      content_by_lua_block {
        local s360 = require "billetterie.s360"
        local store = require("billetterie.cache").new{ dict = ngx.shared.billetterie_cache }
        local counts = {}
        for i = 1, 2 do
          local c = s360.new{ url = ngx.var.billetterie_url .. "demo", institution = "DEMO", operator = "DEMO_B2C",
            password = "s360-sandbox-secret", protocol = "rest", retries = 0, cache = store }
          local r, err = c:getAvailableAutorizations()
          counts[i] = r and #r.authorizations or tostring(err)
        end
        ngx.say(counts[1], " ", counts[2])
      }
    }
    location = /_test/background {
      content_by_lua_block {
        local d = ngx.shared.billetterie_test
        ngx.say(d:get("worker_timer") or "pending")
      }
    }
    location = /_test/curl_engines {
      content_by_lua_block { ngx.say(ngx.shared.billetterie_test:get("curl_engines") or 0) }
    }
    location = /_test/notification {
      content_by_lua_block { ngx.say(ngx.shared.billetterie_notifications:get("card:" .. ngx.var.arg_id) or "none") }
    }
    location = /_test/fill.js {
      default_type application/javascript;
      return 200 "document.querySelector('input[name=mail]').value = 'chromium.user@example.fr';
document.querySelector('input[name=surname]').value = 'Chloé';
document.querySelector('input[name=name]').value = 'Navigateur <b>';
document.querySelector('button[type=submit]').click();";
    }
    # S-360 from a request handler, through /_billetterie_upstream (the default
    # transport): two reads, a vendor failure, a wrong password, and an
    # L@billetterie form call in the same handler; JSON out
    location = /_test/s360 {
      content_by_lua_block {
        local s360 = require "billetterie.s360"
        local function client(password)
          return s360.new{ url = ngx.var.billetterie_url .. "demo", institution = "DEMO", operator = "DEMO_B2C",
            password = password, protocol = ngx.var.arg_protocol, retries = 0, cache = false }
        end
        local function failure(r, e)
          if r then return { ok = true } end
          return { kind = e.kind, code = e.code, http_status = e.http_status, retryable = e.retryable, text = tostring(e) }
        end
        local c = client("s360-sandbox-secret")
        local out = {}
        local auths, err = c:getAvailableAutorizations()
        if auths then
          out.authorizations = {}
          for _, a in ipairs(auths.authorizations) do out.authorizations[#out.authorizations + 1] = a.code end
        else
          out.authorizations = tostring(err)
        end
        local found, ferr = c:searchContactByCriteria{ searchCriteria = { email = "camille.martin@example.org" } }
        out.found = found and found.contacts[1] and found.contacts[1].contactNumber or tostring(ferr)
        out.failure = failure(c:searchContactByCriteria{ searchCriteria = {} })
        out.refused = failure(client("not-the-secret-1"):getAvailableAutorizations())
        local b = require("billetterie").new{ url = ngx.var.billetterie_url, login = "xrsitest", password = "xrsimdp",
          client_id = 677, retries = 0 }
        local msg, statut = b:call("ws_idsession")
        out.form_call = msg and statut.code or (statut.kind .. " " .. statut.message)
        ngx.say(require("cjson").encode(out))
      }
    }
    # S-360's remember-me cookie: an app that has just authenticated a
    # contact hands the shop cookie on, and reads it back when it returns
    location = /_test/s360_login {
      content_by_lua_block {
        local cookie = require "billetterie.s360.cookie"
        local auth = { statusCode = "success", identification = ngx.var.arg_id,
                       uniqueToken = ngx.unescape_uri(ngx.var.arg_token or "") }
        local header, err = cookie.build(auth, { id = 1001, saleChannelCode = "B2C" },
                                         { institution = "mosa", domain = "shop.example.org" })
        if not header then ngx.status = 400; ngx.say(tostring(err)); return end
        ngx.header["Set-Cookie"] = header
        ngx.say("ok")
      }
    }
    location = /_test/s360_whoami {
      content_by_lua_block {
        local c, err = require("billetterie.s360.cookie").parse(ngx.var.http_cookie or "")
        if not c then ngx.status = 401; ngx.say(tostring(err)); return end
        ngx.say(c.rememberUniqueId, " ", c.virtualOperator)
      }
    }
    # what the upstream receives: S-360 (SOAP, REST) and L@billetterie calls
    # to spec/support/nginx.lua's /echo through transport_ngx, recorded by a
    # transport wrapped around it (the clients cannot read the echo: no matter)
    location = /_test/upstream_headers {
      content_by_lua_block {
        local cjson = require "cjson"
        local t = require("billetterie.transport_ngx").new()
        local seen = {}
        local recorder = { request = function(_, req)
          local status, body, ctype, errkind, errmsg, rid = t:request(req)
          seen[#seen + 1] = { status = status, errkind = errkind, errmsg = errmsg,
                              echo = body and body ~= "" and cjson.decode(body) or nil }
          return status, body, ctype, errkind, errmsg, rid
        end }
        for _, protocol in ipairs { "soap", "rest" } do
          require("billetterie.s360").new{ url = "http://billetterie-echo/echo", institution = "DEMO",
            operator = "DEMO_B2C", password = "s360-sandbox-secret", protocol = protocol, retries = 0,
            cache = false, transport = recorder }:getAvailableAutorizations()
        end
        require("billetterie").new{ url = "http://billetterie-echo/echo/", login = "xrsitest", password = "xrsimdp",
          client_id = 677, retries = 0, transport = recorder }:call("ws_idsession")
        -- a header the location has no variable for is an error value, not dropped
        local status, _, _, errkind, errmsg = t:request{ url = "http://billetterie-echo/echo", method = "POST",
          body = "x", headers = { "X-Secret-Header: hush-hush" } }
        seen[#seen + 1] = { status = status, errkind = errkind, errmsg = errmsg }
        -- a password in the client's URL goes as Basic authentication, as with
        -- libcurl (proxy_pass would refuse the URL and log it whole)
        require("billetterie").new{ url = "http://bob:Pw%3Ahush-hush+1@billetterie-echo/echo/", login = "xrsitest",
          password = "xrsimdp", client_id = 677, retries = 0, transport = recorder }:call("ws_idsession")
        ngx.say(cjson.encode(seen))
      }
    }
]]
SERVER_EXTRA = SERVER_EXTRA:gsub("    @TLSLOCATIONS@\n", function() return table.concat(TLS_LOCATIONS) end)

local function start_nginx(sandbox_url, support, dir)
  local template = read(ROOT .. "/examples/openresty/nginx.conf")
  assert(template:find("@PORT@", 1, true), "examples/openresty/nginx.conf not found from " .. ROOT)
  assert(sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
    .. "-addext subjectAltName=DNS:localhost -keyout %s/wrong.key -out %s/wrong.pem 2>/dev/null"):format(q(dir), q(dir))))
  local http_extra = HTTP_EXTRA:gsub("@TLSPORT@", tostring(support.port + 1)):gsub("@ECHOPORT@", tostring(support.port))
    :gsub("@SANDBOX@", sandbox_url)
  local server_extra = SERVER_EXTRA:gsub("@WRONGCA@", dir .. "/wrong.pem"):gsub("@RIGHTCA@", support.cert)
    :gsub("@RIGHTKEY@", (support.cert:gsub("cert%.pem$", "key.pem")))
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for _ = 1, 20 do
    local port = math.random(20000, 45000)
    local conf = template:gsub("@PREFIX@", dir):gsub("@PORT@", tostring(port))
      :gsub("@VENDOR_ADDR@", (sandbox_url:match("^http://([^/]+)"))):gsub("@SHOP@", sandbox_url)
      :gsub("@VENDOR_HOST@", (sandbox_url:match("^http://([^:/]+)")))
      :gsub("@VENDOR_URL@", (sandbox_url:gsub("^(http://[^:/]+):%d+", "%1")))
      :gsub("@REPO@", ROOT):gsub("@BUILD@", BUILD):gsub("@CA@", support.cert)
      :gsub("  server {\n", function(x) return http_extra .. x end, 1)
      :gsub("    # %(the tests add their own locations here%)\n", function()
        return (server_extra:gsub("@PAGESTLSPORT@", tostring(port + 1)):gsub("@PREFIX@", dir))
      end)
      :gsub("    location = /newsletter {\n", function(x)
        return x .. "      sub_filter '</body>' '$billetterie_autofill</body>';\n"
      end)
    assert(conf:find("/_test/fill.js", 1, true) and conf:find("billetterie_autofill</body>", 1, true))
    if util.nginx_up(dir, conf) then
      return { dir = dir, port = port, url = ("http://127.0.0.1:%d"):format(port),
               tls_url = ("https://127.0.0.1:%d"):format(port + 1) }
    end
  end
  error("could not start nginx on a free port: " .. read(dir .. "/start.log"))
end

local function stop_nginx(server)
  if not server then return end
  sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(q(server.dir), q(server.dir)))
end

describe("OpenResty: examples/openresty under nginx with transport_ngx", function()
  local sb, server, jar, support

  setup(function()
    sb = sandbox.start{ args = { "--seed", "demo", "--fault", "ws_idsession:latency=200" } }
    support = support_nginx.start()
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. q(dir)))
    server = start_nginx(sb.url, support, dir)
    jar = server.dir .. "/cookies"
  end)

  teardown(function()
    stop_nginx(server)
    if support then support.stop() end
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

  it("pages answer other methods with 405 and their Allow list", function()
    for _, path in ipairs { "/newsletter", "/account" } do
      local headers = run(("curl -s -D - -o /dev/null -X DELETE %s"):format(q(server.url .. path)))
      assert.truthy(headers:find("^HTTP/1.1 405"), headers)
      assert.truthy(headers:find("Allow: GET, POST", 1, true), headers)
    end
  end)

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

  -- curl -D: -> status, headers (lower-cased), body
  local function fetch(args)
    local hfile = server.dir .. "/headers"
    local code, body = curl("-D " .. q(hfile) .. " " .. args)
    return code, read(hfile):lower(), body
  end

  local function url_arg(u) return (u:gsub("[^%w%-%._~]", function(ch) return ("%%%02X"):format(ch:byte()) end)) end

  local function journal(ws)
    return cjson.decode(run(("curl -s %s"):format(q(sb.url .. "_sandbox/requests?path=" .. ws)))).requests
  end

  it("reuses upstream connections: the keepalive pool, plain and TLS", function()
    for _, base in ipairs{ "http://billetterie-echo/keepalive/", "https://localhost/keepalive/" } do
      local code, body = curl(q(server.url .. "/_test/keepalive?n=4&url=" .. url_arg(base)))
      assert.are.equal(200, code, body)
      local conns, reqs = {}, {}
      for c, r in body:gmatch("(%d+) (%d+)") do conns[#conns + 1] = c; reqs[#reqs + 1] = tonumber(r) end
      assert.are.equal(4, #conns, body)
      for i = 2, 4 do
        assert.are.equal(conns[1], conns[i], base .. ": a new connection for call " .. i .. "\n" .. body)
        assert.are.equal(reqs[i - 1] + 1, reqs[i], body)
      end
    end
    -- the control: an address that names no upstream opens a connection per call
    local code, body = curl(q(server.url .. "/_test/keepalive?n=2&url=" .. url_arg(support.url .. "keepalive/")))
    assert.are.equal(200, code)
    local a, b = body:match("^(%d+) 1\n(%d+) 1\n$")
    assert.truthy(a and a ~= b, body)
  end)

  it("verifies the vendor's certificate: the right CA and name pass, else a network error", function()
    -- through the pool (https://localhost/ names the upstream: SNI and name from the URL)
    local code, body = curl(q(server.url .. "/probe?url=" .. url_arg("https://localhost/keepalive/")))
    assert.are.equal(200, code)
    assert.are.equal("ok 603", (body:gsub("%s+$", "")))
    -- fresh connections (an address, no pool): the pool's verified connections
    -- would otherwise be reused whatever the location says
    local direct = ("https://127.0.0.1:%d/keepalive/"):format(support.port + 1)
    local function probe(location)
      local c, b = curl(q(server.url .. "/probe?location=%2F_billetterie_upstream_tls_" .. location .. "&url=" .. url_arg(direct)))
      assert.are.equal(200, c)
      return (b:gsub("%s+$", ""))
    end
    assert.are.equal("ok 603", probe("right"))
    assert.truthy(probe("wrongca"):match("^network could not reach https://127%.0%.0%.1:%d+/keepalive/ws_idsession"))
    assert.truthy(probe("wrongname"):match("^network could not reach https://127%.0%.0%.1:%d+/keepalive/ws_idsession"))
    local log = read(server.dir .. "/error.log")
    assert.truthy(log:find("certificate verify", 1, true))
    assert.truthy(log:find("does not match \"billetterie.example\"", 1, true), log)
  end)

  it("keeps billetterie.cache values in a real lua_shared_dict", function()
    local code, body = curl(q(server.url .. "/_test/cache"))
    assert.are.equal(200, code, body)
    local out = cjson.decode(body)
    assert.is_true(out.set)
    assert.are.same({ id = 5442, prix = 18.5, noms = { "a", "b" }, web = true }, out.copy)
    assert.matches("^cache: cannot store a", out.refused)
    assert.is_true(out.short)
    assert.are.equal("x", out.before)
    assert.is_true(out.after)
    assert.is_true(out.deleted)
  end)

  it("caches S-360's static lists in the shared dict: two clients and two pages, one vendor call", function()
    local path = "/demo/tnco/backend-apis/contactInformationPublicService/v2_21/getAvailableAutorizations"
    local before = #journal(path)
    for _ = 1, 2 do
      local code, body = curl(q(server.url .. "/_test/s360_cache"))
      assert.are.equal(200, code, body)
      local a, b = body:match("^(%d+) (%d+)")
      assert.truthy(a and a == b and tonumber(a) > 0, body)
    end
    assert.are.equal(before + 1, #journal(path))
  end)

  it("renders the catalogue from the cached feed: the second view does not reach the vendor", function()
    local before = #journal("ws_cat_spectacle")
    local code, headers, body = fetch(q(server.url .. "/catalogue"))
    assert.are.equal(200, code, body)
    assert.truthy(headers:find("x-catalogue-cache: miss", 1, true), headers)
    assert.truthy(headers:find("cache-control: public", 1, true), headers)
    assert.truthy(body:find("L&#39;IGNORANT ET LE FOU", 1, true), body)
    assert.truthy(body:find("Coup de", 1, true) == nil)          -- only name, type, dates
    assert.truthy(body:find(sb.url .. "spectacle?id_spectacle=2185", 1, true), body)
    assert.are.equal(before + 1, #journal("ws_cat_spectacle"))
    local code2, headers2, body2 = fetch(q(server.url .. "/catalogue"))
    assert.are.equal(200, code2)
    assert.truthy(headers2:find("x-catalogue-cache: hit", 1, true), headers2)
    assert.are.equal(body, body2)
    assert.are.equal(before + 1, #journal("ws_cat_spectacle"))
  end)

  it("account area: login keeps the token server-side, links carry it, pages are no-store", function()
    local ajar = server.dir .. "/account-cookies"
    local function acurl(args)
      local hfile = server.dir .. "/aheaders"
      local out = run(("curl -s -D %s -b %s -c %s -w '\\n%%{http_code}' %s"):format(q(hfile), q(ajar), q(ajar), args))
      local body, code = out:match("^(.*)\n(%d+)$")
      return tonumber(code), read(hfile):lower(), body
    end
    local function login(password)
      local _, _, page = acurl(q(server.url .. "/account"))
      local token = page:match('name="csrf" value="(%x+)"')
      return acurl(("--data-urlencode %s --data-urlencode %s --data-urlencode %s %s"):format(
        q("csrf=" .. token), q("ident=herve.richon@example.org"), q("password=" .. password), q(server.url .. "/account")))
    end

    local code, headers, body = acurl(q(server.url .. "/account"))
    assert.are.equal(200, code)
    assert.truthy(body:find('name="password"', 1, true))
    assert.truthy(headers:find("cache-control: no-store", 1, true))

    code, headers, body = login("wrong-Password1")
    assert.are.equal(401, code, body)
    assert.truthy(body:find("wrong password", 1, true))
    assert.falsy(headers:find("billetterie_sid=", 1, true))

    code, headers = login("Garrigues-2024!")
    assert.are.equal(303, code)
    local sid = headers:match("set%-cookie: billetterie_sid=(%x+);[^\n]*")
    local cookie_line = headers:match("set%-cookie: billetterie_sid=[^\n]*")
    assert.truthy(sid and #sid == 32, headers)
    assert.truthy(cookie_line:find("httponly", 1, true) and cookie_line:find("samesite=lax", 1, true), cookie_line)
    assert.falsy(cookie_line:find("secure", 1, true))         -- plain http here

    code, headers, body = acurl(q(server.url .. "/account"))
    assert.are.equal(200, code, body)
    assert.truthy(body:find("Hello Hervé RICHON", 1, true), body)
    assert.truthy(headers:find("cache-control: no-store", 1, true))
    assert.truthy(headers:find("pragma: no-cache", 1, true))
    local token = body:match("basket%?x_rsi_token=(%x+)")
    assert.truthy(token, body)
    assert.truthy(body:find(sb.url .. "mes_coordonnees?x_rsi_token=" .. token, 1, true), body)
    assert.are_not.equal(sid, token:lower())
    assert.falsy(read(ajar):find(token, 1, true))              -- the browser holds only the opaque id
    -- the token is a live vendor session
    local status = cjson.decode(run(("curl -s -d x_rsi_token=%s %s"):format(token, q(sb.url .. "ws_status_session"))))
    assert.are.equal("ok", status.retour.statut.traitement)

    -- an old or forged id is nobody's session
    local function with_sid(id)   -- without the jar: only this cookie
      return run(("curl -s -H %s %s"):format(q("Cookie: billetterie_sid=" .. id), q(server.url .. "/account")))
    end
    assert.truthy(with_sid(sid):find("Hello Hervé RICHON", 1, true))
    assert.truthy(with_sid(string.rep("a", 32)):find('name="password"', 1, true))

    -- signing in again gives a new id; the old one is forgotten (no fixation)
    code, headers = login("Garrigues-2024!")
    assert.are.equal(303, code)
    local sid2 = headers:match("set%-cookie: billetterie_sid=(%x+);")
    assert.truthy(sid2 and sid2 ~= sid, headers)
    assert.truthy(with_sid(sid):find('name="password"', 1, true))
    local old = cjson.decode(run(("curl -s -d x_rsi_token=%s %s"):format(token, q(sb.url .. "ws_status_session"))))
    assert.are.equal("ko", old.retour.statut.traitement)   -- and the old vendor session is closed
    sid = sid2
    token = select(3, acurl(q(server.url .. "/account"))):match("basket%?x_rsi_token=(%x+)")
    assert.truthy(token)

    -- sign out: the vendor's session is closed and the visitor's forgotten
    local page_token = select(3, acurl(q(server.url .. "/account"))):match('name="csrf" value="(%x+)"')
    code = acurl(("--data-urlencode %s %s"):format(q("csrf=" .. page_token), q(server.url .. "/account/logout")))
    assert.are.equal(303, code)
    code, _, body = acurl(q(server.url .. "/account"))
    assert.truthy(body:find('name="password"', 1, true), body)
    assert.truthy(with_sid(sid):find('name="password"', 1, true))
    status = cjson.decode(run(("curl -s -d x_rsi_token=%s %s"):format(token, q(sb.url .. "ws_status_session"))))
    assert.are.equal("ko", status.retour.statut.traitement)
  end)

  it("refuses a login POST without the CSRF token", function()
    local code, body = curl("--data-urlencode ident=a@b.fr --data-urlencode password=x " .. q(server.url .. "/account"))
    assert.are.equal(403, code, body)
  end)

  it("receives the print-card NOTIFY: from the sandbox's push and from a raw POST", function()
    local target = server.url .. "/notify/print-card"
    local push = cjson.decode(run(("curl -s -d x_rsi_ws_login=xrsitest -d x_rsi_ws_mdp=xrsimdp -d x_rsi_client=677 "
      .. "-d kind=notify_impression_carte -d id_carte=2 --data-urlencode %s %s"):format(q("url=" .. target),
      q(sb.url .. "_sandbox/notify")))).push
    assert.are.equal(200, push.http_status, cjson.encode(push))
    assert.is_true(push.delivered)
    local stored = cjson.decode(select(2, curl(q(server.url .. "/_test/notification?id=/CA0000000000002"))))
    assert.are.equal("/CA0000000000002", stored.idcarte)
    assert.are.equal(1, stored.id_contact)
    assert.is_nil(stored.nom)                                 -- ids only, no names kept
    local code, body = curl(("-H 'Content-Type: text/xml' --data-binary @%s %s"):format(
      q(ROOT .. "/spec/fixtures/notify_impression_carte.xml"), q(target)))
    assert.are.equal(200, code)
    assert.are.equal("OK", (body:gsub("%s+$", "")))
    assert.truthy(read(server.dir .. "/error.log"):find("print-card NOTIFY: card /CA", 1, true))
    code = curl("--data-binary '<html><body>hi</body></html>' " .. q(target))
    assert.are.equal(400, code)
    code = curl("--data-binary '<NOTIFY><idcarte>' " .. q(target))
    assert.are.equal(400, code)
    code = curl(q(target))
    assert.are.equal(405, code)
  end)

  it("headless Chromium fills and submits the newsletter form and lands on the result", function()
    local profile = server.dir .. "/chromium"
    local out = run(("unset LD_PRELOAD; timeout 90 %s --headless --no-sandbox --disable-gpu --disable-quic "
      .. "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
      .. "--virtual-time-budget=10000 --run-all-compositor-stages-before-draw "
      .. "--user-data-dir=%s --dump-dom %s 2>/dev/null"):format(os.getenv("CHROMIUM") or "chromium", q(profile),
      q(server.url .. "/newsletter?autofill=1")))
    assert.truthy(out:find('class="ok"', 1, true), out)
    assert.truthy(out:find("chromium.user@example.fr is signed up", 1, true), out)
    assert.truthy(out:find("Chloé Navigateur &lt;b&gt;", 1, true), out)
    assert.falsy(out:find('name="csrf"', 1, true))            -- the result page, not the form again
  end)

  -- S-360 inside a request handler: its calls need their own request headers
  -- (SOAP: text/xml and SOAPAction; REST: application/json and a bearer JWT)
  for _, protocol in ipairs { "soap", "rest" } do
    it("S-360 over " .. protocol .. " from a content handler: reads, a vendor failure, and a form call alongside",
      function()
      local code, body = curl(q(server.url .. "/_test/s360?protocol=" .. protocol))
      assert.are.equal(200, code, body)
      local out = cjson.decode(body)
      assert.is_table(out.authorizations, body)
      local codes = {}
      for _, c in ipairs(out.authorizations) do codes[c] = true end
      assert.is_true(codes.NEWS and codes.PARTNERS and codes.EMAIL, body)
      assert.are.equal("10001", out.found, body)                       -- camille.martin@example.org
      assert.are.same({ "vendor", "invalid", 200, false },
        { out.failure.kind, out.failure.code, out.failure.http_status, out.failure.retryable }, body)
      if protocol == "soap" then                    -- a WS-Security fault: refused credentials, as REST's 401
        assert.are.same({ "http", "FailedAuthentication", 401 },
          { out.refused.kind, out.refused.code, out.refused.http_status }, body)
        assert.truthy(out.refused.text:find("FailedAuthentication", 1, true), body)
      else                                                            -- the JWT refused
        assert.are.same({ "http", 401 }, { out.refused.kind, out.refused.http_status }, body)
      end
      assert.falsy(out.refused.text:find("not-the-secret-1", 1, true), body)
      assert.falsy(body:find("eyJhbGciOi", 1, true), body)             -- no JWT in any error
      assert.are.equal(603, out.form_call, body)                       -- L@billetterie unchanged
    end)
  end

  it("examples/openresty/s360_newsletter.lua opts a new and a known address in on S-360", function()
    local page = server.url .. "/s360/newsletter"
    local function post(fields)
      local code, body = curl(q(page))
      assert.are.equal(200, code, body)
      local parts = { "--data-urlencode " .. q("csrf=" .. body:match('name="csrf" value="(%x+)"')) }
      for _, kv in ipairs(fields) do parts[#parts + 1] = "--data-urlencode " .. q(kv[1] .. "=" .. kv[2]) end
      return curl(table.concat(parts, " ") .. " " .. q(page))
    end
    local code, body = post{ { "mail", "nora.nginx@example.fr" }, { "first", "Nora" }, { "last", "<Nginx>" } }
    assert.are.equal(200, code, body)
    local number = body:match('class="ok">nora%.nginx@example%.fr is signed up %(new contact (%d+)%)')
    assert.truthy(number, body)
    code, body = post{ { "mail", "lucas.bernard@example.org" } }          -- a demo contact, NEWS not granted yet
    assert.are.equal(200, code, body)
    assert.truthy(body:find("(known contact 10002)", 1, true), body)
    code, body = post{ { "mail", "not an address" } }
    assert.are.equal(400, code, body)
    -- what the vendor now holds, read over plain libcurl outside nginx
    local c = require("billetterie.s360").new{ url = sb.url .. "demo", institution = "DEMO", operator = "DEMO_B2C",
      password = "s360-sandbox-secret", retries = 0, rate_limit = false }
    for n, who in pairs { [number] = "<Nginx>", ["10002"] = "Bernard" } do
      local r = assert(c:getContactData{ contactNumber = n, details = { "GENERAL", "AUTHORIZATIONS" } })
      assert.are.equal(who, r.individualContact.lastname)
      local news
      for _, a in ipairs(r.authorizations) do if a.authorizationCode == "NEWS" then news = a.allowed end end
      assert.is_true(news, n)
    end
  end)

  it("sends each call's own headers upstream, never the visitor's, and refuses others", function()
    local code, body = curl("-H 'Authorization: Basic dmlzaXRvcg==' -H 'SOAPAction: visitor' -H 'Cookie: v=1' "
      .. "-H 'Content-Type: text/plain' " .. q(server.url .. "/_test/upstream_headers"))
    assert.are.equal(200, code, body)
    local seen = cjson.decode(body)
    assert.are.equal(5, #seen, body)
    local soap, rest, form = seen[1].echo.headers, seen[2].echo.headers, seen[3].echo.headers
    assert.are.equal("text/xml; charset=utf-8", soap["content-type"])
    assert.are.equal('""', soap.soapaction)
    assert.is_nil(soap.authorization)
    assert.truthy(seen[1].echo.body:find("getAvailableAutorizations", 1, true), seen[1].echo.body)
    assert.are.equal("application/json", rest["content-type"])
    assert.truthy(rest.authorization:match("^Bearer [%w_%-]+%.[%w_%-]+%.[%w_%-]+$"), rest.authorization)
    assert.is_nil(rest.soapaction)
    -- L@billetterie's form call: the location's defaults, nothing else
    assert.are.equal("application/x-www-form-urlencoded", form["content-type"])
    assert.are.equal("application/json, application/xml;q=0.9, */*;q=0.1", form.accept)
    assert.is_nil(form.authorization)
    assert.is_nil(form.soapaction)
    assert.truthy(seen[3].echo.body:find("x_rsi_ws_login=xrsitest", 1, true), seen[3].echo.body)
    for i = 1, 3 do
      assert.is_nil(seen[i].echo.headers.cookie)
      assert.are_not.equal("Basic dmlzaXRvcg==", seen[i].echo.headers.authorization)
      assert.are_not.equal("visitor", seen[i].echo.headers.soapaction)
    end
    assert.are.same({ 0, "setup" }, { seen[4].status, seen[4].errkind })
    assert.truthy(seen[4].errmsg:find("X-Secret-Header", 1, true), seen[4].errmsg)
    assert.falsy(seen[4].errmsg:find("hush-hush", 1, true))
    assert.are.equal(200, seen[5].status, body)
    -- %XX decoded, '+' kept (as libcurl sends it)
    assert.are.equal("Basic " .. core.b64encode("bob:Pw:hush-hush+1"), seen[5].echo.headers.authorization)
    assert.truthy(seen[5].echo.body:find("x_rsi_ws_login=xrsitest", 1, true), seen[5].echo.body)
    -- no secret in nginx's log either
    local log = read(server.dir .. "/error.log")
    assert.falsy(log:find("s360-sandbox-secret", 1, true))
    assert.falsy(log:find("hush-hush", 1, true))
    assert.falsy(log:find("eyJhbGciOi", 1, true))
    assert.falsy(log:find(rest.authorization:sub(8), 1, true))
  end)

  it("sets S-360's remember-me cookie with ngx.header: one Set-Cookie the browser sends back", function()
    local cookie = require "billetterie.s360.cookie"
    local out = run(("curl -s -i %s"):format(q(server.url .. "/_test/s360_login?id=id-42&token=tok-99")))
    local headers = {}
    for line in out:gmatch("[^\r\n]+") do
      local v = line:match("^[Ss]et%-[Cc]ookie: (.*)$")
      if v then headers[#headers + 1] = v end
    end
    assert.are.equal(1, #headers, out)
    assert.truthy(headers[1]:find("^stx_rememberMe_MOSA_B2C="), headers[1])
    assert.truthy(headers[1]:find("; Secure", 1, true))
    assert.truthy(headers[1]:find("; HttpOnly", 1, true))
    local c = assert(cookie.parse(headers[1]))
    assert.are.equal("tok-99", c.token)
    assert.are.equal("1001", c.pointOfSalesId)
    -- curl keeps Secure cookies for https only: send it back as a browser would
    local value = headers[1]:match("^([^;]+)")
    local back = run(("curl -s -H %s %s"):format(q("Cookie: lang=fr; " .. value), q(server.url .. "/_test/s360_whoami")))
    assert.are.equal("id-42 MOSA_B2C\n", back)
    -- a token the cookie cannot hold: refused, nothing set
    out = run(("curl -s -i %s"):format(q(server.url .. "/_test/s360_login?id=id-42&token=a%22b")))
    assert.truthy(out:find("^HTTP/1.1 400"), out)
    assert.is_nil(out:lower():find("set-cookie", 1, true))
  end)

  it("keeps the api key out of nginx's error log when the api host's GET fails", function()
    local code, body = curl(q(server.url .. "/_test/api_key_failure"))
    assert.are.equal(200, code, body)
    assert.truthy(body:match("^network ") and body:find("could not reach http://127.0.0.1:1/ws_execute_programme", 1, true), body)
    assert.falsy(body:find("TOPSECRETKEY", 1, true), body)           -- our error value masks it
    local log = read(server.dir .. "/error.log")
    assert.falsy(log:find("TOPSECRETKEY", 1, true), log)
    assert.falsy(log:find("x_rsi_api_key", 1, true), log)
  end)

  it("newsletter: the new contact's password is random, meets annex 4.7, and /probe is test-only", function()
    local code, body = curl(q(server.url .. "/_test/temp_password"))
    assert.are.equal(200, code, body)
    local a, b, now = body:match("^(%S+) (%S+) (%d+)\n$")
    assert.truthy(a, body)
    assert.are_not.equal(a, b)
    local rules = require("billetterie.catalogue").password_rules
    for _, p in ipairs{ a, b } do
      assert.is_true(#p >= rules.min_length and #p >= 32, p)     -- 128 random bits at least
      assert.truthy(p:find("%u") and p:find("%l") and p:find("%d"), p)
      for _, ch in ipairs(rules.forbidden_chars) do assert.falsy(p:find(ch, 1, true), p) end
      assert.falsy(p:find(now:sub(1, 6), 1, true), p)              -- no clock in it
    end
    -- the example does not ship a page that sends the account to any URL
    assert.falsy(read(ROOT .. "/examples/openresty/newsletter.lua"):find("probe", 1, true))
  end)

  it("a cold cached entry asked by 10 requests at once makes one vendor call", function()
    assert(cjson.decode(run(("curl -s -X POST -H 'Content-Type: application/json' -d %s %s"):format(
      q('{"faults":["ws_cat_abonnement:latency=300"]}'), q(sb.url .. "_sandbox/faults")))).faults)
    local before = #journal("ws_cat_abonnement")
    local out = server.dir .. "/stampede"
    sh("mkdir -p " .. q(out))
    sh("sh -c " .. q(("for i in $(seq 1 10); do curl -s -o %s/body.$i %s & done; wait"):format(
      q(out), q(server.url .. "/_test/stampede"))))
    local misses, hits = 0, 0
    for i = 1, 10 do
      local r = read(out .. "/body." .. i):gsub("%s+$", "")
      if r == "miss" then misses = misses + 1 elseif r == "hit" then hits = hits + 1 end
    end
    assert.are.same({ 1, 9 }, { misses, hits })
    assert.are.equal(before + 1, #journal("ws_cat_abonnement"))
  end)

  it("ngx_session: each use extends the session (and its cookie), never past the vendor's session", function()
    local sjar = server.dir .. "/session-cookies"
    local function op(args)
      local hfile = server.dir .. "/sheaders"
      local body = run(("curl -s -D %s -b %s -c %s %s"):format(q(hfile), q(sjar), q(sjar),
        q(server.url .. "/_test/session?" .. args)))
      return body:gsub("%s+$", ""), read(hfile):lower()
    end
    assert.are.equal("started", (op("op=start")))
    local short = tonumber((op("op=shorten")))                  -- as if 7 s had passed
    assert.is_true(short > 2 and short <= 3, tostring(short))
    local ttl, headers = op("op=get")
    assert.is_true(tonumber(ttl) > 9, ttl)                     -- back to the store's 10 s
    assert.truthy(headers:find("set%-cookie: test_sid=%x+; path=/; max%-age=10;"), headers)
    -- the vendor's session has 5 s left: the visitor's never goes past it
    assert.are.equal("started", (op("op=start&vendor=5")))
    ttl = op("op=get")
    assert.is_true(tonumber(ttl) <= 5, ttl)
    -- none left (s:remaining() of a closed or expired session): what a call on it gives
    assert.are.equal("vendor 605 true", (op("op=start&vendor=0")))
  end)

  local function account_login(ajar, password, base)
    base = base or server.url
    local function acurl(args)
      local hfile = server.dir .. "/a2headers"
      local o = run(("curl -sk -D %s -b %s -c %s -w '\n%%{http_code}' %s"):format(q(hfile), q(ajar), q(ajar), args))
      local body, code = o:match("^(.*)\n(%d+)$")
      return tonumber(code), read(hfile):lower(), body
    end
    local _, _, page = acurl(q(base .. "/account"))
    local token = page:match('name="csrf" value="(%x+)"')
    local code, headers, body = acurl(("--data-urlencode %s --data-urlencode %s --data-urlencode %s %s"):format(
      q("csrf=" .. token), q("ident=herve.richon@example.org"), q("password=" .. password), q(base .. "/account")))
    return code, headers, body, acurl
  end

  it("account: when the session store is full, sign-in answers 503 and closes the vendor session", function()
    local filled = tonumber((select(2, curl(q(server.url .. "/_test/fill_sessions")))))
    assert.is_true(filled > 0)
    local before = #journal("ws_deconnexion_session")
    local ok, code, _, body = pcall(account_login, server.dir .. "/full-cookies", "Garrigues-2024!")
    curl(q(server.url .. "/_test/fill_sessions?flush=1"))
    assert(ok, code)
    assert.are.equal(503, code, body)
    assert.are.equal(before + 1, #journal("ws_deconnexion_session"))
    -- the store has room again: sign-in works
    assert.are.equal(303, (account_login(server.dir .. "/full-cookies", "Garrigues-2024!")))
  end)

  it("account: sign-out without the CSRF token, or with another one, is refused", function()
    local ajar = server.dir .. "/csrf-cookies"
    local code, _, _, acurl = account_login(ajar, "Garrigues-2024!")
    assert.are.equal(303, code)
    local page = select(3, acurl(q(server.url .. "/account")))
    local token = page:match('name="csrf" value="(%x+)"')
    assert.truthy(token and page:find("Hello", 1, true), page)
    code = acurl("-X POST " .. q(server.url .. "/account/logout"))              -- no field
    assert.are.equal(403, code)
    code = acurl(("--data-urlencode %s %s"):format(q("csrf=" .. string.rep("b", 32)), q(server.url .. "/account/logout")))
    assert.are.equal(403, code)                                              -- cookie there, field differs
    -- still signed in after both
    page = select(3, acurl(q(server.url .. "/account")))
    assert.truthy(page:find("Hello", 1, true), page)
    token = page:match('name="csrf" value="(%x+)"')
    code = acurl(("--data-urlencode %s %s"):format(q("csrf=" .. token), q(server.url .. "/account/logout")))
    assert.are.equal(303, code)
  end)

  it("account: an unreachable vendor keeps the visitor signed in and shows an error", function()
    local ajar = server.dir .. "/down-cookies"
    local code, _, _, acurl = account_login(ajar, "Garrigues-2024!")
    assert.are.equal(303, code)
    local body
    code, _, body = acurl(q(server.url .. "/_test/account_down"))
    assert.are.equal(502, code, body)
    assert.truthy(body:find("not answering", 1, true), body)
    code, _, body = acurl(q(server.url .. "/account"))
    assert.are.equal(200, code)
    assert.truthy(body:find("Hello", 1, true), body)              -- still signed in
  end)

  it("over https the CSRF and session cookies are Secure", function()
    local headers = run(("curl -sk -D - -o /dev/null %s"):format(q(server.tls_url .. "/newsletter"))):lower()
    local csrf = headers:match("set%-cookie: csrf=[^\n]*")
    assert.truthy(csrf and csrf:find("; secure", 1, true), headers)
    local code, aheaders = account_login(server.dir .. "/tls-cookies", "Garrigues-2024!", server.tls_url)
    assert.are.equal(303, code)
    local sid = aheaders:match("set%-cookie: billetterie_sid=[^\n]*")
    assert.truthy(sid and sid:find("; secure", 1, true), aheaders)
    -- and not over http (the control)
    headers = run(("curl -s -D - -o /dev/null %s"):format(q(server.url .. "/newsletter"))):lower()
    assert.falsy(headers:match("set%-cookie: csrf=[^\n]*"):find("secure", 1, true))
  end)

  it("reads a NOTIFY body nginx kept in a temporary file", function()
    local code, body = curl(("-H 'Content-Type: text/xml' --data-binary @%s %s"):format(
      q(ROOT .. "/spec/fixtures/notify_impression_carte.xml"), q(server.url .. "/_test/notify_file")))
    assert.are.equal(200, code, body)
    assert.are.equal("OK", (body:gsub("%s+$", "")))
  end)

  it("refuses a call from a worker's timer: libcurl would block the worker", function()
    local code, body
    for _ = 1, 50 do
      code, body = curl(q(server.url .. "/_test/background"))
      if not body:find("pending", 1, true) then break end
      sh("sleep 0.1")
    end
    assert.are.equal(200, code)
    assert.truthy(body:find("^network false libcurl would block this nginx worker %(phase timer%)"), body)
  end)

  it("refuses libcurl in the init phase: the master's connections would be inherited by every worker", function()
    local code, body = curl(q(server.url .. "/_test/init"))
    assert.are.equal(200, code)
    assert.truthy(body:find("setup libcurl is refused in nginx's init phase", 1, true) == 1, body)
  end)

  it("refuses a location that is not the upstream one before sending anything (no credentials to the app)", function()
    local code, body = curl(q(server.url .. "/_test/no_upstream"))
    assert.are.equal(200, code)
    assert.truthy(body:find("^network the location /_test/app is not billetterie's upstream location"), body)
    assert.truthy(body:find("| app got: nil", 1, true), body)
    assert.falsy(body:find("xrsimdp", 1, true), body)
    -- the example's location answers the probe: the pages work (above), and /probe too
    code, body = curl(q(server.url .. "/probe?url=" .. sb.url:gsub(":", "%%3A"):gsub("/", "%%2F")))
    assert.are.equal("ok 603", (body:gsub("%s+$", "")))
  end)

  -- One case of /_test/transport: what transport_ngx returned, decoded.
  local function transport_case(case, curl_args)
    local code, body = curl((curl_args or "") .. q(server.url .. "/_test/transport?case=" .. case))
    assert.are.equal(200, code)
    return cjson.decode(body)
  end

  it("transport_ngx: a POST without a body sends an empty one, never the visitor's", function()
    local r = transport_case("nobody", "--data-binary visitor=secret ")
    assert.are.equal(200, r.status, r.body)
    local echo = cjson.decode(r.body)
    assert.are.same({ "POST", "" }, { echo.method, echo.body })
  end)

  it("transport_ngx: a URL with a line break is refused (setup), nothing is sent", function()
    local r = transport_case("crlf")
    assert.are.same({ 0, "setup", "" }, { r.status, r.errkind, r.body })
  end)

  it("the upstream location ignores the vendor's X-Accel-Redirect", function()
    local r = transport_case("accel")
    assert.are.same({ 200, "vendor answer" }, { r.status, r.body })
  end)

  it("transport_ngx hands back a refusal's Retry-After", function()
    local r = transport_case("busy")
    assert.are.same({ 429, "slow down", "7" }, { r.status, r.body, r.retry_after })
  end)

  it("refuses TTLs a shared dict would keep forever (< 1 ms, NaN, inf, huge, <= 0)", function()
    local code, body = curl(q(server.url .. "/_test/bad_ttls"))
    assert.are.equal(200, code)
    assert.are.equal(string.rep("refused ", 28):gsub(" $", "") .. " | good", (body:gsub("%s+$", "")))
  end)

  it("run.sh: an https vendor is called over https by its own name (Host, SNI, certificate)", function()
    local vport = support.port + 1
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. q(dir)))
    finally(function() sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(q(dir), q(dir))) end)
    local port, started
    for _ = 1, 10 do   -- a random port may be taken: try another
      port = math.random(20000, 45000)
      local conf = run(("CA=%s BUILD=%s sh %s --config %s %d"):format(q(support.cert), q(BUILD),
        q(ROOT .. "/examples/openresty/run.sh"), q("https://localhost:" .. vport .. "/echo/"), port))
      assert.truthy(conf:find('set $billetterie_url "https://localhost/echo/";', 1, true), conf)
      assert.truthy(conf:find("upstream localhost {\n    server localhost:" .. vport .. ";"), conf)
      local old = conf:match("pid (%S+)/nginx%.pid;")
      conf = conf:gsub(old:gsub("%p", "%%%0"), dir)
        :gsub("    # %(the tests add their own locations here%)\n", function()
          return [[
    location = /_test/vendor_echo {
      content_by_lua_block {
        local status, body, _, errkind, errmsg = require("billetterie.transport_ngx").new():request{
          url = ngx.var.billetterie_url .. "ws_idsession", method = "POST", body = "a=1" }
        ngx.print(errkind and (errkind .. " " .. errmsg) or body)
      }
    }
]]
        end)
      started = util.nginx_up(dir, conf)
      if started then break end
    end
    assert.is_true(started, read(dir .. "/start.log"))
    local out = run(("curl -s http://127.0.0.1:%d/_test/vendor_echo"):format(port))
    local ok, echo = pcall(cjson.decode, out)
    assert.is_true(ok and type(echo) == "table", out)
    assert.are.same({ "POST", "/echo/ws_idsession", "a=1", "localhost" },
      { echo.method, echo.uri, echo.body, echo.headers.host })
  end)

  it("never made a libcurl engine in the worker: every call went through nginx", function()
    local code, body = curl(q(server.url .. "/_test/curl_engines"))
    assert.are.equal(200, code)
    assert.are.equal("0", (body:gsub("%s+$", "")))
  end)

  it("left nothing in nginx's error log but the expected upstream errors", function()
    local log = read(server.dir .. "/error.log")
    for line in log:gmatch("[^\n]+") do
      if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") then
        assert.truthy(line:find("Connection refused", 1, true) or line:find("timed out", 1, true)
          or line:find("cannot store the session", 1, true)   -- account.lua logs the error value
          or line:find("certificate verify", 1, true) or line:find("does not match", 1, true), line)
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
      location = { capture = function(uri, options)
        -- the upstream location answers transport_ngx's probe itself
        if options.vars.billetterie_target == transport_ngx.PROBE then
          if uri == "/_catch_all" then return answer end
          return { status = 200, body = transport_ngx.PROBE_ANSWER, header = {} }
        end
        seen = { uri = uri, options = options }
        return answer
      end },
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

  it("passes the request's headers as the location's variables, and only those", function()
    answer = { status = 200, body = "ok", header = {} }
    local t = transport_ngx.new()
    request(t, { headers = { "Content-Type: text/xml; charset=utf-8", 'SOAPAction: ""' } })
    assert.are.same({ billetterie_target = "http://127.0.0.1:9/ws_idsession",
                      billetterie_content_type = "text/xml; charset=utf-8", billetterie_soapaction = '""' },
      seen.options.vars)
    request(t, { headers = { "content-type:application/json", "ACCEPT: application/json",
                             "Authorization: Bearer a.b.c" } })
    assert.are.same({ billetterie_target = "http://127.0.0.1:9/ws_idsession", billetterie_content_type = "application/json",
                      billetterie_accept = "application/json", billetterie_authorization = "Bearer a.b.c" },
      seen.options.vars)
    request(t, { headers = {} })                 -- none: the URL only, as for L@billetterie
    assert.are.same({ billetterie_target = "http://127.0.0.1:9/ws_idsession" }, seen.options.vars)
    -- refused before anything is sent, without the value in the message
    seen = nil
    for _, bad in ipairs { "X-Api-Key: k-secret", "Authorization Bearer k-secret", "Authorization: Bearer k-secret\r\nX: y" } do
      local status, _, _, errkind, errmsg = request(t, { headers = { bad } })
      assert.are.same({ 0, "setup" }, { status, errkind })
      assert.falsy(errmsg:find("k-secret", 1, true), errmsg)
      assert.is_nil(seen)
    end
  end)

  it("sends no body with a GET and an empty one with a body-less POST (never the visitor's)", function()
    answer = { status = 200, body = "ok", header = {} }
    local t = transport_ngx.new()
    t:request{ url = "http://127.0.0.1:9/x", method = "GET" }
    assert.is_nil(seen.options.body)
    t:request{ url = "http://127.0.0.1:9/x", method = "POST" }
    assert.are.equal("", seen.options.body)
  end)

  it("refuses a URL with spaces or control characters before sending anything", function()
    answer = { status = 200, body = "ok", header = {} }
    local t = transport_ngx.new()
    for _, bad in ipairs { "http://h/x y", "http://h/x\r\nX-Injected: 1", "http://h/\0", "http://h/\t", "ftp://h/", "" } do
      seen = nil
      local status, _, _, errkind = request(t, { url = bad })
      assert.are.same({ 0, "setup" }, { status, errkind }, bad)
      assert.is_nil(seen)
    end
  end)

  it("refuses a location that does not answer the probe: nothing sent there", function()
    answer = { status = 200, body = "app page", header = {} }
    seen = nil
    local status, _, _, errkind, errmsg = request(transport_ngx.new{ location = "/_catch_all" })
    assert.are.same({ 0, "setup" }, { status, errkind })
    assert.truthy(errmsg:find("/_catch_all is not billetterie's upstream location", 1, true), errmsg)
    assert.is_nil(seen)
  end)

  it("points at the header variables when nginx refuses them (an older configuration)", function()
    local capture = ngx.location.capture
    ngx.location.capture = function(uri, options)
      if options.vars.billetterie_authorization then error("failed to adjust the subrequest: -1") end
      return capture(uri, options)
    end
    local status, _, _, errkind, errmsg = request(transport_ngx.new(), { headers = { "Authorization: Bearer x.y.z" } })
    assert.are.same({ 0, "setup" }, { status, errkind })
    assert.truthy(errmsg:find("declare $billetterie_content_type", 1, true), errmsg)
    assert.falsy(errmsg:find("x.y.z", 1, true), errmsg)
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

  it("refuses libcurl where it would block a worker; start-up, the privileged agent and transport.blocking use it", function()
    local ptype = "worker"
    package.loaded["ngx.process"] = { type = function() return ptype end }
    -- a closed port: "network" says libcurl tried, "setup" that nothing was sent
    local req = { url = "http://127.0.0.1:9/x", method = "GET", timeout = 2, connect_timeout = 1 }
    local function kind_in(p, t)
      phase = p
      local status, _, _, errkind, errmsg = (t or transport.curl):request(req)
      return errkind, errmsg, status
    end
    local errkind, errmsg, status = kind_in("timer")
    assert.are.same({ "setup", 0 }, { errkind, status })
    assert.truthy(errmsg:find("phase timer", 1, true), errmsg)
    assert.are.equal("setup", (kind_in("log")))
    assert.are.equal("network", (kind_in("init_worker")))
    -- init runs in the master: the workers would inherit libcurl's connections
    errkind, errmsg = kind_in("init")
    assert.are.equal("setup", errkind)
    assert.truthy(errmsg:find("init phase", 1, true), errmsg)
    assert.are.equal("setup", (kind_in("init", transport.blocking)))
    assert.has_error(function() transport.engine() end)
    phase = "init_worker"
    assert.are.equal("network", (kind_in("timer", transport.blocking)))
    ptype = "privileged agent"
    assert.are.equal("network", (kind_in("timer")))
    package.loaded["ngx.process"] = nil
  end)
end)

-- The transport interface (lua/billetterie/transport.lua): a transport
-- written outside the SDK, on LuaSocket's socket.http, plugged with
-- billetterie.new{ transport = ... }, carries every kind of call.
describe("a user transport plugged with billetterie.new{ transport = t }", function()
  local http = require "socket.http"
  local ltn12 = require "ltn12"
  local sb
  local seen = {}

  local user = {}
  function user:request(req)
    local url, method, body, file, timeout = req.url, req.method, req.body, req.file, req.timeout
    seen[#seen + 1] = { url = url, method = method, file = file }
    local chunks = {}
    http.TIMEOUT = timeout
    local ok, status, headers = http.request{
      url = url, method = method, sink = ltn12.sink.table(chunks),
      source = body and ltn12.source.string(body) or nil,
      headers = { ["content-type"] = body and "application/x-www-form-urlencoded" or nil,
                  ["content-length"] = body and tostring(#body) or nil,
                  accept = "application/json, application/xml;q=0.9" },
    }
    if not ok then
      return 0, nil, nil, status == "timeout" and "timeout" or "network", "socket.http: " .. tostring(status)
    end
    local data = table.concat(chunks)
    if file then
      local f = assert(io.open(file, "wb"))
      f:write(data)
      f:close()
      data = ""
    end
    return status, data, headers["content-type"], nil, nil, headers["x-request-id"]
  end

  setup(function() sb = sandbox.start{ args = { "--seed", "demo" } } end)
  teardown(function() if sb then sb:stop() end end)

  it("carries JSON and XML calls, sessions and streamed answers", function()
    local c = sb:client{ transport = user, retries = 0 }
    local msg, statut = c:call("ws_idsession")
    assert.are.equal(603, statut.code)
    assert.truthy(msg.jeton)
    assert.are.same({ url = sb.url .. "ws_idsession", method = "POST" }, seen[#seen])
    local doc = assert(c:call("ws_cat_spectacle"))
    assert.truthy(doc.SPECTACLES)
    local s = assert(c:session())
    assert(s:login("herve.richon@example.org", "Garrigues-2024!"))
    local count = 0
    for show, err in c:programmation{ each = "SPECTACLE" } do
      assert(show, err)
      count = count + 1
    end
    assert.is_true(count > 0)
    assert.truthy(seen[#seen].file)
  end)

  it("its failures become the client's error values", function()
    local c = sb:client{ transport = user, retries = 0 }
    local _, err = c:call("ws_info_organisme", { id_organisme = 999999 })
    assert.are.same({ "vendor", 904 }, { err.kind, err.code })
    local down = require("billetterie").new{ url = "http://127.0.0.1:1/", login = "xrsitest", password = "xrsimdp",
                                             client_id = 677, transport = user, retries = 1, sleep = function() end }
    _, err = down:call("ws_idsession")
    assert.are.equal("network", err.kind)
    assert.are.equal(2, err.attempts)                 -- retried like any network error
    assert.matches("socket.http: connection refused", err.message, 1, true)
  end)
end)
