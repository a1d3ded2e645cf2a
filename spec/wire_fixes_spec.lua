-- Fixes of the integrator review, over the wire against a real sandbox
-- (demo seed): maps sent keyed whatever their keys, id_contact refused with
-- a session token, one error for a dead session, deconnexion_session as
-- logout, no page link from a dead session, the table form of s:login.
-- Each request that left is read back from the sandbox's request journal.
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local cjson = require "cjson"

local PASSWORD = "Garrigues-2024!"   -- every demo contact's (seeds/demo.lua)
local CLAIRE = "claire.martin@example.org"

local sb
setup(function() sb = sandbox.start{ args = { "--seed", "demo" } } end)
teardown(function() if sb then sb:stop() end end)

local function curl(args)
  local p = assert(io.popen("curl -s " .. args))
  local out = p:read("*a")
  p:close()
  return out
end

local function clear_journal() curl("-X DELETE '" .. sb.url .. "_sandbox/requests'") end

-- the requests the sandbox received since the last clear_journal(), oldest first
local function journal()
  local rows = cjson.decode(curl("'" .. sb.url .. "_sandbox/requests'")).requests
  table.sort(rows, function(a, b) return (a.id or 0) < (b.id or 0) end)
  return rows
end

-- the journal's entries whose parameter name starts with prefix, "name=value"
local function sent(row, prefix)
  local out = {}
  for k, v in pairs(row.params) do
    if k:sub(1, #prefix) == prefix then out[#out + 1] = k .. "=" .. tostring(v) end
  end
  table.sort(out)
  return out
end

local function client(extra) return sb:client(extra) end

-- a session logged in as Claire, and her id_contact
local function claire(c)
  local s = assert((c or client()):session())
  local me = assert(s:login(CLAIRE, PASSWORD))
  return s, me.contact.id_contact
end

-- the ids of the options of a kind ticked on a contact's record (ws mode)
local function ticked(c, id, kind)
  local rec = assert(c:info_contact{ id_contact = id })
  local out = {}
  for _, o in ipairs(rec.contact[kind] or {}) do
    if o.checked == true or o.checked == 1 then out[#out + 1] = tonumber(o.id) end
  end
  table.sort(out)
  return out
end

describe("catalogue maps (liste_maj_*) on the wire", function()
  it("go keyed even when their keys are 1..n, and the sandbox applies them", function()
    local c = client()
    local _, id = claire(c)
    assert.same({}, ticked(c, id, "code_envoi"))
    clear_journal()
    -- { [1] = 2 } has the shape of an array: sent as liste_maj_code_envoi[]=2 it lost the id
    assert(c:modification_contact{ id_contact = id, maj_code_envoi = 1, liste_maj_code_envoi = { [1] = 2 } })
    assert(c:modification_contact{ id_contact = id, maj_code_envoi = 1, liste_maj_code_envoi = { 2, 2 } })
    local rows = journal()
    assert.equal(2, #rows)
    assert.same({ "liste_maj_code_envoi[1]=2" }, sent(rows[1], "liste_maj"))
    assert.same({ "liste_maj_code_envoi[1]=2", "liste_maj_code_envoi[2]=2" }, sent(rows[2], "liste_maj"))
    assert.same({ 1, 2 }, ticked(c, id, "code_envoi"))
    -- interests too (11..13 in the demo seed; 1 is no interest: the vendor's parameter error)
    assert(c:modification_contact{ id_contact = id, maj_interet = 1, liste_maj_interet = { [11] = 2, [12] = 2 } })
    clear_journal()
    local none, err = c:modification_contact{ id_contact = id, maj_interet = 1, liste_maj_interet = { [1] = 3 } }
    assert.is_nil(none)
    assert.same({ "vendor", 4 }, { err.kind, err.code })
    assert.same({ "liste_maj_interet[1]=3" }, sent(journal()[1], "liste_maj"))
    assert.same({ 11, 12 }, ticked(c, id, "interet"))
  end)

  it("are refused by the sandbox when sent without their key, and nothing changes", function()
    local c = client()
    local _, id = claire(c)
    local before = ticked(c, id, "code_envoi")
    for _, form in ipairs{ "liste_maj_code_envoi%5B%5D=3", "liste_maj_code_envoi=3" } do
      local body = ("x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677&id_contact=%d"
        .. "&maj_code_envoi=1&%s&liste_maj_code_envoi%%5B2%%5D=3"):format(id, form)
      local answer = cjson.decode(curl(("--data '%s' '%sws_modification_contact'"):format(body, sb.url)))
      assert.equal(4, answer.retour.statut.code, form)
      assert.equal("ko", answer.retour.statut.traitement)
      assert.same(before, ticked(c, id, "code_envoi"))
    end
  end)
end)

describe("id_contact with a session token", function()
  it("is refused before sending; the client with the web-service account reaches that contact", function()
    local c = client()
    local s, mine = claire(c)
    local other = mine == 1 and 2 or 1
    local name = assert(c:info_contact{ id_contact = other }).contact.name
    clear_journal()
    local given = { modification_contact = { id_contact = other, name = "CHANGED" },
                    info_contact = { id_contact = other } }
    for method, params in pairs(given) do
      local msg, err = s[method](s, params)
      assert.is_nil(msg)
      assert.same({ "invalid_param", "id_contact" }, { err.kind, err.param })
      assert.matches("session's contact", err.message, 1, true)
      assert.matches("c:" .. method, err.message, 1, true)
    end
    assert.equal(0, #journal())   -- nothing left the machine
    assert.equal(name, assert(c:info_contact{ id_contact = other }).contact.name)
    assert(c:modification_contact{ id_contact = other, name = "AUTRE" })
    assert.equal("AUTRE", assert(c:info_contact{ id_contact = other }).contact.name)
    assert(c:modification_contact{ id_contact = other, name = name })
    -- the session's own contact without id_contact still works
    assert.equal(mine, assert(s:info_contact{}).contact.id_contact or mine)
  end)
end)

-- the error of a session closed or expired on this side
local function assert_dead(msg, err, what)
  assert.is_nil(msg)
  assert.same({ "vendor", 605, false, true }, { err.kind, err.code, err.retryable, err.is_local })
  assert.matches(what, err.message, 1, true)
  assert.not_matches("%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x%x", tostring(err))
end

describe("a dead session", function()
  it("fails locally with the vendor's kind and code (605), err.is_local set, after logout", function()
    local c = client()
    local s = claire(c)
    assert(s:logout())
    clear_journal()
    local msg, err = s:info_contact{}
    assert_dead(msg, err, "closed")
    assert_dead(select(1, s:status()), select(2, s:status()), "closed")
    assert.equal(0, #journal())
    -- the vendor's own answer for that token: the same kind and code, not local
    local _, vendor = c:call("ws_status_session", { x_rsi_token = s.token })
    assert.same({ "vendor", 605 }, { vendor.kind, vendor.code })
    assert.is_nil(vendor.is_local)
  end)

  it("fails locally the same way once its temps_restant elapsed", function()
    local now = os.time()
    local c = client{ clock = function() return now end }
    local s = assert(c:session())
    now = now + s:remaining() + 1
    clear_journal()
    local msg, err = s:historique_contact{ filtre = 1 }
    assert_dead(msg, err, "expired")
    assert.equal(0, #journal())
  end)

  it("gives no page link (the same error), while a live one does", function()
    local c = client()
    local s = claire(c)
    local link = assert(s:page("basket"))
    assert.matches("x_rsi_token=" .. s.token, link, 1, true)
    assert(s:logout())
    local url, err = s:page("basket")
    assert_dead(url, err, "closed")
    local now = os.time()
    local s2 = assert(client{ clock = function() return now end }:session())
    now = now + s2:remaining() + 1
    assert_dead(select(1, s2:page("basket")), select(2, s2:page("basket")), "expired")
  end)
end)

describe("s:deconnexion_session{}", function()
  it("closes the session as s:logout() does", function()
    local c = client()
    local s = claire(c)
    local _, statut = assert(s:deconnexion_session{})
    assert.equal(611, statut.code)
    assert.is_true(s.closed)
    assert.is_true(s.logged_out)
    assert.equal(0, s:remaining())
    assert.matches("closed", tostring(s), 1, true)
    local msg, err = s:info_contact{}
    assert_dead(msg, err, "closed")
    assert_dead(select(1, s:page("basket")), select(2, s:page("basket")), "closed")
    assert_dead(select(1, s:logout()), select(2, s:logout()), "closed")
    -- the vendor closed it too
    local _, gone = c:call("ws_status_session", { x_rsi_token = s.token })
    assert.same({ "vendor", 605 }, { gone.kind, gone.code })
  end)

  it("checks its parameters before closing anything", function()
    local s = assert(client():session())
    clear_journal()
    local msg, err = s:deconnexion_session{ bogus = 1 }
    assert.is_nil(msg)
    assert.same({ "invalid_param", "bogus" }, { err.kind, err.param })
    assert.is_nil(s.closed)
    assert.equal(0, #journal())
    assert(s:deconnexion_session())
    assert.is_true(s.logged_out)
  end)

  it("is the logout when called by name too, s:call(\"ws_deconnexion_session\")", function()
    local s = claire(client())
    assert(s:call("ws_deconnexion_session"))
    assert.is_true(s.closed)
    assert.is_true(s.logged_out)
    assert.equal(0, s:remaining())
    clear_journal()
    assert_dead(select(1, s:info_contact{}), select(2, s:info_contact{}), "closed")
    assert.equal(0, #journal())
  end)

  it("raises on bad call options at the caller's line, and closes nothing", function()
    local s = assert(client():session())
    clear_journal()
    for _, f in ipairs {
      function() local r = s:logout{ bogus = 1 }; return r end,
      function() local r = s:deconnexion_session({}, { retries = -1 }); return r end,
      function() local r = s:call("ws_deconnexion_session", nil, "fast"); return r end,
    } do
      local ok, err = pcall(f)
      assert.is_false(ok)
      assert.matches("wire_fixes_spec.lua:%d+: ", err)
      assert.is_nil(s.closed)
    end
    assert.equal(0, #journal())
    assert(s:logout())
  end)
end)

describe("s:login", function()
  it("takes the table form too, checked like any call", function()
    local c = client()
    local s = assert(c:session())
    local me = assert(s:login{ web_ident = CLAIRE, web_passe = PASSWORD })
    assert.equal("MARTIN", me.contact.name)
    local s2 = assert(c:session())
    clear_journal()
    local msg, err = s2:login{ web_ident = CLAIRE }
    assert.is_nil(msg)
    assert.same({ "invalid_param", "web_passe" }, { err.kind, err.param })
    assert.equal(0, #journal())
    assert.has_error(function() s2:login(CLAIRE) end,
      "s:login needs the identifier and the password as strings (s:login(ident, password) or "
      .. "s:login{ web_ident = ident, web_passe = password })")
    s:logout(); s2:logout()
  end)
end)
