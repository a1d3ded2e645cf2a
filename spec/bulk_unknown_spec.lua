-- Outcomes that may have been applied are never sent again blindly: an
-- unreadable answer to a creation that happened, a creation that commits
-- after the client gave up. A real HTTP proxy (billetterie.httpd in a lua5.4
-- process of its own) stands in front of the real sandbox and spoils its
-- answers the way a vendor's front may.
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local sandbox = require "spec.support.sandbox"

local API_KEY = "b1829f60af03c1e69a13ed44405ec898f912b63a"
local MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }

-- /MODE/ws_name is forwarded to the sandbox as /ws_name; ws_organisme_creation
-- is forwarded, then its answer spoilt by MODE:
--   notice   a PHP notice before the JSON (HTTP 200)
--   html     an HTML error page, HTTP 200
--   hold     not forwarded yet: the answer is held 3 s (past the client's
--            timeout) and the creation is forwarded right after the next
--            other request (the change-feed lookup) has been answered: a
--            write that commits late
local PROXY = [==[
local httpd = require "billetterie.httpd"
local core = require "billetterie.core"
local curl = require("billetterie.transport").curl
local upstream = arg[1]
local held
local function forward(ws, body)
  return curl:request{ url = upstream .. ws, method = "POST", body = body, timeout = 10, connect_timeout = 5,
                       max_size = 1e7, verify = false }
end
local srv = assert(httpd.new{ host = "127.0.0.1", port = 0, handler = function(req)
  local mode, ws = req.path:match("^/(%a+)/(ws_[%w_]+)$")
  if not ws then return 404, { ["Content-Type"] = "text/plain" }, "no route" end
  local parts = {}
  for _, kv in ipairs(req.params) do parts[#parts + 1] = core.form_escape(kv[1]) .. "=" .. core.form_escape(kv[2]) end
  local body = table.concat(parts, "&")
  if ws == "ws_organisme_creation" and mode == "hold" and not held then
    held = body
    return 200, { ["Content-Type"] = "application/json" }, "{}", { delay = 3000 }
  end
  local status, answer, ctype = forward(ws, body)
  if ws == "ws_organisme_creation" and mode == "notice" then
    answer = "<br />\n<b>Notice</b>: Undefined index: ville in /var/www/ws/organisme.php on line 42<br />\n" .. answer
  elseif ws == "ws_organisme_creation" and mode == "html" then
    status, ctype = 200, "text/html"
    answer = "<!DOCTYPE html><html><head><title>Erreur</title></head><body>Erreur du serveur</body></html>"
  elseif ws ~= "ws_organisme_creation" and held then   -- the change feed (its path: ws_execute_programme)
    forward("ws_organisme_creation", held)   -- commits after this lookup was answered
    held = nil
  end
  return status, { ["Content-Type"] = ctype or "application/json" }, answer or ""
end })
io.stdout:write(("http://127.0.0.1:%d/\n"):format(srv:port()))
io.stdout:flush()
srv:run()
]==]

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- The 5.4 build of the C modules (billetterie.httpd exists only there).
local function cpath54()
  return (package.cpath:gsub("/jit/", "/5.4/"))
end

local function start_proxy(upstream)
  local script, out = os.tmpname(), os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(PROXY)
  f:close()
  local pipe = io.popen(("unset LD_PRELOAD; LUA_PATH=%s LUA_CPATH=%s lua5.4 %s %s >%s 2>&1 & echo $!; wait $!"):format(
    q(package.path), q(cpath54()), q(script), q(upstream), q(out)))
  local pid = tonumber(pipe:read("*l"))
  local url
  for _ = 1, 250 do
    url = read(out):match("^(http://%S+/)")
    if url then break end
    os.execute("sleep 0.02")
  end
  local proxy = { url = url }
  function proxy.stop()
    if proxy.stopped then return end
    proxy.stopped = true
    os.execute("kill " .. pid .. " 2>/dev/null")
    pipe:close()
    os.remove(script)
    os.remove(out)
  end
  if not url then
    local text = read(out)
    proxy.stop()
    error("proxy did not start: " .. text)
  end
  return proxy
end

local sb, proxy, c
setup(function()
  sb = sandbox.start()
  c = sb:client()
  proxy = start_proxy(sb.url)
end)
teardown(function()
  if proxy then proxy.stop() end
  if sb then sb:stop() end
end)

local temp = {}
teardown(function()
  for _, p in ipairs(temp) do
    for _, suffix in ipairs{ "", ".db", ".db-wal", ".db-shm" } do os.remove(p .. suffix) end
  end
end)

local function write_csv(prefix, n)
  local path = os.tmpname()
  temp[#temp + 1] = path
  local f = assert(io.open(path, "w"))
  f:write("Nom;Nature\n")
  for i = 1, n do f:write(("%s %03d;Association\n"):format(prefix, i)) end
  f:close()
  return path
end

local function on_server(prefix)
  local data = assert(c:liste_fiches_modifiees{ ts = "2000-01-01T00:00:00" })
  local count, n = {}, 0
  for _, o in ipairs(data.liste_organismes or {}) do
    if o.intitule:sub(1, #prefix) == prefix then
      count[o.intitule] = (count[o.intitule] or 0) + 1
      n = n + 1
    end
  end
  return count, n
end

local function through(mode, extra)
  local opts = { url = proxy.url .. mode .. "/", login = "xrsitest", password = "xrsimdp", client_id = 677,
                 api_url = sb.url, api_login = "WSCE", api_key = API_KEY, timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

describe("bulk.import with outcomes that may have been applied", function()
  for _, mode in ipairs{ "notice", "html" } do
    it("finds on the server, never resends, a creation answered with an unreadable body (" .. mode .. ")", function()
      local prefix = "Inconnu " .. mode
      local path = write_csv(prefix, 3)
      local journal = path .. ".db"
      local r = assert(bulk.import{ client = through(mode), csv = path, map = MAP, journal = journal })
      -- every answer was a decode error; the creations are found in the change feed
      assert.same({ 3, 0, 0 }, { r.created, r.failed, r.unknown })
      r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
      assert.same({ 3, 0, 3 }, { r.created, r.failed, r.already })
      local count, n = on_server(prefix)
      assert.equal(3, n)
      for i = 1, 3 do assert.equal(1, count[("%s %03d"):format(prefix, i)]) end
    end)
  end

  it("keeps an unreadable answer unknown (not failed) while the change feed cannot be read", function()
    local path = write_csv("Inconnu feed", 2)
    local journal = path .. ".db"
    local r = assert(bulk.import{ client = through("notice", { api_url = "http://127.0.0.1:1/", retries = 0 }),
      csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 0, 0, 2 }, { r.created, r.failed, r.unknown })
    assert.matches("could not check the server", r.unresolved, 1, true)
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.unknown })
    local _, n = on_server("Inconnu feed")
    assert.equal(2, n)
  end)

  it("keeps a timed-out creation unknown until settled, so a late commit is found, not duplicated", function()
    local path = write_csv("Tardif", 2)
    local journal = path .. ".db"
    -- record 1 times out (the proxy holds it) and commits just after the
    -- end-of-run lookup; record 2 goes through
    local slow = through("hold", { api_url = proxy.url .. "hold/", timeout = 1 })
    local r = assert(bulk.import{ client = slow, csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 1, 1, 0, 0 }, { r.created, r.unknown, r.pending, r.failed })
    assert.matches("1 record%(s%) sent less than %d+ s ago are not on the server yet", r.unresolved)
    -- the next run finds the late creation instead of sending it again
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.unknown })
    assert.is_nil(r.unresolved)
    local count, n = on_server("Tardif")
    assert.equal(2, n)
    assert.equal(1, count["Tardif 001"])
  end)

  it("keeps a refused request (vendor ko, HTTP 4xx) failed, and sends it again on the next run", function()
    local path = write_csv("Refus", 2)
    local journal = path .. ".db"
    local faults = "ws_organisme_creation:status=429,count=1"
    local ok = os.execute(("curl -s -o /dev/null -d %s %s_sandbox/faults"):format(q("fault=" .. faults), sb.url))
    assert.is_true(ok == true or ok == 0)
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 1, 1, 0 }, { r.created, r.failed, r.unknown })
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.failed })
    local _, n = on_server("Refus")
    assert.equal(2, n)
  end)
end)
