-- spec/s360_wire_spec.lua: what the S-360 client puts on the wire, for
-- every method in both protocols, checked against the reference
-- (/work/shared/reference/s360-contact-api.md): SOAP envelopes parsed back
-- with libxml2 (core.xml_decode{ elements = true }), REST URLs, bodies and
-- JWTs; and how answers (success, statusCode failures, SOAP faults, HTTP
-- errors, HTML, truncation) become results or errors. The transport here
-- records requests and plays back answers written in this file: it stands
-- for the network only (the sandbox runs in spec/s360_sandbox_spec.lua).
local s360 = require "billetterie.s360"
local catalogue = require "billetterie.s360.catalogue"
local core = require "billetterie.core"
local json = require "billetterie.json"

local SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
local WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
local PASSWORD_TEXT = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText"

-- From the reference §1.2 and §1.3, written out here (not read from the
-- catalogue) so a catalogue mistake fails these tests.
local EXPECTED = {
  information = {
    soap = "/tnco/external-remoting/com.secutix.service.contact.v2_21.ContactInformationPublicService.webservice",
    ns = "http://v2_21.ContactInformationPublicService.service.secutix.com/",
    rest = "/tnco/backend-apis/contactInformationPublicService/v2_21/",
  },
  authentication = {
    soap = "/tnco/external-remoting/com.secutix.service.contact.v2_21.ContactAuthenticationPublicService.webservice",
    ns = "http://v2_21.ContactAuthenticationPublicService.service.secutix.com/",
    rest = "/tnco/backend-apis/contactAuthenticationPublicService/v2_21/",
  },
  social = {
    soap = "/tnco/external-remoting/com.secutix.service.contact.sociallogin.v1_0.ContactSocialLoginService.webservice",
    ns = "http://v1_0.ContactSocialLoginService.sociallogin.service.secutix.com/",
    rest = "/tnco/backend-apis/contactSocialLoginService/v1_0/",
  },
}

-- The method names of the seed and the issue, vendor spellings included.
local SEED_METHODS = {
  information = { "getContactData", "searchContactByCriteria", "saveIndividualContactData",
    "saveStructureContactData", "saveStructureAdministrativeNumbers", "saveStructureMember",
    "deleteStructureMember", "listStructureMembersByCriteria", "getStructureTypes",
    "getAvailableContactCriteria", "getAvailableAutorizations", "getAvailableAdmnistrativeNumbers" },
  authentication = { "authenticate", "recoverPassword", "changePassword", "listAuthorizedPOS" },
  social = { "addLink", "createUser" },
}

-- Element names the reference documents for some methods (§2.2, §2.3).
local DOCUMENTED = {
  getContactData = { "contactNumber", "details", "details" },
  changePassword = { "contactNumber", "currentPassword", "newPassword" },
  authenticate = { "contactAuthenticationData" },
  addLink = { "contactNumber", "provider", "providerUserReference" },
  createUser = { "signUpData", "provider", "providerUserReference" },
}

-- A sample value for every parameter of a method, nested types and lists
-- included (two items per list).
local function sample(spec)
  local t = spec.type
  if catalogue.types[t] then
    local o = {}
    for _, f in ipairs(catalogue.types[t].fields) do
      local v = sample(f)
      o[f.name] = f.list and { v, sample(f) } or v
    end
    return o
  end
  if t == "string" then return (("s" .. spec.name .. "-é<&>"):sub(1, spec.max or 200)) end
  if t == "long" then return 9007199254 end
  if t == "int" then return 7 end
  if t == "boolean" then return true end
  if t == "double" then return 1.5 end
  if t == "date" then return "2026-11-29" end
  if t == "enum" then return catalogue.enums[spec.enum][1] end
  if t == "map" then return { k = "v" } end
  error("no sample for " .. t)
end

local function sample_params(method)
  local out = { requestId = 12 }
  for _, p in ipairs(catalogue.methods[method].params) do
    local v = sample(p)
    out[p.name] = p.list and { v, sample(p) } or v
  end
  return out
