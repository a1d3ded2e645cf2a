-- billetterie.run/spawn/map/sleep and max_in_flight in nginx request
-- handlers: Debian's nginx with the Lua module (one worker, so requests
-- share one Lua state) in front of a sandbox whose ws_idsession answers
-- 200 ms late, driven by concurrent curls. Then the same pieces outside
-- nginx (a raising transport, map's concurrency).
local sandbox = require "spec.support.sandbox"
local billetterie = require "billetterie"

-- The repository's root, the core's build directory nginx loads, helpers.
local util = require "spec.support.util"
local BUILD, ROOT, sh, q, run, read = util.BUILD, util.ROOT, util.sh, util.q, util.run, util.read

-- A client of the sandbox through the keep-alive pool (the worker's own,
-- kept at module level by the pages: one per worker, as in production).
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
  default_type text/plain;
  lua_package_path "@REPO@/lua/?.lua;@REPO@/lua/?/init.lua;;";
  lua_package_cpath "@REPO@/@BUILD@/jit/?.so;;";
  upstream billetterie-vendor { server @VENDOR_ADDR@; keepalive 4; }
  map "" $billetterie_content_type  { default "application/x-www-form-urlencoded"; }
  map "" $billetterie_accept        { default "application/json, application/xml;q=0.9, */*;q=0.1"; }
  map "" $billetterie_authorization { default ""; }
  map "" $billetterie_soapaction    { default ""; }
  init_by_lua_block {
    local b = require "billetterie"
    local function client(extra)
      local opts = { url = "http://billetterie-vendor/", login = "xrsitest", password = "xrsimdp",
                     client_id = 677, retries = 0 }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return b.new(opts)
    end
    package.loaded.test_clients = {
      plain = client(),
      one_at_a_time = client{ max_in_flight = 1 },
      -- its first call raises in the transport, the next ones go through nginx
      raising_once = client{ max_in_flight = 1, transport = (function()
        local real, raised = require("billetterie.transport_ngx").new(), false
        return { request = function(_, req)
          if not raised then raised = true; error("transport bug") end
          return real:request(req)
        end }
      end)() },
    }
  }
  server {
    listen 127.0.0.1:@PORT@;
    location = /_billetterie_upstream {
      internal;
      set $billetterie_target $billetterie_target;
      if ($billetterie_target = "billetterie:probe") { return 200 "billetterie-upstream"; }
      proxy_pass $billetterie_target;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_pass_request_headers off;
      proxy_set_header Content-Type $billetterie_content_type;
      proxy_set_header Accept $billetterie_accept;
    }
    location = /ping { content_by_lua_block { ngx.say("pong") } }
    # two calls in a row inside run (the request stays in run ~400 ms)
    location = /run_calls {
      content_by_lua_block {
        local b, c = require "billetterie", package.loaded.test_clients.plain
        local ok, out = pcall(b.run, function()
          local m1, e1 = c:call("ws_idsession")
          local m2, e2 = c:call("ws_idsession")
          return (m1 and "ok" or tostring(e1)) .. " " .. (m2 and "ok" or tostring(e2))
        end)
        ngx.say(ok and out or ("raised: " .. tostring(out)))
      }
    }
    # map over three items, each making a call
    location = /map {
      content_by_lua_block {
        local b, c = require "billetterie", package.loaded.test_clients.plain
        local ok, r = pcall(b.map, { 10, 20, 30 }, function(x)
          local m = c:call("ws_idsession")
          return m and x * 2
        end)
        ngx.say(ok and table.concat(r, ",") or ("raised: " .. tostring(r)))
      }
    }
    # ?s= seconds asleep in run, or in map's rate pacing (?rate=)
    location = /sleep {
      content_by_lua_block {
        local b = require "billetterie"
        if ngx.var.arg_rate then
          local r = b.map({ 1, 2, 3 }, function(x) return x end, { rate = tonumber(ngx.var.arg_rate) })
          return ngx.say(#r)
        end
        if ngx.var.arg_retries then   -- a refused port: retries ~0.5 s apart
          local c = b.new{ url = "http://127.0.0.1:1/", login = "xrsitest", password = "xrsimdp", client_id = 677,
            retries = tonumber(ngx.var.arg_retries), retry_base = 0.5, retry_max = 0.5,
            random = function() return 0.99 end }
          local _, err = b.run(function() return c:call("ws_idsession") end)
          return ngx.say(err.kind, " ", err.attempts)
        end
        b.run(function() b.sleep(tonumber(ngx.var.arg_s)) end)
        ngx.say("slept")
      }
    }
    # ?n= spawned calls at once -> their results and the time they took
    location = /spawn {
      content_by_lua_block {
        local b, c = require "billetterie", package.loaded.test_clients.plain
        ngx.update_time()
        local t0 = ngx.now()
        local out = b.run(function()
          local tasks, res = {}, {}
          for i = 1, tonumber(ngx.var.arg_n) do
            tasks[i] = b.spawn(function() return c:call("ws_idsession") end)
          end
          for i = 1, #tasks do
            local m, e = tasks[i]:wait()
            res[i] = m and "ok" or tostring(e)
          end
          return table.concat(res, " ")
        end)
        ngx.update_time()
        ngx.say(out, " ", ("%.3f"):format(ngx.now() - t0))
      }
    }
    # a task's error reaches its waiter only; a sibling task waits for
    # another; a task cannot wait for itself
    location = /tasks {
      content_by_lua_block {
        local b = require "billetterie"
        local out = {}
        b.run(function()
          local bad = b.spawn(function() b.sleep(0.05); error("boom") end)
          local slow = b.spawn(function() b.sleep(0.1); return "slow done", 2 end)
          local watcher = b.spawn(function() return "saw " .. slow:wait() end)
          local me
          me = b.spawn(function() b.sleep(0.01); return pcall(me.wait, me) end)
          local ok, err = pcall(bad.wait, bad)
          out[#out + 1] = tostring(ok) .. " " .. tostring(err):match("boom") .. " "
            .. tostring(tostring(err):find("traceback", 1, true) ~= nil)
          local v, n = slow:wait()
          out[#out + 1] = v .. " " .. n
          out[#out + 1] = watcher:wait()
          local _, self_err = me:wait()
          out[#out + 1] = tostring(self_err):match("cannot wait for itself") or tostring(self_err)
          out[#out + 1] = tostring(bad:done_yet())
          out[#out + 1] = select(2, pcall(bad.wait, bad)):match("boom") or "?"
        end)
        ngx.say(table.concat(out, "|"))
      }
    }
    location = /map_bad {
      content_by_lua_block {
        local ok, err = pcall(require("billetterie").map, { 1 }, function(x) return x end, { concurrency = 0 })
        ngx.say(tostring(ok), " ", tostring(err))
      }
    }
    # one call through the max_in_flight = 1 client of the worker
    location = /one_at_a_time {
      content_by_lua_block {
        local c = package.loaded.test_clients.one_at_a_time
        local ok, m, e = pcall(c.call, c, "ws_idsession")
        ngx.update_time()
        ngx.say(ok and (m and "ok" or tostring(e)) or ("raised: " .. tostring(m)), " ", ("%.3f"):format(ngx.now()))
      }
    }
    # the visitor goes away while the call holds the max_in_flight = 1
    # slot (in flight, 200 ms): nginx ends the request and its thread
    location = /abandoned_holder {
      lua_check_client_abort on;
      content_by_lua_block {
        local c = package.loaded.test_clients.one_at_a_time
        c:call("ws_idsession")
        ngx.say("done")
      }
    }
    location = /raising_once {
      content_by_lua_block {
        local c = package.loaded.test_clients.raising_once
        local ok, m, e = pcall(c.call, c, "ws_idsession")
        ngx.say(ok and (m and "ok" or tostring(e)) or ("raised: " .. tostring(m)))
      }
    }
  }
}
]]

local function start_nginx(sandbox_url, dir)
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
  for _ = 1, 20 do
    local port = math.random(20000, 45000)
    local conf = CONF:gsub("@DIR@", dir):gsub("@PORT@", tostring(port)):gsub("@REPO@", ROOT)
      :gsub("@BUILD@", BUILD):gsub("@VENDOR_ADDR@", (sandbox_url:match("^http://([^/]+)")))
    if util.nginx_up(dir, conf) then
      return { dir = dir, port = port, url = ("http://127.0.0.1:%d"):format(port) }
    end
  end
  error("could not start nginx on a free port: " .. read(dir .. "/start.log"))
end

describe("billetterie.run/spawn/map and max_in_flight in nginx request handlers", function()
  local sb, server

  setup(function()
    sb = sandbox.start{ args = { "--seed", "demo", "--fault", "ws_idsession:latency=200" } }
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. q(dir)))
    server = start_nginx(sb.url, dir)
  end)

  teardown(function()
    if server then
      sh(("kill $(cat %s/nginx.pid) 2>/dev/null; sleep 0.2; rm -rf %s"):format(q(server.dir), q(server.dir)))
    end
    if sb then sb:stop() end
  end)

  local function get(path)
    return (run(("curl -s -m 20 %s"):format(q(server.url .. path))):gsub("%s+$", ""))
  end

  -- Starts each request { path, after (seconds) } at once in the
  -- background -> their bodies and total times, in the given order.
  local function together(requests)
    local out = server.dir .. "/together"
    sh("rm -rf " .. q(out) .. " && mkdir -p " .. q(out))
    local lines = {}
    for i, r in ipairs(requests) do
      lines[#lines + 1] = ("(sleep %s; curl -s -m 20 -o %s/body.%d -w '%%{time_total}' %s > %s/time.%d) &")
        :format(r[2] or 0, q(out), i, q(server.url .. r[1]), q(out), i)
    end
    lines[#lines + 1] = "wait"
    assert(sh("sh -c " .. q(table.concat(lines, "\n"))))
    local bodies, times = {}, {}
    for i = 1, #requests do
      bodies[i] = (read(out .. "/body." .. i):gsub("%s+$", ""))
      times[i] = tonumber(read(out .. "/time." .. i))
    end
    return bodies, times
  end

  it("keeps each request's tasks its own: a map beside another request's run", function()
    local bodies = together{ { "/run_calls" }, { "/map", 0.05 }, { "/spawn?n=2", 0.1 } }
    assert.are.equal("ok ok", bodies[1])
    assert.are.equal("20,40,60", bodies[2])
    assert.truthy(bodies[3]:match("^ok ok "), bodies[3])
  end)

  it("spawned calls run at once: two 200 ms calls take one latency", function()
    local body = get("/spawn?n=3")
    local results, took = body:match("^(.-) ([%d%.]+)$")
    assert.are.equal("ok ok ok", results, body)
    took = tonumber(took)
    assert.is_true(took >= 0.2, body)
    assert.is_true(took < 0.5, "spawned calls ran one after the other: " .. body)
  end)

  it("sleep, retries' back-off and map's rate in run leave the worker serving other requests", function()
    local bodies, times = together{ { "/sleep?s=1.5" }, { "/sleep?rate=2", 0.05 }, { "/sleep?retries=2", 0.05 },
                                    { "/ping", 0.3 } }
    assert.are.same({ "slept", "3", "network 3", "pong" }, bodies)
    assert.is_true(times[1] >= 1.5, tostring(times[1]))
    assert.is_true(times[2] >= 0.9, "rate 2/s over 3 items: " .. tostring(times[2]))
    assert.is_true(times[3] >= 0.9, "two back-offs of ~0.5 s: " .. tostring(times[3]))
    assert.is_true(times[4] < 0.5, ("ping took %.2f s: the worker was blocked"):format(times[4]))
  end)

  it("a task's error goes to its waiters only; tasks wait for each other, not themselves", function()
    assert.are.equal("false boom true|slow done 2|saw slow done|cannot wait for itself|true|boom", get("/tasks"))
  end)

  it("map refuses a concurrency below 1", function()
    assert.truthy(get("/map_bad"):match("^false .*concurrency must be a whole number >= 1"))
  end)

  it("max_in_flight = 1 shared by concurrent requests: they wait their turn, none raises", function()
    local bodies = together{ { "/one_at_a_time" }, { "/one_at_a_time" }, { "/one_at_a_time" } }
    local ends = {}
    for i = 1, 3 do
      local result, at = bodies[i]:match("^(%S+) ([%d%.]+)$")
      assert.are.equal("ok", result, bodies[i])
      ends[i] = tonumber(at)
    end
    table.sort(ends)
    -- one call at a time: each ends one latency (200 ms) after the one before
    assert.is_true(ends[2] - ends[1] >= 0.18, table.concat(ends, " "))
    assert.is_true(ends[3] - ends[2] >= 0.18, table.concat(ends, " "))
  end)

  it("a request abandoned while its call holds the max_in_flight slot does not keep it", function()
    run(("curl -s -m 0.05 %s"):format(q(server.url .. "/abandoned_holder")))
    -- the slot comes back once the ended thread is collected (a waiter
    -- collects after a second without a release), not never
    local bodies, times = together{ { "/one_at_a_time", 0.3 }, { "/one_at_a_time", 0.3 } }
    for i = 1, 2 do
      assert.truthy(bodies[i]:match("^ok "), bodies[i])
      assert.is_true(times[i] < 5, ("a waiter took %.2f s"):format(times[i]))
    end
  end)

  it("a transport that raises gives its max_in_flight slot back", function()
    assert.truthy(get("/raising_once"):match("^raised: .*transport bug"))
    assert.are.equal("ok", get("/raising_once"))
    assert.are.equal("ok", get("/raising_once"))
  end)

  it("left no Lua error in nginx's error log", function()
    local log = read(server.dir .. "/error.log")
    assert.falsy(log:find("lua entry thread aborted", 1, true), log)
    assert.falsy(log:find("lua user thread aborted", 1, true), log)
    assert.falsy(log:find("xrsimdp", 1, true))
  end)
end)

describe("outside nginx", function()
  local OK = '{"retour":{"message":{"jeton":"X","duree":"00:30:00","temps_restant":1800},'
    .. '"statut":{"code":603,"traitement":"ok","message":"ok"}}}'

  -- a transport whose calls listed in `raising` raise; the others answer OK
  local function transport(raising)
    local n = 0
    return { request = function()
      n = n + 1
      if raising[n] then error("transport bug " .. n) end
      return 200, OK, "application/json"
    end }
  end

  local function client(t)
    return billetterie.new{ url = "http://billetterie.invalid/", login = "l", password = "xrsimdp", client_id = 1,
                            retries = 0, max_in_flight = 1, transport = t }
  end

  it("a call that raises gives its max_in_flight slot back, outside and inside run", function()
    local c = client(transport{ [1] = true, [3] = true })
    local ok, err = pcall(c.call, c, "ws_idsession")
    assert.is_false(ok)
    assert.truthy(tostring(err):find("transport bug 1", 1, true))
    assert.truthy(c:call("ws_idsession"))
    ok, err = pcall(billetterie.run, function() return c:call("ws_idsession") end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("transport bug 3", 1, true))
    assert.are.equal("X", billetterie.run(function() return c:call("ws_idsession") end).jeton)
    assert.falsy(tostring(err):find("xrsimdp", 1, true))
    assert.is_nil(c._request.body)
  end)

  it("a slot freed after a run that failed wakes a live waiter, not the dead run's task", function()
    local limits = require "billetterie.limits"
    local sem = limits.semaphore(1)
    sem:acquire()
    -- a task of a run that fails parks on the semaphore and is left there
    assert.is_false(pcall(billetterie.run, function()
      billetterie.spawn(function() sem:acquire() end)
      billetterie.sleep(0.01)
      error("run failed")
    end))
    local got = billetterie.run(function()
      local waiter = billetterie.spawn(function() sem:acquire(); return "acquired" end)
      billetterie.sleep(0.01)
      sem:release()
      return waiter:wait()
    end)
    assert.are.equal("acquired", got)
  end)

  it("slots held by the tasks of a run that failed come back: the next run goes on", function()
    local limits = require "billetterie.limits"
    local sem = limits.semaphore(2)
    local runner = require "billetterie.runner"
    -- two tasks take both slots and wait for what never comes: the run
    -- ends in its deadlock error and leaves them there
    local ok, err = pcall(billetterie.run, function()
      local tasks = {}
      for i = 1, 2 do tasks[i] = billetterie.spawn(function() sem:acquire(); runner.park() end) end
      tasks[1]:wait()
    end)
    assert.is_false(ok)
    assert.truthy(tostring(err):find("deadlock", 1, true), tostring(err))
    local got = billetterie.run(function()
      sem:acquire()
      sem:acquire()
      sem:release()
      sem:release()
      return "both slots"
    end)
    assert.are.equal("both slots", got)
    -- and a client's call whose transport never answers
    local c = client({ request = function() runner.park() end })
    assert.is_false(pcall(billetterie.run, function() return c:call("ws_idsession") end))
    c.transport = transport{}
    assert.are.equal("X", billetterie.run(function() return c:call("ws_idsession") end).jeton)
    assert.are.equal("X", c:call("ws_idsession").jeton)
  end)

  it("map refuses a concurrency that is not a whole number >= 1", function()
    for _, bad in ipairs { 0, -1, 1.5, "2", 0 / 0, math.huge } do
      local ok, err = pcall(billetterie.map, { 1, 2 }, function(x) return x end, { concurrency = bad })
      assert.is_false(ok, tostring(bad))
      assert.truthy(tostring(err):find("concurrency must be a whole number >= 1", 1, true), tostring(err))
    end
    local r = billetterie.map({ 1, 2, 3 }, function(x) return x * 2 end, { concurrency = 1 })
    assert.are.same({ 2, 4, 6 }, r)
  end)
end)
