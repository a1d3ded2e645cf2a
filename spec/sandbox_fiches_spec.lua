-- Seed 004 on contacts' web accounts and shared records, against a real
-- `billetterie sandbox` process on a real SQLite file:
-- - ws_ccontact creates a contact that can log in but does not log it in
--   (2.3.1.1), and ws_suppression_compte removes the web account while the
--   fiche contact stays (2.3.6.1, 2.3.1.1), so every service still knows the
--   contact and the change feed (2.7.3) reports the change;
-- - relation levels of contacts and organismes share one id space (annex
--   4.5, Num_id_unique), also in a file written by the previous version; an
--   invitation shows the contact's organisme (2.5.2.3 structure); an
--   organisme's date_modif follows ws_organisme_contacts (2.6.3.5);
-- - docs/sandbox-contacts.md and docs/sandbox.md say what the sandbox does.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_fiches_spec.lua

local sandbox = require "spec.support.sandbox"
local util = require "spec.support.util"
local lists = require "billetterie.sandbox.lists"
local transport = require "billetterie.transport"
local vendor_code = util.vendor_code

-- Each outer describe starts its own sandbox on its own file.
local sb, DB

-- For the enclosing describe: a sandbox on a fresh file holding one list.
local function sandbox_with_list(id_liste, titre)
  setup(function()
    DB = sandbox.seeded_db(function(db) lists.create(db, 677, { id_liste = id_liste, titre_court = titre }) end)
    sb = sandbox.start { db = DB }
  end)
  teardown(function()
    if sb then sb:stop() end
    os.remove(DB)
  end)
end

-- with(base, extra) -> base, extra's fields added or replaced
local function with(base, extra)
  for k, v in pairs(extra or {}) do base[k] = v end
  return base
end

local function client(extra) return sb:client(extra) end
local function token(c) return assert((c or client()):call("ws_idsession")).jeton end

-- ws_ccontact with the parameters p. -> the new contact
local function create_contact(p)
  local msg, st = client():call("ws_ccontact", p)
  assert.is_table(msg, tostring(st))
  return msg.contact
end

local function feed(p)
  local data, st = client():call("ws_liste_fiches_modifiees", with({ ts = "2020-01-01T00:00:00" }, p))
  assert.is_table(data, tostring(st))
  return data
end

describe("web accounts", function()
  local LIST = 16
  sandbox_with_list(LIST, "Newsletter")

  local n = 0
  local function new_mail()
    n = n + 1
    return ("compte%d.%d@exemple.fr"):format(n, os.time())
  end

  local function ccontact(jeton, extra)
    local p = with({ x_rsi_token = jeton, id_formulaire = 1, v_nom = "MOREAU", v_prenom = "Inès",
      v_mail = new_mail(), v_passe = "Secret123", v_passec = "Secret123" }, extra)
    return create_contact(p), p
  end

  local function login(jeton, mail)
    return client():call("ws_login", { x_rsi_token = jeton, web_ident = mail, web_passe = "Secret123" })
  end

  local function status(jeton)
    return client():call("ws_status_session", { x_rsi_token = jeton })
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
      local db = sandbox.open_db(DB)
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
      local doc = assert(util.read_file("docs/sandbox-contacts.md"))
      assert.is_nil(doc:find("login false` after `ws_login`", 1, true))
      assert.truthy(doc:find("`ws_status_session` answers 604", 1, true))
    end)
  end)
end)

