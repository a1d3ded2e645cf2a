-- spec/s360_integration_spec.lua: every S-360 method of the client against
-- the real sandbox process (real HTTP, real SQLite file), over SOAP and
-- REST, each with at least one failure. The sandbox's defaults are in
-- docs/sandbox-s360.md (institutions DEMO and MOSA, operators <I>_B2C,
-- password s360-sandbox-secret; reference data of sandbox/s360_ref.lua).
local sandbox = require "spec.support.sandbox"
local s360 = require "billetterie.s360"

local PASSWORD = "s360-sandbox-secret"

for _, protocol in ipairs { "soap", "rest" } do
  -- one institution per protocol, so each run starts from an empty base
  local INSTIT = protocol == "soap" and "DEMO" or "MOSA"

  describe("S-360 client against the sandbox over " .. protocol, function()
    local sb, c
    local state = {}   -- what earlier tests created, for later ones
    local email = protocol .. ".jeanne@example.org"

    setup(function()
      sb = sandbox.start()
      c = s360.new{ url = sb.url .. INSTIT:lower(), institution = INSTIT, operator = INSTIT .. "_B2C",
                    password = PASSWORD, protocol = protocol, timeout = 10, retries = 0,
                    rate_limit = false }   -- pacing is tested with a fake clock in s360_cache_spec
    end)

    teardown(function()
      if sb then sb:stop() end
    end)

    -- A vendor failure: the sandbox's statusCode and statusDetail.
    local function vendor_failure(code, r, err)
      assert.is_nil(r)
      assert.is_table(err)
      assert.equal("vendor", err.kind, tostring(err))
      if code then assert.equal(code, err.code, tostring(err)) end
      assert.is_string(err.message)
      assert.is_false(err.retryable)
    end

    it("reads the four static lists, and a wrong password is refused", function()
      local types = assert(c:getStructureTypes())
      local criteria = assert(c:getAvailableContactCriteria())
      local auths = assert(c:get_available_authorizations())
      local numbers = assert(c:getAvailableAdmnistrativeNumbers())
      local function codes(list)
        local out = {}
        for _, x in ipairs(list) do out[x.code] = x end
        return out
      end
      assert.is_table(codes(types.structureTypes).COMPANY)
      assert.is_table(codes(criteria.contactCriteria).NEWSTHEA)
      local news = codes(auths.authorizations).NEWS
      assert.is_table(news)
      assert.equal("number", type(news.id))
      assert.is_string(news.name.translations[1].value)
      assert.is_table(codes(numbers.administrativeNumbers).SIRET)

      local bad = s360.new{ url = sb.url .. INSTIT:lower(), institution = INSTIT, operator = INSTIT .. "_B2C",
                            password = "not-the-secret", protocol = protocol, cache = false }
      for _, m in ipairs { "getStructureTypes", "getAvailableContactCriteria", "getAvailableAutorizations",
                           "getAvailableAdmnistrativeNumbers" } do
        local r, err = bad:call(m)
        assert.is_nil(r)
        -- the same error over both protocols (SOAP: a wsse fault in <detail>)
        assert.equal("http", err.kind, tostring(err))
        assert.equal(401, err.http_status)
        assert.is_false(err.retryable)
        assert.is_nil(tostring(err):find("not-the-secret", 1, true))
        if protocol == "soap" then assert.equal("FailedAuthentication", err.code) end
      end
    end)

    it("saveIndividualContactData creates, then refuses an unknown contact", function()
      local params = {
        individualContactData = { title = "MRS", firstname = "Jeanne", lastname = "Martin", email = email,
                                  birthDate = "1980-04-02", language = "fr" },
        addresses = { { main = true, street1 = "1 rue de l'Exemple", zipCode = "75001", town = "Paris",
                        countryCode = "FR" } },
        authorizations = { { authorizationCode = "PARTNERS", allowed = false } },
        createLogin = true, password = "first-pass-1",
      }
      local r = assert(c:saveIndividualContactData(params))
      assert.is_string(r.contactNumber)
      state.number = r.contactNumber
      -- the same save again (a retry after a lost answer) is the same contact
      assert.equal(r.contactNumber, assert(c:saveIndividualContactData(params)).contactNumber)
      assert.equal(1, #assert(c:searchContactByCriteria{ searchCriteria = { email = email } }).contacts)
      vendor_failure(nil, c:saveIndividualContactData{ contactNumber = "999999999",
                                                  individualContactData = { firstname = "X" } })
      vendor_failure("invalid", c:saveIndividualContactData{ contactNumber = state.number,
        authorizations = { { authorizationCode = "NOPE", allowed = true } } })
    end)

    it("getContactData reads the blocks asked for, and fails on an unknown contact", function()
      local r = assert(c:getContactData{ contactNumber = state.number,
                                         details = { "GENERAL", "ADDRESSES", "AUTHORIZATIONS" } })
      assert.equal(state.number, r.contactNumber)
      assert.equal("Jeanne", r.individualContact.firstname)
      assert.equal("Paris", r.addresses[1].town)
      assert.is_true(r.addresses[1].main)
      local partners
      for _, a in ipairs(r.authorizations) do if a.authorizationCode == "PARTNERS" then partners = a end end
      assert.is_false(partners.allowed)
      vendor_failure("notfound", c:getContactData{ contactNumber = "999999999" })
    end)

    it("searchContactByCriteria finds by e-mail, and refuses an empty search", function()
      local r = assert(c:searchContactByCriteria{ searchCriteria = { email = email } })
      assert.equal(1, #r.contacts)
      assert.equal(state.number, r.contacts[1].contactNumber)
      r = assert(c:searchContactByCriteria{ searchCriteria = { email = "nobody." .. email } })
      assert.same({}, r.contacts)
      vendor_failure("invalid", c:searchContactByCriteria{ searchCriteria = {} })
    end)

    it("saveStructureContactData creates a structure, and refuses an unknown type", function()
      local r = assert(c:saveStructureContactData{
        structureContactData = { name = "Compagnie " .. protocol, structureTypeCode = "COMPANY",
                                 email = "contact." .. email },
      })
      state.structure = r.contactNumber
      assert.is_string(state.structure)
      vendor_failure("invalid", c:saveStructureContactData{
        structureContactData = { name = "X", structureTypeCode = "NOT_A_TYPE" } })
    end)

    it("saveStructureAdministrativeNumbers saves the list, and refuses an unknown code", function()
      assert(c:saveStructureAdministrativeNumbers{ contactNumber = state.structure,
        administrativeNumbers = { { code = "SIRET", value = "73282932000074" } } })
      local r = assert(c:getContactData{ contactNumber = state.structure, details = { "GENERAL" } })
      assert.equal("SIRET", r.administrativeNumbers[1].code)
      assert.equal("73282932000074", r.administrativeNumbers[1].value)
      vendor_failure("invalid", c:saveStructureAdministrativeNumbers{ contactNumber = state.structure,
        administrativeNumbers = { { code = "NOPE", value = "1" } } })
    end)

    it("saveStructureMember adds a member, and refuses an unknown structure", function()
      local r = assert(c:saveStructureMember{ structureContactNumber = state.structure,
        memberContactNumber = state.number, role = "MEMBER", ["function"] = "Comptable" })
      assert.is_string(r.contactNumber)
      vendor_failure("notfound", c:saveStructureMember{ structureContactNumber = "999999999",
        memberContactNumber = state.number, role = "MEMBER" })
    end)

    it("listStructureMembersByCriteria lists it, and refuses an empty criterion", function()
      local r = assert(c:listStructureMembersByCriteria{
        memberSearchCriteria = { structureContactNumber = state.structure } })
      assert.equal(1, #r.members)
      assert.equal(state.number, r.members[1].memberContactNumber)
      assert.equal("MEMBER", r.members[1].role)
      vendor_failure("invalid", c:listStructureMembersByCriteria{ memberSearchCriteria = {} })
    end)

    it("deleteStructureMember removes it, succeeds again (idempotent), and refuses an unknown structure", function()
      assert(c:deleteStructureMember{ structureContactNumber = state.structure, memberContactNumber = state.number })
      local r = assert(c:listStructureMembersByCriteria{
        memberSearchCriteria = { structureContactNumber = state.structure } })
      assert.same({}, r.members)
      -- seed l.24: "all those methods are transactionnal and idempotent"
      assert(c:deleteStructureMember{ structureContactNumber = state.structure, memberContactNumber = state.number })
      vendor_failure("notfound", c:deleteStructureMember{ structureContactNumber = "999999999",
                                              memberContactNumber = state.number })
    end)

    it("authenticate gives a remember-me pair that makes a cookie, and refuses a wrong password", function()
      local r = assert(c:authenticate{ contactAuthenticationData = {
        login = email, password = "first-pass-1", rememberMe = true, pointOfSalesId = 1001 } })
      assert.equal(state.number, r.contactNumber)
      assert.is_string(r.identification)
      assert.is_string(r.uniqueToken)
      local header, name = assert(c:remember_me_cookie(r, { id = 1001, saleChannelCode = "B2C" }))
      assert.equal("stx_rememberMe_" .. INSTIT .. "_B2C", name)
      local back = assert(s360.cookie.parse(header))
      assert.equal(r.uniqueToken, back.token)
      -- the pair logs on once, and is then rotated
      local again = assert(c:authenticate{ contactAuthenticationData = {
        identification = back.rememberUniqueId, uniqueToken = back.token } })
      assert.equal(state.number, again.contactNumber)
      vendor_failure("denied", c:authenticate{ contactAuthenticationData = {
        identification = back.rememberUniqueId, uniqueToken = back.token } })
      local r2, err = c:authenticate{ contactAuthenticationData = { login = email, password = "wrong-pass-1" } }
      vendor_failure("denied", r2, err)
      assert.is_nil(tostring(err):find("wrong-pass-1", 1, true))
    end)

    it("listAuthorizedPOS lists the points of sales, and refuses a wrong password", function()
      local r = assert(c:listAuthorizedPOS{ contactAuthenticationData = { login = email, password = "first-pass-1" } })
      local ids = {}
      for _, p in ipairs(r.pointOfSales) do ids[p.id] = p end
      assert.is_table(ids[1001])
      assert.equal("B2C", ids[1001].saleChannelCode)
      vendor_failure("denied", c:list_authorized_pos{ contactAuthenticationData = { login = email, password = "nope-nope-1" } })
    end)

    it("changePassword changes it, and refuses a wrong current password", function()
      assert(c:changePassword{ contactNumber = state.number, currentPassword = "first-pass-1",
                               newPassword = "second-pass-2" })
      assert(c:authenticate{ contactAuthenticationData = { login = email, password = "second-pass-2" } })
      local r, err = c:changePassword{ contactNumber = state.number, currentPassword = "first-pass-1",
                                       newPassword = "third-pass-3" }
      vendor_failure("denied", r, err)
      assert.is_nil(tostring(err):find("first-pass-1", 1, true))
    end)

    it("recoverPassword accepts a known e-mail, and refuses an unknown one", function()
      assert(c:recoverPassword{ email = email })
      vendor_failure("notfound", c:recoverPassword{ email = "nobody." .. email })
      vendor_failure("invalid", c:recoverPassword{ email = email, pointOfSalesId = 987654 })
      -- the old password no longer works
      vendor_failure("denied", c:authenticate{ contactAuthenticationData = { login = email, password = "second-pass-2" } })
    end)

    it("addLink links a provider user, and refuses an unknown contact", function()
      assert(c:addLink{ contactNumber = state.number, provider = "GOOGLE", providerUserReference = "g-" .. protocol })
      local r = assert(c:authenticate{ contactAuthenticationData = {
        socialLogin = true, identityProvider = "GOOGLE", providerUserReference = "g-" .. protocol } })
      assert.equal(state.number, r.contactNumber)
      vendor_failure("notfound", c:addLink{ contactNumber = "999999999", provider = "GOOGLE", providerUserReference = "g2" })
    end)

    it("createUser creates a linked contact, and refuses a provider user already linked", function()
      assert(c:createUser{ signUpData = { email = "fb." .. email, firstname = "Paul", lastname = "Durand",
                                          gender = "MALE", lang = "fr" },
                           provider = "FACEBOOK", providerUserReference = "fb-" .. protocol })
      local r = assert(c:authenticate{ contactAuthenticationData = {
        socialLogin = true, identityProvider = "FACEBOOK", providerUserReference = "fb-" .. protocol } })
      assert.is_string(r.contactNumber)
      vendor_failure("conflict", c:createUser{ signUpData = { email = "x." .. email }, provider = "FACEBOOK",
                                   providerUserReference = "fb-" .. protocol })
    end)

    it("removeLink unlinks, succeeds again (idempotent), and refuses an unknown contact", function()
      assert(c:removeLink{ contactNumber = state.number, provider = "GOOGLE", providerUserReference = "g-" .. protocol })
      vendor_failure(nil, c:authenticate{ contactAuthenticationData = {
        socialLogin = true, identityProvider = "GOOGLE", providerUserReference = "g-" .. protocol } })
      assert(c:removeLink{ contactNumber = state.number, provider = "GOOGLE", providerUserReference = "g-" .. protocol })
      vendor_failure("notfound", c:removeLink{ contactNumber = "999999999", provider = "GOOGLE",
                                   providerUserReference = "g-" .. protocol })
    end)

    it("reports an unknown institution as an HTTP error", function()
      local other = s360.new{ url = sb.url .. "nowhere", institution = "NOWHERE", operator = "NOWHERE_B2C",
                              password = PASSWORD, protocol = protocol, cache = false }
      local r, err = other:getStructureTypes()
      assert.is_nil(r)
      assert.equal("http", err.kind)
      assert.equal(404, err.http_status)
    end)
  end)
end

describe("S-360 client against a sandbox that enforces a low call-rate limit", function()
  local sb
  setup(function() sb = sandbox.start{ args = { "--s360-rate-limit", "5" } } end)
  teardown(function() if sb then sb:stop() end end)

  for _, protocol in ipairs { "soap", "rest" } do
    it("reports the vendor's 509 as a retryable HTTP error over " .. protocol, function()
      local instit = protocol == "soap" and "DEMO" or "MOSA"
      local c = s360.new{ url = sb.url .. instit:lower(), institution = instit, operator = instit .. "_B2C",
                          password = PASSWORD, protocol = protocol, retries = 0, rate_limit = false, cache = false }
      for _ = 1, 5 do assert(c:getStructureTypes()) end
      local r, err = c:getStructureTypes()
      assert.is_nil(r)
      assert.equal("http", err.kind)
      assert.equal(509, err.http_status)
      assert.is_true(err.retryable)
      -- a 509 means nothing was done: even a method that is never repeated
      -- after an ambiguous failure (recoverPassword) is retried, with backoff
      local slept = 0
      local w = s360.new{ url = sb.url .. instit:lower(), institution = instit, operator = instit .. "_B2C",
                          password = PASSWORD, protocol = protocol, retries = 3, rate_limit = false,
                          sleep = function() slept = slept + 1 end }
      r, err = w:recoverPassword{ email = "nobody@example.org" }
      assert.is_nil(r)
      assert.equal(509, err.http_status)
      assert.equal(4, err.attempts)
      assert.equal(3, slept)
    end)
  end
end)
