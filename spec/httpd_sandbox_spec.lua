-- The sandbox's HTTP and control side under hostile input, over real
-- sockets against `billetterie sandbox` processes (and an in-process
-- sandbox for a route that answers what httpd cannot send): fault rules that
-- cannot hang it, deliveries kept within httpd's limits, journal rows of
-- bounded size (as stored, escaped) with the status and latency really sent
-- and no secret (also one sent as a parameter name), fault ids (an empty one
-- too), NUL bytes, log lines, invalid UTF-8, start-up errors.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/httpd_sandbox_spec.lua

local sandbox = require "spec.support.sandbox"
local sbx = require "billetterie.sandbox"
local faults = require "billetterie.sandbox.faults"
local journal = require "billetterie.sandbox.journal"
local httpd = require "billetterie.httpd"
local cjson = require("cjson").new()

local util = require "spec.support.util"
local q, popen, write_file, read_file = util.q, util.popen, util.write, util.read_file

-- One curl request; args: extra curl arguments (already quoted).
-- -> { status, headers, body, json }, or nil, curl's output when no answer came
local function curl(args)
  local p = popen("curl -s -S -i --max-time 10 -H 'Expect:' " .. args .. " 2>&1")
  local raw = p:read("*a")
  p:close()
  local head, body = raw:match("^(HTTP/%S+ %d+.-)\r\n\r\n(.*)$")
  if not head then return nil, raw end
  local a = { status = tonumber(head:match("^HTTP/%S+ (%d+)")), headers = {}, body = body }
  for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do a.headers[name:lower()] = value end
  local ok, v = pcall(cjson.decode, body)
  a.json = ok and v or nil
  return a
end

