-- The sandbox's S-360 Contact API (docs/sandbox-s360.md), driven over real
-- HTTP with raw SOAP XML and raw REST JSON through the core's HTTP engine
-- (not the S-360 client): every method's success and failure paths, SOAP
-- faults, REST 401s, institutions, the rate limit, and the state kept
-- across a restart on the same SQLite file.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_s360_spec.lua

local sandbox = require "spec.support.sandbox"
local transport = require "billetterie.transport"
local core = require "billetterie.core"
local cat = require "billetterie.s360.catalogue"
local cjson = require("cjson").new()

local SECRET = "s360-sandbox-secret"
local PASSWORD = "Garrigues-2024!" -- the demo seed's accounts
local SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
local WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"

---- raw HTTP ----

local function http(url, method, body, headers)
  local status, text, ctype, errkind, errmsg = transport.curl:request {
    url = url, method = method or "POST", body = body, headers = headers, timeout = 10, connect_timeout = 5,
  }
  assert(not errkind, tostring(errkind) .. ": " .. tostring(errmsg))
  return status, text, ctype
end

---- REST ----

local function b64url(s)
  return (core.b64encode(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end

-- A bearer token as an S-360 partner forges it; claims override the defaults.
local function jwt(claims, secret)
  local now = os.time()
  local c = { sub = "DEMO", aud = "DEMO_B2C", iss = "billetterie-spec", iat = now, exp = now + 30 }
  for k, v in pairs(claims or {}) do c[k] = v end
  for k, v in pairs(c) do if v == false then c[k] = nil end end
  local h = b64url(cjson.encode { alg = "HS256", typ = "JWT" })
  local p = b64url(cjson.encode(c))
  return h .. "." .. p .. "." .. b64url(core.hmac_sha256(secret or SECRET, h .. "." .. p))
end

-- -> status, decoded JSON (or nil), raw text
local function rest(sb, method, params, o)
  o = o or {}
  local s = cat.services[cat.methods[method] and cat.methods[method].service or "information"]
  local path = (o.prefix or "") .. s.versions[s.default_version].rest_path .. method
  local headers = { "Content-Type: " .. (o.content_type or "application/json"), "Accept: application/json" }
  if o.token ~= false then headers[#headers + 1] = "Authorization: Bearer " .. (o.token or jwt(o.claims)) end
  for _, h in ipairs(o.headers or {}) do headers[#headers + 1] = h end
  local body = o.body or cjson.encode(params or {})
  local status, text = http(sb.url:gsub("/$", "") .. path, o.method, body, headers)
  local ok, v = pcall(cjson.decode, text or "")
  return status, ok and v or nil, text
end

-- A successful REST call. -> the result object
local function rest_ok(sb, method, params, o)
  local status, v, text = rest(sb, method, params, o)
  assert.are.equal(200, status, text)
  assert.are.equal("success", v.statusCode, text)
  return v
end

-- A business failure: HTTP 200 and that statusCode. -> the result
local function rest_fails(sb, method, params, code, o)
  local status, v, text = rest(sb, method, params, o)
  assert.are.equal(200, status, text)
  assert.are.equal(code, v.statusCode, text)
  assert.is_string(v.statusDetail)
  return v
end

---- SOAP ----

local function esc(s)
  return (tostring(s):gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- Lua values -> unqualified child elements (arrays repeat the element).
local function children_xml(t)
  local keys, out = {}, {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  for _, k in ipairs(keys) do
    local v = t[k]
    local items = (type(v) == "table" and v[1] ~= nil) and v or { v }
    for _, item in ipairs(items) do
      if type(item) == "table" then
        out[#out + 1] = "<" .. k .. ">" .. children_xml(item) .. "</" .. k .. ">"
      else
        out[#out + 1] = "<" .. k .. ">" .. esc(item) .. "</" .. k .. ">"
      end
    end
  end
  return table.concat(out)
end

local function security(user, pw)
  return ([[<soapenv:Header><wsse:Security xmlns:wsse="%s" soapenv:mustUnderstand="1"><wsse:UsernameToken>
<wsse:Username>%s</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">%s</wsse:Password>
</wsse:UsernameToken></wsse:Security></soapenv:Header>]]):format(WSSE, esc(user), esc(pw))
end

local function envelope(ns, op, params, o)
  o = o or {}
  local header = o.header or security(o.user or "DEMO_B2C", o.password or SECRET)
  return ([[<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="%s" xmlns:op="%s">%s<soapenv:Body><op:%s>%s</op:%s></soapenv:Body></soapenv:Envelope>]])
    :format(o.env_ns or SOAP_ENV, ns, header, op, children_xml(params or {}), op)
end

local function first_child(el, name)
  for _, c in ipairs(el) do
    if type(c) == "table" and (name == nil or c.name == name) then return c end
  end
end

-- An element as plain values: text, or a table of children (repeated -> list).
local function plain(el)
  local t, many, any = {}, {}, false
  for _, c in ipairs(el) do
    if type(c) == "table" then
      any = true
      local v, cur = plain(c), t[c.name]
      if cur == nil then t[c.name] = v
      elseif many[c.name] then cur[#cur + 1] = v
      else t[c.name] = { cur, v }; many[c.name] = true end
    end
  end
  if any then return t end
  local parts = {}
  for _, c in ipairs(el) do parts[#parts + 1] = c end
  return table.concat(parts)
end

local function list(v)
  if v == nil then return {} end
  if type(v) == "table" and v[1] ~= nil then return v end
  return { v }
end

-- -> status, { fault = plain Fault } | { response = element, result = plain result, name = result element name }, text
local function soap(sb, method, params, o)
  o = o or {}
  local m = cat.methods[method]
  local s = cat.services[m and m.service or o.service or "information"]
  local v = s.versions[s.default_version]
  local body = o.body or envelope(o.ns or v.namespace, method, params, o)
  local status, text, ctype = http(sb.url:gsub("/$", "") .. (o.prefix or "") .. v.soap_path, o.method, body,
    { "Content-Type: text/xml; charset=utf-8", 'SOAPAction: ""' })
  local root = core.xml_decode(text or "", { elements = true })
  if not root then return status, nil, text, ctype end
  assert.are.equal(SOAP_ENV, root.ns)
  local b = first_child(root, "Body")
  local f = first_child(b, "Fault")
  if f then return status, { fault = plain(f), fault_el = f }, text, ctype end
  local resp = first_child(b)
  local res = first_child(resp)
  return status, { response = resp, result = plain(res), name = res.name }, text, ctype
end

local function soap_ok(sb, method, params, o)
  local status, r, text = soap(sb, method, params, o)
  assert.are.equal(200, status, text)
  assert.are.equal("success", r.result.statusCode, text)
  return r.result, r
end

local function soap_fails(sb, method, params, code, o)
  local status, r, text = soap(sb, method, params, o)
  assert.are.equal(200, status, text)
  assert.are.equal(code, r.result.statusCode, text)
  assert.is_string(r.result.statusDetail)
  return r.result
end

local function soap_fault(sb, method, params, o)
  local status, r, text, ctype = soap(sb, method, params, o)
  assert.are.equal(500, status, text)
  assert.matches("^text/xml", ctype)
  assert.is_table(r and r.fault, text)
  return r.fault, r.fault_el
end

---- the specs ----

describe("sandbox S-360", function()
  local sb

  setup(function()
    sb = sandbox.start { args = { "--seed", "demo", "--s360-rate-limit", "0" } }
  end)
  teardown(function()
    if sb then
      assert.are.equal(0, sb:stop(), sb:stderr())
      assert.are.equal("", sb:stderr()) -- no internal error was logged
    end
  end)

  it("implements every method of the catalogue in both protocols", function()
    for name, m in pairs(cat.methods) do
      local status, v, text = rest(sb, name, {})
      assert.are.equal(200, status, name .. ": " .. tostring(text))
      assert.is_string(v.statusCode, name)
      local sstatus, r, stext = soap(sb, name, {})
      assert.are.equal(200, sstatus, name .. ": " .. tostring(stext))
      assert.are.equal(m.result, r.name, name)
      assert.are.equal(name .. "Response", r.response.name)
      assert.are.equal(cat.services[m.service].versions[cat.services[m.service].default_version].namespace,
        r.response.ns)
    end
  end)

  describe("static lists", function()
    it("lists structure types, criteria, authorizations and administrative numbers", function()
      local st = rest_ok(sb, "getStructureTypes")
      assert.are.equal("COMPANY", st.structureTypes[1].code)
      assert.are.equal("fr", st.structureTypes[1].name.translations[1].locale)
      local cr = soap_ok(sb, "getAvailableContactCriteria")
      local codes = {}
      for _, c in ipairs(list(cr.contactCriteria)) do codes[c.code] = c end
      assert.are.equal("LIST", codes.INTEREST.type)
      assert.are.same({ "THEATRE", "MUSIC", "DANCE", "CIRCUS", "YOUTH" }, codes.INTEREST.values)
      local au = rest_ok(sb, "getAvailableAutorizations")
      local names = {}
      for _, a in ipairs(au.authorizations) do names[#names + 1] = a.code end
      assert.are.same({ "NEWS", "PARTNERS", "ADDRXFER", "MAIL", "PHONE", "SMS", "EMAIL" }, names)
      local an = soap_ok(sb, "getAvailableAdmnistrativeNumbers")
      assert.are.equal("SIRET", list(an.administrativeNumbers)[1].code)
    end)
  end)

  describe("getContactData", function()
    it("returns the blocks the details ask for, GENERAL by default", function()
      local r, full = soap_ok(sb, "getContactData", { contactNumber = "10001",
        details = { "GENERAL", "AUTHORIZATIONS", "ADDRESSES", "CRITERIA" } })
      assert.are.equal("ContactDataResult", full.name)
      assert.are.equal("10001", r.contactNumber)
      assert.are.equal("INDIVIDUAL", r.type)
      assert.are.equal("Martin", r.individualContact.lastname)
      assert.are.equal("30000", list(r.addresses)[1].zipCode)
      assert.are.same({ { authorizationCode = "NEWS", allowed = "true" },
        { authorizationCode = "PARTNERS", allowed = "false" } }, r.authorizations)
      local j = rest_ok(sb, "getContactData", { contactNumber = "10001" })
      assert.are.equal("Camille", j.individualContact.firstname)
      assert.is_nil(j.addresses)
      assert.is_nil(j.authorizations)
      local a = rest_ok(sb, "getContactData", { contactNumber = "10001", details = { "AUTHORIZATIONS" } })
      assert.is_nil(a.individualContact)
      assert.are.equal(true, a.authorizations[1].allowed)
    end)

    it("answers notfound for an unknown number and invalid for a bad detail", function()
      rest_fails(sb, "getContactData", { contactNumber = "999999" }, "notfound")
      soap_fails(sb, "getContactData", { contactNumber = "999999" }, "notfound")
      rest_fails(sb, "getContactData", { contactNumber = "10001", details = { "EVERYTHING" } }, "invalid")
      rest_fails(sb, "getContactData", {}, "invalid")
    end)

    it("shows a structure's members and administrative numbers", function()
      local s = rest_ok(sb, "getContactData", { contactNumber = "10004", details = { "GENERAL", "CONNECTIONS" } })
      assert.are.equal("STRUCTURE", s.type)
      assert.are.equal("COMPANY", s.structureContact.structureTypeCode)
      assert.are.equal("SIRET", s.administrativeNumbers[1].code)
      assert.are.equal(2, #s.contactConnections)
    end)
  end)

  describe("saveIndividualContactData", function()
    it("creates over SOAP, reads over REST, updates without changing the number", function()
      local created = soap_ok(sb, "saveIndividualContactData", {
        individualContactData = { firstname = "Zoé", lastname = "Lambert", email = "zoe@example.org", title = "DOCTOR" },
        addresses = { { street1 = "1 rue Haute", zipCode = "34000", town = "Montpellier", countryCode = "FR" } },
        authorizations = { { authorizationCode = "NEWS", allowed = "true" } },
        contactCriteria = { { criterionCode = "PROFCAT", value = "STUDENT" } },
      })
      local number = created.contactNumber
      assert.matches("^%d+$", number)
      local j = rest_ok(sb, "getContactData", { contactNumber = number,
        details = { "GENERAL", "ADDRESSES", "AUTHORIZATIONS", "CRITERIA" } })
      assert.are.equal("Zoé", j.individualContact.firstname)
      assert.are.equal("UNDEFINED", j.individualContact.title) -- unknown titles are kept as UNDEFINED
      assert.are.equal(true, j.authorizations[1].allowed)
      assert.are.equal("STUDENT", j.contactCriteria[1].value)
      assert.are.equal(true, j.addresses[1].main)
      -- an update, repeated: same number, no second address
      for _ = 1, 2 do
        local u = rest_ok(sb, "saveIndividualContactData", { contactNumber = number,
          individualContactData = { lastname = "Lambert-Roy" },
          addresses = { { street1 = "1 rue Haute", zipCode = "34000", town = "Montpellier", countryCode = "FR",
            street2 = "Bât. B" } },
          authorizations = { { authorizationCode = "NEWS", allowed = false } } })
        assert.are.equal(number, u.contactNumber)
      end
      local r = soap_ok(sb, "getContactData", { contactNumber = number, details = { "GENERAL", "ADDRESSES", "AUTHORIZATIONS" } })
      assert.are.equal("Lambert-Roy", r.individualContact.lastname)
      assert.are.equal("Zoé", r.individualContact.firstname)
      assert.are.equal("Bât. B", r.addresses.street2) -- one address only: not a list
      assert.are.equal("false", r.authorizations.allowed)
    end)

    it("refuses unknown codes and bad values, and writes nothing then", function()
      local c = rest_ok(sb, "saveIndividualContactData", { individualContactData = { lastname = "Atomique" } })
      rest_fails(sb, "saveIndividualContactData", { contactNumber = c.contactNumber,
        individualContactData = { lastname = "Changed" },
        authorizations = { { authorizationCode = "NOPE", allowed = true } } }, "invalid")
      soap_fails(sb, "saveIndividualContactData", { contactNumber = c.contactNumber,
        individualContactData = { lastname = "Changed" },
        contactCriteria = { { criterionCode = "PROFCAT", value = "ASTRONAUT" } } }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { contactNumber = c.contactNumber,
        individualContactData = { lastname = "Changed", birthDate = "2020-02-30" } }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { contactNumber = c.contactNumber,
        individualContactData = { lastname = ("x"):rep(101) } }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { individualContactData = { firstname = "Nameless" } }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { contactNumber = "10004",
        individualContactData = { lastname = "Changed" } }, "invalid") -- a structure
      rest_fails(sb, "saveIndividualContactData", { contactNumber = "77777777" }, "notfound")
      assert.are.equal("Atomique",
        rest_ok(sb, "getContactData", { contactNumber = c.contactNumber }).individualContact.lastname)
    end)

    it("creates a login from the e-mail; a login belongs to one contact", function()
      local c = rest_ok(sb, "saveIndividualContactData", { createLogin = true, password = "Secret-1234",
        individualContactData = { lastname = "Durand", email = "Paul.Durand@example.org" } })
      local a = rest_ok(sb, "authenticate", { contactAuthenticationData = {
        login = "paul.durand@example.org", password = "Secret-1234" } })
      assert.are.equal(c.contactNumber, a.contactNumber)
      rest_fails(sb, "saveIndividualContactData", { createLogin = true, password = "Secret-1234",
        individualContactData = { lastname = "Autre", email = "paul.durand@example.org" } }, "conflict")
      rest_fails(sb, "saveIndividualContactData", { createLogin = true, password = "short",
        individualContactData = { lastname = "Bref", email = "bref@example.org" } }, "invalid")
    end)
    it("answers an identical repeated creation with the first contact, over either protocol", function()
      local params = { individualContactData = { lastname = "Bis", firstname = "Repetita", email = "bis@example.org" },
        authorizations = { { authorizationCode = "NEWS", allowed = true } } }
      local first = rest_ok(sb, "saveIndividualContactData", params)
      local again = rest_ok(sb, "saveIndividualContactData", params)
      assert.are.equal(first.contactNumber, again.contactNumber)
      assert.are.equal(first.contactId, again.contactId)
      params.requestId = 77   -- not part of the request's identity, and echoed
      local echoed = rest_ok(sb, "saveIndividualContactData", params)
      assert.are.equal(first.contactNumber, echoed.contactNumber)
      assert.are.equal(77, echoed.requestId)
      params.requestId = nil
      local viasoap = soap_ok(sb, "saveIndividualContactData", params)
      assert.are.equal(first.contactNumber, viasoap.contactNumber)
      local found = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { email = "bis@example.org" } })
      assert.are.equal(1, #found.contacts)
      -- another request is another contact
      local other = soap_ok(sb, "saveIndividualContactData", { individualContactData = { lastname = "Bis", firstname = "Autre" } })
      assert.are_not.equal(first.contactNumber, other.contactNumber)
      -- structures, members and social sign-ups alike
      local st = { structureContactData = { name = "Compagnie Bis", structureTypeCode = "COMPANY" } }
      local s1, s2 = soap_ok(sb, "saveStructureContactData", st), rest_ok(sb, "saveStructureContactData", st)
      assert.are.equal(s1.contactNumber, s2.contactNumber)
      local member = { structureContactNumber = s1.contactNumber, individualContactData = { lastname = "Membre-Bis" } }
      assert.are.equal(rest_ok(sb, "saveStructureMember", member).contactNumber,
        soap_ok(sb, "saveStructureMember", member).contactNumber)
      local signup = { signUpData = { email = "bis.fb@example.org", lastname = "Social" }, provider = "FACEBOOK",
        providerUserReference = "fb-bis" }
      rest_ok(sb, "createUser", signup)
      rest_ok(sb, "createUser", signup)
      rest_fails(sb, "createUser", { signUpData = { email = "autre.fb@example.org" }, provider = "FACEBOOK",
        providerUserReference = "fb-bis" }, "conflict")
      -- a failure is not remembered: once fixed, the request creates
      rest_fails(sb, "saveIndividualContactData", { individualContactData = { lastname = "Bis-KO" },
        authorizations = { { authorizationCode = "NOPE", allowed = true } } }, "invalid")
    end)

    it("reads back addresses without a zip code or a town", function()
      local c = soap_ok(sb, "saveIndividualContactData", { individualContactData = { lastname = "Sanscode", email = "sanscode@example.org" },
        addresses = { { street1 = "Lieu-dit Les Vignes", town = "Aniane", countryCode = "FR" },
          { street1 = "2 place Haute", zipCode = "34150", countryCode = "FR" } } })
      local j = rest_ok(sb, "getContactData", { contactNumber = c.contactNumber, details = { "ADDRESSES" } })
      assert.are.equal("Lieu-dit Les Vignes, Aniane, FR", j.addresses[1].formattedAddress)
      assert.are.equal("2 place Haute, 34150, FR", j.addresses[2].formattedAddress)
      local r = soap_ok(sb, "getContactData", { contactNumber = c.contactNumber, details = { "ADDRESSES" } })
      assert.are.equal(2, #list(r.addresses))
      local found = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { email = "sanscode@example.org" },
        details = { "GENERAL", "ADDRESSES" } })
      assert.are.equal(c.contactNumber, found.contacts[1].contactNumber)
      assert.are.equal(2, #found.contacts[1].addresses)
    end)
  end)

  describe("structures", function()
    it("creates and updates a structure, replaces its administrative numbers", function()
      local s = soap_ok(sb, "saveStructureContactData", {
        structureContactData = { name = "Lycée Daudet", structureTypeCode = "SCHOOL" } })
      rest_ok(sb, "saveStructureContactData", { contactNumber = s.contactNumber,
        structureContactData = { website = "https://daudet.example" } })
      rest_ok(sb, "saveStructureAdministrativeNumbers", { contactNumber = s.contactNumber,
        administrativeNumbers = { { code = "SIRET", value = "11111111100011" }, { code = "APE", value = "8531Z" } } })
      soap_ok(sb, "saveStructureAdministrativeNumbers", { contactNumber = s.contactNumber,
        administrativeNumbers = { { code = "VAT", value = "FR99111111111" } } })
      local r = rest_ok(sb, "getContactData", { contactNumber = s.contactNumber })
      assert.are.equal("Lycée Daudet", r.structureContact.name)
      assert.are.equal("https://daudet.example", r.structureContact.website)
      assert.are.same({ { code = "VAT", value = "FR99111111111" } }, r.administrativeNumbers)
    end)

    it("refuses unknown types and codes, and individuals", function()
      rest_fails(sb, "saveStructureContactData", { structureContactData = { name = "X", structureTypeCode = "CLUB" } }, "invalid")
      rest_fails(sb, "saveStructureContactData", { structureContactData = { name = "X" } }, "invalid")
      rest_fails(sb, "saveStructureAdministrativeNumbers", { contactNumber = "10004",
        administrativeNumbers = { { code = "IBAN", value = "1" } } }, "invalid")
      soap_fails(sb, "saveStructureAdministrativeNumbers", { contactNumber = "10001",
        administrativeNumbers = { { code = "SIRET", value = "1" } } }, "invalid")
      rest_fails(sb, "saveStructureAdministrativeNumbers", { contactNumber = "55555555" }, "notfound")
      -- nothing was lost on the failed calls
      assert.are.equal(2, #rest_ok(sb, "getContactData", { contactNumber = "10004" }).administrativeNumbers)
    end)

    it("adds, lists and removes members", function()
      local m = rest_ok(sb, "saveStructureMember", { structureContactNumber = "10007", role = "RELAY",
        ["function"] = "Présidente", individualContactData = { firstname = "Anne", lastname = "Vidal" } })
      soap_ok(sb, "saveStructureMember", { structureContactNumber = "10007", memberContactNumber = "10003" })
      local l = soap_ok(sb, "listStructureMembersByCriteria", { memberSearchCriteria = { structureContactNumber = "10007" } })
      local members = {}
      for _, x in ipairs(list(l.members)) do members[x.memberContactNumber] = x end
      assert.are.equal("RELAY", members[m.contactNumber].role)
      assert.are.equal("Présidente", members[m.contactNumber]["function"])
      assert.are.equal("Vidal", members[m.contactNumber].individualContact.lastname)
      assert.are.equal("MEMBER", members["10003"].role)
      assert.are.equal(2, #list(l.members))
      local by_role = rest_ok(sb, "listStructureMembersByCriteria", { memberSearchCriteria = { role = "RELAY", lastname = "v*" } })
      assert.are.equal(1, #by_role.members)
      assert.are.equal("MEMBER", rest_ok(sb, "getContactData", { contactNumber = "10003" }).role)
      rest_ok(sb, "deleteStructureMember", { structureContactNumber = "10007", memberContactNumber = "10003" })
      -- idempotent (seed l.24): a member already gone is a success, over either protocol
      rest_ok(sb, "deleteStructureMember", { structureContactNumber = "10007", memberContactNumber = "10003" })
      soap_ok(sb, "deleteStructureMember", { structureContactNumber = "10007", memberContactNumber = "10003" })
      rest_fails(sb, "deleteStructureMember", { structureContactNumber = "31337", memberContactNumber = "10003" }, "notfound")
      assert.are.equal("PUBLIC", rest_ok(sb, "getContactData", { contactNumber = "10003" }).role)
      assert.are.equal(1, #rest_ok(sb, "listStructureMembersByCriteria",
        { memberSearchCriteria = { structureContactNumber = "10007" } }).members)
    end)

    it("refuses members of a non-structure, unknown roles and empty criteria", function()
      rest_fails(sb, "saveStructureMember", { structureContactNumber = "10001", memberContactNumber = "10002" }, "invalid")
      rest_fails(sb, "saveStructureMember", { structureContactNumber = "10004", memberContactNumber = "10002", role = "BOSS" }, "invalid")
      soap_fails(sb, "saveStructureMember", { structureContactNumber = "31337", memberContactNumber = "10002" }, "notfound")
      rest_fails(sb, "listStructureMembersByCriteria", { memberSearchCriteria = {} }, "invalid")
      soap_fails(sb, "deleteStructureMember", { structureContactNumber = "10004" }, "invalid")
    end)
  end)

  describe("searchContactByCriteria", function()
    it("finds by e-mail, by prefix and by zip code, scoped by type", function()
      local r = soap_ok(sb, "searchContactByCriteria", { searchCriteria = { email = "LUCAS.BERNARD@example.org" } })
      assert.are.equal("10002", r.contacts.contactNumber)
      local p = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { lastname = "mar*" },
        details = { "GENERAL", "ADDRESSES" } })
      assert.are.equal("10001", p.contacts[1].contactNumber)
      assert.is_table(p.contacts[1].addresses)
      local z = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { zipCode = "30900", contactTypeScope = "STRUCTURE" } })
      assert.are.equal("10004", z.contacts[1].contactNumber)
      local none = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { email = "nobody@example.org" } })
      assert.are.same({}, none.contacts)
      assert.matches('"contacts":%[%]', select(3, rest(sb, "searchContactByCriteria", { searchCriteria = { email = "nobody@example.org" } })))
    end)

    it("needs a criterion", function()
      rest_fails(sb, "searchContactByCriteria", { searchCriteria = { contactTypeScope = "ANY" } }, "invalid")
      soap_fails(sb, "searchContactByCriteria", {}, "invalid")
      rest_fails(sb, "searchContactByCriteria", { searchCriteria = { email = "x", maxResults = 0 } }, "invalid")
    end)
  end)

  describe("authentication", function()
    it("authenticates by password and rotates remember-me pairs", function()
      local a = soap_ok(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = PASSWORD, rememberMe = "true", pointOfSalesId = "1001" } })
      assert.are.equal("10002", a.contactNumber)
      assert.matches("^%x+$", a.identification)
      assert.matches("^%x+$", a.uniqueToken)
      local b = rest_ok(sb, "authenticate", { contactAuthenticationData = {
        identification = a.identification, uniqueToken = a.uniqueToken } })
      assert.are.equal("10002", b.contactNumber)
      assert.are_not.equal(a.uniqueToken, b.uniqueToken)
      -- the first pair is spent, the second works once
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        identification = a.identification, uniqueToken = a.uniqueToken } }, "denied")
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        identification = b.identification,
        uniqueToken = (b.uniqueToken:sub(1, 1) == "0" and "1" or "0") .. b.uniqueToken:sub(2) } }, "denied")  -- one digit off
      rest_ok(sb, "authenticate", { contactAuthenticationData = {
        identification = b.identification, uniqueToken = b.uniqueToken } })
      local plain_login = rest_ok(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = PASSWORD } })
      assert.is_nil(plain_login.identification)
    end)

    it("refuses bad passwords, B2B points of sales to the public, wrong scopes", function()
      local d = rest_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = "wrong" } }, "denied")
      assert.is_nil(d.uniqueToken)
      soap_fails(sb, "authenticate", { contactAuthenticationData = { login = "ghost@example.org", password = "x" } }, "denied")
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = PASSWORD, pointOfSalesId = 1002 } }, "denied")
      rest_ok(sb, "authenticate", { contactAuthenticationData = {
        login = "julie.roux@example.org", password = PASSWORD, pointOfSalesId = 1002, structureContactNumber = "10004" } })
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "julie.roux@example.org", password = PASSWORD, structureContactNumber = "10007" } }, "denied")
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = PASSWORD, pointOfSalesId = 4242 } }, "invalid")
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = PASSWORD, contactTypeScope = "STRUCTURE" } }, "denied")
      rest_fails(sb, "authenticate", { contactAuthenticationData = { login = "lucas.bernard@example.org" } }, "invalid")
      rest_fails(sb, "authenticate", {}, "invalid")
      rest_ok(sb, "authenticate", { contactAuthenticationData = { operatorLogin = true, login = "DEMO_B2C", password = SECRET } })
      rest_fails(sb, "authenticate", { contactAuthenticationData = { operatorLogin = true, login = "DEMO_B2C", password = "x" } }, "denied")
    end)

    it("changes a password only with the current one", function()
      rest_ok(sb, "saveIndividualContactData", { createLogin = true, password = "First-pass-1",
        individualContactData = { lastname = "Chang", email = "chang@example.org" } })
      local a = rest_ok(sb, "authenticate", { contactAuthenticationData = {
        login = "chang@example.org", password = "First-pass-1", rememberMe = true } })
      soap_fails(sb, "changePassword", { contactNumber = a.contactNumber, currentPassword = "nope",
        newPassword = "Second-pass-2" }, "denied")
      rest_fails(sb, "changePassword", { contactNumber = a.contactNumber, currentPassword = "First-pass-1",
        newPassword = "2short" }, "invalid")
      rest_fails(sb, "changePassword", { contactNumber = "888888", currentPassword = "a", newPassword = "Second-pass-2" }, "notfound")
      soap_ok(sb, "changePassword", { contactNumber = a.contactNumber, currentPassword = "First-pass-1",
        newPassword = "Second-pass-2" })
      rest_fails(sb, "authenticate", { contactAuthenticationData = { login = "chang@example.org", password = "First-pass-1" } }, "denied")
      rest_ok(sb, "authenticate", { contactAuthenticationData = { login = "chang@example.org", password = "Second-pass-2" } })
      -- the change spent the remember-me pair
      rest_fails(sb, "authenticate", { contactAuthenticationData = {
        identification = a.identification, uniqueToken = a.uniqueToken } }, "denied")
    end)

    it("recovers a password through the outbox", function()
      rest_ok(sb, "saveIndividualContactData", { createLogin = true, password = "Forgotten-1",
        individualContactData = { lastname = "Oubli", email = "oubli@example.org" } })
      rest_fails(sb, "recoverPassword", { email = "unknown@example.org" }, "notfound")
      soap_fails(sb, "recoverPassword", { email = "oubli@example.org", pointOfSalesId = "9" }, "invalid")
      soap_ok(sb, "recoverPassword", { email = "oubli@example.org" })
      local status, text = http(sb.url .. "_sandbox/s360/outbox?institution=demo", "GET")
      assert.are.equal(200, status)
      local mail = cjson.decode(text).mails[1]
      assert.are.equal("oubli@example.org", mail.recipient)
      local pw = mail.body:match("your new password is (%S+)")
      assert.is_string(pw)
      -- the dashboard does not show it
      local dstatus, page = http(sb.url, "GET")
      assert.are.equal(200, dstatus)
      assert.truthy(page:find("s360_contacts", 1, true))
      assert.falsy(page:find(pw, 1, true), "the new password is on the dashboard")
      rest_fails(sb, "authenticate", { contactAuthenticationData = { login = "oubli@example.org", password = "Forgotten-1" } }, "denied")
      rest_ok(sb, "authenticate", { contactAuthenticationData = { login = "oubli@example.org", password = pw } })
    end)

    it("lists the points of sales a contact may use", function()
      local pub = rest_ok(sb, "listAuthorizedPOS", { contactAuthenticationData = {
        login = "camille.martin@example.org", password = PASSWORD } })
      assert.are.equal(2, #pub.pointOfSales)
      assert.are.equal("B2C", pub.pointOfSales[1].saleChannelCode)
      local pro = soap_ok(sb, "listAuthorizedPOS", { contactAuthenticationData = {
        login = "julie.roux@example.org", password = PASSWORD } })
      assert.are.equal(3, #list(pro.pointOfSales))
      rest_fails(sb, "listAuthorizedPOS", { contactAuthenticationData = {
        login = "julie.roux@example.org", password = "wrong" } }, "denied")
    end)
  end)

  describe("request journal", function()
    it("records each request's operation, protocol and parameters, secrets masked", function()
      local before = cjson.decode((select(2, http(sb.url .. "_sandbox/requests?limit=1", "GET")))).requests
      local since = before[1] and before[1].id or 0
      soap_fails(sb, "authenticate", { contactAuthenticationData = {
        login = "lucas.bernard@example.org", password = "Journal-Secret-1" } }, "denied")
      rest_fails(sb, "changePassword", { contactNumber = "10001", currentPassword = "Journal-Current-2",
        newPassword = "Journal-New-3" }, "denied")
      local status, text = http(sb.url .. "_sandbox/requests?since=" .. since, "GET")
      assert.are.equal(200, status)
      for _, pw in ipairs { "Journal-Secret-1", "Journal-Current-2", "Journal-New-3", SECRET } do
        assert.falsy(text:find(pw, 1, true), pw .. " is in the journal")
      end
      local rows = cjson.decode(text).requests
      assert.are.equal(2, #rows)
      local s, r = rows[1].params, rows[2].params
      assert.are.same({ "authenticate", "soap" }, { s.s360_operation, s.s360_protocol })
      local sp = cjson.decode(s.s360_params)
      assert.are.equal("lucas.bernard@example.org", sp.contactAuthenticationData.login)
      assert.are.equal("***", sp.contactAuthenticationData.password)
      assert.are.same({ "changePassword", "rest" }, { r.s360_operation, r.s360_protocol })
      local rp = cjson.decode(r.s360_params)
      assert.are.same({ contactNumber = "10001", currentPassword = "***", newPassword = "***" }, rp)
      -- a refused token still names the operation
      rest(sb, "getStructureTypes", {}, { token = "not.a.jwt" })
      rows = cjson.decode((select(2, http(sb.url .. "_sandbox/requests?since=" .. since, "GET")))).requests
      assert.are.equal("getStructureTypes", rows[#rows].params.s360_operation)
      assert.are.equal(401, rows[#rows].status)
    end)
  end)

  describe("request journal and dashboard, secret values", function()
    it("blanks a secret's value wherever it appears, whatever its type or key case", function()
      local before = cjson.decode((select(2, http(sb.url .. "_sandbox/requests?limit=1", "GET")))).requests
      local since = before[1] and before[1].id or 0
      local bodies = {
        { "authenticate", { contactAuthenticationData = { login = "x", password = { a = "Secret-Val-1" } } } },
        { "authenticate", { contactAuthenticationData = { login = { "Secret-Val-2" }, password = "Secret-Val-2" } } },
        { "authenticate", { contactAuthenticationData = { uniqueToken = { "Secret-Val-3" },
          identification = { x = "Secret-Val-3" } } } },
        { "changePassword", { contactNumber = "10008", currentPassword = 918273645,
          newPassword = { x = "Secret-Val-4" }, requestId = 918273645 } },
        { "saveIndividualContactData", { individualContactData = { lastname = "Secret-Val-5x",
          email = "Secret-Val-5@x.org" }, createLogin = true, password = { "Secret-Val-5" } } },
        { "authenticate", { contactAuthenticationData = { login = "x", Password = "Secret-Val-6" } } },
        { "authenticate", { contactAuthenticationData = { login = "x", password = "Secret-Val-7" },
          extra = { password = "Secret-Val-7" } } },
        -- the operator password (the JWT secret) typed into a field
        { "authenticate", { contactAuthenticationData = { login = SECRET, password = "z" } } },
      }
      for _, b in ipairs(bodies) do rest(sb, b[1], b[2]) end
      -- over SOAP, the WS-Security password given (a wrong one too)
      soap(sb, "authenticate", { contactAuthenticationData = { login = "Wrong-Operator-Pw", password = "p" } },
        { password = "Wrong-Operator-Pw" })
      soap(sb, "authenticate", { contactAuthenticationData = { login = "op:" .. SECRET, password = "p" } })
      -- and into a L@billetterie form
      http(sb.url .. "ws_idsession", "POST", "x_rsi_ws_login=" .. SECRET .. "&x_rsi_client=677")

      local status, text = http(sb.url .. "_sandbox/requests?since=" .. since, "GET")
      assert.are.equal(200, status)
      local rows = cjson.decode(text).requests
      assert.are.equal(#bodies + 3, #rows)
      assert.are.equal("***", rows[#rows].params.x_rsi_ws_login)
      local _, page = http(sb.url, "GET")
      assert.truthy(page:find("s360_params", 1, true)) -- the dashboard shows the journal
      for _, secret in ipairs { "Secret-Val-", "918273645", "Wrong-Operator-Pw", SECRET } do
        assert.falsy(text:find(secret, 1, true), secret .. " is in the journal")
        assert.falsy(page:find(secret, 1, true), secret .. " is on the dashboard")
      end
      local function params(i) return cjson.decode(rows[i].params.s360_params) end
      assert.are.same({ login = { "***" }, password = "***" }, params(2).contactAuthenticationData)
      assert.are.equal("***x", params(5).individualContactData.lastname)
      assert.are.equal("***@x.org", params(5).individualContactData.email)
      assert.are.equal("***", params(6).contactAuthenticationData.Password)
      assert.are.equal("***", params(8).contactAuthenticationData.login)
      assert.are.equal("op:***", params(10).contactAuthenticationData.login)
    end)
  end)

  describe("social login", function()
    it("authenticates a linked provider user; createUser then authenticate", function()
      local a = soap_ok(sb, "authenticate", { contactAuthenticationData = { socialLogin = "true",
        identityProvider = "FACEBOOK", providerUserReference = "fb-100001" } })
      assert.are.equal("10001", a.contactNumber)
      rest_fails(sb, "authenticate", { contactAuthenticationData = { socialLogin = true,
        identityProvider = "GOOGLE", providerUserReference = "g-42" } }, "notfound")
      soap_ok(sb, "createUser", { signUpData = { email = "g42@example.org", firstname = "Gaël", gender = "MRS",
        lang = "fr" }, provider = "GOOGLE", providerUserReference = "g-42" })
      local b = rest_ok(sb, "authenticate", { contactAuthenticationData = { socialLogin = true,
        identityProvider = "GOOGLE", providerUserReference = "g-42", rememberMe = true } })
      assert.is_string(b.uniqueToken)
      local c = rest_ok(sb, "getContactData", { contactNumber = b.contactNumber })
      assert.are.equal("Gaël", c.individualContact.firstname)
      rest_fails(sb, "createUser", { signUpData = { email = "other@example.org" }, provider = "GOOGLE",
        providerUserReference = "g-42" }, "conflict")
      -- an empty object is an absent one, as SOAP's empty element
      rest_fails(sb, "createUser", { signUpData = {}, provider = "GOOGLE", providerUserReference = "g-42" }, "invalid")
    end)

    it("adds and removes links", function()
      rest_ok(sb, "addLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-7" })
      soap_ok(sb, "addLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-7" })
      rest_fails(sb, "addLink", { contactNumber = "10001", provider = "TWITTER", providerUserReference = "tw-7" }, "conflict")
      rest_fails(sb, "addLink", { contactNumber = "10002", provider = "MYSPACE", providerUserReference = "m" }, "invalid")
      rest_fails(sb, "addLink", { contactNumber = "999", provider = "UEFA", providerUserReference = "u" }, "notfound")
      assert.are.equal("10002", rest_ok(sb, "authenticate", { contactAuthenticationData = { socialLogin = true,
        identityProvider = "TWITTER", providerUserReference = "tw-7" } }).contactNumber)
      soap_ok(sb, "removeLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-7" })
      -- idempotent (seed l.24): a link already gone is a success...
      rest_ok(sb, "removeLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-7" })
      soap_ok(sb, "removeLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-7" })
      -- ...another contact's link is not this one's to remove
      rest_ok(sb, "addLink", { contactNumber = "10001", provider = "TWITTER", providerUserReference = "tw-8" })
      soap_fails(sb, "removeLink", { contactNumber = "10002", provider = "TWITTER", providerUserReference = "tw-8" }, "conflict")
      rest_ok(sb, "removeLink", { contactNumber = "10001", provider = "TWITTER", providerUserReference = "tw-8" })
      rest_fails(sb, "removeLink", { contactNumber = "999", provider = "TWITTER", providerUserReference = "tw-8" }, "notfound")
      rest_fails(sb, "authenticate", { contactAuthenticationData = { socialLogin = true,
        identityProvider = "TWITTER", providerUserReference = "tw-7" } }, "notfound")
    end)
  end)

  describe("parameter types", function()
    it("accepts JSON numbers for strings and nulls for absent values, refuses wrong shapes", function()
      assert.are.equal("10002", rest_ok(sb, "getContactData", { contactNumber = 10002, details = "GENERAL" }).contactNumber)
      assert.are.equal("10002", rest_ok(sb, "getContactData", nil,
        { body = '{"contactNumber":"10002","details":null,"requestId":null}' }).contactNumber)
      rest_fails(sb, "getContactData", { contactNumber = { "10002", "10001" } }, "invalid")
      rest_fails(sb, "getContactData", { contactNumber = { n = 1 } }, "invalid")
      rest_fails(sb, "searchContactByCriteria", { searchCriteria = "lastname" }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { contactNumber = "10002",
        authorizations = { { authorizationCode = "NEWS", allowed = "yes" } } }, "invalid")
      rest_fails(sb, "saveIndividualContactData", { contactNumber = "10002",
        authorizations = { { authorizationCode = "NEWS" } } }, "invalid")
      rest_fails(sb, "recoverPassword", { email = "x@example.org", pointOfSalesId = 1.5 }, "invalid")
      soap_fails(sb, "searchContactByCriteria", { searchCriteria = { email = { "a", "b" } } }, "invalid")
      -- nesting deeper than the parser allows is a malformed request
      local deep = ("<a>"):rep(300) .. ("</a>"):rep(300)
      local f = soap_fault(sb, "getContactData", nil, { body = envelope(cat.services.information.versions.v2_21.namespace,
        "getContactData", {}):gsub("</op:getContactData>", deep .. "</op:getContactData>") })
      assert.are.equal("S:Client", f.faultcode)
    end)
  end)

  describe("SOAP envelopes", function()
    it("answers with the S/ns2 prefixes and echoes requestId", function()
      local status, r, text = soap(sb, "getContactData", { requestId = "77", contactNumber = "10002" })
      assert.are.equal(200, status)
      assert.matches("<S:Envelope", text)
      assert.matches("<ns2:getContactDataResponse", text)
      assert.are.equal("77", r.result.requestId)
      assert.are.equal(77, rest_ok(sb, "getStructureTypes", { requestId = 77 }).requestId)
    end)

    it("accepts a token without the Type attribute and ignores SOAPAction", function()
      local header = ([[<soapenv:Header><s:Security xmlns:s="%s"><s:UsernameToken wsu:Id="UsernameToken-1"
        xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd">
        <s:Username>demo_b2c</s:Username><s:Password>%s</s:Password></s:UsernameToken></s:Security></soapenv:Header>]])
        :format(WSSE, SECRET)
      soap_ok(sb, "getStructureTypes", {}, { header = header })
    end)

    it("gives SOAP faults for bad envelopes, operations and WS-Security", function()
      local f = soap_fault(sb, "getContactData", nil, { body = "<soapenv:Envelope><broken" })
      assert.are.equal("S:Client", f.faultcode)
      f = soap_fault(sb, "getContactData", nil, { body = "<a>not soap</a>" })
      assert.are.equal("S:Client", f.faultcode)
      f = soap_fault(sb, "getContactData", nil, { body = "" })
      assert.are.equal("S:Client", f.faultcode)
      f = soap_fault(sb, "getContactData", { contactNumber = "1" }, { env_ns = "http://www.w3.org/2003/05/soap-envelope" })
      assert.are.equal("S:VersionMismatch", f.faultcode)
      f = soap_fault(sb, "getContactData", { contactNumber = "1" }, { header = "" })
      assert.are.equal("S:Client", f.faultcode)
      local _, el = soap_fault(sb, "getContactData", { contactNumber = "1" }, { password = "wrong" })
      local detail = first_child(el, "detail")
      assert.are.equal("FailedAuthentication", first_child(detail).name)
      assert.are.equal(WSSE, first_child(detail).ns)
      soap_fault(sb, "getContactData", { contactNumber = "1" }, { user = "MOSA_B2C" }) -- another institution's operator
      -- an operation of another service, or in another namespace
      f = soap_fault(sb, "authenticate", {}, { service = "information",
        ns = cat.services.information.versions.v2_21.namespace })
      assert.are.equal("S:Client", f.faultcode)
      f = soap_fault(sb, "getContactData", {}, { ns = "http://v2_17.ContactInformationPublicService.service.secutix.com/" })
      assert.are.equal("S:Client", f.faultcode)
      f = soap_fault(sb, "noSuchMethod", {}, { service = "information" })
      assert.are.equal("S:Client", f.faultcode)
      local status = http(sb.url .. cat.services.information.versions.v2_21.soap_path:sub(2), "GET")
      assert.are.equal(405, status)
    end)
  end)

  describe("REST bearer tokens", function()
    local function refused(claims, o)
      o = o or {}
      o.claims = claims
      local status, v, text = rest(sb, "getStructureTypes", {}, o)
      assert.are.equal(401, status, text)
      assert.are.equal(401, v.error.status)
      return v.error.message
    end

    it("answers 401 for a missing, forged, stale or misdirected token", function()
      refused(nil, { token = false })
      refused(nil, { token = "abc.def" })
      refused(nil, { token = jwt(nil, "another-secret") })
      local now = os.time()
      refused { iat = now - 100, exp = now - 70 }
      refused { iat = now, exp = now + 3600 }      -- longer than 30 s
      refused { iat = now + 120, exp = now + 130 } -- from the future
      refused { exp = false }
      refused { sub = "MOSA" }
      refused { aud = "MOSA_B2C" }
      local msg = refused(nil, { token = jwt(nil, "another-secret") })
      assert.are.equal("bad signature", msg)
    end)

    it("accepts seconds and milliseconds", function()
      local now = os.time()
      rest_ok(sb, "getStructureTypes", {}, { claims = { iat = now * 1000, exp = (now + 30) * 1000 } })
      rest_ok(sb, "getStructureTypes", {}, { claims = { sub = "demo", aud = { "DEMO_B2C" } } })
    end)

    it("wants POST, JSON and a known method", function()
      local status = rest(sb, "getStructureTypes", {}, { method = "GET" })
      assert.are.equal(405, status)
      status = rest(sb, "getStructureTypes", {}, { content_type = "text/plain" })
      assert.are.equal(415, status)
      status = rest(sb, "getStructureTypes", nil, { body = "[1,2]" })
      assert.are.equal(400, status)
      status = rest(sb, "getStructureTypes", nil, { body = "{not json" })
      assert.are.equal(400, status)
      -- a NUL byte could not be stored as sent: refused, not a 500
      status = rest(sb, "saveIndividualContactData", nil,
        { body = '{"individualContactData":{"lastname":"A\\u0000B","email":"nul@example.org"}}' })
      assert.are.equal(400, status)
      status = rest(sb, "noSuchMethod", {})
      assert.are.equal(404, status)
      status = http(sb.url .. "tnco/backend-apis/contactInformationPublicService/v2_17/getStructureTypes", "POST", "{}",
        { "Content-Type: application/json", "Authorization: Bearer " .. jwt() })
      assert.are.equal(404, status)
      -- an empty body is an empty parameter object
      rest_ok(sb, "getStructureTypes", nil, { body = "" })
    end)
  end)

  describe("institutions", function()
    it("keeps each institution's contacts apart; path, header or Host name it", function()
      local mosa = { prefix = "/mosa", claims = { sub = "MOSA", aud = "MOSA_B2C" } }
      local c = rest_ok(sb, "saveIndividualContactData", { individualContactData = { lastname = "Seulement-Mosa" } }, mosa)
      rest_ok(sb, "getContactData", { contactNumber = c.contactNumber }, mosa)
      local found = rest_ok(sb, "searchContactByCriteria", { searchCriteria = { lastname = "Seulement-Mosa" } })
      assert.are.same({}, found.contacts) -- not in DEMO
      local hdr = { claims = mosa.claims, headers = { "X-Institution: mosa" } }
      assert.are.equal(1, #rest_ok(sb, "searchContactByCriteria", { searchCriteria = { lastname = "Seulement-Mosa" } }, hdr).contacts)
      local host = { claims = mosa.claims, headers = { "Host: mosa.localhost" } }
      assert.are.equal(1, #rest_ok(sb, "searchContactByCriteria", { searchCriteria = { lastname = "Seulement-Mosa" } }, host).contacts)
      soap_ok(sb, "getContactData", { contactNumber = c.contactNumber }, { prefix = "/MOSA", user = "MOSA_B2C" })
      -- the DEMO token does not open MOSA, an unknown institution is 404
      assert.are.equal(401, (rest(sb, "getStructureTypes", {}, { prefix = "/mosa" })))
      assert.are.equal(404, (rest(sb, "getStructureTypes", {}, { prefix = "/nowhere" })))
      assert.are.equal(404, (rest(sb, "getStructureTypes", {}, { headers = { "X-Institution: nowhere" } })))
    end)
  end)
end)

describe("sandbox S-360 rate limit", function()
  it("answers 509 past the calls per minute of an institution", function()
    local sb = sandbox.start { args = { "--s360-rate-limit", "3" } }
    local ok, err = pcall(function()
      for _ = 1, 3 do rest_ok(sb, "getStructureTypes") end
      local status, v = rest(sb, "getStructureTypes")
      assert.are.equal(509, status)
      assert.matches("rate", v.error.message)
      -- counted per institution
      rest_ok(sb, "getStructureTypes", {}, { prefix = "/mosa", claims = { sub = "MOSA", aud = "MOSA_B2C" } })
    end)
    assert.are.equal(0, sb:stop(), sb:stderr())
    assert(ok, err)
  end)
end)

describe("sandbox S-360 state", function()
  it("survives a restart on the same SQLite file, for SOAP and REST alike", function()
    local path = os.tmpname()
    local sb = sandbox.start { db = path, args = { "--s360-institutions", "ACME", "--s360-password", "acme-pass-1" } }
    local acme = { claims = { sub = "ACME", aud = "ACME_B2C" } }
    local number
    local ok, err = pcall(function()
      assert.are.equal(401, (rest(sb, "getStructureTypes", {}, acme))) -- signed with the default secret
      local status, v = rest(sb, "getStructureTypes", {}, { token = jwt(acme.claims, "acme-pass-1") })
      assert.are.equal(200, status)
      assert.are.equal("success", v.statusCode)
      number = soap_ok(sb, "saveIndividualContactData", { createLogin = true, password = "Persist-123",
        individualContactData = { lastname = "Durable", email = "durable@example.org" },
        authorizations = { { authorizationCode = "SMS", allowed = true } } },
        { user = "ACME_B2C", password = "acme-pass-1" }).contactNumber
    end)
    assert.are.equal(0, sb:stop(), sb:stderr())
    assert(ok, err)

    sb = sandbox.start { db = path, args = { "--s360-institutions", "ACME", "--s360-password", "acme-pass-1" } }
    ok, err = pcall(function()
      local r = soap_ok(sb, "getContactData", { contactNumber = number, details = { "GENERAL", "AUTHORIZATIONS" } },
        { user = "ACME_B2C", password = "acme-pass-1" })
      assert.are.equal("Durable", r.individualContact.lastname)
      assert.are.equal("SMS", r.authorizations.authorizationCode)
      local status, a = rest(sb, "authenticate", { contactAuthenticationData = { login = "durable@example.org",
        password = "Persist-123" } }, { token = jwt(acme.claims, "acme-pass-1") })
      assert.are.equal(200, status)
      assert.are.equal(number, a.contactNumber)
      -- the next number follows the stored ones
      local status2, c = rest(sb, "saveIndividualContactData", { individualContactData = { lastname = "Suivant" } },
        { token = jwt(acme.claims, "acme-pass-1") })
      assert.are.equal(200, status2)
      assert.are.equal(tostring(tonumber(number) + 1), c.contactNumber)
    end)
    assert.are.equal(0, sb:stop(), sb:stderr())
    os.remove(path)
    assert(ok, err)
  end)
end)
