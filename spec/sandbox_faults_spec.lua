-- The sandbox's HTTP side: fault rules (from the command line and from the
-- control endpoint) seen through the project's client as its error kinds,
-- latency that does not block other connections, the request journal with
-- its secrets masked, reset, and the delivery options of billetterie.httpd
-- underneath (in process).
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_faults_spec.lua
local billetterie = require "billetterie"
local httpd = require "billetterie.httpd"
local json = require "billetterie.json"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"
local sbx = require "billetterie.sandbox"
local transport = require "billetterie.transport"

local now = httpd.time
local PASSWORD = "xrsimdp"

-- retries = 0: each call is one request, so every fault shows as it is
-- (the client retries retryable errors of reads by default).
local function client(sb, extra)
  local opts = { url = sb.url, login = "xrsitest", password = PASSWORD, client_id = 677, timeout = 10,
    retries = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

-- curl for what the SDK's transport does not send (DELETE). Under the ASan
-- run the preloaded runtime must not reach curl.
local function curl(args)
  local ok, out = shell("unset LD_PRELOAD; curl -s -S " .. args)
  assert(ok, out)
  return out:gsub("exit=%d+%s*$", "")
end

-- A GET or POST through the SDK's transport. -> status, body
local function http(method, url, body, content_type)
  local status, text, _, errkind, errmsg = transport.curl:request {
    url = url, method = method, body = body, timeout = 10,
    headers = content_type and { "Content-Type: " .. content_type } or nil,
  }
  assert(not errkind, errmsg)
  return status, text
end

local function set_faults(sb, rules)
  return assert(sbx.faults(sb.url, rules, true))
end

local function expect_error(msg, err, kind)
  assert.is_nil(msg)
  assert.equal(kind, err.kind, tostring(err))
  return err
end

describe("fault rules with retry_after", function()
  local faults = require "billetterie.sandbox.faults"

  it("go with status or html only, and show in the listing", function()
    local r = assert(faults.parse("ws_x:status=429,retry_after=2,count=1"))
    assert.equal("ws_x:status=429,retry_after=2,count=1", r.text)
    assert.truthy(assert(faults.parse("ws_x:html=503,retry_after=0")))
    local _, err = faults.parse("ws_x:latency=5,retry_after=2")
    assert.matches("retry_after goes with status or html", err)
    _, err = faults.parse("ws_x:status=429,retry_after=-1")
    assert.matches("retry_after must be whole seconds", err)
    local set = assert(faults.new { "ws_x:status=503,retry_after=9" })
    assert.equal(9, set:list()[1].retry_after)
  end)

  it("send Retry-After with the refusal", function()
    local plan = assert(faults.new { "ws_x:status=503,retry_after=9" }):pick("ws_x")
    local status, headers = faults.answer(plan, "rid-1")
    assert.same({ 503, "9" }, { status, headers["Retry-After"] })
    plan = assert(faults.new { "ws_x:html=429,retry_after=0" }):pick("ws_x")
    status, headers = faults.answer(plan, "rid-2")
    assert.same({ 429, "0" }, { status, headers["Retry-After"] })
    plan = assert(faults.new { "ws_x:status=503" }):pick("ws_x")
    status, headers = faults.answer(plan, "rid-3")
    assert.same({ 503 }, { status, headers["Retry-After"] })
  end)
end)

describe("fault rules given on the command line", function()
  local sb
  setup(function()
    sb = sandbox.start { args = { "--fault", "ws_idsession:latency=300",
      "--fault", "ws_info_organisme:status=503,count=2" } }
  end)
  teardown(function() sb:stop() end)

  it("delay one service without blocking the others", function()
    local c = client(sb)
    local t0 = now()
    local fast_done, results = nil, {}
    billetterie.run(function()
      local tasks = {}
      for i = 1, 10 do tasks[i] = billetterie.spawn(function() return c:call("ws_idsession") end) end
      -- another service, sent while the ten are held: answered at once
      local msg, err = c:call("ws_status_session", { x_rsi_token = ("0"):rep(32) })
      fast_done = now() - t0
      assert.is_nil(msg)
      assert.equal(605, err.code)
      for i = 1, 10 do results[i] = { tasks[i]:wait() } end
    end)
    local elapsed = now() - t0
    for i = 1, 10 do
      assert.is_table(results[i][1], tostring(results[i][2]))
      assert.equal(603, results[i][2].code)
    end
    assert.is_true(elapsed >= 0.3, "the latency was applied")
    assert.is_true(elapsed < 1.5, ("10 calls of 300 ms took %.2f s: they were served one by one"):format(elapsed))
    assert.is_true(fast_done < 0.25, ("an unaffected call waited %.2f s"):format(fast_done))
    local row = assert(sbx.journal(sb.url, { path = "ws_idsession", limit = 1 }))[1]
    assert.equal(300, row.latency_ms)
    assert.equal("ws_idsession:latency=300", row.fault)
    assert.is_true(row.duration_ms < 300) -- the time spent answering, not waiting
  end)

  it("makes a client with a shorter timeout time out", function()
    local t0 = now()
    local msg, err = client(sb, { timeout = 0.1 }):call("ws_idsession")
    expect_error(msg, err, "timeout")
    assert.is_true(err.retryable)
    assert.is_true(now() - t0 < 0.3)
  end)

  it("counts: the next two calls get HTTP 503, then the service answers", function()
    local c = client(sb)
    for _ = 1, 2 do
      local msg, err = c:call("ws_info_organisme", { id_organisme = 1 })
      expect_error(msg, err, "http")
      assert.equal(503, err.http_status)
      assert.is_true(err.retryable)
    end
    local listed = assert(sbx.faults(sb.url, {}))
    assert.equal(1, #listed) -- the used-up rule is gone, the latency stays
    assert.equal("ws_idsession:latency=300", listed[1].rule)
    local msg, err = c:call("ws_info_organisme", { id_organisme = 1 })
    expect_error(msg, err, "vendor")
    assert.equal(904, err.code)
  end)

  it("lets the client's own retries get through a rule with a count", function()
    assert(sbx.faults(sb.url, { "ws_info_organisme:status=503,count=2" }))
    local c = client(sb, { retries = 2, retry_base = 0.01 })
    local msg, err = c:call("ws_info_organisme", { id_organisme = 1 })
    expect_error(msg, err, "vendor") -- two 503s retried, then the service's answer
    assert.equal(904, err.code)
    local rows = assert(sbx.journal(sb.url, { path = "ws_info_organisme", limit = 3 }))
    assert.same({ 503, 503, 200 }, { rows[1].status, rows[2].status, rows[3].status })
  end)
end)

describe("every fault mode given on the command line", function()
  -- one rule per service, so one server shows them all
  local sb
  setup(function()
    sb = sandbox.start { args = {
      "--fault", "ws_idsession:maintenance", "--fault", "ws_status_session:status=502",
      "--fault", "ws_info_organisme:html", "--fault", "ws_organisme_creation:truncate=20",
      "--fault", "ws_cat_listes:drop", "--fault", "ws_programmation:trickle=1/100",
      "--fault", "ws_info_formulaire:latency=400",
    } }
  end)
  teardown(function() sb:stop() end)

  it("shows each as the client's error kind", function()
    local c = client(sb)
    local cases = {
      { "ws_idsession", {}, "vendor", 7 },
      { "ws_status_session", { x_rsi_token = ("0"):rep(32) }, "http", 502 },
      { "ws_info_organisme", { id_organisme = 1 }, "decode" },
      { "ws_organisme_creation", { organisme = { intitule = "X", nature = "Association" } }, "network" },
      { "ws_cat_listes", {}, "network" },
      { "ws_programmation", {}, "timeout", nil, 0.3 },
      { "ws_info_formulaire", { id_formulaire = 1 }, "timeout", nil, 0.2 },
    }
    for _, case in ipairs(cases) do
      local ws, params, kind, code, timeout = case[1], case[2], case[3], case[4], case[5]
      local msg, err = client(sb, { timeout = timeout or 10 }):call(ws, params)
      expect_error(msg, err, kind)
      if kind == "vendor" then assert.equal(code, err.code) end
      if kind == "http" then assert.equal(code, err.http_status) end
    end
    assert.is_table((c:call("ws_info_formulaire", { id_formulaire = 1 }))) -- in time with a patient client
  end)
end)

describe("fault rules set through /_sandbox/faults", function()
  local sb, c
  setup(function()
    sb = sandbox.start()
    c = client(sb)
  end)
  teardown(function() sb:stop() end)
  before_each(function() set_faults(sb, {}) end)

  it("maintenance: vendor code 7, retryable", function()
    set_faults(sb, { "ws_idsession:maintenance" })
    local msg, err = c:call("ws_idsession")
    expect_error(msg, err, "vendor")
    assert.equal(7, err.code)
    assert.is_true(err.retryable)
    assert.equal(200, err.http_status)
  end)

  it("HTTP 500, 502, 503: http errors, retryable for 502 and 503 only", function()
    for status, retryable in pairs { [500] = false, [502] = true, [503] = true } do
      set_faults(sb, { { target = "ws_idsession", status = status } })
      local msg, err = c:call("ws_idsession")
      expect_error(msg, err, "http")
      assert.equal(status, err.http_status)
      assert.equal(retryable, err.retryable)
      assert.matches("^sbx%-", err.request_id)
    end
  end)

  it("an HTML page instead of JSON: decode error (HTTP 200), http error with a status", function()
    set_faults(sb, { "ws_idsession:html" })
    local msg, err = c:call("ws_idsession")
    expect_error(msg, err, "decode")
    assert.matches("HTML", err.message)
    set_faults(sb, { "ws_idsession:html=502" })
    msg, err = c:call("ws_idsession")
    expect_error(msg, err, "http")
    assert.equal(502, err.http_status)
    assert.matches("Bad Gateway", err.message)
  end)

  it("a truncated body: network (or decode) error, and the service did run", function()
    set_faults(sb, { "ws_organisme_creation:truncate" })
    local msg, err = c:call("ws_organisme_creation", { organisme = { intitule = "Tronquée", nature = "Association" } })
    assert.is_nil(msg)
    assert.is_true(err.kind == "network" or err.kind == "decode", tostring(err))
    set_faults(sb, {})
    local rows = assert(sbx.journal(sb.url, { path = "ws_organisme_creation" }))
    assert.equal(901, rows[#rows].code) -- written, then the answer was cut
    assert.matches("truncate", rows[#rows].fault)
  end)

  it("a dropped connection: network error, nothing done", function()
    set_faults(sb, { "ws_idsession:drop" })
    local msg, err = c:call("ws_idsession")
    expect_error(msg, err, "network")
    assert.is_true(err.retryable)
    set_faults(sb, {})
    local rows = assert(sbx.journal(sb.url, { path = "ws_idsession" }))
    assert.is_nil(rows[#rows].status)
    assert.is_nil(rows[#rows].code)
    assert.equal("ws_idsession:drop", rows[#rows].fault)
  end)

  it("a slow trickle: timeout with a short client timeout, the whole answer otherwise", function()
    set_faults(sb, { "ws_idsession:trickle" })
    local t0 = now()
    local msg, err = client(sb, { timeout = 0.3 }):call("ws_idsession")
    expect_error(msg, err, "timeout")
    assert.is_true(now() - t0 < 1)
    set_faults(sb, { "ws_idsession:trickle=64/20" })
    t0 = now()
    local ok, statut = c:call("ws_idsession")
    assert.is_table(ok, tostring(statut))
    assert.equal(603, statut.code)
    assert.is_true(now() - t0 >= 0.04, "the body came in several pieces")
  end)

  it("combines latency with another effect, and matches globs", function()
    set_faults(sb, { "ws_status_*:latency=200,status=502" })
    local t0 = now()
    local msg, err = c:call("ws_status_session", { x_rsi_token = ("0"):rep(32) })
    expect_error(msg, err, "http")
    assert.equal(502, err.http_status)
    assert.is_true(now() - t0 >= 0.2)
    assert.is_table((c:call("ws_idsession"))) -- not matched
  end)

  it("fires with the given probability", function()
    set_faults(sb, { "ws_idsession:status=503,probability=0" })
    for _ = 1, 20 do assert.is_table((c:call("ws_idsession"))) end
    set_faults(sb, { "ws_idsession:status=503,probability=0.5" })
    local failed = 0
    for _ = 1, 100 do
      if not c:call("ws_idsession") then failed = failed + 1 end
    end
    assert.is_true(failed > 15 and failed < 85, failed .. " of 100 failed")
  end)

  it("lists, adds, replaces and removes rules; refuses a wrong one whole", function()
    -- form fields, as curl sends them
    local out = curl(("-d 'fault=ws_idsession:latency=10' -d 'fault=*:drop,count=3' %s_sandbox/faults"):format(sb.url))
    local v = json.decode(out)
    assert.equal(2, #v.faults)
    assert.equal("*:drop,count=3", v.faults[2].rule)
    assert.equal(3, v.faults[2].count)
    -- JSON: a list mixing both notations
    local status, body = http("POST", sb.url .. "_sandbox/faults",
      '[{"target":"ws_login","trickle":[4,50],"count":1},"ws_cat_*:html=503"]', "application/json")
    assert.equal(200, status)
    v = json.decode(body)
    assert.equal(4, #v.faults)
    assert.equal("ws_login:trickle=4/50,count=1", v.faults[3].rule)
    -- a wrong rule: 400 naming it, and nothing added
    for _, bad in ipairs { '"ws_x:latency=abc"', '"ws_x:status=200"', '"nocolon"', '"ws_x:drop,html"',
      '"ws_x:probability=2"', '"ws_x:count=0"', '"ws_x:explode"', '{"latency":5}', "not json" } do
      status, body = http("POST", sb.url .. "_sandbox/faults", bad, "application/json")
      assert.equal(400, status, bad)
      assert.is_string(json.decode(body).error.message)
    end
    status, body = http("GET", sb.url .. "_sandbox/faults")
    assert.equal(4, #json.decode(body).faults)
    -- DELETE one, then all
    local id = json.decode(body).faults[1].id
    v = json.decode(curl(("-X DELETE %s_sandbox/faults/%d"):format(sb.url, id)))
    assert.equal(3, #v.faults)
    assert.matches('"error"', curl(("-X DELETE %s_sandbox/faults/999"):format(sb.url)))
    v = json.decode(curl(("-X DELETE %s_sandbox/faults"):format(sb.url)))
    assert.same({}, v.faults)
    assert.matches('"status":405', curl(("-X PUT %s_sandbox/faults"):format(sb.url)))
  end)

  it("never applies to the control endpoints or the dashboard", function()
    set_faults(sb, { "*:drop" })
    local status = http("GET", sb.url)
    assert.equal(200, status)
    status = http("GET", sb.url .. "_sandbox/requests?limit=1")
    assert.equal(200, status)
    local msg, err = c:call("ws_idsession")
    expect_error(msg, err, "network")
    set_faults(sb, {}) -- still reachable to clear the rule
    assert.is_table((c:call("ws_idsession")))
  end)
end)

describe("the request journal", function()
  local sb
  local SECRET = "S3cret-Passw0rd-xyz"
  setup(function() sb = sandbox.start { args = { "--ws-password", SECRET } } end)
  teardown(function() sb:stop() end)

  local function c() return billetterie.new { url = sb.url, login = "xrsitest", password = SECRET, client_id = 677 } end

  it("records method, path, parameters, status, code, duration and time, secrets masked", function()
    local t0 = os.time()
    local session = assert(c():call("ws_idsession"))
    assert(c():call("ws_status_session", { x_rsi_token = session.jeton }))
    -- the contact's passwords are secrets too (v_passe, v_passec)
    c():call("ws_ccontact", { x_rsi_token = session.jeton, id_formulaire = 1, v_nom = "DUPONT",
      v_prenom = "Jean", v_mail = "jean.dupont@exemple.fr", v_passe = "Contact1Pass", v_passec = "Contact1Pass" })
    -- a secret value sent under another name is blanked too
    http("POST", sb.url .. "ws_idsession", "x_rsi_ws_login=xrsitest&x_rsi_client=677&x_rsi_ws_mdp="
      .. SECRET .. "&note=pw%20" .. SECRET, "application/x-www-form-urlencoded")
    assert.equal(404, (http("GET", sb.url .. "ws_nope?x_rsi_ws_mdp=" .. SECRET)))

    local status, raw = http("GET", sb.url .. "_sandbox/requests")
    assert.equal(200, status)
    assert.not_matches(SECRET, raw, 1, true)
    assert.not_matches(session.jeton, raw, 1, true)
    assert.not_matches("Contact1Pass", raw, 1, true)
    local rows = json.decode(raw).requests
    assert.equal(5, #rows)
    local r = rows[1]
    assert.equal("POST", r.method)
    assert.equal("/ws_idsession", r.path)
    assert.equal(200, r.status)
    assert.equal(603, r.code)
    assert.same({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "***", x_rsi_client = "677" }, r.params)
    assert.is_number(r.duration_ms)
    assert.is_true(r.at >= t0 - 1 and r.at <= os.time() + 1)
    assert.matches("^sbx%-", r.request_id)
    assert.equal("***", rows[2].params.x_rsi_token)
    assert.equal(603, rows[2].code)
    assert.equal("/ws_ccontact", rows[3].path)
    assert.equal("***", rows[3].params.v_passe)
    assert.equal("***", rows[3].params.v_passec)
    assert.equal("DUPONT", rows[3].params.v_nom)
    assert.equal("pw ***", rows[4].params.note)
    assert.equal(404, rows[5].status)
    assert.equal("GET", rows[5].method)
    assert.is_true(rows[2].id > rows[1].id)

    -- the same rows from Lua, over HTTP and straight from the file
    local via_url = assert(sbx.journal(sb.url, { since = rows[2].id }))
    assert.equal(3, #via_url)
    assert.equal(rows[3].id, via_url[1].id)
    local via_file = assert(sbx.journal(sb.db, { path = "ws_idsession" }))
    assert.equal(2, #via_file)
    assert.same(rows[1].params, via_file[1].params)
    assert.equal(2, #assert(sbx.journal(sb.url, { limit = 2 })))

    -- the password is nowhere in the SQLite file (nor its write-ahead log)
    for _, suffix in ipairs { "", "-wal" } do
      local f = io.open(sb.db .. suffix, "rb")
      if f then
        local bytes = f:read("a")
        f:close()
        assert.is_nil(bytes:find(SECRET, 1, true), "the password is in " .. sb.db .. suffix)
      end
    end
    local luasql = require "luasql.sqlite3"
    local env = luasql.sqlite3()
    local conn = env:connect(sb.db)
    local cur = conn:execute("SELECT * FROM sandbox_requests")
    local row, n = cur:fetch({}, "a"), 0
    while row do
      n = n + 1
      for _, v in pairs(row) do assert.not_matches(SECRET, tostring(v), 1, true) end
      row = cur:fetch({}, "a")
    end
    cur:close(); conn:close(); env:close()
    assert.equal(5, n)
  end)

  it("is emptied by DELETE /_sandbox/requests", function()
    curl(("-X DELETE %s_sandbox/requests"):format(sb.url))
    assert.same({}, assert(sbx.journal(sb.url)))
  end)

  it("keeps only the latest --journal-max requests; 0 turns it off", function()
    local small = sandbox.start { args = { "--journal-max", "5" } }
    local cl = client(small)
    for _ = 1, 23 do cl:call("ws_status_session", { x_rsi_token = ("0"):rep(32) }) end
    local rows = assert(sbx.journal(small.url))
    assert.equal(5, #rows)
    assert.equal(23, rows[5].id)
    small:stop()
    local none = sandbox.start { args = { "--journal-max", "0" } }
    assert(client(none):call("ws_idsession"))
    assert.same({}, assert(sbx.journal(none.url)))
    none:stop()
  end)
end)

describe("POST /_sandbox/reset", function()
  it("empties the data and the journal and restores the command line's rules", function()
    local sb = sandbox.start { args = { "--fault", "ws_status_session:maintenance,count=1" } }
    local c = client(sb)
    local _, err = c:call("ws_status_session", { x_rsi_token = ("0"):rep(32) })
    assert.equal(7, err.code) -- the rule is used up
    assert.equal(605, select(2, c:call("ws_status_session", { x_rsi_token = ("0"):rep(32) })).code)
    local made = assert(c:call("ws_organisme_creation", { organisme = { intitule = "Avant", nature = "Association" } }))
    local id = made.organisme.id_organisme
    assert(c:call("ws_info_organisme", { id_organisme = id }))
    assert(sbx.faults(sb.url, { "ws_idsession:status=500" }))

    assert.is_true(sbx.reset(sb.url))
    local _, gone = c:call("ws_info_organisme", { id_organisme = id })
    assert.equal(904, gone.code)
    local rules = assert(sbx.faults(sb.url, {}))
    assert.equal(1, #rules)
    assert.equal("ws_status_session:maintenance,count=1", rules[1].rule)
    assert.equal(1, rules[1].count)
    assert.is_table((c:call("ws_idsession"))) -- the rule added later is gone
    local rows = assert(sbx.journal(sb.url))
    assert.equal(2, #rows) -- what came after the reset only
    assert.equal("/ws_info_organisme", rows[1].path)
    -- ids start again
    local again = assert(c:call("ws_organisme_creation", { organisme = { intitule = "Après", nature = "Association" } }))
    assert.equal(id, again.organisme.id_organisme)
    sb:stop()
  end)
end)

describe("the command line's --fault", function()
  it("refuses a wrong rule with the usage and exit status 2", function()
    local ok, out = shell("lua5.4 bin/billetterie sandbox --port 0 --db /dev/null --fault 'ws_x:latency=-1'")
    assert.is_false(ok)
    assert.matches("exit=2", out)
    assert.matches("%-%-fault: \"ws_x:latency=%-1\": latency takes milliseconds", out)
    local _, help = shell("lua5.4 bin/billetterie sandbox --help")
    assert.matches("%-%-fault RULE", help)
    assert.matches("trickle", help)
  end)
end)

describe("billetterie.httpd delivery options", function()
  -- Starts a shell command in the background; the popen'd shell waits for
  -- it, so it is reaped as soon as it ends. -> { pid, pipe }
  local function spawn(cmd, out)
    local pipe = io.popen(("unset LD_PRELOAD; (%s) >%s 2>&1 & echo $!; wait $!"):format(cmd, q(out)))
    return { pid = pipe:read("l"), pipe = pipe }
  end
  local function running(job) return os.execute("kill -0 " .. job.pid .. " 2>/dev/null") == true end
  local function read(path)
    local f = io.open(path, "rb")
    local s = f:read("a")
    f:close()
    os.remove(path)
    return s
  end

  local BODY = ("0123456789"):rep(10)
  local function server()
    return assert(httpd.new { port = 0, handler = function(req)
      local p = req.path
      if p == "/delay" then return 200, {}, "late", { delay = 300 } end
      if p == "/drop" then return 200, {}, "x", { drop = true } end
      if p == "/late-drop" then return 200, {}, "x", { drop = true, delay = 100 } end
      if p == "/send" then return 200, {}, BODY, { send = 10 } end
      if p == "/trickle" then return 200, {}, BODY, { chunk = 10, interval = 30 } end
      if p == "/bad-send" then return 200, {}, BODY, { send = 1000 } end
      if p == "/bad-delay" then return 200, {}, "", { delay = -1 } end
      if p == "/bad-type" then return 200, {}, "", "later" end
      return 200, {}, "fast"
    end })
  end

  it("answers late without blocking, and step() wakes up for the timer", function()
    local srv = server()
    local url = "http://127.0.0.1:" .. srv:port()
    local out = os.tmpname()
    local t0 = now()
    -- each slow answer to a file of its own, gathered at the end: three
    -- curls finishing together would interleave their writes in one file
    local job = spawn(("for i in 1 2 3; do curl -s -w ' %%{http_code} %%{time_total}\\n' %s/delay >%s.$i & done; "
      .. "sleep 0.05; curl -s -w ' %%{time_total}\\n' %s/fast; wait; cat %s.1 %s.2 %s.3; rm -f %s.1 %s.2 %s.3")
      :format(url, q(out), url, q(out), q(out), q(out), q(out), q(out), q(out)), out)
    -- long waits: only the timers can make the answers come in time
    while running(job) and now() - t0 < 5 do srv:step(1500) end
    job.pipe:close()
    local text = read(out)
    local n = 0
    for took in text:gmatch("late 200 ([%d.]+)") do
      n = n + 1
      assert.is_true(tonumber(took) >= 0.29 and tonumber(took) < 0.9, "answered after " .. took .. " s")
    end
    assert.equal(3, n)
    assert.is_true(tonumber(text:match("fast ([%d.]+)")) < 0.2, "the others were not held")
    srv:close()
  end)

  it("drops, truncates and trickles; refuses bad options with a 500", function()
    local srv = server()
    local url = "http://127.0.0.1:" .. srv:port()
    local out = os.tmpname()
    local job = spawn(table.concat({
      ("curl -s %s/drop; echo \" rc=$?\""):format(url),
      ("curl -s %s/late-drop; echo \" rc=$?\""):format(url),
      ("curl -s %s/send; echo \" rc=$?\""):format(url),
      ("curl -s %s/trickle -w ' %%{time_total}'; echo \" rc=$?\""):format(url),
      ("for p in bad-send bad-delay bad-type; do curl -s -o /dev/null -w '%%{http_code}\\n' %s/$p; done"):format(url),
      ("curl -s %s/trickle %s/fast"):format(url, url), -- keep-alive after a trickle
    }, "; "), out)
    local t0 = now()
    while running(job) and now() - t0 < 10 do srv:step(50) end
    job.pipe:close()
    local lines = {}
    for line in read(out):gmatch("[^\n]+") do lines[#lines + 1] = line end
    assert.equal(" rc=52", lines[1]) -- empty reply
    assert.equal(" rc=52", lines[2])
    assert.equal("0123456789 rc=18", lines[3]) -- short body
    local body, took, rc = lines[4]:match("^(%d+) ([%d.]+) rc=(%d+)$")
    assert.equal(BODY, body)
    assert.equal("0", rc)
    assert.is_true(tonumber(took) >= 0.25, "ten chunks 30 ms apart")
    assert.same({ "500", "500", "500" }, { lines[5], lines[6], lines[7] })
    assert.equal(BODY .. "fast", lines[8])
    srv:close()
  end)

  it("closes cleanly with connections still held", function()
    local srv = server()
    local url = "http://127.0.0.1:" .. srv:port()
    local out = os.tmpname()
    local job = spawn(("curl -s -m 5 %s/delay & curl -s -m 5 %s/trickle & wait"):format(url, url), out)
    local t0 = now()
    while now() - t0 < 0.15 do srv:step(20) end -- both are held now
    srv:close()
    while running(job) do os.execute("sleep 0.05") end
    job.pipe:close()
    read(out)
    assert.is_nil(srv:port())
    srv:close()
  end)
end)
