-- Retry-After: a 429 or 503 that says how long to wait is waited that long
-- before the retry (up to retry_after_max), and a longer wait is handed to
-- the caller at once as err.retry_after. Against the sandbox's fault rules
-- over real sockets; sleep and random injected, so nothing is waited. Runs
-- on LuaJIT too: the sandbox is its own lua5.4 process, its rules are set
-- over HTTP.
local core = require "billetterie.core"
local errors = require "billetterie.error"
local json = require "billetterie.json"
local sandbox = require "spec.support.sandbox"
local s360 = require "billetterie.s360"
local transport = require "billetterie.transport"

describe("error.retry_after reads a Retry-After value", function()
  it("as delta-seconds", function()
    assert.equal(120, errors.retry_after("120"))
    assert.equal(0, errors.retry_after(" 0 "))
  end)

  it("as an HTTP-date (GMT), against the given time; a past date is no wait", function()
    -- RFC 9110's example date is 784111777 seconds after the epoch
    assert.equal(30, errors.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 - 30))
    assert.equal(0, errors.retry_after("Sun, 06 Nov 1994 08:49:37 GMT", 784111777 + 5))
    assert.equal(86400 + 3600, errors.retry_after("Fri, 02 Jan 1970 01:00:00 GMT", 0))
    assert.equal(951782400, errors.retry_after("Tue, 29 Feb 2000 00:00:00 GMT", 0))
  end)

  it("as nothing when the value is missing or unreadable", function()
    for _, v in ipairs { false, 12, "", "-1", "1.5", "soon", "99999999999", "Sun, 06 Nov 1994 08:49:37 CET",
                         "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT" } do
      assert.is_nil(errors.retry_after(v or nil), tostring(v))
    end
  end)
end)

describe("Retry-After over real sockets", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() if sb then sb:stop() end end)
  -- the rules replace the sandbox's (POST /_sandbox/faults?replace=1)
  local function set_faults(rules)
    local status, body = transport.curl:request{ url = sb.url .. "_sandbox/faults?replace=1", method = "POST",
      body = json.encode{ faults = rules }, headers = { "Content-Type: application/json" }, timeout = 5 }
    assert.equal(200, status, body)
  end
  before_each(function() set_faults(json.array()) end)

  -- a client whose waits are recorded, with no jitter (random() = 0: the
  -- backoff itself is 0, so any wait is the server's)
  local function client(extra)
    local slept = {}
    local opts = { sleep = function(s) slept[#slept + 1] = s end, random = function() return 0 end }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return sb:client(opts), slept
  end

  it("the engine hands back Retry-After on a refusal, and looks for none on a success", function()
    set_faults { "ws_idsession:status=429,retry_after=4,count=1" }
    local engine = core.http_engine{}
    local function send()
      return engine:wait(assert(engine:start{ url = sb.url .. "ws_idsession", method = "POST",
                                              body = "x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_ws_client=677" }))
    end
    local status, _, _, errkind, _, request_id, retry_after = send()
    assert.same({ 429, "4" }, { status, retry_after })
    assert.is_nil(errkind)
    assert.is_string(request_id)
    status, _, _, errkind, _, _, retry_after = send()
    assert.equal(200, status)
    assert.is_nil(retry_after)
    engine:close()
  end)

  it("waits the server's Retry-After before retrying a read, then succeeds", function()
    set_faults { "ws_idsession:status=429,retry_after=3,count=1" }
    local c, slept = client()
    local msg, statut = c:call("ws_idsession")
    assert.is_table(msg, tostring(statut))
    assert.equal(603, statut.code)
    assert.same({ 3 }, slept)
  end)

  it("keeps its own backoff when it is longer than the server's wait", function()
    set_faults { "ws_idsession:status=503,retry_after=0,count=1" }
    local c, slept = client { random = function() return 1 end }
    assert(c:call("ws_idsession"))
    assert.same({ 0.5 }, slept)
  end)

  it("reads Retry-After on an HTML error page too", function()
    set_faults { "ws_idsession:html=503,retry_after=2,count=1" }
    local c, slept = client()
    assert(c:call("ws_idsession"))
    assert.same({ 2 }, slept)
  end)

  it("answers at once, with err.retry_after, when the server asks more than retry_after_max", function()
    set_faults { "ws_idsession:status=503,retry_after=120,count=1" }
    local c, slept = client { retry_after_max = 60 }
    local msg, err = c:call("ws_idsession")
    assert.is_nil(msg)
    assert.same({ "http", 503, 120, 1, true }, { err.kind, err.http_status, err.retry_after, err.attempts, err.retryable })
    assert.same({}, slept)
  end)

  it("retries a 429 without Retry-After on its backoff", function()
    set_faults { "ws_idsession:status=429,count=2" }
    local c, slept = client { random = function() return 1 end }
    local msg, statut = c:call("ws_idsession")
    assert.is_table(msg, tostring(statut))
    assert.same({ 0.5, 1 }, slept)
  end)

  it("never repeats a write because of Retry-After alone", function()
    set_faults { "ws_organisme_creation:status=503,retry_after=1,count=1" }
    local c, slept = client()
    local _, err = c:organisme_creation{ organisme = { intitule = "Compagnie R", nature = "Association" } }
    assert.same({ 503, 1, 1 }, { err.http_status, err.retry_after, err.attempts })
    assert.same({}, slept)
  end)

  it("refuses a retry_after_max that is not a number of seconds, in both clients", function()
    assert.has_error(function() sb:client{ retry_after_max = -1 } end)
    assert.has_error(function() sb:client{ retry_after_max = "10" } end)
    for _, bad in ipairs { -1, 0 / 0, math.huge, 86401 } do
      local ok, err = pcall(s360.new, { url = sb.url .. "mosa", institution = "MOSA", operator = "MOSA_B2C",
                                        password = "s360-sandbox-secret", retry_after_max = bad })
      assert.is_false(ok, tostring(bad))
      assert.matches("retry_after_max must be between 0 and 86400 seconds", err, 1, true)
    end
    local ok, err = pcall(s360.new, { url = sb.url .. "mosa", institution = "MOSA", operator = "MOSA_B2C",
                                      password = "s360-sandbox-secret", retries = 1.5 })
    assert.is_false(ok)
    assert.matches("retries must be a whole number", err, 1, true)
  end)
end)

describe("S-360 over the sandbox's call-rate limit", function()
  local sb
  setup(function() sb = sandbox.start{ args = { "--s360-rate-limit", "2" } } end)
  teardown(function() if sb then sb:stop() end end)

  it("waits the Retry-After the sandbox sends with its refusal, not a whole window", function()
    local slept = {}
    local c = s360.new{ url = sb.url .. "mosa", institution = "MOSA", operator = "MOSA_B2C", password = "s360-sandbox-secret",
                        protocol = "rest", retries = 1, rate_limit = false, cache = false, random = function() return 0 end,
                        sleep = function(s) slept[#slept + 1] = s end }
    assert(c:getStructureTypes())
    assert(c:getStructureTypes())
    local r, err = c:getStructureTypes()   -- refused, retried once after the wait, refused again
    assert.is_nil(r)
    assert.is_number(err.retry_after, tostring(err))
    assert.equal(1, #slept)
    assert.is_true(slept[1] >= 1 and slept[1] <= 60, tostring(slept[1]))
    assert.equal(2, err.attempts)
  end)
end)