-- Whether text is valid UTF-8, by iconv (not the sandbox's own code).
local function valid_utf8(text)
  local path = os.tmpname()
  write_file(path, text)
  local r = os.execute("unset LD_PRELOAD; iconv -f UTF-8 -t UTF-8 " .. q(path) .. " >/dev/null 2>&1")
  os.remove(path)
  return r == true or r == 0
end

local WS = "x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677"

local function code_of(a)
  return a.json and a.json.retour and a.json.retour.statut and a.json.retour.statut.code
end

describe("a fault rule", function()
  it("whose glob fails to match costs one pass: the sandbox still answers", function()
    local stars = ("*"):rep(40) .. "z:latency=1"
    local sb = sandbox.start { args = { "--fault", stars } }
    local a = curl(("--data %s %sws_idsession"):format(q(WS), sb.url))
    assert.are.equal(200, a.status)
    assert.are.equal(603, code_of(a))
    -- the same through the control endpoint, many stars and pieces
    local b = curl(("--data-urlencode %s %s_sandbox/faults"):format(q("fault=" .. ("a*"):rep(200) .. "z:latency=1"),
      sb.url))
    assert.are.equal(200, b.status, b.body)
    a = curl(("--data %s %sws_idsession"):format(q(WS), sb.url))
    assert.are.equal(603, code_of(a))
    assert.are.equal(0, sb:stop())
  end)

  it("of more than faults.MAX_RULE characters is refused, spaces included", function()
    local long = "ws_idsession:latency=1" .. (" "):rep(faults.MAX_RULE)
    local r, err = faults.parse(long)
    assert.is_nil(r)
    assert.matches("at most 1024 characters", err)
    assert.is_table(faults.parse("  ws_* : latency = 5 , status=503 ,  count=2  "))
    assert.are.equal("ws_*:latency=5,status=503,count=2",
      faults.parse("  ws_* : latency = 5 , status=503 ,  count=2  ").text)
  end)

  it("globs match as globs", function()
    local cases = { { "*", "x", true }, { "ws_*", "ws_a", true }, { "ws_*", "wx_a", false },
      { "a*b*c", "aXbYc", true }, { "a*b*c", "acb", false }, { "ab*ab", "ab", false },
      { "ab*ab", "abab", true }, { "a**a", "a", false }, { "*a*", "bab", true }, { "x", "xy", false },
      { "a*a*a", "aaa", true }, { "*_*_*", "ws_info_x", true }, { "ws_info", "ws_info_x", false } }
    for _, c in ipairs(cases) do
      local f = faults.new { c[1] .. ":latency=1" }
      assert.are.equal(c[3], f:pick(c[2]) ~= nil, c[1] .. " ~ " .. c[2])
    end
  end)
end)

describe("fault deliveries", function()
  it("stay within httpd's limits: a chunk larger than the body, latencies over 600000 ms", function()
    local f = faults.new { "*:latency=400000", "*:latency=400000,trickle=100000/1" }
    local d = faults.delivery(f:pick("ws_idsession"), "short")
    assert.are.equal(600000, d.delay)
    assert.are.equal(5, d.chunk)
    assert.is_true(httpd.check(200, {}, "short", d))
  end)

  it("a trickle chunk larger than the body sends the whole answer, and the journal says 200", function()
    local sb = sandbox.start { args = { "--fault", "ws_idsession:trickle=100000/1" } }
    local a = curl(("--data %s %sws_idsession"):format(q(WS), sb.url))
    assert.are.equal(200, a.status, a.body)
    assert.are.equal(603, code_of(a))
    local rows = assert(sbx.journal(sb.url))
    assert.are.equal(200, rows[#rows].status)
    assert.are.equal(0, sb:stop())
  end)
end)

describe("the journal of an answer httpd cannot send", function()
  it("records the 500 that is sent, not the route's 200", function()
    local services = require "billetterie.sandbox.services"
    local db = os.tmpname()
    local sb = assert(sbx.new { db = db, routes = {
      ws_bad = { auth = "none", run = function() return services.raw(200, "text/plain\r\nX-Evil: 1", "x") end },
    } })
    local out = os.tmpname()
    local pipe = popen(("curl -s -i --max-time 5 %sws_bad >%s 2>&1 & echo $!; wait $!"):format(sb.url, q(out)))
    local pid = pipe:read("*l")
    local deadline = os.time() + 10
    while os.execute("kill -0 " .. pid .. " 2>/dev/null") == true and os.time() <= deadline do sb:step(20) end
    pipe:close()
    local raw = read_file(out)
    os.remove(out)
    local rows = sb.journal:list()
    sb:close()
    for _, s in ipairs { "", "-wal", "-shm" } do os.remove(db .. s) end
    assert.matches("^HTTP/1.1 500", raw)
    assert.are.equal(1, #rows)
    assert.are.equal(500, rows[1].status)
  end)
end)

describe("journal rows", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop() end)

  it("keep at most journal.MAX_PARAMS bytes of parameters, marked (truncated)", function()
    local body = os.tmpname()
    write_file(body, WS .. "&big=" .. ("x"):rep(200000) .. "&after=1")
    for _ = 1, 5 do
      assert.are.equal(200, curl(("--data-binary @%s %sws_idsession"):format(q(body), sb.url)).status)
    end
    local many = {}
    for i = 1, 9000 do many[#many + 1] = ("f%d=%s"):format(i, ("v"):rep(20)) end
    write_file(body, WS .. "&" .. table.concat(many, "&"))
    assert.are.equal(200, curl(("--data-binary @%s %sws_idsession"):format(q(body), sb.url)).status)
    os.remove(body)
    local a = curl(sb.url .. "_sandbox/requests")
    assert.is_true(#a.body < 6 * 70000, "journal of " .. #a.body .. " bytes")
    local rows = a.json.requests
    assert.are.equal(6, #rows)
    local big = rows[1].params.big
    assert.are.equal(journal.TRUNCATED, big:sub(-#journal.TRUNCATED))
    assert.is_true(#big <= journal.MAX_PARAMS + #journal.TRUNCATED)
    assert.are.equal("***", rows[1].params.x_rsi_ws_mdp)
    assert.is_number(rows[6].params["(truncated)"])
    assert.is_true(rows[6].params["(truncated)"] > 0)
  end)

  it("are valid UTF-8, and so are 404 messages", function()
    local a = curl(("--data %s %sws_idsession"):format(q(WS .. "&nom=%FF%C3%28ok%E2%82%AC"), sb.url))
    assert.are.equal(603, code_of(a))
    local j = curl(sb.url .. "_sandbox/requests?limit=1")
    assert.is_true(valid_utf8(j.body), j.body)
    assert.are.equal("\239\191\189\239\191\189(ok\226\130\172", j.json.requests[1].params.nom)
    local n = curl(sb.url .. "ws_%FF%FE")
    assert.are.equal(404, n.status)
    assert.is_true(valid_utf8(n.body), n.body)
    assert.matches("ws_\239\191\189\239\191\189", n.json.error.message)
  end)
end)

describe("/_sandbox/faults/ID", function()
  it("refuses ids that are no rule's with 404, and methods but DELETE with 405", function()
    local sb = sandbox.start { args = { "--fault", "ws_x:status=503", "--fault", "ws_y:status=503" } }
    for _, id in ipairs { "99999999999999999999", "abc", "-1", "1.0" } do
      local a = curl(("-X DELETE %s_sandbox/faults/%s"):format(sb.url, id))
      assert.are.equal(404, a.status, id)
      assert.are.equal(404, a.json.error.status)
    end
    local g = curl(sb.url .. "_sandbox/faults/1")
    assert.are.equal(405, g.status)
    assert.are.equal("DELETE", g.headers.allow)
    assert.are.equal(2, #curl(sb.url .. "_sandbox/faults").json.faults)
    assert.are.equal(200, curl(("-X DELETE %s_sandbox/faults/1"):format(sb.url)).status)
    assert.are.equal(1, #curl(sb.url .. "_sandbox/faults").json.faults)
    assert.are.equal(0, sb:stop())
  end)
end)

describe("NUL bytes in parameters", function()
  it("are refused with code 4, nothing stored", function()
    local sb = sandbox.start()
    assert.are.equal(4, code_of(curl(("--data %s %sws_idsession"):format(
      q("x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp%00x&x_rsi_client=677"), sb.url))))
    local jeton = curl(("--data %s %sws_idsession"):format(q(WS), sb.url)).json.retour.message.jeton
    local form = ("x_rsi_token=%s&id_formulaire=1&v_nom=DUPONT&v_prenom=Jean&v_mail=nul@exemple.fr"
      .. "&v_passe=Secret123%%00x&v_passec=Secret123%%00x"):format(jeton)
    assert.are.equal(4, code_of(curl(("--data %s %sws_ccontact"):format(q(form), sb.url))))
    local p = popen("sqlite3 " .. q(sb.db) .. " 'SELECT count(*) FROM contacts'")
    local count = p:read("*a")
    p:close()
    assert.are.equal("0\n", count)
    assert.are.equal(0, sb:stop())
  end)

  it("never reach SQLite cut short: db refuses them", function()
    local dbmod = require "billetterie.sandbox.db"
    local path = os.tmpname()
    local db = assert(dbmod.open(path, {}))
    assert.has_error(function() db:exec("SELECT ?", "a\0b") end, "db: a text value holds a NUL byte")
    db:close()
    os.remove(path)
  end)
end)

describe("--log lines", function()
  it("escape the control characters of a path: a request cannot forge a line", function()
    local sb = sandbox.start { args = { "--log" } }
    curl(sb.url .. "ws_a%0D%0Asbx-forged%20GET%20/ws_idsession%20-%3E%20200%1B%5B31m")
    sb:stop()
    local log = sb:stderr()
    assert.matches("ws_a\\x0D\\x0Asbx-forged GET /ws_idsession -> 200\\x1B[31m", log, 1, true)
    for line in log:gmatch("[^\n]+") do assert.is_nil(line:find("^sbx%-forged")) end
    assert.is_nil(log:find("\27", 1, true))
  end)
end)

describe("the first SIGTERM", function()
  it("still stops the sandbox cleanly: exit 0, the WAL checkpointed into the base", function()
    local path = os.tmpname()
    local sb = sandbox.start { db = path }
    assert.are.equal(603, code_of(curl(("--data %s %sws_idsession"):format(q(WS), sb.url))))
    assert.is_string(read_file(path .. "-wal"))
    assert.are.equal(0, sb:stop())
    assert.is_nil(read_file(path .. "-wal")) -- the last connection's close checkpoints and removes it
    local rows = assert(sbx.journal(path))
    assert.are.equal(1, #rows)
    for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
  end)
end)

describe("start-up and journal file errors", function()
  it("journal.read_file of a missing file errs and creates nothing", function()
    local path = os.tmpname()
    os.remove(path)
    local rows, err = sbx.journal(path)
    assert.is_nil(rows)
    assert.matches("cannot open", err)
    assert.is_nil(read_file(path))
  end)

  it("say what is wrong without internal file:line", function()
    local path = os.tmpname()
    write_file(path, ("not a database "):rep(100))
    local rows, err = sbx.journal(path)
    assert.is_nil(rows)
    assert.matches("file is not a database", err)
    assert.is_nil(err:find("%.lua:%d+"), err)
    local sb, err2 = sbx.new { db = path }
    assert.is_nil(sb)
    assert.matches("file is not a database", err2)
    assert.is_nil(err2:find("%.lua:%d+"), err2)
    -- an empty file (a new base for a sandbox) has no journal to read
    write_file(path, "")
    rows, err = sbx.journal(path)
    assert.is_nil(rows)
    assert.matches("no request journal", err)
    os.remove(path)
  end)

  it("release the base and /dev/urandom when httpd.new raises", function()
    -- only the descriptors on the base and on /dev/urandom count: what other
    -- tests' objects open or close meanwhile does not
    local fds_on = require("spec.support.util").fds_on
    local path = os.tmpname()
    collectgarbage(); collectgarbage()
    local urandom = fds_on("/dev/urandom")
    for _ = 1, 5 do
      assert.has_error(function() sbx.new { db = path, max_body = -1 } end)
    end
    local base, urandom_after = fds_on(path), fds_on("/dev/urandom")
    for _, s in ipairs { "", "-wal", "-shm" } do os.remove(path .. s) end
    -- each leaked attempt would hold two (the base and /dev/urandom)
    if base then assert.equal(0, base, "descriptors left on the base") end
    if urandom then
      assert.is_true(urandom_after <= urandom, ("%d on /dev/urandom before, %d after"):format(urandom, urandom_after))
    end
  end)
end)

describe("a secret sent as a parameter name", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() sb:stop() end)

  it("never reaches the journal: the name is stored as ***", function()
    -- the web-service password (xrsimdp) without its name, then one whose
    -- value is the request's own password
    assert.is_table(curl(("--data %s %sws_idsession"):format(
      q("x_rsi_ws_login=xrsitest&x_rsi_client=677&xrsimdp"), sb.url)))
    assert.is_table(curl(("--data %s %sws_idsession"):format(
      q("x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=S3cretPass&x_rsi_client=677&S3cretPass=1&aS3cretPassb=2"),
      sb.url)))
    local a = curl(sb.url .. "_sandbox/requests")
    assert.are.equal(200, a.status)
    assert.is_nil(a.body:find("xrsimdp", 1, true), a.body)
    assert.is_nil(a.body:find("S3cretPass", 1, true), a.body)
    local rows = a.json.requests
    assert.are.equal("", rows[#rows - 1].params["***"])
    local last = rows[#rows].params
    assert.are.equal("***", last.x_rsi_ws_mdp)
    assert.are.equal("1", last["***"])
    assert.are.equal("2", last["a***b"])
  end)
end)

describe("journal.mask_params", function()
  it("keeps distinct names distinct once masked, a repeated one together", function()
    local params = { { "x_rsi_ws_mdp", "zzzz" }, { "xrsimdp", "1" }, { "zzzz", "2" }, { "xrsimdp", "3" },
      { "***", "4" } }
    local out = cjson.decode(journal.mask_params(params, { "xrsimdp" }))
    assert.are.same({ x_rsi_ws_mdp = "***", ["***"] = { "1", "3" }, ["***#2"] = "2", ["***#3"] = "4" }, out)
  end)

  it("bounds a row as stored: escaped bytes count as written", function()
    local value = ("\1"):rep(70000) -- 70000 x %01: 6 bytes each in JSON
    local text = journal.mask_params({ { "a", value }, { "b", "after" } }, {})
    assert.is_true(#text <= journal.MAX_PARAMS + 100, #text .. " bytes")
    local out = cjson.decode(text)
    assert.are.equal(journal.TRUNCATED, out.a:sub(-#journal.TRUNCATED))
    assert.is_true(#cjson.encode(out.a) - 2 <= journal.MAX_PARAMS + #journal.TRUNCATED)
    -- U+FFFD for bad bytes (3 bytes each) counts as stored too
    text = journal.mask_params({ { "a", ("\255"):rep(70000) } }, {})
    assert.is_true(#text <= journal.MAX_PARAMS + 100, #text .. " bytes")
  end)
end)

describe("journal rows over HTTP", function()
  it("stay within journal.MAX_PARAMS bytes however the values escape", function()
    local sb = sandbox.start()
    local body = os.tmpname()
    write_file(body, "x_rsi_ws_login=xrsitest&x_rsi_client=677&nom=" .. ("%01"):rep(70000))
    assert.is_table(curl(("--data-binary @%s %sws_idsession"):format(q(body), sb.url)))
    os.remove(body)
    local a = curl(sb.url .. "_sandbox/requests?limit=1")
    assert.is_true(#a.body < journal.MAX_PARAMS + 1000, #a.body .. " bytes")
    assert.are.equal(journal.TRUNCATED, a.json.requests[1].params.nom:sub(-#journal.TRUNCATED))
    assert.are.equal(0, sb:stop())
  end)

  it("record the latency applied (capped at 600000 ms), not the rules' sum", function()
    local sb = sandbox.start { args = { "--fault", "ws_idsession:latency=400000",
      "--fault", "ws_idsession:latency=400000" } }
    -- the answer waits 10 minutes: the client gives up, the row is written
    assert.is_nil(curl(("--max-time 1 --data %s %sws_idsession"):format(
      q("x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677"), sb.url)))
    local rows = assert(sbx.journal(sb.url))
    assert.are.equal(600000, rows[#rows].latency_ms)
    assert.are.equal(0, sb:stop())
  end)
end)

describe("DELETE /_sandbox/faults/ (an empty id)", function()
  it("is a 404 like any bad id, and removes nothing", function()
    local sb = sandbox.start { args = { "--fault", "ws_x:status=503", "--fault", "ws_y:status=503" } }
    for _, path in ipairs { "_sandbox/faults/", "_sandbox/faults/x/" } do
      local a = curl(("-X DELETE %s%s"):format(sb.url, path))
      assert.are.equal(404, a.status, path)
      assert.are.equal(404, a.json.error.status)
    end
    assert.are.equal(2, #curl(sb.url .. "_sandbox/faults").json.faults)
    -- an id with a trailing slash is still that rule
    assert.are.equal(200, curl(("-X DELETE %s_sandbox/faults/1/"):format(sb.url)).status)
    assert.are.equal(1, #curl(sb.url .. "_sandbox/faults").json.faults)
    assert.are.equal(0, sb:stop())
  end)
end)

describe("a missing journal file", function()
  it("is named once in the error", function()
    local path = os.tmpname()
    os.remove(path)
    local rows, err = sbx.journal(path)
    assert.is_nil(rows)
    assert.are.equal(("cannot open %s: No such file or directory"):format(path), err)
  end)
end)
