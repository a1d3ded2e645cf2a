-- Spec 2.6 against the real sandbox process through the project's client:
-- ws_organisme_modification (2.6.3), ws_organisme_contacts (2.6.4, every
-- code), the contacts of ws_organisme_creation and ws_info_organisme's
-- get_contact / get_criteres.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_organismes_spec.lua
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local transport = require "billetterie.transport"

local sb, path
local C = {}        -- contact ids of client 677
local OTHER         -- a contact of client 100
local FEED_FROM = "2020-01-07T10:30:00"

local function client(extra)
  local opts = { url = sb.url, api_url = sb.url, api_login = "WSCE",
    api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a", login = "xrsitest", password = "xrsimdp",
    client_id = 677, timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

-- The sandbox's base, opened in this process while the server is stopped.
local function with_db(fn)
  local dbmod = require "billetterie.sandbox.db"
  local services = require "billetterie.sandbox.services"
  local db = assert(dbmod.open(path, services.schemas()))
  local res = table.pack(pcall(db.tx, db, fn))
  db:close()
  assert(res[1], res[2])
  return table.unpack(res, 2, res.n)
end

-- Contacts are the contacts group's records: made through its insert.
local function add_contact(db, client_id, name)
  return require("billetterie.sandbox.contacts").insert(db, client_id,
    { civilite = "Mme", name = name, surname = "Claire", mail = name:lower() .. "@example.org" }, os.time())
end

setup(function()
  path = os.tmpname()
  with_db(function(db)
    for i, name in ipairs { "Aubert", "Blanc", "Caron", "Durand", "Estève" } do C[i] = add_contact(db, 677, name) end
    OTHER = add_contact(db, 100, "Lointain")
  end)
  sb = sandbox.start { db = path }
end)
teardown(function()
  if sb then sb:stop() end
  os.remove(path)
end)

-- Transports that change the form on the wire: the client refuses to send
-- a call without its required parameters (or with a wrong type), but the
-- server must answer one.
local function rewriting(fn)
  return { request = function(_, req)
    req.body = fn(req.body or "")
    return transport.curl:request(req)
  end }
end

local function dropping(names)
  local drop = {}
  for _, n in ipairs(names) do drop[n] = true end
  return rewriting(function(body)
    local kept = {}
    for pair in body:gmatch("[^&]+") do
      if not drop[pair:match("^([^=]*)")] then kept[#kept + 1] = pair end
    end
    return table.concat(kept, "&")
  end)
end

local function create(params)
  params = params or {}
  params.organisme = params.organisme or { intitule = "Théâtre du Port", nature = "Association" }
  local msg, st = client():call("ws_organisme_creation", params)
  assert.is_table(msg, tostring(st))
  return msg.organisme.id_organisme, msg, st
end

local function info(id)
  local msg, st = client():call("ws_info_organisme", { id_organisme = id, get_contact = 1, get_criteres = 1 })
  assert.is_table(msg, tostring(st))
  return msg.organisme
end

local function modify(id, extra, organisme)
  local o = { id_organisme = id, intitule = "Théâtre du Port", nature = "Association" }
  for k, v in pairs(organisme or {}) do o[k] = v end
  local params = { organisme = o }
  for k, v in pairs(extra or {}) do params[k] = v end
  return client():call("ws_organisme_modification", params)
end

-- A table as the client puts it on the wire (base64 of its JSON), for what
-- the client itself refuses to send: the server must answer it.
local function b64(t) return require("billetterie.core").b64encode(require("billetterie.json").encode(t)) end

-- contacts go pre-encoded: the malformed items below are the sandbox's to refuse
local function attach(id, contacts, c)
  if type(contacts) == "table" then contacts = b64(contacts) end
  return (c or client()):call("ws_organisme_contacts", { id_organisme = id, contacts = contacts })
end

-- The links of an organisme as "id_contact:fonction" in link order.
local function links(id)
  local out = {}
  for _, l in ipairs(info(id).contacts) do out[#out + 1] = l.id_contact .. ":" .. l.fonction end
  return out
end

local function codes_of(list)
  local out = {}
  for i, e in ipairs(list or {}) do out[i] = e.code end
  return out
end

-- The relation levels of an organisme, read where the spec shows them: the
-- change feed (ws_liste_fiches_modifiees, 2.7.3).
local function niveaux(id)
  local data, st = client():call("ws_liste_fiches_modifiees", { ts = FEED_FROM })
  assert.is_table(data, tostring(st))
  local out = {}
  for _, n in ipairs(data.liste_niveaux_relations) do
    if n.Num_Organisme == id then out[#out + 1] = n.Niveau_relation end
  end
  table.sort(out)
  return out
end

describe("ws_organisme_modification", function()
  it("updates the attributes sent, keeps the others and dates the change (902)", function()
    local id = create { organisme = { intitule = "Avant", nature = "Association", type = "Compagnie", memo1 = "m1" } }
    local msg, st = modify(id, nil, { intitule = "Après", memo2 = "m2", date_creation = "1999-01-01",
      fiche_supprimee = true })
    assert.is_table(msg, tostring(st))
    assert.same({ code = 902, traitement = "ok", message = "Organisme mis à jour" },
      { code = st.code, traitement = st.traitement, message = st.message })
    local o = info(id)
    assert.equal("Après", o.intitule)
    assert.equal("Compagnie", o.type)            -- absent: not updated
    assert.equal("m1", o.memo1)
    assert.equal("m2", o.memo2)
    assert.equal(os.date("%Y-%m-%d"), o.date_creation) -- never taken from the input
    assert.is_false(o.fiche_supprimee)
    assert.equal(id, o.id_organisme)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", o.date_modif)
    assert.equal(o.date_modif, msg.organisme.date_modif)
  end)

  it("answers 903 without intitule, nature or id_organisme, 904 for an unknown one", function()
    local id = create()
    for _, o in ipairs {
      { id_organisme = id, nature = "Association" },
      { id_organisme = id, intitule = "Sans nature", nature = "" },
      { intitule = "Sans id", nature = "Association" },
    } do
      local msg, err = client():call("ws_organisme_modification", { organisme = b64(o) })
      assert.is_nil(msg)
      assert.equal("vendor", err.kind)
      assert.equal(903, err.code)
      assert.is_string(err.detail)
    end
    local _, err = modify(987654)
    assert.equal(904, err.code)
    assert.equal("Théâtre du Port", info(id).intitule)
  end)

  it("upserts adresses on type_adresse, keeping the attributes not sent", function()
    local id = create { adresses = { { type_adresse = "Siège", adress1 = "1 quai de la Fosse", ville = "Nantes" } } }
    local before = info(id).adresses[1]
    local msg, st = modify(id, { adresses = {
      { type_adresse = "Siège", ville = "Saint-Nazaire" },
      { type_adresse = "Facturation", ville = "Paris", prioritaire = true },
    } })
    assert.is_table(msg, tostring(st))
    local by_type = {}
    for _, a in ipairs(info(id).adresses) do by_type[a.type_adresse] = a end
    assert.equal(before.id_adresse, by_type["Siège"].id_adresse)
    assert.equal("1 quai de la Fosse", by_type["Siège"].adress1)
    assert.equal("Saint-Nazaire", by_type["Siège"].ville)
    assert.equal("Paris", by_type.Facturation.ville)
    assert.is_true(by_type.Facturation.prioritaire)
    assert.equal(id, by_type.Facturation.id_organisme)
    assert.equal(0, by_type.Facturation.id_contact)
    assert.equal(2, #msg.organisme.adresses)
  end)

  it("refuses adresse ids that are not those of the stored adresse (1000) and changes nothing", function()
    local id = create { adresses = { { type_adresse = "Siège", ville = "Nantes" } } }
    local other = create()
    local siege = info(id).adresses[1].id_adresse
    for _, a in ipairs {
      { type_adresse = "Facturation", id_adresse = siege, ville = "X" },  -- the id of another type
      { type_adresse = "Siège", id_organisme = other, ville = "X" },
      { type_adresse = "Siège", id_contact = C[1], ville = "X" },
    } do
      local msg, err = modify(id, { adresses = { a } }, { intitule = "Changé" })
      assert.is_nil(msg)
      assert.equal(1000, err.code)
    end
    local o = info(id)
    assert.equal("Théâtre du Port", o.intitule)
    assert.equal(1, #o.adresses)
    assert.equal("Nantes", o.adresses[1].ville)
    -- the right ids (or 0) are fine
    local msg, st = modify(id, { adresses = { { type_adresse = "Siège", id_adresse = siege, id_organisme = id,
      id_contact = 0, ville = "Rezé" } } })
    assert.is_table(msg, tostring(st))
    assert.equal("Rezé", info(id).adresses[1].ville)
  end)

  it("adds and removes Niveau_de_relations by checked, matched without case", function()
    local id = create { Niveau_de_relations = {
      { Niveau_relation = "Fournisseur", checked = true }, { Niveau_relation = "Relais", checked = false } } }
    assert.same({ "Fournisseur" }, niveaux(id))
    assert.is_table(modify(id, { Niveau_de_relations = {
      { Niveau_relation = "FOURNISSEUR", checked = true },   -- found: no second one
      { Niveau_relation = "Partenaire", checked = true },
      { Niveau_relation = "relais", checked = false },       -- not found: nothing to remove
    } }))
    assert.same({ "Fournisseur", "Partenaire" }, niveaux(id))
    assert.is_table(modify(id, { Niveau_de_relations = {
      { Niveau_relation = "partenaire", checked = false },
      { Niveau_relation = "Élan", checked = true },
    } }))
    assert.same({ "Fournisseur", "Élan" }, niveaux(id))
    assert.is_table(modify(id, { Niveau_de_relations = { { Niveau_relation = "élan", checked = true } } }))
    assert.same({ "Fournisseur", "Élan" }, niveaux(id))    -- accented capitals fold too
    assert.is_table(modify(id, { Niveau_de_relations = { { Niveau_relation = "ÉLAN", checked = false } } }))
    assert.same({ "Fournisseur" }, niveaux(id))
    -- an item without Niveau_relation or a boolean checked is ignored and named
    -- (pre-encoded: the client would send checked = 1 as true)
    local msg, st = modify(id, { Niveau_de_relations = b64 { { Niveau_relation = "Mécène", checked = 1 },
      { checked = true } } })
    assert.is_table(msg, tostring(st))
    assert.matches("Niveau_de_relations%[1%]", st.detail)
    assert.matches("Niveau_de_relations%[2%]", st.detail)
    assert.same({ "Fournisseur" }, niveaux(id))
  end)

  it("sets the criteres it names, keeps the others, and get_criteres=1 shows them", function()
    local id = create { criteres = { id_formulaire = 6869, liste_champs = {
      { nom = "champ_1", valeur = 603 }, { nom = "champ_3", valeur = "Commentaire" } } } }
    local msg, st = modify(id, { criteres = { id_formulaire = 6869, liste_champs = {
      { nom = "champ_3", valeur = "Autre" }, { nom = "champ_2", valeur = { 608, 607 } } } } })
    assert.is_table(msg, tostring(st))
    assert.equal(6869, msg.organisme.criteres.id_formulaire)
    local champs = {}
    for _, f in ipairs(info(id).criteres.liste_champs) do champs[f.nom] = f end
    assert.same({ nom = "champ_1", libelle = "champ_1", type = "enumeration", multi_valeur = 0,
      valeur = { id = 603, libelle = "", code = "", ordre = 0 } }, champs.champ_1)
    assert.equal("texte", champs.champ_3.type)
    assert.equal("Autre", champs.champ_3.valeur)
    assert.equal(1, champs.champ_2.multi_valeur)
    assert.same({ 608, 607 }, { champs.champ_2.valeur[1].id, champs.champ_2.valeur[2].id })
  end)

  it("refuses bad criteres with 907, 908, 909 and 910 and updates nothing", function()
    local id = create()
    for code, criteres in pairs {
      [907] = { id_formulaire = "6869", liste_champs = { { nom = "champ_1", valeur = 1 } } },
      [908] = { id_formulaire = 6869, liste_champs = { { nom = "champ_1", valeur = { x = 1 } } } },
      [909] = { id_formulaire = 6869 },
      [910] = { id_formulaire = 6869, liste_champs = { { nom = "champ_1" } } },
    } do
      local msg, err = modify(id, { criteres = require("billetterie.json").encode(criteres) }, { intitule = "Changé" })
      assert.is_nil(msg)
      assert.equal("vendor", err.kind)
      assert.equal(code, err.code)
    end
    local o = info(id)
    assert.equal("Théâtre du Port", o.intitule)
    assert.same({}, o.criteres.liste_champs)
  end)

  it("attaches the contacts it is given, and a critical contact error refuses it all", function()
    local id = create()
    local msg, st = modify(id, { contacts = { { id_contact = C[1], action_attachement = "attacher", service = "Com" } } })
    assert.is_table(msg, tostring(st))
    assert.same({ 526, 1116 }, codes_of(msg.organisme.contacts[1].success))
    assert.same({ C[1] .. ":" }, links(id))
    local none, err = modify(id, { contacts = b64 { { id_contact = C[2], action_attachement = "lier" } } },
      { intitule = "Changé" })
    assert.is_nil(none)
    assert.equal(1105, err.code)
    assert.equal("Théâtre du Port", info(id).intitule)
    assert.same({ C[1] .. ":" }, links(id))
  end)
end)

describe("ws_organisme_creation with contacts", function()
  it("attaches existing contacts and reports an unknown one (503) without failing the creation", function()
    local id, msg, st = create { contacts = {
      { id_contact = C[1], action_attachement = "attacher", service = "Direction", telephone_lien = "0102030420",
        portable_lien = "0701203104", email_lien = "direction@example.org" },
      { id_contact = 999999, action_attachement = "attacher" },
    } }
    assert.equal(901, st.code)
    local r = msg.organisme.contacts
    assert.equal(C[1], r[1].id_contact)
    assert.same({ 526, 1116 }, codes_of(r[1].success))
    assert.is_nil(r[1].errors)
    assert.same({ 503 }, codes_of(r[2].errors))
    assert.equal("id_contact", r[2].errors[1].champ)
    assert.matches("503", st.detail)
    local l = info(id).contacts
    assert.equal(1, #l)
    assert.same({ id_contact = C[1], fonction = "", service = "Direction", telephone_lien = "0102030420",
      portable_lien = "0701203104", email_lien = "direction@example.org" }, l[1])
  end)

  it("creates nothing when a contact item is malformed (critical error)", function()
    local before = client():call("ws_liste_fiches_modifiees", { ts = FEED_FROM, type_export = "liste_organisme" })
    local msg, err = client():call("ws_organisme_creation", {
      organisme = { intitule = "Jamais", nature = "Association" },
      contacts = b64 { { action_attachement = "attacher" } } })
    assert.is_nil(msg)
    assert.equal(1103, err.code)
    local after = client():call("ws_liste_fiches_modifiees", { ts = FEED_FROM, type_export = "liste_organisme" })
    assert.equal(#before.liste_organismes_id, #after.liste_organismes_id)
  end)
end)

describe("ws_info_organisme", function()
  it("lists one entry per link with get_contact=1, and no contacts or criteres without the flags", function()
    local id = create { contacts = { { id_contact = C[2], action_fonction = "attacher", fonction = "Trésorier" } } }
    assert.same({ C[2] .. ":Trésorier" }, links(id))
    local plain = assert(client():call("ws_info_organisme", { id_organisme = id }))
    assert.is_nil(plain.organisme.contacts)
    assert.is_nil(plain.organisme.criteres)
    local none = info(create())
    assert.same({}, none.contacts)
    assert.same({ id_formulaire = 0, liste_champs = {} }, none.criteres)
  end)
end)

describe("ws_organisme_contacts", function()
  it("answers the spec's example: 1111 with the successes kept and the errors per contact", function()
    local id = create()
    -- 2.6.4.4: [{20899, action_fonction attacher Administrateur}, {36, action_attachement detacher}]
    local msg, err = attach(id, {
      { id_contact = C[1], action_fonction = "attacher", fonction = "Administrateur" },
      { id_contact = C[2], action_attachement = "detacher" },
    })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(1111, err.code)
    assert.is_true(err.partial)
    local r = err.payload.contacts
    assert.equal(C[1], r[1].id_contact)
    assert.same({ 526, 1118 }, codes_of(r[1].success))
    assert.same({ "id_contact", "action_fonction" }, { r[1].success[1].champ, r[1].success[2].champ })
    assert.equal("Contact trouvé", r[1].success[1].message)
    assert.is_nil(r[1].errors)
    assert.same({ 526 }, codes_of(r[2].success))
    assert.same({ 1112 }, codes_of(r[2].errors))
    assert.equal("action_attachement", r[2].errors[1].champ)
    assert.same({ id_organisme = id, success = { code = 906, champ = "id_organisme",
      message = "La fiche organisme a été trouvée" } }, err.payload.organisme[1])
    -- the function attached to a contact that was not attached attached it
    assert.same({ C[1] .. ":Administrateur" }, links(id))
  end)

  it("answers 1115 when every contact succeeds; a contact may be attached several times", function()
    local id = create()
    local msg, st = attach(id, {
      { id_contact = C[1], action_attachement = "attacher" },
      { id_contact = C[1], action_attachement = "attacher" },
      { id_contact = C[2], action_attachement = "attacher" },
    })
    assert.is_table(msg, tostring(st))
    assert.equal(1115, st.code)
    assert.equal("ok", st.traitement)
    assert.same({ 526, 1116 }, codes_of(msg.contacts[1].success))
    assert.same({ C[1] .. ":", C[1] .. ":", C[2] .. ":" }, links(id))
    -- detaching detaches every attachment (1117)
    msg, st = attach(id, { { id_contact = C[1], action_attachement = "detacher" } })
    assert.is_table(msg, tostring(st))
    assert.same({ 526, 1117 }, codes_of(msg.contacts[1].success))
    assert.same({ C[2] .. ":" }, links(id))
    -- one contact object alone is a list of one
    msg, st = attach(id, { id_contact = C[2], action_attachement = "detacher" })
    assert.is_table(msg, tostring(st))
    assert.same({ 526, 1117 }, codes_of(msg.contacts[1].success))
    assert.same({}, links(id))
  end)

  it("puts an attached fonction on the first link, replacing it, or on a second link with attacher", function()
    local id = create()
    assert.is_table(attach(id, { { id_contact = C[3], action_attachement = "attacher" },
                                 { id_contact = C[3], action_attachement = "attacher" } }))
    assert.is_table(attach(id, { { id_contact = C[3], action_fonction = "attacher", fonction = "Président" } }))
    assert.same({ C[3] .. ":Président", C[3] .. ":" }, links(id))
    assert.is_table(attach(id, { { id_contact = C[3], action_fonction = "attacher", fonction = "Secrétaire" } }))
    assert.same({ C[3] .. ":Secrétaire", C[3] .. ":" }, links(id))
    local msg = assert(attach(id, { { id_contact = C[3], action_attachement = "attacher",
      action_fonction = "attacher", fonction = "Trésorier" } }))
    assert.same({ 526, 1116, 1118 }, codes_of(msg.contacts[1].success))
    assert.same({ C[3] .. ":Secrétaire", C[3] .. ":", C[3] .. ":Trésorier" }, links(id))
  end)

  it("detaches a fonction from every link that has it (1119), keeping the links", function()
    local id = create()
    assert.is_table(attach(id, {
      { id_contact = C[4], action_attachement = "attacher", action_fonction = "attacher", fonction = "Régisseur" },
      { id_contact = C[4], action_attachement = "attacher", action_fonction = "attacher", fonction = "Régisseur" },
    }))
    local msg, st = attach(id, { { id_contact = C[4], action_fonction = "detacher", fonction = "régisseur" } })
    assert.is_table(msg, tostring(st))
    assert.same({ 526, 1119 }, codes_of(msg.contacts[1].success))
    assert.same({ C[4] .. ":", C[4] .. ":" }, links(id))
  end)

  describe("targeted errors (the other contacts are still processed)", function()
    local function one_error(id, items, code, champ)
      local msg, err = attach(id, items)
      assert.is_nil(msg)
      assert.equal(1111, err.code)
      local errors = {}
      for _, r in ipairs(err.payload.contacts) do
        for _, e in ipairs(r.errors or {}) do errors[#errors + 1] = e end
      end
      assert.equal(1, #errors)
      assert.equal(code, errors[1].code)
      assert.equal(champ, errors[1].champ)
      return err.payload.contacts
    end

    it("503: an unknown contact, or one of another client, is skipped", function()
      local id = create()
      local r = one_error(id, { { id_contact = 999999, action_attachement = "attacher" },
                                { id_contact = C[5], action_attachement = "attacher" } }, 503, "id_contact")
      assert.is_nil(r[1].success)
      assert.same({ 526, 1116 }, codes_of(r[2].success))
      one_error(id, { { id_contact = OTHER, action_attachement = "attacher" } }, 503, "id_contact")
      assert.same({ C[5] .. ":" }, links(id))
    end)

    it("1109: detaching the fonction of a contact that is not attached", function()
      one_error(create(), { { id_contact = C[1], action_fonction = "detacher", fonction = "Président" } },
        1109, "action_fonction")
    end)

    it("1110: detaching a fonction the contact does not have", function()
      local id = create()
      assert.is_table(attach(id, { { id_contact = C[1], action_fonction = "attacher", fonction = "Président" } }))
      one_error(id, { { id_contact = C[1], action_fonction = "detacher", fonction = "Trésorier" } }, 1110, "fonction")
      assert.same({ C[1] .. ":Président" }, links(id))
    end)

    it("1112: detaching a contact that is not attached", function()
      one_error(create(), { { id_contact = C[1], action_attachement = "detacher" } }, 1112, "action_attachement")
    end)
  end)

  describe("critical errors (nothing is processed)", function()
    it("1100, 1101, 1102: id_organisme and contacts are required", function()
      local id = create()
      local cases = {
        { 1100, { "id_organisme", "contacts" } },
        { 1101, { "id_organisme" } },
        { 1102, { "contacts" } },
      }
      for _, case in ipairs(cases) do
        local msg, err = attach(id, { { id_contact = C[1], action_attachement = "attacher" } },
          client { transport = dropping(case[2]) })
        assert.is_nil(msg)
        assert.equal("vendor", err.kind)
        assert.equal(case[1], err.code)
      end
      -- an empty list, or something that is not a list of objects, is no contacts object either
      for _, contacts in ipairs { {}, "bm9uIG1haXMgbm9u", { 1, 2 } } do
        local _, err = attach(id, contacts)
        assert.equal(1102, err.code)
      end
      assert.same({}, links(id))
      -- an id_organisme that is not a number is a parameter problem (4)
      local _, err = attach(id, { { id_contact = C[1], action_attachement = "attacher" } }, client {
        transport = rewriting(function(body) return (body:gsub("id_organisme=%d+", "id_organisme=abc")) end) })
      assert.equal(4, err.code)
    end)

    local CRITICAL = {
      { 1103, { action_attachement = "attacher" }, "id_contact" },
      { 1104, { id_contact = "C2" }, "action_attachement" },
      { 1104, { id_contact = "C2", service = "Direction" }, "action_attachement" },
      { 1105, { id_contact = "C2", action_attachement = "attache" }, "action_attachement" },
      { 1106, { id_contact = "C2", action_fonction = "ajouter", fonction = "Président" }, "action_fonction" },
      { 1107, { id_contact = "C2", action_fonction = "attacher" }, "fonction" },
      { 1108, { id_contact = "C2", action_attachement = "attacher", fonction = "Président" }, "action_fonction" },
    }
    for _, case in ipairs(CRITICAL) do
      it(("%d: %s"):format(case[1], require("billetterie.codes")[case[1]].message), function()
        local id = create()
        local item = {}
        for k, v in pairs(case[2]) do item[k] = v == "C2" and C[2] or v end
        -- a valid item first: it must not be processed either
        local msg, err = attach(id, { { id_contact = C[1], action_attachement = "attacher" }, item })
        assert.is_nil(msg)
        assert.equal("vendor", err.kind)
        assert.equal(case[1], err.code)
        assert.is_nil(err.partial)
        local report = err.payload.contacts[1]
        assert.equal(case[3], report.errors[1].champ)
        assert.equal(item.id_contact, report.id_contact)
        assert.same({}, links(id))
      end)
    end

    it("904: the organisme must exist (for this client)", function()
      local msg, err = attach(987654, { { id_contact = C[1], action_attachement = "attacher" } })
      assert.is_nil(msg)
      assert.equal(904, err.code)
      assert.same({ id_organisme = 987654, errors = { code = 904, champ = "id_organisme",
        message = "La fiche organisme n’a pas été trouvée" } }, err.payload.organisme[1])
      local id = create()
      local _, err2 = attach(id, { { id_contact = OTHER, action_attachement = "attacher" } },
        client { client_id = 100 })
      assert.equal(904, err2.code)
    end)
  end)
end)

describe("every organisme service", function()
  it("answers a vendor ko: wrong credentials are 3", function()
    local id = create()
    local bad = client { password = "pas-le-bon" }
    for name, params in pairs {
      ws_info_organisme = { id_organisme = id },
      ws_organisme_creation = { organisme = { intitule = "X", nature = "Y" } },
      ws_organisme_modification = { organisme = { id_organisme = id, intitule = "X", nature = "Y" } },
      ws_organisme_contacts = { id_organisme = id, contacts = { { id_contact = C[1], action_attachement = "attacher" } } },
    } do
      local msg, err = bad:call(name, params)
      assert.is_nil(msg)
      assert.equal("vendor", err.kind)
      assert.equal(3, err.code)
      assert.equal(name, err.ws)
    end
    assert.same({}, links(id))
  end)

  it("answers 905 for a deleted organisme and updates nothing", function()
    local id = create { contacts = { { id_contact = C[1], action_attachement = "attacher" } } }
    sb:stop()
    -- fiche_supprimee is read-only through the web services: set it in the base
    with_db(function(db)
      local codec = require "billetterie.sandbox.codec"
      local row = db:one("SELECT data FROM organismes WHERE id_organisme = ?", id)
      local data = codec.decode(row.data)
      data.fiche_supprimee = true
      db:exec("UPDATE organismes SET data = ? WHERE id_organisme = ?", codec.encode(data), id)
    end)
    sb = sandbox.start { db = path }
    local _, e1 = client():call("ws_info_organisme", { id_organisme = id })
    assert.equal(905, e1.code)
    local _, e2 = modify(id, nil, { intitule = "Ressuscité" })
    assert.equal(905, e2.code)
    local _, e3 = attach(id, { { id_contact = C[1], action_attachement = "detacher" } })
    assert.equal(905, e3.code)
    assert.equal(905, e3.payload.organisme[1].errors.code)
  end)
end)
