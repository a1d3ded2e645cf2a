-- Contacts (spec 2.3, annexes 4.1 and 4.7), ws_info_formulaire (2.2.4) and
-- lists (2.5) of the sandbox, driven by the project's client against a real
-- `billetterie sandbox` process. The back-office data the web services
-- cannot create (codes envoi, interests, lists, a second client's pwd key)
-- is written into the SQLite file with the modules' exported functions
-- before the server starts; every write the services make is then checked
-- in the file's `changes` journal.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_contacts_spec.lua

local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local dbmod = require "billetterie.sandbox.db"
local services = require "billetterie.sandbox.services"
local contacts = require "billetterie.sandbox.contacts"
local lists = require "billetterie.sandbox.lists"
local luasql = require "luasql.sqlite3"
local transport = require "billetterie.transport"
local core = require "billetterie.core"

local sb, DB
local KEY_100 = "0123456789ABCDEF0123456789ABCDEF"

local function seed(path)
  local db = assert(dbmod.open(path, services.schemas()))
  db:tx(function()
    contacts.create_option(db, 677, "code_envoi", { id = 10000096, code = "LI", label = "Lettre d'information" })
    contacts.create_option(db, 677, "code_envoi", { id = 10000100, code = "001_002_", label = "Dossier pédagogique" })
    contacts.create_option(db, 677, "interet", { id = 96, code = "THEATRE", label = "Théâtre" })
    contacts.create_option(db, 677, "interet", { id = 160, code = "DANSE", label = "Danse" })
    lists.create(db, 677, { id_liste = 16, titre_court = "TEST2" })
    lists.create(db, 677, { id_liste = 17, libelle = "Gala", liste = false })
    lists.create(db, 677, { id_liste = 18, titre_court = "Interne", web = false })
    -- two records sharing one identifier (only seed data can do that)
    for i = 1, 2 do
      contacts.insert(db, 677, { name = "JUMEAU", mail = "jumeau" .. i .. "@x.fr",
        web_identifiant = "jumeau", web_passe = "Jumeau123" }, os.time())
    end
    contacts.set_pwd_key(db, 100, KEY_100)
    contacts.insert(db, 100, { name = "CENT", mail = "cent@x.fr", web_passe = "Centaine1" }, os.time())
  end)
  db:close()
end

setup(function()
  DB = os.tmpname()
  seed(DB)
  sb = sandbox.start { db = DB }
end)
teardown(function()
  if sb then sb:stop() end
  os.remove(DB)
end)

local function client(extra)
  local opts = { url = sb.url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function token(c)
  return assert((c or client()):call("ws_idsession")).jeton
end

local n = 0
local function unique_mail()
  n = n + 1
  return ("contact%d@exemple.fr"):format(n)
end

-- The client checks lengths, dates, booleans and annex 4.7 itself before
-- sending, so the sandbox's own checks of the same rules are reached by
-- sending a form as given: a transport (a documented client option)
-- replaces the body the client built for a valid call of the same service,
-- and the answer goes through the client's decoding as usual.
local PLACEHOLDER = {
  ws_ccontact = { x_rsi_token = ("0"):rep(32), id_formulaire = 1, v_passe = "Valide123" },
  ws_modification_pwd = { w_identifiant = "x", v_passe = "Valide123" },
  ws_modification_contact = { id_contact = 1 },
  ws_info_contact = { id_contact = 1 },
}
local function raw(ws, form)
  local body = core.form_encode(form)
  local swap = { request = function(_, req) req.body = body; return transport.curl:request(req) end }
  return client { transport = swap, pwd_key = "unused" }:call(ws, PLACEHOLDER[ws])
end

-- ws_ccontact with the minimum a form 1 needs, overridden by `fields`
-- (through the client, or as a raw form when `send` is raw).
local function ccontact(fields, jeton, send)
  local p = { x_rsi_token = jeton or token(), id_formulaire = 1, v_nom = "DUPONT",
    v_prenom = "Jean", v_mail = unique_mail(), v_passe = "Secret123", v_passec = "Secret123" }
  for k, v in pairs(fields or {}) do p[k] = v or nil end -- false removes a default
  local msg, st
  if send then msg, st = send("ws_ccontact", p) else msg, st = client():call("ws_ccontact", p) end
  return msg, st, p
end
local function ccontact_raw(fields) return ccontact(fields, nil, raw) end

-- ws_ccontact, then ws_login of the new contact on `jeton` (creation does
-- not log in, 2.3.1.1).
local function ccontact_login(fields, jeton)
  local msg, st, sent = ccontact(fields, jeton)
  assert.is_table(msg, tostring(st))
  assert(client():call("ws_login", { x_rsi_token = jeton, web_ident = sent.v_mail, web_passe = sent.v_passe }))
  return msg, st, sent
end

local function vendor_code(msg, err)
  assert.is_nil(msg)
  assert.equal("vendor", err.kind, tostring(err))
  return err.code
end

local function info_ws(id, c)
  return (c or client()):call("ws_info_contact", { id_contact = id })
end

-- Rows of the sandbox file's change journal after `seq`.
local function changes_since(seq)
  local env = luasql.sqlite3()
  local conn = assert(env:connect(sb.db))
  local pragma = conn:execute("PRAGMA busy_timeout = 5000")
  if type(pragma) ~= "number" then pragma:close() end
  local cur = assert(conn:execute(("SELECT seq, client, kind, record_id, action FROM changes WHERE seq > %d ORDER BY seq")
    :format(seq or 0)))
  local out = {}
  while true do
    local row = cur:fetch({}, "a")
    if not row then break end
    for k, v in pairs(row) do if type(v) == "number" then row[k] = math.tointeger(v) end end
    out[#out + 1] = row
  end
  cur:close(); conn:close(); env:close()
  return out
end

local function last_seq()
  local all = changes_since(0)
  return #all > 0 and all[#all].seq or 0
end

describe("ws_info_formulaire", function()
  it("describes form 1 with the back-office options and the password rule text", function()
    local msg, st = client():call("ws_info_formulaire", { id_formulaire = 1 })
    assert.same({ code = 2, traitement = "ok", message = "Traitement effectué" }, st)
    assert.equal(1, msg.id_formulaire)
    local by = {}
    for i, f in ipairs(msg.formulaire) do
      assert.equal(i, f.index)
      by[f.name] = f
    end
    assert.is_true(by.v_nom.required)
    assert.equal("Nom", by.v_nom.label)
    assert.equal("text", by.v_nom.type)
    assert.is_false(by.web_civil.required)
    assert.equal("email", by.v_mail.type)
    assert.equal("password", by.v_passe.type)
    local ce = by["code_envoi[]"]
    assert.same({ "LI", "001_002_" }, ce.option_code)
    assert.same({ "10000096", "10000100" }, ce.option_value)
    assert.same({ "Lettre d'information", "Dossier pédagogique" }, ce.option)
    assert.same({ "THEATRE", "DANSE" }, by["interet[]"].option_code)
    assert.is_nil(by.vW_Commentaire1) -- form 1 is the short form
    assert.matches("au moins 8 caractères", msg.libelles.libelle_regle_mdp)
    assert.equal("www.cnil.fr", msg.libelles.libelle_info_cnil)
  end)

  it("offers every annex 4.1 input field in form 2 and refuses an unknown form with 4", function()
    local msg = assert(client():call("ws_info_formulaire", { id_formulaire = 2 }))
    local names = {}
    for _, f in ipairs(msg.formulaire) do names[f.name] = f end
    for _, send in ipairs { "vW_Commentaire14", "vW_Commentaire6", "v_adr4", "v_naissance", "Rk" } do
      assert.is_table(names[send], send)
    end
    assert.equal("date", names.v_naissance.type)
    assert.equal("number", names.vW_Commentaire14.type)
    assert.equal("checkbox", names.Reguliercontact.type)
    assert.is_nil(names.v_mailing)       -- obsolete
    assert.is_nil(names.adresses)        -- base64 objects, not form inputs
    assert.equal(4, vendor_code(client():call("ws_info_formulaire", { id_formulaire = 99 })))
  end)
end)

describe("ws_ccontact and ws_info_contact", function()
  it("creates a contact and reads it back under the received names of annex 4.1", function()
    local seq = last_seq()
    local msg, st, sent = ccontact {
      web_civil = "M.", v_tel_port = "0601020304", v_adr1 = "2 rue Helene Boucher", v_adr4 = "BAT A",
      v_cp = "78280", v_ville = "Guyancourt", v_pays = "France", TelPro = "0130781800",
      v_naissance = "1980-05-17", vW_Commentaire = "Un commentaire", vW_Commentaire1 = "libre 1",
      vW_Commentaire9 = "2020-01-31", Code_Libre_Con = "CL", ModConnaiss = "Presse",
      Reguliercontact = 1, demande_desinscription_tout = "0", Rk = "remarque",
    }
    assert.same({ code = 513, traitement = "ok", message = "Contact créé" }, {
      code = st.code, traitement = st.traitement, message = st.message })
    assert.equal("", st.detail)
    local c = msg.contact
    assert.equal("DUPONT", c.name)
    assert.equal("Jean", c.surname)
    assert.equal("M.", c.civilite)
    assert.equal(0, c.id_contactlist)
    assert.equal("", c.tel_perso)
    assert.is_nil(c.web_passe)
    assert.is_true(math.type(c.id_contact) == "integer" and math.type(c.id) == "integer")
    assert.are_not.equal(c.id, c.id_contact) -- fiche lien and fiche contact differ

    local info, ist = info_ws(c.id_contact)
    assert.equal(2, ist.code)
    local r = info.contact
    local expect = {
      civilite = "M.", name = "DUPONT", surname = "Jean", mail = sent.v_mail, web_identifiant = sent.v_mail,
      tel_port = "0601020304", TelPro = "0130781800", adress1 = "2 rue Helene Boucher", Adress4 = "BAT A",
      code_postal = "78280", ville = "Guyancourt", pays = "France", v_naissance = "1980-05-17",
      commentaire = "Un commentaire", champ_libre_1 = "libre 1", champ_libre_9 = "2020-01-31",
      Code_Libre_Con = "CL", ModConnaiss = "Presse", Reguliercontact = true,
      demande_desinscription_tout = false, Selectionne = false, Rk = "remarque", champ_libre_8 = 0,
      id = c.id, id_contact = c.id_contact,
    }
    for k, v in pairs(expect) do assert.equal(v, r[k], k) end
    assert.matches("^%d%d%d%d%-%d%d%-%d%d$", r.date_creation)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", r.date_modif)
    assert.is_nil(r.v_nom)          -- never the sent names
    assert.is_nil(r.web_passe)      -- never the password
    assert.is_nil(r.adress4)        -- the received key is Adress4
    assert.same({}, r.adresses)
    assert.same({ { id = 10000096, code = "LI", label = "Lettre d'information", checked = false },
                  { id = 10000100, code = "001_002_", label = "Dossier pédagogique", checked = false } }, r.code_envoi)

    local log = changes_since(seq)
    assert.equal(1, #log)
    assert.same({ seq = log[1].seq, client = 677, kind = "contact", record_id = c.id_contact, action = "create" }, log[1])
  end)

  it("maps the historically swapped vW_Commentaire6/7 and 14/15 rows as the catalogue records them", function()
    local msg = assert(ccontact { vW_Commentaire6 = "quatorze", vW_Commentaire7 = "quinze",
      vW_Commentaire14 = "6,5", vW_Commentaire15 = "7", vW_Commentaire8 = "8.25" })
    local r = assert(info_ws(msg.contact.id_contact)).contact
    assert.equal("quatorze", r.champ_libre_14)
    assert.equal("quinze", r.champ_libre_15)
    assert.equal(6.5, r.champ_libre_6)
    assert.equal(7, r.champ_libre_7)
    assert.equal(8.25, r.champ_libre_8)
    assert.equal("", r.champ_libre_5)
    -- the same data as the generated catalogue says it
    local cat = require "billetterie.catalogue"
    for _, f in ipairs(cat.contact_fields) do
      if f.send == "vW_Commentaire6" then assert.equal("champ_libre_14", f.receive) end
      if f.send == "vW_Commentaire14" then assert.equal("champ_libre_6", f.receive) end
    end
  end)

  it("cuts text to the maximum length of annex 4.1 and says so in detail", function()
    local long = ("é"):rep(45)
    local msg, st = ccontact_raw { v_nom = long, v_cp = "123456789012" }
    assert.equal(513, st.code)
    assert.equal(("é"):rep(38), msg.contact.name)
    assert.equal("1234567890", msg.contact.code_postal)
    assert.matches("v_nom : tronqué à 38 caractères", st.detail, 1, true)
    assert.matches("v_cp : tronqué à 10 caractères", st.detail, 1, true)
  end)

  it("refuses values it cannot store with 4 and writes nothing", function()
    local seq = last_seq()
    for field, value in pairs { v_naissance = "17/05/1980", vW_Commentaire9 = "2021-02-30",
        vW_Commentaire14 = "six", Reguliercontact = "peut-être" } do
      local msg, err = ccontact_raw { [field] = value }
      assert.equal(4, vendor_code(msg, err), field)
      assert.matches(field, err.detail, 1, true)
    end
    assert.same({}, changes_since(seq))
  end)

  it("checks required fields, mail, the password rules of 4.7 and the confirmation", function()
    local cases = {
      { { v_nom = "" }, 505 },
      { { v_mail = "pas-une-adresse" }, 527 }, { { v_mail = "a b@x.fr" }, 527 },
      { { v_passe = "", v_passec = "" }, 522 },
      { { v_passe = "Ab1", v_passec = "Ab1" }, 523 },                -- too short
      { { v_passe = "secret123", v_passec = "secret123" }, 523 },    -- no upper case
      { { v_passe = "SECRET123", v_passec = "SECRET123" }, 523 },    -- no lower case
      { { v_passe = "SecretSecret", v_passec = "SecretSecret" }, 523 }, -- no digit
      { { v_passe = "Secret@123", v_passec = "Secret@123" }, 523 },  -- '@' refused
      { { v_passe = "Secret123", v_passec = "Secret124" }, 524 },
    }
    for i, case in ipairs(cases) do
      local msg, err = ccontact_raw(case[1])
      assert.equal(case[2], vendor_code(msg, err), "case " .. i)
      assert.is_false(err.retryable)
    end
    local _, err = ccontact_raw { v_nom = "", v_prenom = "" }
    assert.matches("v_nom, v_prenom", err.detail, 1, true)
    -- v_passec is optional: without it only the rules apply
    assert.is_table((ccontact_raw { v_passec = false, v_passe = "Sans4Confirm" }))
    -- lengths count characters, not bytes: 7 characters in 8 bytes are too few
    assert.equal(523, vendor_code(ccontact_raw { v_passe = "Aé1aaaa", v_passec = "Aé1aaaa" }))
    assert.is_table((ccontact_raw { v_passe = "Aé1aaaaa", v_passec = "Aé1aaaaa" }))
  end)

  it("answers 518 for a mail in use and 515 for an identifier in use", function()
    local mail = unique_mail()
    assert.is_table((ccontact { v_mail = mail }))
    assert.equal(518, vendor_code(ccontact { v_mail = mail:upper() }))
    assert.equal(518, vendor_code(ccontact { v_mail = mail, w_identifiant = "autre-identifiant" }))
    assert.is_table((ccontact { w_identifiant = "choisi" }))
    assert.equal(515, vendor_code(ccontact { w_identifiant = "CHOISI" }))
    -- the default identifier is the mail: a chosen identifier equal to another's mail is taken
    assert.equal(515, vendor_code(ccontact { w_identifiant = mail }))
  end)

  it("needs a running session (605) and a known form (4)", function()
    assert.equal(605, vendor_code(ccontact({}, ("AB"):rep(16))))
    local c = client()
    local t = token(c)
    assert(c:call("ws_deconnexion_session", { x_rsi_token = t }))
    assert.equal(605, vendor_code(ccontact({}, t)))
    assert.equal(4, vendor_code(ccontact { id_formulaire = 7 }))
  end)

  it("stores ticks, adresses and relation levels sent on creation", function()
    local msg = assert(ccontact {
      code_envoi = { 10000100 }, interet = { "DANSE" }, -- an id, and a code
      Adresses = { { type_adresse = "Facturation", adress1 = "1 rue de la Paix", ville = "Paris",
                     prioritaire = true, id_contact = 999 } },
      Niveau_de_relations = { { Niveau_relation = "Fournisseur", checked = true },
                              { Niveau_relation = "Relais", checked = false } },
    })
    local r = assert(info_ws(msg.contact.id_contact)).contact
    assert.same({ false, true }, { r.code_envoi[1].checked, r.code_envoi[2].checked })
    assert.same({ false, true }, { r.interet[1].checked, r.interet[2].checked })
    assert.equal(1, #r.adresses)
    local a = r.adresses[1]
    assert.equal("Facturation", a.type_adresse)
    assert.equal("Paris", a.ville)
    assert.is_true(a.prioritaire)
    assert.equal(msg.contact.id_contact, a.id_contact) -- the server's ids, whatever was sent
    assert.equal(0, a.id_organisme)
    assert.equal(1, #r.Niveau_de_relations)
    assert.equal("Fournisseur", r.Niveau_de_relations[1].Niveau_relation)
    assert.equal(msg.contact.id, r.Niveau_de_relations[1].Num_clistru)
    -- unknown option or list, adresse without type: 4
    assert.equal(4, vendor_code(ccontact { code_envoi = { 424242 } }))
    assert.equal(4, vendor_code(ccontact { liste = { 999 } }))
    assert.equal(4, vendor_code(ccontact { liste = { 18 } })) -- not on the web
    assert.equal(4, vendor_code(ccontact { Adresses = { { ville = "Paris" } } }))
  end)

  it("filters the token-mode answer by the form", function()
    local jeton = token()
    local msg = ccontact_login({ vW_Commentaire1 = "libre", v_adr4 = "BAT B" }, jeton)
    local short = assert(client():call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 1 })).contact
    assert.equal("DUPONT", short.name)
    assert.equal(msg.contact.id, short.id)
    assert.is_table(short.code_envoi)
    assert.is_nil(short.champ_libre_1)
    assert.is_nil(short.Adress4)
    local full = assert(client():call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 2 })).contact
    assert.equal("libre", full.champ_libre_1)
    assert.equal("BAT B", full.Adress4)
    assert.equal(4, vendor_code(client():call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 5 })))
  end)

  it("answers 503 for an unknown contact, 602 for a session without contact, 3 for a wrong account", function()
    assert.equal(503, vendor_code(info_ws(987654)))
    assert.equal(503, vendor_code(client { client_id = 100 }:call("ws_info_contact", {
      id_contact = assert(ccontact()).contact.id_contact })))    -- another client's contact
    assert.equal(602, vendor_code(client():call("ws_info_contact", { x_rsi_token = token(), id_formulaire = 1 })))
    assert.equal(3, vendor_code(client { password = "mauvais" }:call("ws_info_contact", { id_contact = 1 })))
  end)
end)