describe("shared records", function()
  local LIST = 7
  sandbox_with_list(LIST, "Mécènes")

  local n = 0
  local function ccontact(extra)
    n = n + 1
    return create_contact(with({ x_rsi_token = token(), id_formulaire = 1, v_nom = "LEROY", v_prenom = "Hugo",
      v_mail = ("fiche%d@exemple.fr"):format(n), v_passe = "Secret123" }, extra))
  end

  local function create_org(extra)
    local msg, st = client():call("ws_organisme_creation",
      with({ organisme = { intitule = "Compagnie du Quai", nature = "Association" } }, extra))
    assert.is_table(msg, tostring(st))
    return msg.organisme
  end

  -- Every relation level of the feed has its own Num_id_unique; both export
  -- forms agree. -> the levels
  local function assert_one_id_space()
    local levels = feed().liste_niveaux_relations
    local seen = {}
    for _, l in ipairs(levels) do
      assert.is_nil(seen[l.Num_id_unique], "Num_id_unique " .. tostring(l.Num_id_unique) .. " twice")
      seen[l.Num_id_unique] = true
    end
    local ids = feed { type_export = "liste_fiches" }.liste_niveaux_relations_id
    assert.equal(#levels, #ids)
    for _, id in ipairs(ids) do assert.is_true(seen[id]) end
    return levels
  end

  describe("relation levels (annex 4.5: one id space for Num_id_unique)", function()
    it("numbers the levels of contacts and organismes apart from each other", function()
      ccontact { Niveau_de_relations = { { Niveau_relation = "Abonné", checked = true } } }
      create_org { Niveau_de_relations = { { Niveau_relation = "Partenaire", checked = true } } }
      ccontact { Niveau_de_relations = { { Niveau_relation = "Mécène", checked = true } } }
      local levels = assert_one_id_space()
      assert.is_true(#levels >= 3)
    end)

    it("renumbers the colliding levels of a file written by the previous version", function()
      sb:stop()
      local db = sandbox.open_db(DB)
      local c = db:one("SELECT id_contact FROM contacts ORDER BY id_contact LIMIT 1").id_contact
      local o = db:one("SELECT id_organisme FROM organismes ORDER BY id_organisme LIMIT 1").id_organisme
      db:tx(function()
        -- the previous version numbered each table from 1
        db:exec("INSERT INTO contact_niveaux (id_unique, id_contact, niveau) VALUES (900, ?, 'Ancien')", c)
        db:exec("INSERT INTO organisme_niveaux (id, client, id_organisme, libelle) VALUES (900, 677, ?, 'Ancien')", o)
        db:journal(677, "contact", c, "update", os.time())
      end)
      db:close()
      sb = sandbox.start { db = DB }
      local levels = assert_one_id_space()
      local old = 0
      for _, l in ipairs(levels) do if l.Niveau_relation == "Ancien" then old = old + 1 end end
      assert.equal(2, old)
      -- and new levels keep clear of both tables
      create_org { Niveau_de_relations = { { Niveau_relation = "Nouveau", checked = true } } }
      ccontact { Niveau_de_relations = { { Niveau_relation = "Nouveau", checked = true } } }
      assert_one_id_space()
    end)
  end)

  describe("ws_cat_contacts_liste structure (2.5.2.3)", function()
    it("shows the organisme the invited contact is attached to, through that fiche lien", function()
      local alone = ccontact { liste = { LIST } }
      local member = ccontact { liste = { LIST } }
      local org = create_org { organisme = { intitule = "Les Amis du Théâtre", nature = "Association" } }
      local _, st = client():call("ws_organisme_contacts", { id_organisme = org.id_organisme,
        contacts = { { id_contact = member.id_contact, action_attachement = "attacher" } } })
      assert.equal(1115, st.code)
      local link
      for _, l in ipairs(feed().liste_liens) do
        if l.id_contact == member.id_contact and l.id_organisme == org.id_organisme then link = l end
      end
      assert.is_table(link)
      local by = {}
      for _, m in ipairs(assert(client():call("ws_cat_contacts_liste", { id_liste = LIST }))) do by[m.contact.id] = m end
      assert.same({ id = org.id_organisme, structure = "Les Amis du Théâtre" }, by[member.id_contact].structure)
      assert.equal(link.id, by[member.id_contact].clistru_id)
      -- a contact attached to no organisme: its own fiche lien, no structure
      assert.same({ id = 0, structure = "" }, by[alone.id_contact].structure)
      assert.equal(alone.id, by[alone.id_contact].clistru_id)
    end)
  end)

  describe("ws_organisme_contacts and date_modif (2.6.3.5)", function()
    it("dates the organisme when its links change, not when nothing changed", function()
      local org = create_org()
      assert.equal("", org.date_modif)
      local who = ccontact()
      local _, st = client():call("ws_organisme_contacts", { id_organisme = org.id_organisme,
        contacts = { { id_contact = who.id_contact, action_attachement = "attacher" } } })
      assert.equal(1115, st.code)
      local info = assert(client():call("ws_info_organisme", { id_organisme = org.id_organisme })).organisme
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", info.date_modif)
      -- an item in error changes nothing: date_modif of another organisme stays ""
      local other = create_org()
      client():call("ws_organisme_contacts", { id_organisme = other.id_organisme,
        contacts = { { id_contact = 987654, action_attachement = "attacher" } } })
      assert.equal("", assert(client():call("ws_info_organisme", { id_organisme = other.id_organisme }))
        .organisme.date_modif)
    end)
  end)

  describe("docs/sandbox.md, Not emulated (chapter 3 pages)", function()
    it("names the shop pages and print_eticket.php, which the sandbox answers 404", function()
      local doc = assert(util.read_file("docs/sandbox.md"))
      local section = assert(doc:match("\n## Not emulated[^\n]*\n(.-)\n## ") or doc:match("\n## Not emulated[^\n]*\n(.*)$"))
      assert.matches("print_eticket.php", section, 1, true)
      assert.matches("chapter 3", section, 1, true)
      for _, path in ipairs { "print_eticket.php?id_detail=1&cle=x", "catalogue_spectacle?filtre=1", "basket" } do
        local status = transport.curl:request { url = sb.url .. path, method = "GET", timeout = 10 }
        assert.equal(404, status, path)
      end
    end)
  end)
end)
