-- spec/s360_review_spec.lua: the S-360 conformance review's findings, each
-- pinned by a test that failed before its fix. Answers a real server may
-- send but the sandbox does not (other fault prefixes) are played through a
-- recording transport (it stands for the network only); the rest runs the
-- real sandbox process (real HTTP, real SQLite file).
local s360 = require "billetterie.s360"
local soap = require "billetterie.s360.soap"
local transport = require "billetterie.transport"
local sandbox = require "spec.support.sandbox"

local support = require "spec.support.s360"
local SECRET, recorder, client = support.SECRET, support.recorder, support.client
local PASSWORD = support.SANDBOX_PASSWORD   -- the sandbox's operators
local WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

-- A SOAP 1.1 fault; `decl` declares the faultcode's prefix on faultcode.
local function fault(code, text, decl)
  return ([[<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><S:Fault>]]
    .. [[<faultcode%s>%s</faultcode><faultstring>%s</faultstring></S:Fault></S:Body></S:Envelope>]])
    :format(decl or "", code, text)
end

describe("S-360 review: refused operator credentials over SOAP, whatever the faultcode's prefix", function()
  -- the prefix is the server's (Metro binds the WS-Security namespace to ns0)
  local CASES = {
    { "wsse:FailedAuthentication", ' xmlns:wsse="' .. WSSE_NS .. '"' },
    { "ns0:FailedAuthentication", ' xmlns:ns0="' .. WSSE_NS .. '"' },
    { "sec:InvalidSecurityToken", ' xmlns:sec="' .. WSSE_NS .. '"' },
    { "ns1:InvalidSecurity", ' xmlns:ns1="' .. WSSE_NS .. '"' },
    { " ns0:SecurityTokenUnavailable ", ' xmlns:ns0="' .. WSSE_NS .. '"' },
    { "FailedAuthentication" },
  }
  for _, case in ipairs(CASES) do
    it("reads " .. case[1] .. " as HTTP 401", function()
      local body = fault(case[1], "Authentication of Username Password Token Failed", case[2])
      local t = recorder({ 500, body, "text/xml" })
      local r, err = client("soap", t, { retries = 2 }):getContactData{ contactNumber = "4711" }
      assert.is_nil(r)
      assert.equal("http", err.kind, tostring(err))
      assert.equal(401, err.http_status)
      assert.equal((case[1]:match("([%w]+)%s*$")), err.code)
      assert.is_false(err.retryable)
      assert.equal(1, #t.sent)   -- refused credentials are not retried
      assert.equal("Authentication of Username Password Token Failed", err.message)
    end)
  end

  it("still tells the generic faults apart by their local part", function()
    local _, e = soap.read("getContactData", fault("ns0:Client", "bad request"))
    assert.equal("vendor", e.kind)
    assert.equal("Client", e.code)
    _, e = soap.read("getContactData", fault("soap:Server", "Authentication required"))
    assert.equal("http", e.kind)
    assert.equal("Server", e.code)
    assert.is_nil(e.http_status)
    -- SOAP 1.1 4.4.1: Client.X is a more specific Client fault, Server.X a Server one
    _, e = soap.read("getContactData", fault("S:Client.InvalidInput", "bad field"))
    assert.same({ "vendor", "Client.InvalidInput" }, { e.kind, e.code })
    _, e = soap.read("getContactData", fault("S:Server.Busy", "later"))
    assert.equal("http", e.kind)
  end)
end)

describe("S-360 review: 429 and 509 are the rate limit whatever their body", function()
  local CASES = {
    { 509, fault("S:Server", "Too many requests"), "Too many requests" },
    { 429, fault("S:Server", "Too many requests"), "Too many requests" },
    { 429, fault("S:Client", "Too many requests"), "Too many requests" },
    { 509, fault("soapenv:Client", "Quota of calls exceeded"), "Quota of calls exceeded" },
    { 509, "<html><title>509 Bandwidth Limit Exceeded</title></html>", "509 Bandwidth Limit Exceeded" },
  }
  for _, case in ipairs(CASES) do
    it(("reads HTTP %d with %s as a retryable rate-limit refusal"):format(case[1], case[2]:sub(1, 60)), function()
      local t = recorder({ case[1], case[2], "text/xml", nil, nil, nil, "1" })
      local slept = {}
      local c = client("soap", t, { retries = 2, sleep = function(s) slept[#slept + 1] = s end })
      -- recoverPassword is never repeated after an ambiguous failure; a
      -- rate-limit refusal is not one (nothing was done)
      local r, err = c:recoverPassword{ email = "x@example.org" }
      assert.is_nil(r)
      assert.equal("http", err.kind, tostring(err))
      assert.equal(case[1], err.http_status)
      assert.is_nil(err.code)
      assert.is_true(err.retryable)
      assert.equal(1, err.retry_after)
      assert.equal(3, #t.sent)
      assert.equal(2, #slept)
      for _, s in ipairs(slept) do assert.is_true(s >= 1) end
      assert.truthy(err.message:find(case[3], 1, true), err.message)
      assert.truthy(err.message:find("^HTTP " .. case[1]), err.message)
    end)
  end

  it("keeps a Client fault of another status a vendor answer", function()
    local t = recorder({ 500, fault("S:Client", "bad request"), "text/xml" })
    local _, err = client("soap", t):getContactData{ contactNumber = "4711" }
    assert.equal("vendor", err.kind)
    assert.equal("Client", err.code)
  end)

  -- the sandbox answers its SOAP endpoints' rate-limit refusals with a
  -- SOAP fault (S:Client), with the status chosen at start
  for _, status in ipairs { 429, 509 } do
    describe("against a sandbox refusing with " .. status, function()
      local sb
      setup(function()
        sb = sandbox.start{ args = { "--s360-rate-limit", "2", "--s360-rate-status", tostring(status) } }
      end)
      teardown(function() if sb then sb:stop() end end)

      it("sends a SOAP fault with that status, and the client reads it as the rate limit", function()
        local c = s360.new{ url = sb.url .. "demo", institution = "DEMO", operator = "DEMO_B2C",
                            password = PASSWORD, protocol = "soap", retries = 0, rate_limit = false, cache = false }
        for _ = 1, 2 do assert(c:getStructureTypes()) end
        -- what the sandbox sends: a real SOAP fault under the rate-limit status
        local raw, body, _, errkind = transport.curl:request {
          url = sb.url .. "demo/tnco/external-remoting/com.secutix.service.contact.v2_21."
            .. "ContactInformationPublicService.webservice",
          method = "POST", body = "<x/>", headers = { "Content-Type: text/xml" }, timeout = 10 }
        assert.is_nil(errkind)
        assert.equal(status, raw)
        assert.truthy(body:find("<faultcode>S:Client</faultcode>", 1, true), body)
        assert.truthy(body:find("call rate limit exceeded", 1, true), body)

        local r, err = c:getStructureTypes()
        assert.is_nil(r)
        assert.equal("http", err.kind, tostring(err))
        assert.equal(status, err.http_status)
        assert.is_true(err.retryable)
        assert.is_number(err.retry_after)
        assert.is_true(err.retry_after >= 1 and err.retry_after <= 60)
        assert.truthy(err.message:find("call rate limit exceeded", 1, true), err.message)

        -- retried for every method, after the wait the answer asked for
        local slept = {}
        local w = s360.new{ url = sb.url .. "demo", institution = "DEMO", operator = "DEMO_B2C",
                            password = PASSWORD, protocol = "soap", retries = 2, rate_limit = false,
                            cache = false, sleep = function(s) slept[#slept + 1] = s end }
        r, err = w:recoverPassword{ email = "nobody@example.org" }
        assert.is_nil(r)
        assert.equal(status, err.http_status)
        assert.equal(3, err.attempts)
        assert.equal(2, #slept)
        for _, s in ipairs(slept) do assert.is_true(s >= 1) end
      end)

      it("keeps the JSON refusal on REST", function()
        local c = s360.new{ url = sb.url .. "mosa", institution = "MOSA", operator = "MOSA_B2C",
                            password = PASSWORD, protocol = "rest", retries = 0, rate_limit = false, cache = false }
        for _ = 1, 2 do assert(c:getStructureTypes()) end
        local _, err = c:getStructureTypes()
        assert.equal("http", err.kind)
        assert.equal(status, err.http_status)
        assert.is_true(err.retryable)
      end)
    end)
  end
end)

describe("S-360 review: deletes and removals are idempotent (seed l.24) in the sandbox", function()
  local sb
  setup(function() sb = sandbox.start{ args = { "--seed", "demo" } } end)
  teardown(function() if sb then sb:stop() end end)

  local function new(protocol, extra) return support.sandbox_client(sb, protocol, extra) end

  -- The real transport, whose first answer is lost after the server did
  -- the work (as a timeout on the way back would).
  local function lossy()
    local t = { n = 0 }
    function t:request(req)
      self.n = self.n + 1
      local status, body, h, ek, em, rid, ra = transport.curl:request(req)
      if self.n == 1 then return 0, nil, nil, "timeout", "operation timed out", nil end
      return status, body, h, ek, em, rid, ra
    end
    return t
  end

  local function members(c)
    local r = assert(c:listStructureMembersByCriteria{ memberSearchCriteria = { structureContactNumber = "10004" } })
    local set = {}
    for _, m in ipairs(r.members) do set[m.memberContactNumber] = true end
    return set
  end

  for _, protocol in ipairs { "soap", "rest" } do
    it("deleteStructureMember twice succeeds twice over " .. protocol, function()
      local c = new(protocol)
      assert(c:saveStructureMember{ structureContactNumber = "10004", memberContactNumber = "10003", role = "MEMBER" })
      assert.is_true(members(c)["10003"])
      for _ = 1, 2 do
        local r, err = c:deleteStructureMember{ structureContactNumber = "10004", memberContactNumber = "10003" }
        assert.is_nil(err)
        assert.equal("success", r.statusCode)
      end
      assert.is_nil(members(c)["10003"])
      local r, err = c:deleteStructureMember{ structureContactNumber = "999999999", memberContactNumber = "10003" }
      assert.is_nil(r)
      assert.equal("notfound", err.code)
    end)

    it("deleteStructureMember whose answer was lost reports the delete it made, over " .. protocol, function()
      local c = new(protocol)
      assert(c:saveStructureMember{ structureContactNumber = "10004", memberContactNumber = "10003", role = "MEMBER" })
      local t = lossy()
      local l = new(protocol, { transport = t, retries = 2, sleep = function() end })
      local r, err = l:deleteStructureMember{ structureContactNumber = "10004", memberContactNumber = "10003" }
      assert.is_nil(err)
      assert.equal("success", r.statusCode)
      assert.equal(2, t.n)
      assert.is_nil(members(c)["10003"])
    end)

    it("removeLink twice succeeds twice, and refuses another contact's link, over " .. protocol, function()
      local c = new(protocol)
      local ref = "rev-" .. protocol
      assert(c:addLink{ contactNumber = "10003", provider = "GOOGLE", providerUserReference = ref })
      for _ = 1, 2 do
        local r, err = c:removeLink{ contactNumber = "10003", provider = "GOOGLE", providerUserReference = ref }
        assert.is_nil(err)
        assert.equal("success", r.statusCode)
      end
      local _, err = c:authenticate{ contactAuthenticationData = { socialLogin = true, identityProvider = "GOOGLE",
                                                                   providerUserReference = ref } }
      assert.equal("vendor", err.kind)   -- the link is gone
      assert(c:addLink{ contactNumber = "10002", provider = "GOOGLE", providerUserReference = ref })
      local r
      r, err = c:removeLink{ contactNumber = "10003", provider = "GOOGLE", providerUserReference = ref }
      assert.is_nil(r)
      assert.equal("conflict", err.code)
      -- a lost answer: the repeat reports the removal made
      local t = lossy()
      r, err = new(protocol, { transport = t, retries = 2, sleep = function() end })
        :removeLink{ contactNumber = "10002", provider = "GOOGLE", providerUserReference = ref }
      assert.is_nil(err)
      assert.equal("success", r.statusCode)
      assert.equal(2, t.n)
    end)
  end
end)

describe("S-360 review: the sale channel follows the operator's first _", function()
  local AUTH = { identification = "abcd", uniqueToken = "tok123" }
  local CASES = {
    { "MOSA_WEB_SHOP", "WEB_SHOP" },
    { "MOSA_B2C", "B2C" },
    { "DEMO_B2B_GROUPS_2", "B2B_GROUPS_2" },
  }
  for _, case in ipairs(CASES) do
    it(case[1] .. " gives " .. case[2] .. " (cookie name and virtualOperator)", function()
      local c = client("soap", recorder({ 200, "" }), { operator = case[1] })
      assert.equal(case[2], c.sale_channel)
      local header, name = assert(c:remember_me_cookie(AUTH, 1001))
      assert.equal("stx_rememberMe_MOSA_" .. case[2], name)
      local back = assert(s360.cookie.parse(header))
      assert.equal("MOSA_" .. case[2], back.virtualOperator)
      assert.equal(case[2], back.sale_channel)
      assert.equal("MOSA", back.institution)
    end)
  end

  it("has none for an operator without _, and sale_channel still wins", function()
    local c = client("soap", recorder({ 200, "" }), { operator = "OPERATOR" })
    assert.is_nil(c.sale_channel)
    local h, err = c:remember_me_cookie(AUTH, 1001)
    assert.is_nil(h)
    assert.equal("invalid_param", err.kind)
    c = client("soap", recorder({ 200, "" }), { operator = "MOSA_WEB_SHOP", sale_channel = "B2C" })
    assert.equal("B2C", c.sale_channel)
  end)
end)

describe("S-360 review: titles", function()
  -- the seed is silent; the client keeps the catalogue's list (docs/s360.md)
  it("refuses an unknown title before sending", function()
    local t = recorder({ 200, "" })
    local r, err = client("soap", t):saveIndividualContactData{ individualContactData = { lastname = "X", title = "DR" } }
    assert.is_nil(r)
    assert.equal("invalid_param", err.kind)
    assert.equal(0, #t.sent)
  end)
end)
