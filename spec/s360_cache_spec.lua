-- spec/s360_cache_spec.lua: the S-360 client's static-list cache (2 h by
-- default, per client) and its call-rate limit (180 calls a minute per
-- institution), with a clock the test controls: sleeping advances it.
local s360 = require "billetterie.s360"
local cache = require "billetterie.cache"
local json = require "billetterie.json"

local STATIC = { "getStructureTypes", "getAvailableContactCriteria", "getAvailableAutorizations",
                 "getAvailableAdmnistrativeNumbers" }

-- A fake clock (seconds) and a sleep that moves it.
local function fake_time()
  local t = { now = 1000 }
  t.clock = function() return t.now end
  t.sleep = function(s) t.now = t.now + s end
  return t
end

-- A REST transport for the network alone: records each request with the
-- time it left and answers a success carrying a serial number.
local function recorder(time)
  local r = { sent = {} }
  function r:request(req)
    self.sent[#self.sent + 1] = { url = req.url, at = time.now }
    return 200, json.encode{ statusCode = "success", structureTypes = { { code = "C" .. #self.sent } },
                             contactNumber = "1" }
  end
  return r
end

local function client(time, transport, extra)
  local o = { institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = "secret-1",
              protocol = "rest", transport = transport, clock = time.clock, sleep = time.sleep }
  for k, v in pairs(extra or {}) do o[k] = v end
  return s360.new(o)
end

describe("S-360 static-list cache", function()
  it("answers the four static lists from the cache for two hours", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t)
    for _, m in ipairs(STATIC) do
      local a = assert(c:call(m))
      local b = assert(c:call(m))
      assert.same(a, b)
    end
    assert.equal(4, #t.sent)
    time.now = time.now + 7199
    assert(c:getStructureTypes())
    assert.equal(4, #t.sent)
    time.now = time.now + 2
    local r = assert(c:getStructureTypes())
    assert.equal(5, #t.sent)
    assert.equal("C5", r.structureTypes[1].code)
  end)

  it("does not cache other methods, failures, or a refresh", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t)
    assert(c:getContactData{ contactNumber = "1" })
    assert(c:getContactData{ contactNumber = "1" })
    assert.equal(2, #t.sent)
    assert(c:getStructureTypes())
    assert(c:getStructureTypes(nil, { refresh = true }))
    assert.equal(4, #t.sent)
    local r = assert(c:getStructureTypes())
    assert.equal("C4", r.structureTypes[1].code)   -- the refresh replaced the entry

    local failing = { n = 0 }
    function failing.request(self) self.n = self.n + 1; return 200, '{"statusCode":"failed"}' end
    local f = client(time, failing, { cache = cache.new{ ttl = 7200, clock = time.clock } })
    assert.is_nil(f:getAvailableAutorizations())
    assert.is_nil(f:getAvailableAutorizations())
    assert.equal(2, failing.n)
  end)

  it("gives each client its own store unless one is shared, and none with cache = false", function()
    local time = fake_time()
    local t = recorder(time)
    local a, b = client(time, t), client(time, t)
    assert(a:getStructureTypes())
    assert(b:getStructureTypes())
    assert.equal(2, #t.sent)
    local store = cache.new{ ttl = 60, clock = time.clock }
    local c, d = client(time, t, { cache = store }), client(time, t, { cache = store })
    assert(c:getStructureTypes())
    assert(d:getStructureTypes())
    assert.equal(3, #t.sent)
    local off = client(time, t, { cache = false })
    assert(off:getStructureTypes())
    assert(off:getStructureTypes())
    assert.equal(5, #t.sent)
  end)

  it("hands out copies: changing a result does not change the cache", function()
    local time = fake_time()
    local c = client(time, recorder(time))
    local r = assert(c:getStructureTypes())
    r.structureTypes[1].code = "CHANGED"
    assert.equal("C1", assert(c:getStructureTypes()).structureTypes[1].code)
  end)

  it("honours cache_ttl", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t, { cache_ttl = 60 })
    assert(c:getStructureTypes())
    time.now = time.now + 61
    assert(c:getStructureTypes())
    assert.equal(2, #t.sent)
  end)
end)

describe("S-360 call-rate limit", function()
  -- The largest number of requests in any window of `per` seconds.
  local function busiest(sent, per)
    local most, j = 0, 1
    for i = 1, #sent do
      while sent[i].at - sent[j].at >= per do j = j + 1 end
      most = math.max(most, i - j + 1)
    end
    return most
  end

  it("never sends more than 180 calls in any minute", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t, { cache = false })
    for _ = 1, 400 do assert(c:getContactData{ contactNumber = "1" }) end
    assert.equal(400, #t.sent)
    assert.is_true(busiest(t.sent, 60) <= 180)
    assert.is_true(busiest(t.sent, 60) >= 170)   -- and does not slow down needlessly
    assert.equal(t.sent[1].at, t.sent[10].at)   -- a burst of 10 goes at once
  end)

  it("shares the budget between the services of one institution", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t, { cache = false, rate_limit = { calls = 30, per = 60, burst = 5 } })
    for i = 1, 90 do
      if i % 3 == 0 then assert(c:getContactData{ contactNumber = "1" })
      elseif i % 3 == 1 then assert(c:recoverPassword{ email = "a@example.org" })
      else assert(c:addLink{ contactNumber = "1", provider = "GOOGLE", providerUserReference = "g" }) end
    end
    assert.is_true(busiest(t.sent, 60) <= 30)
  end)

  it("can be switched off", function()
    local time = fake_time()
    local t = recorder(time)
    local c = client(time, t, { cache = false, rate_limit = false })
    for _ = 1, 300 do assert(c:getContactData{ contactNumber = "1" }) end
    assert.equal(1000, time.now)
  end)

  it("is one limiter per institution for clients on the real clock", function()
    local a = s360.new{ institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = "secret-1" }
    local b = s360.new{ institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = "secret-1",
                        protocol = "rest" }
    local other = s360.new{ institution = "cube", environment = "demo", operator = "CUBE_B2C", password = "secret-1" }
    assert.equal(a._rate, b._rate)
    assert.are_not.equal(a._rate, other._rate)
  end)
end)
