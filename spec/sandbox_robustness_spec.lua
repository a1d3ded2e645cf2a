-- The sandbox under stress: a kill -9 in the middle of a stream of writes
-- from another process loses no acknowledged write; junk parameters and
-- bodies sent to every route get a refusal, never a 500 nor a crash; many
-- keep-alive connections at once; unknown paths 404.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_robustness_spec.lua
local billetterie = require "billetterie"
local catalogue = require "billetterie.catalogue"
local codes = require "billetterie.codes"
local envelope = require "billetterie.envelope"
local json = require "billetterie.json"
local sandbox = require "spec.support.sandbox"
local sbx = require "billetterie.sandbox"
local transport = require "billetterie.transport"

local function client(sb, extra)
  local opts = { url = sb.url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function lines_of(path)
  local out = {}
  local f = io.open(path)
  if not f then return out end
  for line in f:lines() do out[#out + 1] = line end
  f:close()
  return out
end

local function remove_db(path)
  for _, suffix in ipairs { "", "-wal", "-shm" } do os.remove(path .. suffix) end
end

describe("a kill -9 of the sandbox during a stream of writes", function()
  it("leaves a base the next start serves, with every acknowledged creation", function()
    local db = os.tmpname()
    local sb = sandbox.start { db = db }
    local acked, script = os.tmpname(), os.tmpname()
    -- The writer is another process: it creates organismes one after the
    -- other and appends each acknowledged id to a file, until an error.
    local f = assert(io.open(script, "w"))
    f:write([[
      local billetterie = require "billetterie"
      local c = billetterie.new { url = arg[1], login = "xrsitest", password = "xrsimdp",
        client_id = 677, timeout = 5 }
      local out = assert(io.open(arg[2], "a"))
      for i = 1, 1000000 do
        local msg = c:call("ws_organisme_creation", { organisme = { intitule = "Org " .. i, nature = "Association" } })
        if not msg then break end
        out:write(msg.organisme.id_organisme, " ", i, "\n")
        out:flush()
      end
      out:close()
    ]])
    f:close()
    local writer = io.popen(("lua5.4 %s %s %s 2>&1"):format(script, sb.url, acked))
    local deadline = os.time() + 20
    while #lines_of(acked) < 300 and os.time() < deadline do os.execute("sleep 0.05") end
    os.execute("kill -9 " .. sb.pid)
    writer:read("a")
    writer:close() -- the writer stops at its first failed call
    assert.equal(137, sb:stop()) -- 128 + SIGKILL
    local done = lines_of(acked)
    assert.is_true(#done >= 300, "the writer made " .. #done .. " organismes")

    local again = sandbox.start { db = db }
    local c = client(again)
    for _, line in ipairs(done) do
      local id, i = line:match("^(%d+) (%d+)$")
      local msg, err = c:call("ws_info_organisme", { id_organisme = tonumber(id) })
      assert.is_table(msg, "organisme " .. id .. " lost: " .. tostring(err))
      assert.equal("Org " .. i, msg.organisme.intitule)
    end
    -- and it keeps writing where it stopped
    local made = assert(c:call("ws_organisme_creation", { organisme = { intitule = "Après", nature = "Association" } }))
    assert.is_true(made.organisme.id_organisme > tonumber(done[#done]:match("^%d+")))
    again:stop()

    local luasql = require "luasql.sqlite3"
    local env = luasql.sqlite3()
    local conn = env:connect(db)
    local cur = conn:execute("PRAGMA integrity_check")
    assert.equal("ok", cur:fetch())
    cur:close()
    cur = conn:execute("PRAGMA journal_mode") -- WAL, set by the sandbox, is kept in the file
    assert.equal("wal", cur:fetch())
    cur:close(); conn:close(); env:close()
    remove_db(db)
    os.remove(acked)
    os.remove(script)
  end)
end)

describe("junk sent to every route", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop(); remove_db(sb.db) end)

  local JUNK = {
    "", " ", "-1", "0", "1", "99999999999999999999999", "1e308", "-0", "abc", "null", "true",
    "{", "[1,2", '{"a":', "[]", "{}", '{"intitule":null,"nature":[]}', "=====", "%zz%", "\0\1\2",
    "\xff\xfe\xc3", ("x"):rep(5000), ("é"):rep(300), "ZXlKaGJHY2lPaUpJVXpJMU5pSjk=", "2026-13-45T99:99:99",
    "<xml>", "'; DROP TABLE organismes; --", "1,2,3", ("0"):rep(32), ("Z"):rep(32),
  }
  local CREDS = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = "677" }
  local escape = require("billetterie.core").form_escape

  local function pick(list) return list[math.random(#list)] end

  -- A request of junk for `ws`: real parameter names with junk values, some
  -- unknown names, sometimes the right credentials (to get past the checks
  -- of the auth mode), and now and then a body that is not a form at all.
  local function junk_request(ws, names, token)
    local fields = {}
    if math.random() < 0.6 then for k, v in pairs(CREDS) do fields[#fields + 1] = { k, v } end end
    if token and math.random() < 0.5 then fields[#fields + 1] = { "x_rsi_token", token } end
    for _ = 1, math.random(0, 8) do
      local name = math.random() < 0.8 and #names > 0 and pick(names) or pick { "zz", "liste[]", "a[b]", "" }
      fields[#fields + 1] = { name, pick(JUNK) }
    end
    local parts = {}
    for i, kv in ipairs(fields) do parts[i] = escape(kv[1]) .. "=" .. escape(kv[2]) end
    local form = table.concat(parts, "&")
    local r = math.random()
    if r < 0.55 then return "POST", form, "application/x-www-form-urlencoded" end
    if r < 0.7 then return "GET", nil, nil, form end
    if r < 0.8 then return "POST", pick(JUNK), "application/json" end
    if r < 0.9 then return "POST", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n" .. pick(JUNK), "multipart/form-data; boundary=x" end
    return "POST", pick(JUNK) .. "=" .. pick(JUNK) .. "&&=&" .. form, "application/x-www-form-urlencoded"
  end

  it("get an answer of the documented kinds, and the server keeps serving", function()
    local seed = os.time()
    math.randomseed(seed)
    local token = assert(client(sb):call("ws_idsession")).jeton
    local routes = { "_sandbox/faults", "_sandbox/requests", "" }
    for name in pairs(catalogue.services) do routes[#routes + 1] = name end
    table.sort(routes)
    local seen = {}
    for _, ws in ipairs(routes) do
      local service = catalogue.services[ws]
      local names = {}
      for _, p in ipairs(service and service.params or {}) do names[#names + 1] = p.name end
      for _ = 1, 25 do
        local method, body, content_type, query = junk_request(ws, names, token)
        local status, text, ctype, errkind, errmsg = transport.curl:request {
          url = sb.url .. ws .. (query and "?" .. query or ""), method = method, body = body, timeout = 10,
          headers = content_type and { "Content-Type: " .. content_type } or nil,
        }
        local what = ("%s %s (seed %d): %s"):format(method, ws, seed, tostring(body or query):sub(1, 200))
        assert.is_nil(errkind, what .. ": " .. tostring(errmsg))
        assert.is_true(status == 200 or status == 400 or status == 404 or status == 405,
          ("HTTP %d for %s: %s"):format(status, what, tostring(text):sub(1, 300)))
        seen[status] = true
        if status == 200 and service then
          if text:find("^%s*<") then
            assert.matches("xml", ctype, 1, true)
          else
            local doc = assert(json.decode(text), what)
            local _, st = envelope.open(doc) -- every envelope of the spec (1.4)
            assert.is_table(st, what .. ": " .. text:sub(1, 300))
            assert.is_true(st.code == nil or codes[st.code] ~= nil,
              ("unknown code %s for %s"):format(tostring(st.code), what))
          end
        end
      end
    end
    assert.is_true(seen[200] and seen[404] and true)
    -- still serving, and no handler failed on the way
    assert.is_table((client(sb):call("ws_idsession")))
    assert.not_matches("internal error", sb:stderr(), 1, true)
    assert.not_matches("handler error", sb:stderr(), 1, true)
  end)

  it("answers malformed credentials with code 4 on every implemented service", function()
    local c = client(sb)
    for name, service in pairs(catalogue.services) do
      local mode = service.auth
      local bad = (mode == "ws" or mode == "ws_and_token") and { x_rsi_client = "abc" }
        or mode == "token" and { x_rsi_token = "not-a-token" } or nil
      if bad and service.host ~= "api" then
        local form = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = "677",
          x_rsi_token = ("0"):rep(32) }
        for k, v in pairs(bad) do form[k] = v end
        local status, text = transport.curl:request { url = c.url .. service.path, method = "POST",
          body = require("billetterie.core").form_encode(form), timeout = 10 }
        if status ~= 404 then -- not emulated (yet)
          assert.equal(200, status, name)
          local doc = json.decode(text)
          if doc then
            local _, st = envelope.open(doc)
            assert.equal(4, st.code, name .. ": " .. text)
          end
        end
      end
    end
  end)
end)

describe("many clients at once", function()
  it("serves 32 concurrent keep-alive connections, every request journaled", function()
    local sb = sandbox.start()
    local c = client(sb)
    local ok = billetterie.run(function()
      local tasks = {}
      for i = 1, 32 do
        tasks[i] = billetterie.spawn(function()
          for _ = 1, 10 do
            local s = assert(c:call("ws_idsession"))
            assert(c:call("ws_status_session", { x_rsi_token = s.jeton }))
          end
          return true
        end)
      end
      for i = 1, 32 do assert(tasks[i]:wait()) end
      return true
    end)
    assert.is_true(ok)
    local rows = assert(sbx.journal(sb.url, { limit = 10000 }))
    assert.equal(640, #rows)
    local ids = {}
    for _, r in ipairs(rows) do
      assert.equal(200, r.status)
      assert.is_nil(ids[r.request_id])
      ids[r.request_id] = true
    end
    sb:stop()
    remove_db(sb.db)
  end)

  it("answers unknown paths 404 and unknown methods 405, as JSON", function()
    local sb = sandbox.start()
    for _, path in ipairs { "nope", "ws_idsession/extra", "_sandbox/nope", "_sandbox", "favicon.ico" } do
      local status, text, ctype = transport.curl:request { url = sb.url .. path, method = "GET", timeout = 5 }
      assert.equal(404, status, path)
      assert.matches("application/json", ctype)
      assert.equal(404, json.decode(text).error.status)
    end
    local status = transport.curl:request { url = sb.url .. "_sandbox/reset", method = "GET", timeout = 5 }
    assert.equal(405, status)
    sb:stop()
    remove_db(sb.db)
  end)
end)
