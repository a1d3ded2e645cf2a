-- Seed 004 on web accounts against a real `billetterie sandbox` process:
-- ws_ccontact creates a contact that can log in but does not log it in
-- (2.3.1.1), and ws_suppression_compte removes the web account while the
-- fiche contact stays (2.3.6.1, 2.3.1.1), so every service still knows the
-- contact and the change feed (2.7.3) reports the change.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox4_account_spec.lua

local sandbox = require "spec.support.sandbox"
local dbmod = require "billetterie.sandbox.db"
local services = require "billetterie.sandbox.services"
local lists = require "billetterie.sandbox.lists"

local sb, DB
local LIST = 16

setup(function()
  DB = os.tmpname()
  local db = assert(dbmod.open(DB, services.schemas()))
  db:tx(function() lists.create(db, 677, { id_liste = LIST, titre_court = "Newsletter" }) end)
  db:close()
  sb = sandbox.start { db = DB }
end)
teardown(function()
  if sb then sb:stop() end
  os.remove(DB)
end)

local function client(extra) return sb:client(extra) end
local function token(c) return assert((c or client()):call("ws_idsession")).jeton end

local n = 0
local function new_mail()
  n = n + 1
  return ("compte%d.%d@exemple.fr"):format(n, os.time())
end

local function ccontact(jeton, extra)
  local p = { x_rsi_token = jeton, id_formulaire = 1, v_nom = "MOREAU", v_prenom = "Inès",
    v_mail = new_mail(), v_passe = "Secret123", v_passec = "Secret123" }
  for k, v in pairs(extra or {}) do p[k] = v end
  local msg, st = client():call("ws_ccontact", p)
  assert.is_table(msg, tostring(st))
  return msg.contact, p
end

local function login(jeton, mail)
  return client():call("ws_login", { x_rsi_token = jeton, web_ident = mail, web_passe = "Secret123" })
end

local function status(jeton)
  return client():call("ws_status_session", { x_rsi_token = jeton })
end

local function vendor_code(msg, err)
  assert.is_nil(msg)
  assert.equal("vendor", err.kind, tostring(err))
  return err.code
end

describe("ws_ccontact (2.3.1.1: the contact can log in, it is not logged in)", function()
  it("leaves the token anonymous: ws_login on it then succeeds (514, not 609)", function()
    local jeton = token()
    local created, sent = ccontact(jeton)
    local msg, st = status(jeton)
    assert.equal(603, st.code)
    assert.is_false(msg.login)
    assert.equal(602, vendor_code(client():call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 1 })))
    local who, lst = login(jeton, sent.v_mail)
    assert.is_table(who, tostring(lst))
    assert.equal(514, lst.code)
    assert.equal(created.id_contact, who.contact.id_contact)
    msg, st = status(jeton)
    assert.equal(604, st.code)
    assert.is_true(msg.login)
    assert.equal(created.id_contact, msg.contact.id_contact)
  end)

  it("leaves a token logged in as someone else on that person", function()
    local _, first = ccontact(token())
    local jeton = token()
    local me = assert(login(jeton, first.v_mail)).contact
    local other = ccontact(jeton)
    assert.are_not.equal(me.id_contact, other.id_contact)
    local msg = assert(status(jeton))
    assert.equal(me.id_contact, msg.contact.id_contact)
    local info = assert(client():call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 1 }))
    assert.equal(me.id_clistru, info.contact.id)
  end)
end)

