-- spec/s360_cookie_spec.lua: the remember-me cookie against the seed's
-- layout (seed 000, "Remember me cookie"), and its parser.
local cookie = require "billetterie.s360.cookie"
local s360 = require "billetterie.s360"

local AUTH = { statusCode = "success", contactNumber = "4711", identification = "id-8f3a", uniqueToken = "tok-77e1c9" }
local POS = { id = 12, code = "WEB", saleChannelCode = "B2C" }

-- The seed's four lines with the placeholders filled, byte for byte.
local SEED_LAYOUT = 'pointOfSalesId = "12",\n'
  .. 'rememberUniqueId = "id-8f3a",\n'
  .. 'token = "tok-77e1c9",\n'
  .. 'virtualOperator = "MOSA_B2C"'

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

describe("remember-me cookie", function()
  it("is named stx_rememberMe_<InstitutionCode>_<saleChannelCode>, HttpOnly and Secure", function()
    local header, name, value = assert(cookie.build(AUTH, POS, { institution = "mosa" }))
    assert.equal("stx_rememberMe_MOSA_B2C", name)
    assert.equal(name .. "=" .. value, header:match("^[^;]+"))
    local attrs = {}
    for a in header:gmatch(";%s*([^;]+)") do attrs[a:match("^[^=]+")] = a end
    assert.is_not_nil(attrs.HttpOnly)
    assert.is_not_nil(attrs.Secure)
    assert.equal("Path=/", attrs.Path)
    assert.equal("Max-Age=2592000", attrs["Max-Age"])
  end)

  it("carries the seed's layout exactly, percent-encoded for the header", function()
    local _, _, value = assert(cookie.build(AUTH, POS, { institution = "MOSA" }))
    assert.equal(SEED_LAYOUT, unescape(value))
    -- nothing a Set-Cookie header cannot carry
    assert.is_nil(value:find('[%s",;\\]'))
    assert.is_nil(value:find("%c"))
  end)

  it("offers the compact one-line form, raw or encoded", function()
    local _, _, raw = assert(cookie.build(AUTH, POS, { institution = "MOSA", layout = "compact", encode = "raw" }))
    assert.equal('pointOfSalesId="12",rememberUniqueId="id-8f3a",token="tok-77e1c9",virtualOperator="MOSA_B2C"', raw)
    local _, _, enc = assert(cookie.build(AUTH, POS, { institution = "MOSA", layout = "compact" }))
    assert.equal(raw, unescape(enc))
    assert.has_error(function() cookie.build(AUTH, POS, { institution = "MOSA", encode = "raw" }) end)
  end)

  it("takes the point of sales as an id with a channel, and optional attributes", function()
    local header, name = assert(cookie.build(AUTH, 12, { institution = "DEMO", sale_channel = "B2B",
      domain = ".example.org", max_age = false, same_site = "Lax", path = "/shop" }))
    assert.equal("stx_rememberMe_DEMO_B2B", name)
    assert.truthy(header:find("; Domain=.example.org", 1, true))
    assert.truthy(header:find("; SameSite=Lax", 1, true))
    assert.truthy(header:find("; Path=/shop", 1, true))
    assert.is_nil(header:find("Max-Age", 1, true))
  end)

  it("refuses an authenticate result without the remember-me pair", function()
    local h, err = cookie.build({ statusCode = "success", contactNumber = "1" }, POS, { institution = "MOSA" })
    assert.is_nil(h)
    assert.equal("invalid_param", err.kind)   -- an error value, as every public failure
    assert.truthy(err.message:find("rememberMe", 1, true))
    h, err = cookie.build({ identification = 'a"b', uniqueToken = "t" }, POS, { institution = "MOSA" })
    assert.is_nil(h)
    assert.equal("invalid_param", err.kind)
    h, err = cookie.build(AUTH, { id = 1 }, { institution = "MOSA" })
    assert.is_nil(h)
    assert.truthy(err.message:find("channel"))
    h = cookie.build(AUTH, POS, {})
    assert.is_nil(h)
  end)

  it("parses back what it builds, in every form", function()
    for _, o in ipairs {
      { institution = "MOSA" }, { institution = "MOSA", layout = "compact" },
      { institution = "MOSA", layout = "compact", encode = "raw" },
    } do
      local header = assert(cookie.build(AUTH, POS, o))
      local c = assert(cookie.parse(header))
      assert.equal("stx_rememberMe_MOSA_B2C", c.name)
      assert.equal("12", c.pointOfSalesId)
      assert.equal("id-8f3a", c.rememberUniqueId)
      assert.equal("tok-77e1c9", c.token)
      assert.equal("MOSA_B2C", c.virtualOperator)
      assert.equal("MOSA", c.institution)
      assert.equal("B2C", c.sale_channel)
      assert.is_true(c.attributes.HttpOnly)
      assert.is_true(c.attributes.Secure)
    end
  end)

  it("parses the raw seed layout, a Cookie request header and a bare value", function()
    local c = assert(cookie.parse(SEED_LAYOUT))
    assert.equal("tok-77e1c9", c.token)
    assert.equal("stx_rememberMe_MOSA_B2C", c.name)
    local _, name, value = cookie.build(AUTH, POS, { institution = "MOSA" })
    c = assert(cookie.parse("Cookie: session=abc; " .. name .. "=" .. value .. "; lang=fr"))
    assert.equal("id-8f3a", c.rememberUniqueId)
  end)

  it("rejects a cookie missing a pair or whose name and operator disagree", function()
    local c, err = cookie.parse('pointOfSalesId = "1", token = "t"')
    assert.is_nil(c)
    assert.equal("invalid_param", err.kind)
    assert.truthy(err.message:find("rememberUniqueId"))
    c, err = cookie.parse('stx_rememberMe_CUBE_B2C=' .. SEED_LAYOUT:gsub("\n", ""))
    assert.is_nil(c)
    assert.equal("invalid_param", err.kind)
  end)

  -- Failed before: build raised "auth must be the authenticate result",
  -- parse(nil) "cookie.parse needs a string", and a Cookie header without
  -- the cookie read "has no pointOfSalesId".
  it("gives nil, err for the ordinary failures of a request handler", function()
    for _, auth in ipairs{ false, { statusCode = "failure", statusDetail = "denied" } } do
      local h, err = cookie.build(auth, POS, { institution = "MOSA" })
      assert.is_nil(h)
      assert.equal("invalid_param", err.kind)
      assert.is_false(err.retryable)
    end
    local h, err = cookie.build(nil, POS, { institution = "MOSA" })
    assert.is_nil(h)
    assert.matches("no authenticate result", err.message, 1, true)
    -- a type no authenticate returns is a programmer's mistake
    assert.has_error(function() cookie.build("tok", POS, { institution = "MOSA" }) end)
    local c
    c, err = cookie.parse(nil)
    assert.is_nil(c)
    assert.equal("invalid_param", err.kind)
    assert.matches("no cookie", err.message, 1, true)
    for _, header in ipairs{ "session=abc; lang=fr", "Cookie: session=abc", "", "csrftoken=abc; lang=fr",
                             "token=abc; lang=fr", "Cookie: token=abc" } do
      c, err = cookie.parse(header)
      assert.is_nil(c)
      assert.matches("no remember-me cookie", err.message, 1, true)
      assert.is_nil(err.message:find("pointOfSalesId", 1, true))
    end
    -- a visitor's long header (read cookie by cookie, in one pass) and one
    -- past what nginx would pass
    c, err = cookie.parse("Cookie: x=" .. ("A"):rep(8000) .. "; y=" .. ("A"):rep(8000))
    assert.matches("no remember-me cookie", err.message, 1, true)
    c, err = cookie.parse(("stx_rememberMe"):rep(3000))
    assert.is_nil(c)
    assert.matches("too long", err.message, 1, true)
    -- header names in any case, a space before the colon, folded values,
    -- a quoted value: the cookie is read (each an earlier parser's form)
    local set = assert(cookie.build(AUTH, POS, { institution = "MOSA" }))
    local name, value = set:match("^([^=]+)=([^;]*)")
    for _, form in ipairs{ "SET-COOKIE: " .. set, "Set-Cookie : " .. set, "COOKIE: a=1; " .. name .. "=" .. value,
                           "a=1, " .. name .. "=" .. value, "a=b; Path=/, " .. set, name .. '="' .. value .. '"',
                           set .. "; x" .. (" "):rep(8000) .. "y" } do
      local got = cookie.parse(form)
      assert.is_table(got, form:sub(1, 60))
      assert.equal("12", got.pointOfSalesId)
    end
    -- present but damaged: not the same as absent
    c, err = cookie.parse("stx_rememberMe_DEMO_B2C=abc")
    assert.is_nil(c)
    assert.matches("damaged", err.message, 1, true)
    assert.has_error(function() cookie.parse(42) end)
  end)

  it("is not built after a failed authenticate, against the sandbox", function()
    local sb = require("spec.support.sandbox").start{ args = { "--seed", "demo", "--s360-rate-limit", "0" } }
    local ok, failure = pcall(function()
      local c = s360.new{ url = sb.url .. "mosa", institution = "MOSA", operator = "MOSA_B2C",
                          password = "s360-sandbox-secret", retries = 0 }
      local auth, aerr = c:authenticate{ contactAuthenticationData = { login = "lucas.bernard@example.org",
        password = "Wrong-Pass-2024!", rememberMe = true, pointOfSalesId = 1001 } }
      assert.is_nil(auth)
      assert.is_table(aerr)
      local h, err = c:remember_me_cookie(auth, 1001)
      assert.is_nil(h)
      assert.equal("invalid_param", err.kind)
      -- the right password: the cookie, read back as a Cookie header
      auth = assert(c:authenticate{ contactAuthenticationData = { login = "lucas.bernard@example.org",
        password = "Garrigues-2024!", rememberMe = true, pointOfSalesId = 1001 } })
      local _, name, value = assert(c:remember_me_cookie(auth, 1001))
      local read = assert(cookie.parse("lang=fr; " .. name .. "=" .. value))
      assert.equal(auth.uniqueToken, read.token)
    end)
    sb:stop()
    assert(ok, failure)
  end)

  it("is built by a client from its institution", function()
    local c = s360.new{ institution = "mosa", environment = "demo", operator = "MOSA_B2C", password = "secret-1" }
    local header, name = assert(c:remember_me_cookie(AUTH, POS))
    assert.equal("stx_rememberMe_MOSA_B2C", name)
    assert.truthy(header:find("HttpOnly"))
    local _, name2 = assert(c:remember_me_cookie(AUTH, 12))   -- channel from the operator MOSA_B2C
    assert.equal("stx_rememberMe_MOSA_B2C", name2)
  end)
end)
