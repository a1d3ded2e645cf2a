-- Secrets never reach an error, its string, a kept payload or the client's
-- tables, in any of the forms an answer may echo them: as they are,
-- form-encoded, percent-encoded (%20, lower-case hex), XML-escaped or
-- JSON-escaped, and never cut in half by a shortened excerpt. Real HTTP
-- against a real server that echoes the request (spec/support/echo_server)
-- and the sandbox.
local billetterie = require "billetterie"
local s360 = require "billetterie.s360"
local cjson = require "cjson"
local core = require "billetterie.core"
local echo = require "spec.support.echo_server"
local sandbox = require "spec.support.sandbox"

-- Every encoding of a secret, computed here independently of error.lua.
local function forms(s)
  local function pct(x, space)
    return (x:gsub("[^%w%-%._~]", function(c)
      if c == " " and space then return space end
      return ("%%%02X"):format(c:byte())
    end))
  end
  local form = core.form_escape(s)
  local list = { s, form, (form:gsub("%%%x%x", string.lower)), (form:gsub("%+", "%%20")), pct(s), pct(s, "+"),
    (pct(s):gsub("%%%x%x", string.lower)),
    (s:gsub("[&<>\"']", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" })),
    (s:gsub("[&<>]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;" })),
    cjson.encode(s):sub(2, -2), (cjson.encode(s):sub(2, -2):gsub("\\/", "/")),
    (cjson.encode(s):sub(2, -2):gsub("\195\169", "\\u00E9")), (cjson.encode(s):sub(2, -2):gsub("\195\169", "\\u00e9")) }
  return list
end

-- Every string inside v (tables walked, tostring of error values too).
local function strings(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "table" then
    if seen[v] then return out end
    seen[v] = true
    for k, x in pairs(v) do strings(k, out, seen); strings(x, out, seen) end
    local mt = getmetatable(v)
    if mt and mt.__tostring then out[#out + 1] = tostring(v) end
  elseif type(v) == "string" then
    out[#out + 1] = v
  end
  return out
end

-- Fails when a secret, in any form, or the first 6 bytes of one (what a cut
-- would leave) shows in v.
local function assert_clean(v, secrets, what)
  for _, text in ipairs(strings(v)) do
    for _, s in ipairs(secrets) do
      for _, f in ipairs(forms(s)) do
        assert.is_nil(text:find(f, 1, true), ("%s: %q shows as %q in: %s"):format(what, s, f, text))
        local head = f:sub(1, 6)
        assert.is_nil(text:find(head, 1, true), ("%s: the start %q of %q shows in: %s"):format(what, head, f, text))
      end
    end
  end
end

local PASSWORDS = { 'Pa&ss/w+rd=9"é x', "Mot de passe 2024", [[S3&<cr"t/x'y]] }
local MODES = { "html500", "html200", "text502", "xmlesc", "pct20", "pctlower", "badjson", "jsonu" }
for pad = 40, 75, 5 do MODES[#MODES + 1] = "html500-" .. pad end

local srv, sb
setup(function()
  srv = echo.start{ bodies = {
    modcontactko = { body = '{"retour":{"message":{"contact":{"name":"X","web_identifiant":"a@b.c",'
      .. '"web_passe":"Clear-Pass-99"}},"statut":{"code":505,"traitement":"ko","message":"champ vide"}}}' },
    echoedko = { body = '{"retour":{"message":{"contact":{"note":"typed Echo-Pass-77 here"}},'
      .. '"statut":{"code":505,"traitement":"ko","message":"champ vide"}}}' },
  } }
  sb = sandbox.start()
end)
teardown(function()
  if srv then srv:stop() end
  if sb then sb:stop() end
end)

describe("secrets in errors", function()
  it("never show an echoed client password or api key, in any encoding, whole or cut", function()
    for _, pw in ipairs(PASSWORDS) do
      for _, mode in ipairs(MODES) do
        local url = srv.url .. mode .. "/"
        local c = billetterie.new{ url = url, login = "xrsitest", password = pw, client_id = 677, retries = 0,
                                   api_url = url, api_login = "WSCE", api_key = pw }
        local r, err = c:idsession()
        assert.is_nil(r)
        assert_clean(err, { pw }, mode .. " POST")
        r, err = c:liste_fiches_modifiees{ ts = "2024-01-01T00:00:00" }   -- GET: the key in the query
        assert.is_nil(r)
        assert_clean(err, { pw }, mode .. " GET")
      end
    end
  end)

  it("never show a contact password or a session token given as a parameter", function()
    local token = ("A1"):rep(16)
    for _, pw in ipairs(PASSWORDS) do
      for _, mode in ipairs(MODES) do
        local c = billetterie.new{ url = srv.url .. mode .. "/", login = "xrsitest", password = "ws-password",
                                   client_id = 677, retries = 0 }
        local r, err = c:call("ws_login", { x_rsi_token = token, web_ident = "jean@example.fr", web_passe = pw })
        assert.is_nil(r)
        assert_clean(err, { pw, token, "ws-password" }, mode .. " ws_login")
      end
    end
  end)

  it("never show the S-360 operator password or a contact password, SOAP fault text included", function()
    for _, pw in ipairs(PASSWORDS) do
      for _, proto in ipairs{ "soap", "rest" } do
        for _, mode in ipairs{ "html500", "text502", "soapfault", "xmlesc", "html500-60", "soapfault-300" } do
          local c = s360.new{ url = srv.url .. mode, institution = "DEMO", operator = "DEMO_B2C", password = pw,
                              protocol = proto, retries = 0, rate_limit = false, cache = false }
          local contact_pw = "Zq9&Pw<1 x"
          local r, err = c:authenticate{ contactAuthenticationData = { login = "x@y.z", password = contact_pw } }
          assert.is_nil(r)
          assert_clean(err, { pw, contact_pw }, proto .. " " .. mode)
          assert.is_true(#err.message <= 300, proto .. " " .. mode .. ": a fault text is shortened")
        end
      end
    end
  end)

  it("mask secret fields of a payload kept on an error", function()
    local c = billetterie.new{ url = srv.url .. "modcontactko/", login = "xrsitest", password = "ws-password",
                               client_id = 677, retries = 0 }
    local r, err = c:modification_contact{ id_contact = 1 }
    assert.is_nil(r)
    assert.equal(505, err.code)
    assert.equal("***", err.payload.contact.web_passe)
    assert.equal("a@b.c", err.payload.contact.web_identifiant)
    assert_clean(err, { "Clear-Pass-99" }, "payload")
  end)

  it("scrub the call's secrets from a kept payload, whatever the key holding them", function()
    local c = billetterie.new{ url = srv.url .. "echoedko/", login = "xrsitest", password = "ws-password",
                               client_id = 677, retries = 0 }
    local r, err = c:modification_contact{ id_contact = 1, v_passe = "Echo-Pass-77" }
    assert.is_nil(r)
    assert.equal("typed *** here", err.payload.contact.note)
    assert_clean(err, { "Echo-Pass-77" }, "payload")
  end)
end)

describe("secrets in the client's tables", function()
  it("leaves no URL (a GET's query holds the api key) nor body in c._request after a call", function()
    local key = "b1829f60af03c1e69a13ed44405ec898f912b63a"
    local c = sb:client{ retries = 0 }
    assert(c:liste_fiches_modifiees{ ts = "2024-01-01T00:00:00" })
    assert.is_nil(c._request.url)
    assert.is_nil(c._request.body)
    assert_clean(c, { key, "xrsimdp" }, "client after a GET")
    assert(c:idsession())
    assert_clean(c, { key, "xrsimdp" }, "client after a POST")
  end)
end)

describe("transport_ngx messages", function()
  -- A unit check of the messages transport_ngx builds from nginx's answers
  -- (a stand-in for OpenResty's ngx.location.capture: the real one runs in
  -- spec/openresty_spec.lua, under nginx).
  it("name the address without its query, where a GET carries the api key", function()
    local saved = rawget(_G, "ngx")
    local answers = {
      { status = 502, truncated = true, body = "", header = {} },
      { status = 504, truncated = true, body = "", header = {} },
      { status = 200, truncated = true, body = "{", header = {} },
    }
    local i = 0
    _G.ngx = { HTTP_GET = 1, HTTP_POST = 2, HTTP_PUT = 3, HTTP_DELETE = 4, HTTP_HEAD = 5,
      location = { capture = function(_, opts)
        -- the transport's probe of its location first: answered as the documented location does
        for _, v in pairs(opts and opts.vars or {}) do
          if v == "billetterie:probe" then return { status = 200, body = "billetterie-upstream", header = {} } end
        end
        i = i + 1
        return answers[i]
      end } }
    local ok, why = pcall(function()
      local t = require("billetterie.transport_ngx").new()
      for _ = 1, #answers do
        local _, _, _, errkind, errmsg = t:request{ method = "GET",
          url = "http://vendor.example/api/ws_liste_fiches_modifiees?x_rsi_api_key=K3y%2B%2F%3Dabc%26x&ts=1" }
        assert.is_string(errkind)
        assert.matches("http://vendor.example/api/ws_liste_fiches_modifiees", errmsg, 1, true)
        assert.is_nil(errmsg:find("?", 1, true), errmsg)
        assert.is_nil(errmsg:find("K3y", 1, true), errmsg)
      end
    end)
    _G.ngx = saved
    assert(ok, why)
  end)
end)