end

-- A transport that records each request and answers with the next canned
-- answer (status, body), or the default one.
local function recorder(default)
  local t = { sent = {}, queue = {} }
  function t:request(req)
    local headers = {}
    for _, h in ipairs(req.headers or {}) do
      local k, v = h:match("^([^:]+):%s*(.*)$")
      headers[k:lower()] = v
    end
    self.sent[#self.sent + 1] = { url = req.url, method = req.method, body = req.body, headers = headers }
    local a = table.remove(self.queue, 1) or default
    if type(a) == "function" then a = { a(req) } end
    return a[1], a[2], a[3], a[4], a[5], a[6]
  end
  return t
end

local function soap_answer(method, inner)
  return ('<?xml version="1.0"?><S:Envelope xmlns:S="%s"><S:Body><ns2:%sResponse xmlns:ns2="urn:any">'
    .. '<%s>%s</%s></ns2:%sResponse></S:Body></S:Envelope>'):format(SOAP_ENV, method,
    catalogue.methods[method].result, inner, catalogue.methods[method].result, method)
end

local SECRET = "operator-secret-42"
local function client(protocol, transport, extra)
  local o = { institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = SECRET,
              protocol = protocol, transport = transport, cache = false, rate_limit = false,
              sleep = function() end, retries = 0 }
  for k, v in pairs(extra or {}) do o[k] = v end
  return s360.new(o)
end

local function child(e, name)
  for i = 1, #e do
    if type(e[i]) == "table" and e[i].name == name then return e[i] end
  end
end

local function names(e)
  local out = {}
  for i = 1, #e do
    if type(e[i]) == "table" then out[#out + 1] = e[i].name end
  end
  return out
end

-- Checks a parameter element against its value: unqualified, nested
-- fields by name, scalars as text.
local function check_element(spec, e, v)
  assert.is_nil(e.ns, e.name .. " must be unqualified")
  assert.equal(spec.name, e.name)
  if catalogue.types[spec.type] then
    for _, f in ipairs(catalogue.types[spec.type].fields) do
      local fv = v[f.name]
      local found = {}
      for i = 1, #e do
        if type(e[i]) == "table" and e[i].name == f.name then found[#found + 1] = e[i] end
      end
      assert.equal(f.list and #fv or 1, #found, spec.name .. "." .. f.name)
      for i, fe in ipairs(found) do check_element(f, fe, f.list and fv[i] or fv) end
    end
  elseif spec.type == "map" then
    assert.equal("entry", e[1].name)
  elseif spec.type == "boolean" then
    assert.equal(tostring(v), e[1])
  else
    assert.equal(type(v) == "number" and (spec.type == "double" and ("%.17g"):format(v) or ("%d"):format(v)) or v, e[1])
  end
end

describe("S-360 catalogue", function()
  it("has every method of the seed, in its service, and social login", function()
    for service, list in pairs(SEED_METHODS) do
      for _, m in ipairs(list) do
        assert.is_table(catalogue.methods[m], m)
        assert.equal(service, catalogue.methods[m].service, m)
      end
    end
  end)

  it("marks the four static lists and nothing else", function()
    local static = {}
    for name, m in pairs(catalogue.methods) do if m.static then static[#static + 1] = name end end
    table.sort(static)
    assert.same({ "getAvailableAdmnistrativeNumbers", "getAvailableAutorizations",
                  "getAvailableContactCriteria", "getStructureTypes" }, static)
    assert.equal(7200, catalogue.cache_ttl)
  end)

  it("gives every method a wire name, an alias and a Lua method", function()
    local c = client("soap", recorder{ 200, "" })
    for name, m in pairs(catalogue.methods) do
      assert.is_function(c[name], name)
      assert.is_function(c[m.alias], m.alias)
    end
  end)
end)

describe("S-360 SOAP requests", function()
  for name, m in pairs(catalogue.methods) do
    it("builds " .. name .. " per the reference", function()
      local t = recorder{ 200, soap_answer(name, "<statusCode>success</statusCode>") }
      local c = client("soap", t)
      local params = sample_params(name)
      local r, err = c:call(name, params)
      assert.is_nil(err)
      assert.equal("success", r.statusCode)
      local sent = t.sent[1]
      local exp = EXPECTED[m.service]
      assert.equal("https://mosa.demo-ws.secutix.com" .. exp.soap, sent.url)
      assert.equal("POST", sent.method)
      assert.equal("text/xml; charset=utf-8", sent.headers["content-type"])
      assert.equal("text/xml", sent.headers["accept"])

      local env = assert(core.xml_decode(sent.body, { elements = true }))
      assert.equal("Envelope", env.name)
      assert.equal(SOAP_ENV, env.ns)
      assert.same({ "Header", "Body" }, names(env))
      local sec = child(child(env, "Header"), "Security")
      assert.equal(WSSE, sec.ns)
      local token = child(sec, "UsernameToken")
      assert.equal(WSSE, token.ns)
      assert.equal("MOSA_B2C", child(token, "Username")[1])
      local pw = child(token, "Password")
      assert.equal(WSSE, pw.ns)
      assert.equal(SECRET, pw[1])
      assert.equal(PASSWORD_TEXT, pw.attrs.Type)

      local body = child(env, "Body")
      assert.equal(1, #names(body))
      local op = body[1]
      assert.equal(name, op.name)
      assert.equal(exp.ns, op.ns)
      assert.equal("requestId", op[1].name)
      assert.equal("12", op[1][1])
      if DOCUMENTED[name] then
        local got = names(op)
        table.remove(got, 1)
        local want = {}
        for _, n in ipairs(DOCUMENTED[name]) do
          if n ~= want[#want] then want[#want + 1] = n end
        end
        local dedup = {}
        for _, n in ipairs(got) do if n ~= dedup[#dedup] then dedup[#dedup + 1] = n end end
        assert.same(want, dedup)
      end
      -- every parameter, in catalogue order, lists repeated, unqualified
      local i = 2
      for _, p in ipairs(m.params) do
        local v = params[p.name]
        for k = 1, p.list and #v or 1 do
          check_element(p, op[i], p.list and v[k] or v)
          i = i + 1
        end
      end
      assert.is_nil(op[i])
    end)
  end

  it("sends getContactData exactly like the reference's example", function()
    local t = recorder{ 200, soap_answer("getContactData", "<statusCode>success</statusCode>") }
    assert(client("soap", t):getContactData{ contactNumber = "4711", details = { "GENERAL", "AUTHORIZATIONS" } })
    local op = assert(core.xml_decode(t.sent[1].body, { elements = true }))[2][1]
    assert.same({ name = "getContactData", ns = EXPECTED.information.ns,
                  { name = "contactNumber", "4711" }, { name = "details", "GENERAL" },
                  { name = "details", "AUTHORIZATIONS" } }, op)
  end)
end)

-- Decodes a base64url segment.
local function unb64url(s)
  s = s:gsub("-", "+"):gsub("_", "/")
  return core.b64decode(s .. ("="):rep((4 - #s % 4) % 4))
end

describe("S-360 REST requests", function()
  for name, m in pairs(catalogue.methods) do
    it("builds " .. name .. " per the reference", function()
      local t = recorder{ 200, '{"statusCode":"success"}' }
      local c = client("rest", t, { now = function() return 1600695485 end })
      local params = sample_params(name)
      assert(c:call(name, params))
      local sent = t.sent[1]
      assert.equal("https://mosa.demo-ws.secutix.com" .. EXPECTED[m.service].rest .. name, sent.url)
      assert.equal("POST", sent.method)
      assert.equal("application/json", sent.headers["content-type"])
      assert.equal("application/json", sent.headers["accept"])
      local body = assert(json.decode(sent.body))
      -- keys are the parameter names; lists are arrays; nested objects keep field names
      local want = {}
      for k in pairs(params) do want[#want + 1] = k end
      local got = {}
      for k in pairs(body) do got[#got + 1] = k end
      table.sort(want)
      table.sort(got)
      assert.same(want, got)
      for _, p in ipairs(m.params) do
        if p.list then
          assert.equal(#params[p.name], #body[p.name])
          assert.is_not_nil(sent.body:find('"' .. p.name .. '":%['), p.name .. " is a JSON array")
        end
        if catalogue.types[p.type] and not p.list then
          for k in pairs(params[p.name]) do assert.is_not_nil(body[p.name][k], p.name .. "." .. k) end
        end
      end
      if params.contactNumber then assert.is_string(body.contactNumber) end
    end)
  end

  it("sends {} for a method without parameters and [] for an empty list", function()
    local t = recorder{ 200, '{"statusCode":"success"}' }
    local c = client("rest", t)
    assert(c:getStructureTypes())
    assert(c:getContactData{ contactNumber = "1", details = {} })
    assert.equal("{}", t.sent[1].body)
    assert.truthy(t.sent[2].body:find('"details":%[%]'))
  end)

  it("signs a fresh HS256 JWT in seconds (sub, aud, iss, iat, exp <= iat + 30)", function()
    local t = recorder{ 200, '{"statusCode":"success"}' }
    local c = client("rest", t, { now = function() return 1600695485 end, partner = "acme" })
    assert(c:getContactData{ contactNumber = "4711" })
    local jwt = t.sent[1].headers.authorization:match("^Bearer (.+)$")
    local h, p, s = jwt:match("^([%w_-]+)%.([%w_-]+)%.([%w_-]+)$")
    assert.same({ alg = "HS256", typ = "JWT" }, json.decode(unb64url(h)))
    assert.same({ sub = "MOSA", aud = "MOSA_B2C", iss = "acme", iat = 1600695485, exp = 1600695515 },
      json.decode(unb64url(p)))
    assert.equal(core.hmac_sha256(SECRET, h .. "." .. p), unb64url(s))
    -- an independent implementation agrees (openssl's command line)
    local f = io.popen(("printf '%%s' '%s.%s' | openssl dgst -sha256 -hmac '%s' -binary | base64"):format(h, p, SECRET))
    local openssl = f:read("*a"):gsub("%s", "")
    f:close()
    assert.equal(openssl, core.b64encode(unb64url(s)))
    assert.is_nil(t.sent[1].body:find(SECRET, 1, true))
  end)
end)

describe("S-360 answers", function()
  for _, protocol in ipairs { "soap", "rest" } do
    describe("over " .. protocol, function()
      local function answer(method, fields)
        if protocol == "rest" then return json.encode(fields) end
        local parts = {}
        for k, v in pairs(fields) do parts[#parts + 1] = ("<%s>%s</%s>"):format(k, tostring(v), k) end
        return soap_answer(method, table.concat(parts))
      end

      it("turns a non-success statusCode into a vendor error with the statusDetail", function()
        local t = recorder{ 200, answer("getContactData", { statusCode = "failed", statusDetail = "Unknown contact" }) }
        local r, err = client(protocol, t):getContactData{ contactNumber = "1" }
        assert.is_nil(r)
        assert.equal("vendor", err.kind)
        assert.equal("failed", err.code)
        assert.equal("Unknown contact", err.message)
        assert.is_false(err.retryable)
        assert.equal("getContactData", err.ws)
      end)

      it("types results: integers, booleans, lists of one", function()
        local body
        if protocol == "rest" then
          body = '{"statusCode":"success","contactNumber":4711,"contactId":"9012345",'
            .. '"authorizations":{"authorizationCode":"NEWS","allowed":true},"hasWarning":false,"x":null}'
        else
          body = soap_answer("getContactData", "<statusCode>success</statusCode><contactNumber>4711</contactNumber>"
            .. "<contactId>9012345</contactId><authorizations><authorizationCode>NEWS</authorizationCode>"
            .. "<allowed>true</allowed></authorizations><hasWarning>false</hasWarning>")
        end
        local r = assert(client(protocol, recorder{ 200, body }):getContactData{ contactNumber = "4711" })
        assert.equal("4711", r.contactNumber)
        assert.equal(9012345, r.contactId)
        assert.same({ { authorizationCode = "NEWS", allowed = true } }, r.authorizations)
        assert.is_false(r.hasWarning)
        assert.is_nil(r.x)
      end)

      it("reads a long beyond 2^53 exactly: SOAP text kept, a rounded JSON number refused", function()
        local function read(id)
          local body = protocol == "rest" and ('{"statusCode":"success","contactId":' .. id .. '}')
            or soap_answer("getContactData", "<statusCode>success</statusCode><contactId>" .. id .. "</contactId>")
          return client(protocol, recorder{ 200, body }):getContactData{ contactNumber = "1" }
        end
        assert.equal(9007199254740991, (read("9007199254740991")).contactId)
        assert.equal(-42, (read("-42")).contactId)
        if protocol == "soap" then
          assert.equal("99999999999999999999", (read("99999999999999999999")).contactId)
          assert.equal("9007199254740993", (read("9007199254740993")).contactId)
        else
          for _, big in ipairs { "99999999999999999999", "9007199254740993" } do
            local r, err = read(big)
            assert.is_nil(r)
            assert.equal("decode", err.kind)
            assert.matches("2%^53", err.message)
          end
          assert.equal("99999999999999999999", (read('"99999999999999999999"')).contactId)   -- a JSON string
        end
      end)

      it("reports an HTML page as a decode error", function()
        local t = recorder{ 200, "<!DOCTYPE html><html><head><title>Maintenance</title></head><body>x</body></html>" }
        local r, err = client(protocol, t):getStructureTypes()
        assert.is_nil(r)
        assert.equal("decode", err.kind)
      end)

      it("reports a truncated body as a decode error", function()
        local full = answer("getStructureTypes", { statusCode = "success" })
        local r, err = client(protocol, recorder{ 200, full:sub(1, #full - 9) }):getStructureTypes()
        assert.is_nil(r)
        assert.equal("decode", err.kind)
      end)

      it("reports 5xx, timeouts and rate limits with retryable set", function()
        local cases = {
          { { 503, "busy" }, "http", true },
          { { 500, "<html><title>Error</title></html>" }, "http", false },
          { { 509, "" }, "http", true },
          { { 429, "slow down" }, "http", true },
          { { 0, nil, nil, "timeout", "timed out" }, "timeout", true },
          { { 0, nil, nil, "network", "refused" }, "network", true },
        }
        for _, case in ipairs(cases) do
          local r, err = client(protocol, recorder(case[1])):getStructureTypes()
          assert.is_nil(r)
          assert.equal(case[2], err.kind)
          assert.equal(case[3], err.retryable, case[2] .. " " .. tostring(case[1][1]))
        end
      end)

      it("retries a retryable read with backoff, not a write", function()
        local slept = {}
        local t = recorder{ 200, answer("getStructureTypes", { statusCode = "success" }) }
        t.queue = { { 509, "" }, { 503, "" } }
        local c = client(protocol, t, { retries = 2, sleep = function(s) slept[#slept + 1] = s end,
                                        random = function() return 1 end, retry_base = 0.5 })
        assert(c:getStructureTypes())
        assert.equal(3, #t.sent)
        assert.same({ 60, 1 }, slept)   -- a rate-limit refusal waits a whole window (60 s)
        t.queue = { { 503, "" } }
        local r, err = c:changePassword{ contactNumber = "1", currentPassword = "old-pass", newPassword = "new-pass" }
        assert.is_nil(r)
        assert.equal(1, err.attempts)
      end)

      it("retries every method but the unrepeatable ones, and those too on 429/509", function()
        local ok = answer("saveIndividualContactData", { statusCode = "success", contactNumber = "7" })
        local t = recorder{ 200, ok }
        local c = client(protocol, t, { retries = 2 })
        -- a save: the seed says every method is transactional and idempotent
        t.queue = { { 503, "" }, { 0, nil, nil, "timeout", "timed out" } }
        assert(c:saveIndividualContactData{ individualContactData = { lastname = "Martin" } })
        assert.equal(3, #t.sent)
        assert.equal(t.sent[1].body, t.sent[3].body)   -- the same request each time
        -- unless the caller says otherwise
        t.sent, t.queue = {}, { { 503, "" } }
        local r, err = c:saveIndividualContactData({ individualContactData = { lastname = "Martin" } },
                                                   { idempotent = false })
        assert.is_nil(r)
        assert.equal(1, err.attempts)
        -- authenticate rotates the remember-me pair, recoverPassword mails a new
        -- password: an ambiguous failure is not repeated...
        for _, call in ipairs {
          function() return c:authenticate{ contactAuthenticationData = { login = "a@b.org", password = "pass-word-1" } } end,
          function() return c:recoverPassword{ email = "a@b.org" } end,
        } do
          t.sent, t.queue = {}, { { 0, nil, nil, "timeout", "timed out" } }
          r, err = call()
          assert.is_nil(r)
          assert.equal("timeout", err.kind)
          assert.equal(1, err.attempts)
          assert.equal(1, #t.sent)
          -- ...but a rate-limit refusal (nothing was done) is
          t.sent, t.queue = {}, { { 429, "" }, { 509, "" }, { 503, "" } }
          r, err = call()
          assert.equal(3, #t.sent)
          assert.equal(503, err.http_status)
        end
      end)

      it("keeps neither the password nor a JWT in the client after a call", function()
        local tokens = {}
        local t = recorder{ 200, answer("getStructureTypes", { statusCode = "success" }) }
        local c = client(protocol, t)
        assert(c:getStructureTypes())
        t.queue = { { 503, "" } }
        assert.is_nil(c:getStructureTypes())
        for _, sent in ipairs(t.sent) do
          if sent.headers.authorization then tokens[#tokens + 1] = sent.headers.authorization:match("Bearer (%S+)") end
        end
        assert.equal(protocol == "rest" and 2 or 0, #tokens)
        local function scan(v, path, seen)
          if type(v) == "string" then
            assert.falsy(v:find(SECRET, 1, true), "the password in " .. path)
            for _, tok in ipairs(tokens) do
              assert.falsy(v:find(tok, 1, true), "a JWT in " .. path)
              assert.falsy(v:find(tok:match("[^.]+$"), 1, true), "a JWT signature in " .. path)
            end
          elseif type(v) == "table" and not seen[v] then
            seen[v] = true
            for k, x in pairs(v) do scan(k, path, seen); scan(x, path .. "." .. tostring(k), seen) end
            local mt = getmetatable(v)
            if type(mt) == "table" then scan(mt, path .. "<mt>", seen) end
          end
        end
        scan(c, "c", { [catalogue] = true, [t] = true })   -- t: this spec's recorder
        assert.falsy(tostring(c):find(SECRET, 1, true))
      end)

      it("scrubs the password and the JWT from an error body that echoes them", function()
        local sent_token
        local t = recorder(function(req)
          for _, h in ipairs(req.headers) do sent_token = h:match("^Authorization: Bearer (%S+)") or sent_token end
          local pw = req.body:match("<wsse:Password[^>]*>([^<]*)")   -- SOAP: the operator password
          return 500, "<html><title>refused " .. (sent_token and ("Bearer " .. sent_token) or pw) .. "</title></html>"
        end)
        local r, err = client(protocol, t):getStructureTypes()
        assert.is_nil(r)
        assert.equal("http", err.kind)
        assert.equal(500, err.http_status)
        local text = tostring(err) .. " " .. tostring(err.detail)
        assert.falsy(text:find(SECRET, 1, true), text)
        if protocol == "rest" then
          assert.is_string(sent_token)
          assert.truthy(text:find("Bearer", 1, true), text)   -- the echo is there, the token is not
          assert.falsy(text:find(sent_token, 1, true), text)
          assert.falsy(text:find(sent_token:match("[^.]+$"), 1, true), text)
        else
          assert.truthy(text:find("refused ***", 1, true), text)
        end
      end)

      it("never shows secrets in errors", function()
        local t = recorder{ 500, "bad password " .. SECRET .. " and old-pass-123" }
        local r, err = client(protocol, t):changePassword{ contactNumber = "1", currentPassword = "old-pass-123",
                                                             newPassword = "new-pass-456" }
        assert.is_nil(r)
        assert.is_nil(tostring(err):find(SECRET, 1, true))
        assert.is_nil(tostring(err):find("old-pass-123", 1, true))
      end)

      it("checks parameters before sending anything", function()
        local t = recorder{ 200, "" }
        local c = client(protocol, t)
        local bad = {
          { "getContactData", {} , "contactNumber" },
          { "getContactData", { contactNumber = ("9"):rep(21) }, "contactNumber" },
          { "getContactData", { contactNumber = "1", details = "GENERAL" }, "details" },
          { "getContactData", { contactNumber = "1", details = { "EVERYTHING" } }, "details[1]" },
          { "getContactData", { contactNumber = "1", detail = { "GENERAL" } }, "detail" },
          { "authenticate", { contactAuthenticationData = { login = "a", pointOfSalesId = "x" } },
            "contactAuthenticationData.pointOfSalesId" },
          { "saveIndividualContactData", { authorizations = { { authorizationCode = "NEWS" } } },
            "authorizations[1].allowed" },
          { "saveIndividualContactData", { individualContactData = { birthDate = "2026-02-30" } },
            "individualContactData.birthDate" },
          { "saveIndividualContactData", { individualContactData = { firstname = "bad\255" } },
            "individualContactData.firstname" },
          { "changePassword", { contactNumber = "1", currentPassword = "a-pass" }, "newPassword" },
          { "addLink", { contactNumber = "1", provider = "MYSPACE", providerUserReference = "x" }, "provider" },
        }
        for _, case in ipairs(bad) do
          local r, err = c:call(case[1], case[2])
          assert.is_nil(r)
          assert.equal("invalid_param", err.kind)
          assert.equal(case[3], err.param)
        end
        local r, err = c:call("getContactDatas", {})
        assert.is_nil(r)
        assert.equal("invalid_param", err.kind)
        assert.equal(0, #t.sent)
      end)
    end)
  end

  describe("SOAP faults", function()
    local function fault(code, text)
      return ('<S:Envelope xmlns:S="%s"><S:Body><S:Fault><faultcode>%s</faultcode><faultstring>%s</faultstring>'
        .. '</S:Fault></S:Body></S:Envelope>'):format(SOAP_ENV, code, text)
    end

    it("an authentication fault is REST's 401: kind http, http_status 401, the wsse code", function()
      local t = recorder{ 500, fault("wsse:FailedAuthentication", "The security token could not be authenticated") }
      local r, err = client("soap", t):getStructureTypes()
      assert.is_nil(r)
      assert.equal("http", err.kind)
      assert.equal(401, err.http_status)
      assert.equal("FailedAuthentication", err.code)
      assert.equal("The security token could not be authenticated", err.message)
      assert.is_false(err.retryable)
      -- the same code carried in <detail> under a generic S:Client
      local detailed = ('<S:Envelope xmlns:S="%s"><S:Body><S:Fault><faultcode>S:Client</faultcode>'
        .. '<faultstring>refused</faultstring><detail><wsse:InvalidSecurity xmlns:wsse="%s"/></detail>'
        .. '</S:Fault></S:Body></S:Envelope>'):format(SOAP_ENV, WSSE)
      r, err = client("soap", recorder{ 500, detailed }):getStructureTypes()
      assert.is_nil(r)
      assert.equal("http", err.kind)
      assert.equal(401, err.http_status)
      assert.equal("InvalidSecurity", err.code)
      assert.is_false(err.retryable)
    end)

    it("a Client fault is the vendor's refusal, a Server fault an HTTP error", function()
      local _, err = client("soap", recorder{ 500, fault("S:Client", "Unmarshalling Error") }):getStructureTypes()
      assert.equal("vendor", err.kind)
      assert.equal("Client", err.code)
      _, err = client("soap", recorder{ 500, fault("S:Server", "NullPointerException") }):getStructureTypes()
      assert.equal("http", err.kind)
      assert.equal(500, err.http_status)
      assert.equal("NullPointerException", err.message)
    end)

    it("an envelope for another operation is a decode error", function()
      local t = recorder{ 200, soap_answer("getStructureTypes", "<statusCode>success</statusCode>") }
      local _, err = client("soap", t):getAvailableAutorizations()
      assert.equal("decode", err.kind)
    end)
  end)

  it("reports a REST 401 as an HTTP error", function()
    local _, err = client("rest", recorder{ 401, '{"error":"invalid token"}' }):getStructureTypes()
    assert.equal("http", err.kind)
    assert.equal(401, err.http_status)
    assert.is_false(err.retryable)
  end)
end)

describe("s360.new", function()
  it("builds the hosts of the reference", function()
    for env, host in pairs { prod = "https://mosa.ws.secutix.com", demo = "https://mosa.demo-ws.secutix.com",
                             pp = "https://mosa.pp-ws.secutix.com" } do
      local c = s360.new{ institution = "MOSA", environment = env, operator = "MOSA_B2C", password = SECRET }
      assert.equal(host, c.url)
    end
  end)

  it("follows another version in paths and namespaces", function()
    local t = recorder{ 200, soap_answer("getStructureTypes", "<statusCode>success</statusCode>") }
    assert(client("soap", t, { version = "v2_22" }):getStructureTypes())
    assert.truthy(t.sent[1].url:find("contact.v2_22.ContactInformationPublicService", 1, true))
    local op = core.xml_decode(t.sent[1].body, { elements = true })[2][1]
    assert.equal("http://v2_22.ContactInformationPublicService.service.secutix.com/", op.ns)
  end)

  it("raises on programmer mistakes", function()
    local base = { institution = "mosa", operator = "MOSA_B2C", password = SECRET }
    for _, bad in ipairs {
      { protocol = "xml" }, { version = "2.21" }, { environment = "test" }, { url = "ftp://x" },
      { operator = false }, { colour = "blue" }, { password = "abc" },
    } do
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(bad) do o[k] = v end
      if bad.operator == false then o.operator = nil end
      assert.has_error(function() s360.new(o) end)
    end
  end)

  it("does not show the password when printed", function()
    local c = client("soap", recorder{ 200, "" })
    assert.is_nil(tostring(c):find(SECRET, 1, true))
    for _, v in pairs(c) do assert.is_not.equal(SECRET, v) end
  end)
end)

describe("S-360 strict = false", function()
  it("lets a newer version's fields through, in both protocols", function()
    for _, protocol in ipairs { "soap", "rest" } do
      local t = recorder{ 200, protocol == "soap" and soap_answer("authenticate", "<statusCode>success</statusCode>")
                                or '{"statusCode":"success"}' }
      local c = client(protocol, t, { strict = false, version = "v2_22" })
      assert(c:authenticate{ contactAuthenticationData = { login = "a", password = "secret-pw",
                                                           isRequiredAccountVerificationEmail = true },
                             extraParam = { "x", "y" } })
      local body = t.sent[1].body
      if protocol == "soap" then
        local op = core.xml_decode(body, { elements = true })[2][1]
        assert.same({ "contactAuthenticationData", "extraParam", "extraParam" }, names(op))
        local data = op[1]
        assert.equal("true", child(data, "isRequiredAccountVerificationEmail")[1])
      else
        local doc = json.decode(body)
        assert.is_true(doc.contactAuthenticationData.isRequiredAccountVerificationEmail)
        assert.same({ "x", "y" }, doc.extraParam)
      end
      -- a value that is not plain data is still refused
      local r, err = c:authenticate{ contactAuthenticationData = { login = "a", odd = print } }
      assert.is_nil(r)
      assert.equal("contactAuthenticationData.odd", err.param)
    end
  end)
end)
