-- Seed 004 on request parameters against a real `billetterie sandbox`
-- process, with hand-written form bodies (the project's client never sends
-- these forms): array parameters sent with PHP's indexed keys (liste[0]=,
-- the seed's own example language) read like liste[] (spec 1.5, 2.3.1.2),
-- and filtre=0 of the catalogue services means "no date filter" (2.1.1.2).
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_form_params_spec.lua

local sandbox = require "spec.support.sandbox"
local contacts = require "billetterie.sandbox.contacts"
local lists = require "billetterie.sandbox.lists"
local transport = require "billetterie.transport"
local core = require "billetterie.core"
local cjson = require("cjson").new()

local WS = "x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677"

-- POST a form body as written. -> HTTP status, body text
local function post(sb, ws, body)
  local status, text, _, errkind, errmsg = transport.curl:request {
    url = sb.url .. ws, method = "POST", body = body, timeout = 10, connect_timeout = 5,
    headers = { "Content-Type: application/x-www-form-urlencoded" } }
  assert(not errkind, tostring(errkind) .. ": " .. tostring(errmsg))
  return status, text
end

-- POST, JSON answer. -> retour
local function call(sb, ws, body)
  local status, text = post(sb, ws, body)
  assert.equal(200, status)
  return cjson.decode(text).retour
end

describe("indexed array keys (liste[0]=...)", function()
  local sb, DB
  setup(function()
    DB = sandbox.seeded_db(function(db)
      lists.create(db, 677, { id_liste = 3, titre_court = "Jeune public" })
      lists.create(db, 677, { id_liste = 4, titre_court = "Danse" })
      contacts.create_option(db, 677, "code_envoi", { id = 11, code = "NL", label = "Lettre" })
      contacts.create_option(db, 677, "code_envoi", { id = 12, code = "SMS", label = "SMS" })
      contacts.create_option(db, 677, "interet", { id = 21, code = "THEATRE", label = "Théâtre" })
      contacts.create_option(db, 677, "interet", { id = 22, code = "DANSE", label = "Danse" })
    end)
    sb = sandbox.start { db = DB }
  end)
  teardown(function()
    if sb then sb:stop() end
    os.remove(DB)   -- the seeded file: start{ db = ... } leaves it
  end)

  local n = 0
  local function ccontact(extra)
    n = n + 1
    local jeton = call(sb, "ws_idsession", WS).message.jeton
    local mail = ("indexe%d@exemple.fr"):format(n)
    local body = ("x_rsi_token=%s&id_formulaire=1&v_nom=ROUX&v_prenom=Ana&v_mail=%s&v_passe=Secret123&%s")
      :format(jeton, core.form_escape(mail), extra)
    return call(sb, "ws_ccontact", body), mail
  end

  local function members(id_liste)
    local set = {}
    for _, m in ipairs(call(sb, "ws_cat_contacts_liste", WS .. "&id_liste=" .. id_liste).message) do
      set[m.contact.id] = true
    end
    return set
  end

  local function info(id)
    return call(sb, "ws_info_contact", WS .. "&id_contact=" .. id).message.contact
  end

  local function ticked(list)
    local out = {}
    for _, o in ipairs(list) do if o.checked then out[#out + 1] = o.id end end
    return out
  end

  it("puts the new contact in every list of liste[0], liste[1]", function()
    local r = ccontact("liste%5B0%5D=3&liste%5B1%5D=4")
    assert.equal(513, r.statut.code, r.detail)
    local id = r.message.contact.id_contact
    assert.is_true(members(3)[id])
    assert.is_true(members(4)[id])
  end)

  it("refuses an unknown list sent with an index, as with liste[] (code 4), and creates nothing", function()
    local r, mail = ccontact("liste%5B0%5D=3&liste%5B1%5D=999")
    assert.equal(4, r.statut.code)
    assert.matches("999", r.detail, 1, true)
    local jeton = call(sb, "ws_idsession", WS).message.jeton
    local login = call(sb, "ws_login", ("x_rsi_token=%s&web_ident=%s&web_passe=Secret123")
      :format(jeton, core.form_escape(mail)))
    assert.equal(504, login.statut.code) -- no account was made
    -- a key that is not an index is not a list item either
    assert.equal(4, ccontact("liste%5Bnews%5D=3").statut.code)
  end)

  it("reads code_envoi[0]= and interet[0]= like code_envoi[] and interet[]", function()
    local r = ccontact("code_envoi%5B0%5D=11&code_envoi%5B1%5D=12&interet%5B0%5D=DANSE")
    assert.equal(513, r.statut.code, r.detail)
    local id = ("%d"):format(r.message.contact.id_contact) -- cjson decodes numbers as floats (5.4: "5.0")
    local c = info(id)
    assert.same({ 11, 12 }, ticked(c.code_envoi))
    assert.same({ 22 }, ticked(c.interet))
    assert.equal(4, ccontact("code_envoi%5B0%5D=404").statut.code)
    -- ws_modification_contact: the indexed list is the whole selection
    local m = call(sb, "ws_modification_contact", WS .. "&id_contact=" .. id .. "&code_envoi%5B0%5D=12")
    assert.equal(508, m.statut.code)
    assert.same({ 12 }, ticked(info(id).code_envoi))
    -- liste_maj_*[id] stays a map keyed by option id
    m = call(sb, "ws_modification_contact", WS .. "&id_contact=" .. id
      .. "&maj_interet=1&liste_maj_interet%5B21%5D=2&liste_maj_interet%5B22%5D=3")
    assert.equal(508, m.statut.code)
    assert.same({ 21 }, ticked(info(id).interet))
  end)
end)

describe("filtre=0: no filter (2.1.1.2, 2.4.5.3)", function()
  local sb
  setup(function() sb = sandbox.start { args = { "--seed", "demo" } } end)
  teardown(function() if sb then sb:stop() end end)

  it("on ws_cat_spectacle and ws_programmation: the same document as without filtre", function()
    for _, ws in ipairs { "ws_cat_spectacle", "ws_programmation" } do
      local st0, all = post(sb, ws, WS)
      local st1, off = post(sb, ws, WS .. "&filtre=0")
      assert.equal(200, st0)
      assert.equal(200, st1)
      assert.matches("<SPECTACLE ", all, 1, true)
      assert.equal(all, off, ws)
    end
  end)

  it("on ws_historique_contact too; criteria still need filtre=1", function()
    local jeton = call(sb, "ws_idsession", WS).message.jeton
    local function historique(extra) return call(sb, "ws_historique_contact", "x_rsi_token=" .. jeton .. extra) end
    -- the anonymous token's answer (602), not a parameter refusal
    assert.equal(602, historique("").code)
    assert.equal(602, historique("&filtre=0").code)
    assert.equal(4, historique("&filtre=0&categorie=ABO").code)   -- the flat retour (2.4.5.4)
  end)

  it("still refuses dates without filtre=1, and other filtre values (code 4)", function()
    for _, body in ipairs { "&filtre=0&date_modif=20200101", "&date_modif=20200101", "&filtre=2" } do
      assert.equal(4, call(sb, "ws_cat_spectacle", WS .. body).statut.code, body)
    end
  end)
end)
