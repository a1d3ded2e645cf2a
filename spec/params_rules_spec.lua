-- Parameter rules read from the catalogue (seed 004, "Spécifications
-- techniques L@billetterie"): items of arrays and maps, params required in
-- one auth mode, documented defaults, filter criteria of shop pages, annex
-- objects, Numérique fields, the password of ws_modification_contact, the
-- two spellings of Adresses and the Latin-1 letters of annex 4.7. Local
-- refusals are checked against the real sandbox: nothing is sent.
local catalogue = require "billetterie.catalogue"
local params = require "billetterie.params"
local pages = require "billetterie.pages"
local json = require "billetterie.json"
local core = require "billetterie.core"
local sandbox = require "spec.support.sandbox"

local S = catalogue.services
local BASE = "http://billetterieweb.fr/"

-- prepare as the client calls it: strict, no credential given
local function prepare(ws, given, mode)
  return params.prepare(S[ws], given, {}, true, mode)
end

-- -> the bad param's name and the reason, asserting a refusal
local function refused(ws, given, mode)
  local fields, name, reason, code = prepare(ws, given, mode)
  assert.is_nil(fields, ws .. " accepted what it should refuse")
  return name, reason, code
end

local sb
setup(function() sb = sandbox.start() end)
teardown(function() if sb then sb:stop() end end)

-- The real libcurl transport, counting the requests that leave the machine.
local counting = require("spec.support.counting").new()
local function client() return sb:client{ transport = counting } end

-- a local invalid_param error naming `param`, with nothing sent
local function refused_locally(call, param, reason) return counting:refused(call, param, reason) end

describe("items of array and map params (2.3.1.2, 2.3.3.2)", function()
  it("checks liste[] items as Entier Long", function()
    assert(prepare("ws_ccontact", { v_passe = "Secret123", liste = { 12, "13" } }))
    local name, reason = refused("ws_ccontact", { v_passe = "Secret123", liste = { 12, "x" } })
    assert.equal("liste[2]", name)
    assert.matches("integer", reason)
    assert.equal("liste[1]", (refused("ws_ccontact", { v_passe = "Secret123", liste = { 1.5 } })))
  end)

  it("checks the keys and the 1/2/3 values of liste_maj_code_envoi[id]", function()
    assert(prepare("ws_modification_contact",
      { id_contact = 1, maj_code_envoi = 1, liste_maj_code_envoi = { [145] = 1, [152] = 3, ["156"] = "2" } }))
    local name, reason = refused("ws_modification_contact", { id_contact = 1, maj_code_envoi = 1, liste_maj_code_envoi = { [152] = 9 } })
    assert.equal("liste_maj_code_envoi[152]", name)
    assert.matches("one of 1, 2, 3", reason, 1, true)
    name, reason = refused("ws_modification_contact", { id_contact = 1, maj_code_envoi = 1, liste_maj_code_envoi = { abc = 2 } })
    assert.equal("liste_maj_code_envoi[abc]", name)
    assert.matches("id_codeenvoi", reason, 1, true)
    name = refused("ws_modification_contact", { id_contact = 1, maj_interet = 1, liste_maj_interet = { [96] = 0 } })
    assert.equal("liste_maj_interet[96]", name)
  end)

  it("leaves the items of code_envoi[] / interet[] untyped, as the seed does (4.1)", function()
    -- ids or codes: "Tableau contenant un objet code envoi" says neither
    assert(prepare("ws_modification_contact", { id_contact = 7, code_envoi = { 10000100, "001_002_" } }))
    assert.equal("code_envoi[1]", (refused("ws_modification_contact", { id_contact = 7, code_envoi = { {} } })))
  end)

  it("sends nothing for a bad map value", function()
    refused_locally(function()
      return client():modification_contact{ id_contact = 1, maj_code_envoi = 1, liste_maj_code_envoi = { [152] = 9 } }
    end, "liste_maj_code_envoi[152]", "one of 1, 2, 3")
  end)
end)

describe("params required in one auth mode (2.3.3, 2.3.5)", function()
  it("records required_when as data the checks read", function()
    local by = params.by_name(S.ws_info_contact)
    assert.equal("token", by.id_formulaire.required_in_mode)
    assert.equal("ws", by.id_contact.required_in_mode)
    assert.equal("token mode", by.id_formulaire.required_when)   -- kept for the docs
    assert.same({ "action_fonction" }, params.by_name(S.ws_organisme_contacts).contacts.items[2].required_unless)
    assert.same({ "categorie", "categ_sec_un", "categ_sec_deux", "code_regroup" },
      params.by_name(S.ws_historique_contact).filtre.required_with_any)
  end)

  it("refuses ws mode without id_contact, naming the param and the mode", function()
    for _, ws in ipairs{ "ws_info_contact", "ws_modification_contact" } do
      local name, reason = refused(ws, {})
      assert.equal("id_contact", name)
      assert.equal("is required in ws mode", reason)
    end
    local c = client()
    refused_locally(function() return c:info_contact{} end, "id_contact", "ws mode")
    refused_locally(function() return c:modification_contact{ v_nom = "Durand" } end, "id_contact", "ws mode")
  end)

  it("applies id_formulaire's documented default (Par défaut 1) in token mode only", function()
    local token = { x_rsi_token = ("A"):rep(32) }
    local fields = assert(params.prepare(S.ws_info_contact, token, { x_rsi_token = true }, true, "token"))
    assert.equal(1, fields.id_formulaire)
    fields = assert(prepare("ws_info_contact", { id_contact = 12 }, "ws"))
    assert.is_nil(fields.id_formulaire)                      -- ignored in ws mode (2.3.3.3)
    fields = assert(params.prepare(S.ws_info_contact, { id_formulaire = 2, x_rsi_token = "T" },
      { x_rsi_token = true }, true, "token"))
    assert.equal(2, fields.id_formulaire)
    assert.equal(1, assert(prepare("ws_info_formulaire", {})).id_formulaire)   -- 2.2.4.2
  end)

  it("lets a logged-in session read its record with no id_formulaire", function()
    local c = sb:client()
    local s = assert(c:session())
    local created, st = s:ccontact{ name = "Rules", surname = "Anaïs",
      mail = "anais.rules@example.fr", v_passe = "Secret123", v_passec = "Secret123" }
    assert.is_table(created, tostring(st))
    local s2 = assert(c:session())
    assert.is_table((s2:login("anais.rules@example.fr", "Secret123")))
    local info, err = s2:info_contact{}
    assert.is_table(info, tostring(err))
    assert.equal("Rules", info.contact.name)
  end)

  it("reads a conditional rule as any of its clauses", function()
    -- 2.6.4.2: action_fonction is required without action_attachement, or with fonction;
    -- action_attachement without action_fonction
    local contact = { id_contact = 1, action_attachement = "attacher", fonction = "Administrateur" }
    local name, reason = refused("ws_organisme_contacts", { id_organisme = 1, contacts = { contact } })
    assert.equal("contacts[1].action_fonction", name)
    assert.equal("is required with fonction", reason)
    contact.action_fonction = "attacher"
    assert(prepare("ws_organisme_contacts", { id_organisme = 1, contacts = { contact } }))
    name, reason = refused("ws_organisme_contacts", { id_organisme = 1, contacts = { { id_contact = 1 } } })
    assert.equal("contacts[1].action_attachement", name)
    assert.equal("is required without action_fonction", reason)
  end)
end)

describe("annex objects (2.6.x, 4.3-4.6)", function()
  it("refuses a missing, too long, mistyped or unlisted attribute, naming its path", function()
    local cases = {
      { { intitule = "Théâtre" }, "organisme.nature", "is required" },
      { { intitule = ("é"):rep(39), nature = "Association" }, "organisme.intitule", "longer than 38" },
      { { intitule = "T", nature = "A", champ_libre6 = "six" }, "organisme.champ_libre6", "must be a number" },
      { { intitule = "T", nature = "A", adresses = { { ville = ("x"):rep(39) } } },
        "organisme.adresses[1].ville", "longer than 38" },
      { { intitule = "T", nature = "A", adresses = { { prioritaire = "oui" } } },
        "organisme.adresses[1].prioritaire", "boolean" },
    }
    for _, case in ipairs(cases) do
      local name, reason = refused("ws_organisme_creation", { organisme = case[1] })
      assert.equal(case[2], name)
      assert.matches(case[3], reason, 1, true)
    end
    assert.equal("adresses[2].code_postal", (refused("ws_organisme_creation",
      { organisme = { intitule = "T", nature = "A" }, adresses = { { ville = "Lyon" }, { code_postal = 69001 } } })))
    assert.equal("contacts[1].action_attachement", (refused("ws_organisme_contacts",
      { id_organisme = 1, contacts = { { id_contact = 1, action_attachement = "lier" } } })))
    assert.equal("contacts[1].id_contact", (refused("ws_organisme_contacts",
      { id_organisme = 1, contacts = { { action_attachement = "attacher" } } })))
    assert.equal("criteres.liste_champs", (refused("ws_organisme_creation",
      { organisme = { intitule = "T", nature = "A" }, criteres = { liste_champs = "champ_1" } })))
    assert.equal("Adresses[1]", (refused("ws_modification_contact", { id_contact = 1, Adresses = { "Lyon" } })))
    -- an address list must be a list (only contacts may be one object alone, 2.6.4.2)
    assert.equal("Adresses", (refused("ws_modification_contact", { id_contact = 1, Adresses = { ville = "Lyon" } })))
    assert.equal("organisme.nature", (refused("ws_organisme_modification",
      { organisme = { id_organisme = 1, intitule = "T", nature = "" } })))       -- 2.6.3.3
    -- 4.6.1.1: valeur is an Entier Long, a list of them, or a Texte
    assert(prepare("ws_organisme_modification", { organisme = { id_organisme = 1, intitule = "T", nature = "A" },
      criteres = { id_formulaire = 6869, liste_champs = { { nom = "champ_2", valeur = { 608, 607 } },
        { nom = "champ_3", valeur = "Commentaire" } } } }))
    assert.equal("criteres.liste_champs[1].valeur[2]", (refused("ws_organisme_modification",
      { organisme = { id_organisme = 1, intitule = "T", nature = "A" },
        criteres = { liste_champs = { { nom = "champ_2", valeur = { 608, "x" } } } } })))
  end)

  it("accepts the seed's own examples and encodes them unchanged", function()
    local adresse = { adress1 = "2 rue helene boucher", adress2 = "", cedex = "", code_postal = "78280",
                      date_debut = "", date_fin = "", id_adresse = 123, id_contact = 456, id_organisme = 789,
                      pays = "FRANCE", prioritaire = true, type_adresse = "Principale", ville = "GUYANCOURT" }
    local fields = assert(prepare("ws_organisme_creation", {
      organisme = { intitule = "Ministère de la Culture", nature = "Administration", champ_libre6 = 12 },
      adresses = { adresse },
      Niveau_de_relations = { { Niveau_relation = "Fournisseur", checked = true } },
      criteres = { id_formulaire = 6869, liste_champs = { { nom = "champ_1", valeur = 603 } } },
      contacts = { { id_contact = 20899, action_fonction = "attacher", fonction = "Administrateur" } },
    }))
    assert.equal("GUYANCOURT", json.decode(core.b64decode(fields.adresses))[1].ville)
    assert.equal(6869, json.decode(fields.criteres).id_formulaire)
  end)

  it("sends nothing when an object is wrong", function()
    refused_locally(function()
      return client():organisme_creation{ organisme = { intitule = "Sans nature" } }
    end, "organisme.nature", "is required")
  end)
end)

describe("contact fields and passwords (annex 4.1, 4.7)", function()
  it("takes numbers and numeric text only for Numérique fields", function()
    for _, v in ipairs{ 12, "12", "-3", "18,50", "18.5" } do
      assert(prepare("ws_modification_contact", { id_contact = 1, vW_Commentaire8 = v }))
    end
    for _, v in ipairs{ "abc", "12a", true } do
      local name, reason = refused("ws_modification_contact", { id_contact = 1, vW_Commentaire8 = v })
      assert.equal("vW_Commentaire8", name)
      assert.equal("must be a number", reason)
    end
    -- a receive name is checked (and named) as its send name
    assert.equal("vW_Commentaire8", (refused("ws_modification_contact", { id_contact = 1, champ_libre_8 = "x" })))
  end)

  it("lets ws_modification_contact carry the password, under the rules of 4.7 (2.3.3.2)", function()
    assert(prepare("ws_modification_contact", { id_contact = 1, v_passe = "Secret123", v_passec = "Secret123" }))
    local name, reason, code = refused("ws_modification_contact", { id_contact = 1, v_passe = "secret" })
    assert.equal("v_passe", name)
    assert.equal(523, code)
    assert.is_string(reason)
    name, _, code = refused("ws_modification_contact", { id_contact = 1, v_passe = "Secret123", v_passec = "Secret124" })
    assert.equal("v_passec", name)
    assert.equal(524, code)
    local by = params.by_name(S.ws_modification_contact)
    assert.is_true(by.v_passe.secret and by.v_passec.secret)
  end)

  it("counts Latin-1 accented letters as upper and lower case", function()
    assert(prepare("ws_ccontact", { v_passe = "ÉCOLEéé1" }))
    assert(prepare("ws_ccontact", { v_passe = "àéèçùß12Ø" }))
    local _, reason = refused("ws_ccontact", { v_passe = "ÉCOLE×÷1" })
    assert.equal("needs a lower-case letter", reason)         -- × and ÷ are not letters
    _, reason = refused("ws_ccontact", { v_passe = "écoleéé1" })
    assert.equal("needs an upper-case letter", reason)
  end)

  it("refuses Adresses and adresses together, and takes either alone", function()
    local name, reason = refused("ws_modification_contact",
      { id_contact = 1, Adresses = { { ville = "Lyon" } }, adresses = { { ville = "Paris" } } })
    assert.is_true(name == "adresses" or name == "Adresses")
    assert.matches("given twice", reason, 1, true)
    assert(prepare("ws_modification_contact", { id_contact = 1, adresses = { { ville = "Paris" } } }))
    assert.equal("adresses[1].ville",
      (refused("ws_modification_contact", { id_contact = 1, adresses = { { ville = ("x"):rep(39) } } })))
  end)
end)

describe("shop page links (chapter 3)", function()
  it("adds filtre=1 to a link with a filter criterion, and refuses filtre=0", function()
    assert.equal(BASE .. "catalogue_spectacle?filtre=1&categ=chanson",
      pages.url(BASE, "catalogue_spectacle", { categ = "chanson" }))
    assert.equal(BASE .. "spectacle?id_spectacle=577&filtre=1&categ=chansons&type3=atelier",
      pages.url(BASE, "spectacle", { id_spectacle = 577, categ = "chansons", type3 = "atelier" }))
    assert.equal(BASE .. "spectacle?id_spectacle=577", pages.url(BASE, "spectacle", { id_spectacle = 577 }))
    assert.equal(BASE .. "catalogue_spectacle", pages.url(BASE, "catalogue_spectacle", {}))
    local url, err = pages.url(BASE, "catalogue_spectacle", { filtre = 0, categ = "chanson" })
    assert.is_nil(url)
    assert.equal("filtre", err.param)
    assert.same({ "date_debut", "date_fin", "categ", "type", "salle", "ville" },
      catalogue.pages.catalogue_spectacle.filter_criteria)
  end)

  it("writes spaces as %20 and keeps the unreserved characters, as the seed's links", function()
    assert.equal(BASE .. "catalogue_bc?filtre=1&famille=Bon%20cadeaux",
      pages.url(BASE, "catalogue_bc", { filtre = 1, famille = "Bon cadeaux" }))
    assert.equal(BASE .. "catalogue_abonnement?filtre=1&code_regroup=Super%20r",
      pages.url(BASE, "catalogue_abonnement", { code_regroup = "Super r" }))
    assert.equal(BASE .. "catalogue_boutique?filtre=1&famille=a-b.c_d~e%2Bf",
      pages.url(BASE, "catalogue_boutique", { famille = "a-b.c_d~e+f" }))
  end)

  it("keeps the date window of catalogue_spectacle in order (one day allowed)", function()
    local url, err = pages.url(BASE, "catalogue_spectacle", { date_debut = "30/09/2015", date_fin = "01/09/2015" })
    assert.is_nil(url)
    assert.equal("date_fin", err.param)
    assert.matches("must not be before date_debut", err.message, 1, true)
    assert.is_string(pages.url(BASE, "catalogue_spectacle", { date_debut = "04/09/2015", date_fin = "04/09/2015" }))
  end)
end)

describe("second reading of the rules", function()
  local org = { intitule = "Théâtre", nature = "Association" }

  it("takes one object alone only for contacts; other lists must be lists, without gaps", function()
    local adresse = { type_adresse = "principale", ville = "Nantes" }
    local name, reason = refused("ws_organisme_creation", { organisme = org, adresses = adresse })
    assert.equal("adresses", name)
    assert.matches("must be a list", reason)
    name = refused("ws_organisme_creation", { organisme = org, adresses = { [1] = adresse, [3] = adresse } })
    assert.equal("adresses", name)
    assert(prepare("ws_organisme_creation", { organisme = org, adresses = { adresse } }))
    assert(prepare("ws_organisme_contacts", { id_organisme = 1,
      contacts = { id_contact = 2, action_attachement = "attacher" } }))
  end)

  it("lets a Numérique contact field be cleared or written with an exponent", function()
    for _, v in ipairs{ "", "12", "-1,5", "1.5e3", ".5", 12.5 } do
      assert(prepare("ws_modification_contact", { id_contact = 1, vW_Commentaire8 = v }, "ws"), v)
    end
    for _, v in ipairs{ "abc", "1e", "1.2.3", "--1", true } do
      assert.equal("vW_Commentaire8", (refused("ws_modification_contact", { id_contact = 1, vW_Commentaire8 = v }, "ws")))
    end
  end)

  it("with strict off, still sends flat lists and maps of an unknown param", function()
    local fields = assert(params.prepare(S.ws_info_organisme, { id_organisme = 1, a = { 1, 2 }, b = { [5] = "x" } },
      {}, false))
    assert.same({ 1, 2 }, fields.a)
    assert.equal("x", fields.b[5])
    assert.is_nil((params.prepare(S.ws_info_organisme, { id_organisme = 1, a = { { 1 } } }, {}, false)))
  end)

  it("adds filtre=1 on a page that always needs it, and keeps / in query values", function()
    assert.equal(BASE .. "catalogue_bc?filtre=1&famille=Bon%20cadeaux",
      (pages.url(BASE, "catalogue_bc", { famille = "Bon cadeaux" })))
    assert.matches("date_debut=04/09/2015",
      (pages.url(BASE, "catalogue_spectacle", { date_debut = "04/09/2015", date_fin = "04/09/2015" })), 1, true)
  end)

  it("counts Œ œ Ÿ as letters of their case, and the sandbox agrees with the client", function()
    assert(prepare("ws_ccontact", { v_passe = "ŒUVRESœ1", v_passec = "ŒUVRESœ1" }, "token"))
    local s = assert(client():session())
    -- the client and its emulator apply the same rules: accented capitals count
    local msg, err = s:ccontact{ v_mail = "ecole@example.fr", v_nom = "Ecole", v_prenom = "Anne", v_passe = "ÉCOLEéé1",
                                 v_passec = "ÉCOLEéé1", id_formulaire = 1 }
    assert(msg, tostring(err))
  end)
end)