describe("ws_login", function()
  it("binds the contact to the token with 514 and the two ids", function()
    local created, _, sent = ccontact()
    local c = client()
    local jeton = token(c)
    local msg, st = c:call("ws_login", { x_rsi_token = jeton, web_ident = sent.v_mail:upper(),
      web_passe = "Secret123" })
    assert.same({ code = 514, traitement = "ok", message = "Contact identifié" }, st)
    assert.same({ name = "DUPONT", surname = "Jean", id_clistru = created.contact.id,
      id_contact = created.contact.id_contact }, msg.contact)
    -- the token now reads and writes this contact
    local info = assert(c:call("ws_info_contact", { x_rsi_token = jeton, id_formulaire = 1 }))
    assert.equal(created.contact.id, info.contact.id)
    assert.equal(609, vendor_code(c:call("ws_login", { x_rsi_token = jeton, web_ident = sent.v_mail,
      web_passe = "Secret123" })))
  end)

  it("refuses a wrong password or identifier with 504 and writes nothing", function()
    local _, _, sent = ccontact()
    local seq = last_seq()
    local c = client()
    assert.equal(504, vendor_code(c:call("ws_login", { x_rsi_token = token(c), web_ident = sent.v_mail,
      web_passe = "secret123" })))
    assert.equal(504, vendor_code(c:call("ws_login", { x_rsi_token = token(c), web_ident = "personne@x.fr",
      web_passe = "Secret123" })))
    assert.equal(605, vendor_code(c:call("ws_login", { x_rsi_token = ("C"):rep(32), web_ident = sent.v_mail,
      web_passe = "Secret123" })))
    assert.equal(510, vendor_code(c:call("ws_login", { x_rsi_token = token(c), web_ident = "jumeau",
      web_passe = "Jumeau123" })))
    assert.same({}, changes_since(seq))
  end)
end)

