-- Retries (only what is safe to repeat), rate limit, calls in flight, map.
local billetterie = require "billetterie"
local core = require "billetterie.core"

local nginx
setup(function() nginx = require("spec.support.nginx").start() end)
teardown(function() if nginx then nginx.stop() end end)

local function client(url, extra)
  local opts = { url = url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 5 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

-- sleep and random injected: the backoff is observed, not waited for
local function recorder()
  local slept = {}
  return slept, function(s) slept[#slept + 1] = s end, function() return 1 end
end

describe("retries", function()
  it("retries a read on 503 with exponential backoff, then succeeds", function()
    local slept, sleep, random = recorder()
    local msg, statut = client(nginx.url .. "flaky/read1/2/", { sleep = sleep, random = random })
      :call("ws_info_organisme", { id_organisme = 1 })
    assert.is_table(msg, tostring(statut))
    assert.equal(3, msg.seen)
    assert.same({ 0.5, 1 }, slept)
  end)

  it("gives up after `retries` and says how many attempts were made", function()
    local slept, sleep, random = recorder()
    local _, err = client(nginx.url .. "flaky/read2/10/", { sleep = sleep, random = random, retries = 3, retry_max = 1.5 })
      :call("ws_info_organisme", { id_organisme = 1 })
    assert.equal("http", err.kind)
    assert.equal(503, err.http_status)
    assert.equal(4, err.attempts)
    assert.same({ 0.5, 1, 1.5 }, slept)   -- capped at retry_max
  end)

  it("never repeats a write unless the caller marks it idempotent", function()
    local slept, sleep, random = recorder()
    local c = client(nginx.url .. "flaky/write1/1/", { sleep = sleep, random = random })
    local _, err = c:organisme_creation{ organisme = { intitule = "X", nature = "Y" } }
    assert.equal(503, err.http_status)
    assert.equal(1, err.attempts)
    assert.same({}, slept)
    local msg = c:organisme_creation({ organisme = { intitule = "X", nature = "Y" } }, { idempotent = true })
    assert.is_table(msg)
  end)

  it("does not retry a request its transport cannot carry as configured (errkind setup)", function()
    local slept, sleep, random = recorder()
    local sent = 0
    local t = { request = function() sent = sent + 1; return 0, nil, nil, "setup", "no such header variable" end }
    local _, err = client("http://127.0.0.1:9/", { transport = t, sleep = sleep, random = random })
      :call("ws_info_organisme", { id_organisme = 1 })
    assert.equal("network", err.kind)
    assert.is_false(err.retryable)
    assert.equal(1, sent)
    assert.same({}, slept)
    assert.matches("no such header variable", tostring(err), 1, true)
  end)

  it("does not retry what cannot succeed by repeating", function()
    local slept, sleep, random = recorder()
    local url = nginx.canned("ko904retry", [[{"retour":{"message":{},"statut":{"code":904,"traitement":"ko","message":"x"}}}]])
    local _, err = client(url, { sleep = sleep, random = random }):call("ws_info_organisme", { id_organisme = 1 })
    assert.equal(904, err.code)
    assert.equal(1, err.attempts)
    url = nginx.canned("ko7retry", [[{"retour":{"message":{},"statut":{"code":7,"traitement":"ko","message":"maintenance"}}}]])
    _, err = client(url, { sleep = sleep, random = random }):call("ws_info_organisme", { id_organisme = 1 })
    assert.equal(7, err.code)
    assert.equal(3, err.attempts)   -- maintenance is worth waiting for
    assert.equal(2, #slept)
  end)
end)

describe("pacing", function()
  it("spaces calls to the client's rate", function()
    local c = client(nginx.url .. "sleepy/", { rate = 10 })
    local starts = {}
    billetterie.run(function()
      local tasks = {}
      for i = 1, 6 do
        tasks[i] = billetterie.spawn(function()
          local msg = c:call("ws_idsession", {}, nil)
          starts[#starts + 1] = core.now()
          return msg
        end)
      end
      for i = 1, 6 do assert(tasks[i]:wait()) end
    end)
    table.sort(starts)
    -- six calls at ten a second: the last leaves at least 0.5 s after the first
    assert.is_true(starts[6] - starts[1] >= 0.45, "spacing " .. (starts[6] - starts[1]))
  end)

  it("keeps at most max_in_flight calls in flight", function()
    local c = client(nginx.url .. "sleepy/", { max_in_flight = 2 })
    local t0 = core.now()
    billetterie.run(function()
      local tasks = {}
      for i = 1, 6 do tasks[i] = billetterie.spawn(function() return c:call("ws_idsession") end) end
      for i = 1, 6 do assert(tasks[i]:wait()) end
    end)
    -- 6 calls of 0.5 s, two at a time: three rounds
    assert.is_true(core.now() - t0 >= 1.4, "took " .. (core.now() - t0))
  end)
end)

describe("billetterie.map", function()
  it("returns results and errors in input order, overlapping the calls", function()
    local c = client(nginx.url .. "sleepy/")
    local items = { 1, 2, "boom", 4, 5, 6, 7, 8 }
    local t0 = core.now()
    local results, errors = billetterie.map(items, function(item)
      if item == "boom" then error("bad row") end
      local msg, err = c:call("ws_idsession")
      if not msg then return nil, err end
      return item * 10
    end, { concurrency = 8 })
    assert.is_true(core.now() - t0 < 2, "eight half-second calls overlapped")
    assert.equal(10, results[1])
    assert.equal(80, results[8])
    assert.is_nil(results[3])
    assert.matches("bad row", errors[3])
    assert.is_nil(errors[1])
  end)

  it("reports progress on stderr when asked (lines when not a terminal)", function()
    local out = os.tmpname()
    local script = [[
      local billetterie = require "billetterie"
      billetterie.map({ 1, 2, 3 }, function(i) billetterie.sleep(0.01); return i end, { progress = true, concurrency = 2 })
    ]]
    local f = assert(io.open(out .. ".lua", "w"))
    f:write(script)
    f:close()
    local ok = os.execute(("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' lua5.4 %s.lua 2>%s"):format(out, out))
    assert(ok == true or ok == 0)
    f = assert(io.open(out))
    local err = f:read("*a")
    f:close()
    os.remove(out)
    os.remove(out .. ".lua")
    assert.matches("progress: 3/3 done", err, 1, true)
  end)
end)

describe("sleeping inside nginx", function()
  it("uses ngx.sleep in a request phase instead of blocking the worker", function()
    local runner = require "billetterie.runner"
    local slept
    _G.ngx = { get_phase = function() return "content" end, sleep = function(s) slept = s end }
    local ok, err = pcall(runner.sleep, 0.25)
    _G.ngx = nil
    assert(ok, err)
    assert.equal(0.25, slept)
  end)
end)
