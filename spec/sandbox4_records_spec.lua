-- Seed 004 on shared records against a real `billetterie sandbox` process:
-- relation levels of contacts and organismes share one id space (annex 4.5,
-- Num_id_unique), also in a file written by the previous version; an
-- invitation shows the contact's organisme (2.5.2.3 structure); an
-- organisme's date_modif follows ws_organisme_contacts (2.6.3.5); and
-- docs/sandbox.md says which pages are not served (chapter 3).
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox4_records_spec.lua

local sandbox = require "spec.support.sandbox"
local dbmod = require "billetterie.sandbox.db"
local services = require "billetterie.sandbox.services"
local contacts = require "billetterie.sandbox.contacts"
local lists = require "billetterie.sandbox.lists"
local transport = require "billetterie.transport"

local sb, DB
local LIST = 7

setup(function()
  DB = os.tmpname()
  local db = assert(dbmod.open(DB, services.schemas()))
  db:tx(function() lists.create(db, 677, { id_liste = LIST, titre_court = "Mécènes" }) end)
  db:close()
  sb = sandbox.start { db = DB }
end)
teardown(function()
  if sb then sb:stop() end
  os.remove(DB)
end)

local function client() return sb:client() end
local function token() return assert(client():call("ws_idsession")).jeton end

local n = 0
local function ccontact(extra)
  n = n + 1
  local p = { x_rsi_token = token(), id_formulaire = 1, v_nom = "LEROY", v_prenom = "Hugo",
    v_mail = ("fiche%d@exemple.fr"):format(n), v_passe = "Secret123" }
  for k, v in pairs(extra or {}) do p[k] = v end
  local msg, st = client():call("ws_ccontact", p)
  assert.is_table(msg, tostring(st))
  return msg.contact
end

local function create_org(extra)
  local p = { organisme = { intitule = "Compagnie du Quai", nature = "Association" } }
  for k, v in pairs(extra or {}) do p[k] = v end
  local msg, st = client():call("ws_organisme_creation", p)
  assert.is_table(msg, tostring(st))
  return msg.organisme
end

local function feed(p)
  local q = { ts = "2020-01-01T00:00:00" }
  for k, v in pairs(p or {}) do q[k] = v end
  local data, st = client():call("ws_liste_fiches_modifiees", q)
  assert.is_table(data, tostring(st))
  return data
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
    local db = assert(dbmod.open(DB, services.schemas()))
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
    local f = assert(io.open("docs/sandbox.md"))
    local doc = f:read("a")
    f:close()
    local section = assert(doc:match("\n## Not emulated[^\n]*\n(.-)\n## ") or doc:match("\n## Not emulated[^\n]*\n(.*)$"))
    assert.matches("print_eticket.php", section, 1, true)
    assert.matches("chapter 3", section, 1, true)
    for _, path in ipairs { "print_eticket.php?id_detail=1&cle=x", "catalogue_spectacle?filtre=1", "basket" } do
      local status = transport.curl:request { url = sb.url .. path, method = "GET", timeout = 10 }
      assert.equal(404, status, path)
    end
  end)
end)