describe("ws_suppression_compte (2.3.6.1: the web account goes, the fiche contact stays)", function()
  local function feed(p)
    local q = { ts = "2020-01-01T00:00:00" }
    for k, v in pairs(p or {}) do q[k] = v end
    local data, st = client():call("ws_liste_fiches_modifiees", q)
    assert.is_table(data, tostring(st))
    return data
  end

  it("ends the account everywhere a web account counts, and nowhere else", function()
    local jeton, other_tab = token(), token()
    local created, sent = ccontact(token(), { liste = { LIST } })
    local id = created.id_contact
    assert(login(jeton, sent.v_mail))
    assert(login(other_tab, sent.v_mail)) -- a second session of the same person
    local org = assert(client():call("ws_organisme_creation", { organisme = { intitule = "Théâtre du Port",
      nature = "Association" }, contacts = { { id_contact = id, action_attachement = "attacher" } } }))
    local org_id = org.organisme.id_organisme

    local _, st = client():call("ws_suppression_compte", { x_rsi_token = jeton })
    assert.equal(534, st.code)

    -- the account is gone: login, password change, both sessions
    assert.equal(504, vendor_code(login(token(), sent.v_mail)))
    local pwd = client { pwd_key = require("billetterie.sandbox.contacts").DEFAULT_PWD_KEY }
    assert.equal(503, vendor_code(pwd:call("ws_modification_pwd", { w_identifiant = sent.v_mail,
      v_passe = "Nouveau456" })))
    for _, t in ipairs { jeton, other_tab } do
      local msg, sst = status(t)
      assert.equal(603, sst.code)
      assert.is_false(msg.login)
    end
    -- the identifier is free again; the mail stays the fiche's (518)
    local msg, err = client():call("ws_ccontact", { x_rsi_token = token(), id_formulaire = 1, v_nom = "MOREAU",
      v_prenom = "Inès", v_mail = sent.v_mail, v_passe = "Secret123" })
    assert.equal(518, vendor_code(msg, err))
    assert.is_table((ccontact(token(), { w_identifiant = sent.v_mail })))

    -- the fiche contact stays, without its identifier
    local info, ist = client():call("ws_info_contact", { id_contact = id })
    assert.is_table(info, tostring(ist))
    assert.equal("MOREAU", info.contact.name)
    assert.equal(sent.v_mail, info.contact.mail)
    assert.equal("", info.contact.web_identifiant)
    local _, rst = client():call("ws_recap_achat", { id_contact = id, format = "tableau" })
    assert.equal(2, rst.code)
    local shown = false
    for _, l in ipairs(assert(client():call("ws_info_organisme", { id_organisme = org_id, get_contact = 1 }))
        .organisme.contacts) do
      shown = shown or l.id_contact == id
    end
    assert.is_true(shown)
    local member = false
    for _, m in ipairs(assert(client():call("ws_cat_contacts_liste", { id_liste = LIST }))) do
      member = member or m.contact.id == id
    end
    assert.is_true(member)
    -- the back-office services still reach the fiche
    assert.is_table((client():call("ws_modification_contact", { id_contact = id, v_ville = "Brest" })))

    -- the change feed reports it: the record, now without its identifier
    local found
    for _, c in ipairs(feed().liste_contacts) do if c.id_contact == id then found = c end end
    assert.is_table(found)
    assert.equal("", found.web_identifiant)
    assert.equal("Brest", found.ville)
    local ids = {}
    for _, x in ipairs(feed { type_export = "liste_contact" }.liste_contacts_id) do ids[x] = true end
    assert.is_true(ids[id])
  end)

  it("reads a file where the previous version only set deleted_at", function()
    sb:stop()
    local db = assert(dbmod.open(DB, services.schemas()))
    local row = db:one([[SELECT id_contact FROM contacts WHERE client = 677 AND deleted_at IS NULL
        AND ident IS NOT NULL ORDER BY id_contact DESC LIMIT 1]])
    db:tx(function()
      db:exec("UPDATE contacts SET deleted_at = 1700000000 WHERE id_contact = ?", row.id_contact)
    end)
    db:close()
    sb = sandbox.start { db = DB }
    local info, st = client():call("ws_info_contact", { id_contact = row.id_contact })
    assert.is_table(info, tostring(st))
    assert.equal("", info.contact.web_identifiant)
  end)
end)

describe("docs/sandbox-contacts.md on ws_status_session", function()
  it("says what the sandbox answers after ws_login (604, login true)", function()
    local f = assert(io.open("docs/sandbox-contacts.md"))
    local doc = f:read("a")
    f:close()
    assert.is_nil(doc:find("login false` after `ws_login`", 1, true))
    assert.truthy(doc:find("`ws_status_session` answers 604", 1, true))
  end)
end)
