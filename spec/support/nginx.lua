-- Starts Debian's nginx with the Lua module on a free loopback port, as a
-- real HTTP peer for the core's transport tests: echo, slow, big, gzip,
-- truncated and error-page endpoints, plus a TLS listener with a
-- self-signed certificate made for the run.
local M = {}

local CONF = [[
load_module /usr/lib/nginx/modules/ndk_http_module.so;
load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;
worker_processes 1;
error_log @DIR@/error.log warn;
pid @DIR@/nginx.pid;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path @DIR@/body;
  proxy_temp_path @DIR@/proxy;
  fastcgi_temp_path @DIR@/fastcgi;
  uwsgi_temp_path @DIR@/uwsgi;
  scgi_temp_path @DIR@/scgi;
  keepalive_requests 100000;
  gzip on; gzip_types application/json; gzip_min_length 10;
  default_type application/json;
  lua_shared_dict flaky 1m;
  server {
    listen 127.0.0.1:@PORT@;
    listen 127.0.0.1:@TLSPORT@ ssl;
    ssl_certificate @DIR@/cert.pem;
    ssl_certificate_key @DIR@/key.pem;
    # What the client sent, as JSON (method, headers, body, connection serial).
    location /echo {
      content_by_lua_block {
        ngx.req.read_body()
        local cjson = require "cjson"
        ngx.say(cjson.encode{ method = ngx.req.get_method(), uri = ngx.var.request_uri,
          headers = ngx.req.get_headers(), body = ngx.req.get_body_data() or "",
          connection = tonumber(ngx.var.connection), args = ngx.req.get_uri_args() })
      }
    }
    # A ws_idsession answer that tells which client connection carried it
    # and how many requests that connection has carried (keep-alive proofs).
    location /keepalive/ {
      content_by_lua_block {
        ngx.req.read_body()
        ngx.print(('{"retour":{"message":{"jeton":"K%d","duree":"00:30:00","temps_restant":1800,'
          .. '"connection":%d,"requests":%d},"statut":{"code":603,"traitement":"ok","message":"Session initialisée"}}}')
          :format(ngx.var.connection, ngx.var.connection, ngx.var.connection_requests))
      }
    }
    location /sleepy/ { content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 0.5); ngx.say('{"retour":{"message":{"slept":true},"statut":{"code":2,"traitement":"ok","message":"Traitement effectué"}}}') } }
    location /sleep { content_by_lua_block { ngx.sleep(tonumber(ngx.var.arg_s) or 1); ngx.say('{"slept":true}') } }
    location /big { content_by_lua_block { ngx.print(string.rep("x", tonumber(ngx.var.arg_n) or 1000)) } }
    location /chunked {
      content_by_lua_block {
        for i = 1, tonumber(ngx.var.arg_k) or 10 do ngx.print(string.rep("y", 1024)); ngx.flush(true) end
      }
    }
    location /truncated {
      content_by_lua_block {
        ngx.header["Content-Length"] = 1000
        ngx.print('{"retour":'); ngx.flush(true)
        ngx.exit(ngx.ERROR)
      }
    }
    location /fixed { content_by_lua_block { ngx.header["X-Request-Id"] = "req-42"; ngx.print(ngx.var.arg_body or "") } }
    # /canned/NAME/anything answers the file NAME written by the test (status
    # in NAME.status, default 200) and records the request body in NAME.request.
    location /canned/ {
      content_by_lua_block {
        local name = ngx.var.uri:match("^/canned/([%w_%-]+)/")
        local dir = "@DIR@/canned/"
        ngx.req.read_body()
        local rf = io.open(dir .. name .. ".request", "w")
        rf:write(ngx.req.get_method(), " ", ngx.var.request_uri, "\n", ngx.req.get_body_data() or "")
        rf:close()
        local sf = io.open(dir .. name .. ".status")
        if sf then ngx.status = tonumber(sf:read("*a")); sf:close() end
        local f = io.open(dir .. name)
        if not f then ngx.status = 404; return end
        local body = f:read("*a"); f:close()
        if body:match("^%s*<") then ngx.header["Content-Type"] = "text/xml" end
        ngx.print(body)
      }
    }
    # /flaky/NAME/N/...: HTTP 503 for the first N requests of NAME, then an ok answer
    location /flaky/ {
      content_by_lua_block {
        local name, n = ngx.var.uri:match("^/flaky/([%w_]+)/(%d+)/")
        local seen = ngx.shared.flaky:incr(name, 1, 0)
        if seen <= tonumber(n) then
          ngx.status = 503
          ngx.print("<html><title>busy</title></html>")
          return
        end
        ngx.print('{"retour":{"message":{"seen":' .. seen .. '},"statut":{"code":2,"traitement":"ok","message":"ok"}}}')
      }
    }
    location /status {
      content_by_lua_block {
        ngx.status = tonumber(ngx.var.arg_code) or 500
        ngx.header["Content-Type"] = "text/html"
        ngx.print("<html><head><title>Service Unavailable</title></head><body>down</body></html>")
      }
    }
  }
}
]]

local function sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

function M.start()
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. dir))
  assert(sh(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost "
    .. "-addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout %s/key.pem -out %s/cert.pem 2>/dev/null"):format(dir, dir)),
    "openssl could not make a test certificate")
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for _ = 1, 20 do
    local port = math.random(20000, 45000)
    local conf = CONF:gsub("@DIR@", dir):gsub("@TLSPORT@", tostring(port + 1)):gsub("@PORT@", tostring(port))
    local f = assert(io.open(dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    -- env -u: the sanitizer run preloads ASan into the interpreter only
    if sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>>%s/start.log"):format(dir, dir, dir)) then
      -- wait for the pid file: nginx writes it once listening
      for _ = 1, 50 do
        if sh("test -s " .. dir .. "/nginx.pid") then break end
        sh("sleep 0.1")
      end
      local server = { dir = dir, port = port, url = ("http://127.0.0.1:%d/"):format(port),
                       tls_url = ("https://127.0.0.1:%d/"):format(port + 1), cert = dir .. "/cert.pem" }
      -- nginx workers run as nobody: they record requests there
      sh("mkdir -p " .. dir .. "/canned && chmod 0777 " .. dir .. "/canned")
      -- canned(name, body [, status]) -> base URL answering body on any path
      function server.canned(name, body, status)
        local f = assert(io.open(dir .. "/canned/" .. name, "w"))
        f:write(body)
        f:close()
        if status then
          f = assert(io.open(dir .. "/canned/" .. name .. ".status", "w"))
          f:write(tostring(status))
          f:close()
        end
        return server.url .. "canned/" .. name .. "/"
      end
      -- last_request(name) -> method, uri, body of the last request to it
      function server.last_request(name)
        local f = io.open(dir .. "/canned/" .. name .. ".request")
        if not f then return nil end
        local text = f:read("*a")
        f:close()
        return text:match("^(%S+) (%S+)\n(.*)$")
      end
      function server.stop()
        sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(dir, dir))
      end
      return server
    end
  end
  error("could not start nginx on a free port (see " .. dir .. "/start.log)")
end

return M