describe("ws_modification_contact", function()
  it("updates the logged-in contact in token mode and returns it", function()
    local jeton = token()
    local created = ccontact_login({ code_envoi = { 10000096 }, interet = { 96 } }, jeton)
    local id = created.contact.id_contact
    local seq = last_seq()
    local msg, st = client():call("ws_modification_contact", { x_rsi_token = jeton, id_formulaire = 1,
      v_ville = "Lyon", vW_Commentaire7 = "quinze", w_identifiant = "nouvel-identifiant" })
    assert.same({ code = 508, traitement = "ok", message = "Modification enregistrée" }, st)
    assert.equal("Lyon", msg.contact.ville)
    assert.equal("", msg.contact.web_passe) -- never the password
    assert.equal(created.contact.mail, msg.contact.web_identifiant) -- not updated by this service
    local r = assert(info_ws(id)).contact
    assert.equal("Lyon", r.ville)
    assert.equal("quinze", r.champ_libre_15)
    assert.equal("DUPONT", r.name) -- fields not sent are kept
    assert.is_true(r.code_envoi[1].checked) -- no code_envoi[] sent: ticks kept
    assert.same({ { seq = seq + 1, client = 677, kind = "contact", record_id = id, action = "update" } },
      changes_since(seq))
  end)

  it("replaces the ticks by default and changes only the listed ones with maj_*", function()
    local created = assert(ccontact { code_envoi = { 10000096 }, interet = { 96 } })
    local id = created.contact.id_contact
    local function ticks()
      local r = assert(info_ws(id)).contact
      return { r.code_envoi[1].checked, r.code_envoi[2].checked, r.interet[1].checked, r.interet[2].checked }
    end
    assert.same({ true, false, true, false }, ticks())
    -- default mechanism: the list sent is the whole selection
    assert(client():call("ws_modification_contact", { id_contact = id, code_envoi = { "001_002_" } }))
    assert.same({ false, true, true, false }, ticks())
    -- partial: 2 ticks, 3 unticks, 1 leaves; code_envoi[] is then ignored
    assert(client():call("ws_modification_contact", { id_contact = id,
      maj_code_envoi = 1, liste_maj_code_envoi = { [10000096] = 2, [10000100] = 1 },
      maj_interet = 1, liste_maj_interet = { [96] = 3, [160] = 2 }, code_envoi = { 10000100 } }))
    assert.same({ true, true, false, true }, ticks())
    -- a value outside 1/2/3 is refused by the client (invalid_param); sent raw, by the sandbox
    assert.equal(4, vendor_code(raw("ws_modification_contact", { x_rsi_ws_login = "xrsitest",
      x_rsi_ws_mdp = "xrsimdp", x_rsi_client = 677, id_contact = id, maj_code_envoi = 1,
      ["liste_maj_code_envoi[10000096]"] = 5 })))
    assert.equal(4, vendor_code(client():call("ws_modification_contact", { id_contact = id,
      maj_interet = 1, liste_maj_interet = { [777] = 2 } })))
    -- an empty item clears the selection
    assert(client():call("ws_modification_contact", { id_contact = id, code_envoi = { "" } }))
    assert.same({ false, false, false, true }, ticks())
  end)

  it("updates any contact in ws mode; with a token the call is in token mode", function()
    local created = assert(ccontact())
    local id = created.contact.id_contact
    local msg, st = client():call("ws_modification_contact", { id_contact = id, id_formulaire = 42,
      v_prenom = "Paul", vW_Commentaire14 = "14" })
    assert.equal(508, st.code)
    assert.equal("Paul", msg.contact.surname)
    assert.equal(14, assert(info_ws(id)).contact.champ_libre_6)
    -- with x_rsi_token the call is in token mode (2.3.3.3), whatever else
    -- is sent: it needs a logged-in session, and acts on its contact only
    -- (sent raw: the client refuses id_contact with a token)
    local ws_too = { id_contact = id, x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = 677 }
    local function with(t)
      for k, v in pairs(ws_too) do t[k] = v end
      return t
    end
    assert.equal(602, vendor_code(raw("ws_modification_contact",
      with { x_rsi_token = token(), id_formulaire = 1, v_prenom = "Pierre" })))
    assert.equal(602, vendor_code(raw("ws_info_contact", with { x_rsi_token = token(), id_formulaire = 1 })))
    assert.equal("Paul", assert(info_ws(id)).contact.surname)
    local mine, _, sent = ccontact()
    local c = client()
    local jeton = token(c)
    assert(c:call("ws_login", { x_rsi_token = jeton, web_ident = sent.v_mail, web_passe = "Secret123" }))
    local msg2 = assert(raw("ws_modification_contact", with { x_rsi_token = jeton, id_formulaire = 1,
      v_prenom = "Pierre" }))
    assert.equal(mine.contact.id_contact, msg2.contact.id_contact)
    assert.equal("Pierre", assert(info_ws(mine.contact.id_contact)).contact.surname)
    assert.equal("Paul", assert(info_ws(id)).contact.surname)
    local shown = assert(raw("ws_info_contact", with { x_rsi_token = jeton, id_formulaire = 1 })).contact
    assert.equal(mine.contact.id, shown.id)
    assert.is_nil(shown.champ_libre_1) -- filtered by form 1: token mode
    assert.equal(503, vendor_code(client():call("ws_modification_contact", { id_contact = 987654 })))
    assert.equal(3, vendor_code(client { password = "mauvais" }:call("ws_modification_contact",
      { id_contact = id })))
  end)

  it("checks mail, session and adresse ids", function()
    local other = assert(ccontact())
    local jeton = token()
    local mine = ccontact_login({ Adresses = { { type_adresse = "Principale", ville = "Paris" } } }, jeton)
    local function modify(p)
      p.x_rsi_token, p.id_formulaire = jeton, 1
      return client():call("ws_modification_contact", p)
    end
    assert.equal(518, vendor_code(modify { v_mail = other.contact.mail }))
    assert.equal(527, vendor_code(modify { v_mail = "nulle-part" }))
    assert.equal(602, vendor_code(client():call("ws_modification_contact", { x_rsi_token = token(),
      id_formulaire = 1, v_ville = "Nice" })))
    assert.equal(605, vendor_code(client():call("ws_modification_contact", { x_rsi_token = ("D"):rep(32),
      id_formulaire = 1 })))
    local own = assert(info_ws(mine.contact.id_contact)).contact.adresses[1]
    -- the adresse's own ids are fine; another contact's id is 1000
    assert(modify { Adresses = { { type_adresse = "Principale", id_adresse = own.id_adresse,
      id_contact = mine.contact.id_contact, tel1 = "0102030405" } } })
    assert.equal(1000, vendor_code(modify { Adresses = { { type_adresse = "Principale",
      id_contact = other.contact.id_contact, tel1 = "0600000000" } } }))
    assert.equal(1000, vendor_code(modify { Adresses = { { type_adresse = "Principale",
      id_organisme = 12, tel1 = "0600000000" } } }))
    local a = assert(info_ws(mine.contact.id_contact)).contact.adresses
    assert.equal(1, #a)
    assert.equal("0102030405", a[1].tel1)
    assert.equal("Paris", a[1].ville) -- attributes absent from the object are kept
    -- relation levels: added, then removed case-insensitively
    assert(modify { Niveau_de_relations = { { Niveau_relation = "Relais", checked = true } } })
    assert(modify { Niveau_de_relations = { { Niveau_relation = "RELAIS", checked = false } } })
    assert.same({}, assert(info_ws(mine.contact.id_contact)).contact.Niveau_de_relations)
  end)
end)

describe("ws_modification_pwd", function()
  local PWD_KEY = contacts.DEFAULT_PWD_KEY

  it("changes the password with the back-office key; login then takes the new one", function()
    local _, _, sent = ccontact()
    local created = assert(info_ws(assert(client():call("ws_login", { x_rsi_token = token(),
      web_ident = sent.v_mail, web_passe = "Secret123" })).contact.id_contact)).contact
    local seq = last_seq()
    local c = client { pwd_key = PWD_KEY }
    local msg, st = c:call("ws_modification_pwd", { w_identifiant = sent.v_mail, v_passe = "Nouveau456",
      v_ancien_passe = "Secret123" })
    assert.equal("mot de passe mis a jour", msg)
    assert.same({ code = 2, traitement = "ok", message = "Traitement effectue" }, st)
    assert.same({ { seq = seq + 1, client = 677, kind = "contact", record_id = created.id_contact,
      action = "update" } }, changes_since(seq))
    local l = client()
    assert.equal(504, vendor_code(l:call("ws_login", { x_rsi_token = token(l), web_ident = sent.v_mail,
      web_passe = "Secret123" })))
    local ok = assert(l:call("ws_login", { x_rsi_token = token(l), web_ident = sent.v_mail,
      web_passe = "Nouveau456" }))
    assert.equal(created.id_contact, ok.contact.id_contact)
  end)

  it("answers 3, 503, 523, 528 and 529 in the flowchart's order", function()
    local _, _, sent = ccontact()
    local function pwd(key, p)
      p.w_identifiant, p.x_rsi_pwd_key = p.w_identifiant or sent.v_mail, key
      return raw("ws_modification_pwd", p)
    end
    assert.equal(3, vendor_code(pwd("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF", { v_passe = "Autre1234" })))
    assert.equal(503, vendor_code(pwd(PWD_KEY, { w_identifiant = "inconnu@x.fr", v_passe = "Autre1234" })))
    assert.equal(523, vendor_code(pwd(PWD_KEY, { v_passe = "faible", v_ancien_passe = "mauvais" })))
    assert.equal(528, vendor_code(pwd(PWD_KEY, { v_passe = "Autre1234", v_ancien_passe = "Mauvais12" })))
    assert.equal(529, vendor_code(pwd(PWD_KEY, { v_passe = "Secret123" })))
    assert.equal(522, vendor_code(pwd(PWD_KEY, { v_passe = "" })))
    -- the key is case-insensitive hex; the obsolete token is ignored
    assert(pwd(PWD_KEY:lower(), { v_passe = "Autre1234", x_rsi_token = ("0"):rep(32) }))
    -- ko answers keep the retour_traitement shape
    local _, err = pwd(PWD_KEY, { v_passe = "Autre1234" })
    assert.equal(529, err.code)
    assert.equal("Il faut choisir un autre mot de passe différent de l'ancien", err.message)
  end)

  it("uses the key of each client: a key reaches only its own client's contacts", function()
    -- client 100 has its own key; the default key stays client 677's
    assert.equal(503, vendor_code(client { pwd_key = PWD_KEY }:call("ws_modification_pwd",
      { w_identifiant = "cent@x.fr", v_passe = "Centaine2" })))
    local c100 = client { pwd_key = KEY_100 }
    assert.equal(528, vendor_code(c100:call("ws_modification_pwd",
      { w_identifiant = "cent@x.fr", v_passe = "Centaine2", v_ancien_passe = "Faux12345" })))
    assert(c100:call("ws_modification_pwd", { w_identifiant = "cent@x.fr", v_passe = "Centaine2" }))
    assert.equal(503, vendor_code(c100:call("ws_modification_pwd",
      { w_identifiant = "jumeau1@x.fr", v_passe = "Centaine2" })))
    -- two records with one identifier
    assert.equal(516, vendor_code(client { pwd_key = PWD_KEY }:call("ws_modification_pwd",
      { w_identifiant = "jumeau", v_passe = "Jumeau456" })))
  end)
end)

describe("ws_suppression_compte", function()
  it("deletes the logged-in web account with 534; the fiche contact stays (2.3.6.1)", function()
    local jeton = token()
    local created, _, sent = ccontact_login({ liste = { 16 } }, jeton)
    local id = created.contact.id_contact
    local seq = last_seq()
    local c = client()
    local payload, st = c:call("ws_suppression_compte", { x_rsi_token = jeton })
    assert.same({}, payload)
    assert.same({ code = 534, traitement = "ok", message = "Compte supprimé avec succès", detail = "" }, st)
    -- journalled as a change of the fiche: the change feed shows it
    assert.same({ { seq = seq + 1, client = 677, kind = "contact", record_id = id, action = "update" } },
      changes_since(seq))
    assert.equal(504, vendor_code(c:call("ws_login", { x_rsi_token = token(c), web_ident = sent.v_mail,
      web_passe = "Secret123" })))
    local r = assert(info_ws(id)).contact
    assert.equal("DUPONT", r.name)
    assert.equal("", r.web_identifiant)
    local listed = false
    for _, m in ipairs(assert(c:call("ws_cat_contacts_liste", { id_liste = 16 }))) do
      listed = listed or m.contact.id == id
    end
    assert.is_true(listed)
    -- the token is no longer logged in; the identifier is free again
    local _, err = c:call("ws_suppression_compte", { x_rsi_token = jeton })
    assert.equal(602, err.code)
    assert.equal("Session non identifiée", err.detail)
    assert.is_table((ccontact { w_identifiant = sent.v_mail }))
  end)

  it("needs a running session", function()
    assert.equal(605, vendor_code(client():call("ws_suppression_compte", { x_rsi_token = ("E"):rep(32) })))
  end)
end)

describe("lists", function()
  it("lists the web lists and events of the client", function()
    local msg, st = client():call("ws_cat_listes")
    assert.same({ code = 2, traitement = "ok", message = "Traitement effectué" }, st)
    assert.same({
      { id = 16, titre_court = "TEST2", type = "Fichier", web = true, liste = true },
      { id = 17, titre_court = "Gala", type = "Fichier", web = true, liste = false },
    }, msg)
    assert.same({}, assert(client { client_id = 100 }:call("ws_cat_listes")))
    assert.equal(3, vendor_code(client { password = "mauvais" }:call("ws_cat_listes")))
  end)

  it("shows the contacts put in a list by liste[] of ws_ccontact", function()
    local a = assert(ccontact { liste = { 16, 17 }, web_civil = "Mme", v_nom = "MARTIN", v_prenom = "Léa" })
    local b = assert(ccontact { liste = { 17 } })
    local msg, st = client():call("ws_cat_contacts_liste", { id_liste = 17 })
    assert.equal(2, st.code)
    local ids = {}
    for _, m in ipairs(msg) do ids[m.contact.id] = m end
    local m = ids[a.contact.id_contact]
    assert.is_table(m)
    assert.same({ id = a.contact.id_contact, genre = "Mme", nom = "MARTIN", prenom = "Léa" }, m.contact)
    assert.equal(a.contact.id, m.clistru_id)
    assert.equal(a.contact.mail, m.mail_envoi)
    assert.same({ id = 0, structure = "" }, m.structure)
    assert.equal("integer", math.type(m.id))
    assert.is_table(ids[b.contact.id_contact])
    local in16 = assert(client():call("ws_cat_contacts_liste", { id_liste = 16 }))
    local found = false
    for _, x in ipairs(in16) do
      if x.contact.id == a.contact.id_contact then found = true end
      assert.are_not.equal(b.contact.id_contact, x.contact.id)
    end
    assert.is_true(found)
    assert.equal(4, vendor_code(client():call("ws_cat_contacts_liste", { id_liste = 18 }))) -- not on the web
    assert.equal(4, vendor_code(client():call("ws_cat_contacts_liste", { id_liste = 404 })))
    assert.equal(4, vendor_code(client { client_id = 100 }:call("ws_cat_contacts_liste", { id_liste = 17 })))
  end)
end)

describe("docs/sandbox-contacts.md", function()
  it("has a seeding snippet that runs as written", function()
    local f = assert(io.open("docs/sandbox-contacts.md"))
    local doc = f:read("a")
    f:close()
    local code = assert(doc:match("## For seeds and other groups.-```lua\n(.-)```"), "no snippet")
    local path = os.tmpname()
    local n
    code, n = code:gsub('"/tmp/seeded%.db"', ("%q"):format(path))
    assert.equal(1, n)
    assert(load(code, "=sandbox-contacts.md"))()
    local db = assert(dbmod.open(path, services.schemas()))
    local id = db:one("SELECT id_contact FROM contacts WHERE client = 677").id_contact
    local rec = contacts.get(db, 677, id)
    db:close()
    os.remove(path)
    assert.equal("DUPONT", rec.name)
    assert.is_true(rec.code_envoi[1].checked)
    assert.equal("Fournisseur", rec.Niveau_de_relations[1].Niveau_relation)
  end)
end)
