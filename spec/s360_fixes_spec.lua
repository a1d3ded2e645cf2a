-- spec/s360_fixes_spec.lua: the S-360 review's findings, each pinned by a
-- test that failed before its fix. The client's part plays answers through
-- a recording transport (it stands for the network only); the sandbox's
-- part runs the real sandbox process (real HTTP, real SQLite file).
local s360 = require "billetterie.s360"
local cookie = require "billetterie.s360.cookie"
local rest = require "billetterie.s360.rest"
local json = require "billetterie.json"
local core = require "billetterie.core"
local sandbox = require "spec.support.sandbox"
local transport = require "billetterie.transport"

local support = require "spec.support.s360"
local SECRET, recorder, client = support.SECRET, support.recorder, support.client

local function claims_of(authorization)
  local c64 = authorization:match("^Bearer [^.]+%.([^.]+)%.")
  local b64 = c64:gsub("[-_]", { ["-"] = "+", ["_"] = "/" })
  return json.decode(core.b64decode(b64))
end

local TYPES_OK = '{"statusCode":"success","requestId":5,"structureTypes":[{"code":"COMPANY"}]}'

describe("S-360 client fixes", function()
  it("paces a REST call before forging its JWT, so a queued call's token is fresh", function()
    local now = 1000
    local function clock() return now end
    local t = recorder({ 200, TYPES_OK, "application/json" }, clock)
    local c = client("rest", t, { clock = clock, sleep = function(s) now = now + s end,
                                  rate_limit = { calls = 3, per = 60, burst = 1 } })
    for _ = 1, 3 do assert(c:getContactData{ contactNumber = "4711" } == nil or true) end
    assert.equal(3, #t.sent)
    assert.is_true(t.sent[3].at >= 1050)   -- the limiter made the later calls wait
    for _, s in ipairs(t.sent) do
      local cl = claims_of(s.headers.authorization)
      assert.equal(s.at, cl.iat)           -- forged when it left, not before the wait
      assert.is_true(cl.exp > s.at)
    end
  end)

  it("refuses a url with spaces or control characters at new()", function()
    for _, url in ipairs { "http://host/a b", "http://host/x\r\nX-Evil: 1", "http://host/\tx" } do
      local ok, err = pcall(s360.new, { url = url, operator = "MOSA_B2C", password = SECRET })
      assert.is_false(ok)
      assert.matches("spaces or control characters", err)
    end
    assert(s360.new{ url = "https://mosa.ws.example/", operator = "MOSA_B2C", password = SECRET })
  end)

  it("sends whole numbers of 15 and 16 digits exactly over REST (given as numbers or digits)", function()
    for _, id in ipairs { 123456789012345, "1234567890123456", 9007199254740991 } do   -- up to 2^53 - 1
      local t = recorder{ 200, '{"statusCode":"success"}', "application/json" }
      client("rest", t):authenticate{ contactAuthenticationData = {
        login = "a@b.org", password = "pass-word-1", pointOfSalesId = id } }
      assert.equal(1, #t.sent)
      local digits = type(id) == "string" and id or ("%d"):format(id)
      assert.truthy(t.sent[1].body:find('"pointOfSalesId":' .. digits .. "[,}]"), t.sent[1].body)
    end
    -- what still cannot go out exactly is refused before sending, with advice that works
    local t = recorder{ 200, '{"statusCode":"success"}' }
    local r, err = client("rest", t):call("authenticate", { contactAuthenticationData = {
      login = "a@b.org", password = "pass-word-1", pointOfSalesId = 2 ^ 54 } })
    assert.is_nil(r)
    assert.equal(0, #t.sent)
    assert.equal("invalid_param", err.kind)
  end)

  it("echoes the current call's requestId on a cached static list", function()
    local t = recorder{ 200, TYPES_OK, "application/json" }
    local c = client("rest", t, { cache = require("billetterie.cache").new{} })
    local r = assert(c:getStructureTypes{ requestId = 5 })
    assert.equal(5, r.requestId)
    r = assert(c:getStructureTypes{ requestId = 9 })
    assert.equal(1, #t.sent)               -- from the cache
    assert.equal(9, r.requestId)
    r = assert(c:getStructureTypes())
    assert.is_nil(r.requestId)
    assert.equal("COMPANY", r.structureTypes[1].code)
  end)

  for _, protocol in ipairs { "soap", "rest" } do
    it("waits a whole rate window before retrying a 429/509 over " .. protocol, function()
      local slept = {}
      local ok = protocol == "rest" and TYPES_OK
        or ('<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Body><n:getStructureTypesResponse'
            .. ' xmlns:n="urn:x"><StructureTypesResult><statusCode>success</statusCode></StructureTypesResult>'
            .. '</n:getStructureTypesResponse></S:Body></S:Envelope>')
      local t = recorder{ 200, ok }
      t.queue = { { 509, "" }, { 429, "" }, { 503, "" } }
      local c = client(protocol, t, { retries = 3, sleep = function(s) slept[#slept + 1] = s end,
                                      random = function() return 1 end, retry_base = 0.5 })
      assert(c:getStructureTypes())
      assert.equal(4, #t.sent)
      assert.same({ 60, 60, 2 }, slept)    -- a window (60 s), a window, the plain backoff
      -- the window is the client's rate limit's, bounded
      slept = {}
      t.queue = { { 429, "" } }
      c = client(protocol, t, { retries = 1, sleep = function(s) slept[#slept + 1] = s end,
                                rate_limit = { calls = 500, per = 600 } })
      assert(c:getStructureTypes())
      assert.same({ 120 }, slept)
    end)
  end

  describe("remember-me cookie", function()
    local AUTH = { identification = "id-8f3a", uniqueToken = "tok-77e1c9" }

    it("refuses an institution code with _ (virtualOperator splits at the first _)", function()
      local h, err = cookie.build(AUTH, { id = 12, saleChannelCode = "B2C" }, { institution = "MY_INST" })
      assert.is_nil(h)
      assert.equal("invalid_param", err.kind)
      assert.matches("no _", err.message)
      -- a channel with _ reads back whole
      h = assert(cookie.build(AUTH, { id = 12, saleChannelCode = "B2C_X" }, { institution = "DEMO" }))
      local f = assert(cookie.parse(h))
      assert.equal("DEMO", f.institution)
      assert.equal("B2C_X", f.sale_channel)
    end)

    it("gives a Cookie header's other cookies no place among the attributes", function()
      local h = assert(cookie.build(AUTH, 12, { institution = "DEMO", sale_channel = "B2C" }))
      local pair = h:match("^[^;]+")
      for _, text in ipairs { "Cookie: a=1; " .. pair .. "; b=2", "a=1; " .. pair .. "; b=2" } do
        local f = assert(cookie.parse(text))
        assert.equal("tok-77e1c9", f.token)
        assert.same({}, f.attributes)
      end
      local f = assert(cookie.parse(h .. "; other=3"))
      assert.equal("/", f.attributes.Path)
      assert.is_true(f.attributes.HttpOnly)
      assert.is_nil(f.attributes.other)
    end)

    it("keeps a raw compact value as it is (% included)", function()
      local h = assert(cookie.build({ identification = "a%41b", uniqueToken = "tok" }, 1001,
        { institution = "DEMO", sale_channel = "B2C", layout = "compact", encode = "raw" }))
      local f = assert(cookie.parse(h))
      assert.equal("a%41b", f.rememberUniqueId)
      -- the encoded form still decodes
      h = assert(cookie.build({ identification = "a%41b", uniqueToken = "tok" }, 1001,
        { institution = "DEMO", sale_channel = "B2C" }))
      assert.equal("a%41b", assert(cookie.parse(h)).rememberUniqueId)
    end)

    it("checks path like domain, and max_age as a whole number", function()
      for _, path in ipairs { "/a;b", "/a\r\nSet-Cookie: x=1", "nope" } do
        local ok, err = pcall(cookie.build, AUTH, 12, { institution = "DEMO", sale_channel = "B2C", path = path })
        assert.is_false(ok)
        assert.matches("path must", err)
      end
      for _, age in ipairs { 1.5, -1, math.huge } do
        local ok, err = pcall(cookie.build, AUTH, 12, { institution = "DEMO", sale_channel = "B2C", max_age = age })
        assert.is_false(ok)
        assert.matches("max_age must be a whole number", err)
      end
      local h = assert(cookie.build(AUTH, 12, { institution = "DEMO", sale_channel = "B2C", path = "/shop", max_age = 60 }))
      assert.truthy(h:find("; Path=/shop;", 1, true))
      assert.truthy(h:find("; Max-Age=60;", 1, true))
    end)
  end)
end)

describe("S-360 sandbox fixes", function()
  local sb
  local PASSWORD = support.SANDBOX_PASSWORD
  setup(function() sb = sandbox.start{ args = { "--seed", "demo" } } end)
  teardown(function() if sb then sb:stop() end end)

  local function new(protocol, extra) return support.sandbox_client(sb, protocol, extra) end

  local function http(path, body, headers)
    local status, text, _, errkind, errmsg = transport.curl:request {
      url = sb.url .. "demo" .. path, method = "POST", body = body, headers = headers, timeout = 10 }
    assert(not errkind, tostring(errkind) .. ": " .. tostring(errmsg))
    return status, text
  end

  local REST_AUTH = "/tnco/backend-apis/contactAuthenticationPublicService/v2_21/"
  local REST_INFO = "/tnco/backend-apis/contactInformationPublicService/v2_21/"
  local function rest_call(path, body, claims)
    local now = os.time()
    claims = claims or { sub = "DEMO", aud = "DEMO_B2C", iss = "spec", iat = now, exp = now + 30 }
    local status, text = http(path, body, { "Content-Type: application/json",
      "Authorization: Bearer " .. rest.sign(claims, PASSWORD) })
    return status, text and text:find("^%s*{") and json.decode(text) or text
  end

  for _, protocol in ipairs { "soap", "rest" } do
    it("creates again after the link or member an identical create made was removed, over " .. protocol, function()
      local c = new(protocol)
      local ref = "fix-" .. protocol
      local ad = { socialLogin = true, identityProvider = "GOOGLE", providerUserReference = ref }
      local signup = { signUpData = { email = ref .. "@example.org", firstname = "A", gender = "MRS", lang = "fr" },
                       provider = "GOOGLE", providerUserReference = ref }
      assert(c:createUser(signup))
      local first = assert(c:authenticate{ contactAuthenticationData = ad })
      assert(c:removeLink{ contactNumber = first.contactNumber, provider = "GOOGLE", providerUserReference = ref })
      assert(c:createUser(signup))
      local again = assert(c:authenticate{ contactAuthenticationData = ad })   -- linked again
      assert.is_not.equal(first.contactNumber, again.contactNumber)
      -- while the link stands, the same request is still answered from memory
      local _, err = c:createUser(signup)
      assert.is_nil(err)

      local member = { structureContactNumber = "10004", individualContactData = { lastname = "Fixed" .. protocol } }
      local m = assert(c:saveStructureMember(member))
      assert.equal(m.contactNumber, assert(c:saveStructureMember(member)).contactNumber)
      assert(c:deleteStructureMember{ structureContactNumber = "10004", memberContactNumber = m.contactNumber })
      local m2 = assert(c:saveStructureMember(member))
      assert.is_not.equal(m.contactNumber, m2.contactNumber)
      local list = assert(c:listStructureMembersByCriteria{ memberSearchCriteria = {
        structureContactNumber = "10004", lastname = "Fixed" .. protocol } })
      assert.equal(1, #list.members)
      assert.equal(m2.contactNumber, list.members[1].memberContactNumber)
    end)
  end

  it("refuses a JWT whose exp is before its iat", function()
    local now = os.time()
    local status = rest_call(REST_INFO .. "getStructureTypes", "{}",
      { sub = "DEMO", aud = "DEMO_B2C", iss = "spec", iat = now + 3, exp = now - 4 })
    assert.equal(401, status)
    assert.equal(200, (rest_call(REST_INFO .. "getStructureTypes", "{}")))
  end)

  it("refuses a requestId outside the int range, and a [] body", function()
    local status, doc = rest_call(REST_INFO .. "getContactData", '{"contactNumber":"10001","requestId":99999999999}')
    assert.equal(200, status)
    assert.equal("invalid", doc.statusCode)
    assert.matches("requestId", doc.statusDetail)
    status, doc = rest_call(REST_INFO .. "getContactData", '{"contactNumber":"10001","requestId":2147483647}')
    assert.equal("success", doc.statusCode)
    status = rest_call(REST_INFO .. "getContactData", "[]")
    assert.equal(400, status)
  end)

  it("answers an empty object as SOAP answers an empty element: is required", function()
    local _, doc = rest_call(REST_AUTH .. "authenticate", '{"contactAuthenticationData":{}}')
    assert.equal("invalid", doc.statusCode)
    assert.equal("contactAuthenticationData is required", doc.statusDetail)
    local _, doc2 = rest_call(REST_INFO .. "searchContactByCriteria", '{"searchCriteria":{}}')
    local envelope = [[<?xml version="1.0"?><e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Header>
<w:Security xmlns:w="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><w:UsernameToken>
<w:Username>DEMO_B2C</w:Username><w:Password>]] .. PASSWORD .. [[</w:Password></w:UsernameToken></w:Security></e:Header>
<e:Body><s:%s xmlns:s="http://v2_21.%s.service.secutix.com/">%s</s:%s></e:Body></e:Envelope>]]
    for _, case in ipairs {
      { "authenticate", "ContactAuthenticationPublicService", "<contactAuthenticationData/>", doc.statusDetail },
      { "searchContactByCriteria", "ContactInformationPublicService", "<searchCriteria/>", doc2.statusDetail },
    } do
      local status, text = http("/tnco/external-remoting/com.secutix.service.contact.v2_21." .. case[2] .. ".webservice",
        envelope:format(case[1], case[2], case[3], case[1]), { "Content-Type: text/xml; charset=utf-8", 'SOAPAction: ""' })
      assert.equal(200, status)
      assert.equal(case[4], text:match("<statusDetail>(.-)</statusDetail>"))
    end
  end)

  it("reports refused operator credentials the same way over SOAP and REST", function()
    for _, protocol in ipairs { "soap", "rest" } do
      local r, err = new(protocol, { password = "not-the-secret" }):getContactData{ contactNumber = "10001" }
      assert.is_nil(r)
      assert.equal("http", err.kind, protocol)
      assert.equal(401, err.http_status, protocol)
      assert.is_false(err.retryable)
      assert.is_nil(tostring(err):find("not-the-secret", 1, true))
    end
  end)
end)
