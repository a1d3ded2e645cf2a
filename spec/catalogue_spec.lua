-- Specs for the generated lua/billetterie/codes.lua and catalogue.lua.
-- Run from the repository root:
--   LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' lua5.4 /usr/bin/busted spec/catalogue_spec.lua
--   LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' luajit /usr/bin/busted spec/catalogue_spec.lua

local codes = require("billetterie.codes")
local catalogue = require("billetterie.catalogue")

local REFERENCE = os.getenv("BILLETTERIE_REFERENCE") or "../shared/reference/labilletterie-ws.json"

local function count(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

local read_file = require("spec.support.util").read_file

local function file_exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- os.execute returns true (5.2+) or 0 (5.1/LuaJIT) on success
local function run(cmd)
  local a, _, c = os.execute(cmd)
  return a == true or a == 0 or c == 0
end

local function interpreter()
  if run("command -v lua5.4 >/dev/null 2>&1") then return "lua5.4" end
  return "luajit"
end

local function tmpdir()
  local name = os.tmpname()
  os.remove(name)
  assert(run("mkdir -p '" .. name .. "'"))
  return name
end

local function generate_into(dir)
  local cmd = string.format("%s tools/gen_catalogue.lua '%s' '%s'", interpreter(), REFERENCE, dir)
  assert(run(cmd), "generator failed: " .. cmd)
  return read_file(dir .. "/catalogue.lua"), read_file(dir .. "/codes.lua")
end

describe("codes (annex 4.2)", function()
  -- exact messages and traitement as printed in table 4.2.2 of the seed
  local SAMPLE = {
    [1] = { "Une erreur s'est produite", false },
    [2] = { "Traitement effectué", true },
    [3] = { "Accès web service refusé", false },
    [4] = { "Problème de paramètre", false },
    [5] = { "Pas de communication avec le serveur", false },
    [6] = { "Problème taille requête", false },
    [7] = { "Le site est actuellement en maintenance", false },
    [102] = { "Abonnement non trouvé", false },
    [210] = { "Billet créé", false },
    [211] = { "Liste d\u{2019}attente non autorisée pour la représentation", false },
    [503] = { "Pas de contact trouvé", false },
    [513] = { "Contact créé", true },
    [515] = { "Identifiant déjà existant", false },
    [518] = { "Adresse mail existe déjà", false },
    [523] = { "Mot de passe ne respecte pas les règles", false },
    [524] = { "Mot de passe et confirmation différents", false },
    [526] = { "Contact trouvé", true },
    [528] = { "Ancien mot de passe incorrect", false },
    [529] = { "Il faut choisir un autre mot de passe différent de l'ancien", false },
    [534] = { "Compte supprimé avec succès", true },
    [603] = { "Session initialisée", true },
    [604] = { "Session identifiée", true },
    [608] = { "Jeton créé", true },
    [610] = { "Impossible de créer la session mauvais identifiant", false },
    [611] = { "Session déconnectée", true },
    [701] = { "Acces au paiement", true },
    [802] = { "Ce bon n\u{2019}est plus valide", false },
    [900] = { "Erreur requête", false },
    [901] = { "Organisme créé", true },
    [904] = { "La fiche organisme n\u{2019}a pas été trouvée", false },
    [906] = { "La fiche organisme a été trouvée", true },
    [907] = { "Criteres :l'id_formulaire est incorrecte", false },
    [1000] = { "En modification, les attributs id_adresse, id_organisme et id_contact ne correspondent pas", false },
    [1100] = { "Les champs [id_organisme] et [contacts] sont obligatoires.", false },
    [1105] = { "Valeur incorrecte pour le champ [action_attachement]. Valeurs acceptées [attacher] ou [detacher].", false },
    [1111] = { "Il y a eu un problème dans la requête (voir en retour le tableau errors des contacts ou de l\u{2019}organisme)", false },
    [1115] = { "Requête réalisée avec succès (retour si aucune erreur n\u{2019}est retournée).", true },
    [1119] = { "Fonction du contact détachée avec succès.", true },
    [1302] = { "Film non disponible à la vente", false },
  }

  it("holds the 117 codes of table 4.2.2 plus 534", function()
    assert.are.equal(118, count(codes))
  end)

  it("has the exact message and ok flag for a representative sample", function()
    for code, want in pairs(SAMPLE) do
      local c = codes[code]
      assert.is_table(c, "missing code " .. code)
      assert.are.equal(want[1], c.message, "message of " .. code)
      assert.are.equal(want[2], c.ok, "ok flag of " .. code)
    end
  end)

  it("gives every code an integer key, a message, a boolean ok and a category", function()
    local categories = {
      ["Générique"] = true, Abonnement = true, Spectacle = true, Article = true,
      Prestation = true, Contact = true, Session = true, Panier = true,
      ["Bons cadeaux"] = true, Organisme = true, Adresse = true,
      Attachement = true, Film = true,
    }
    for code, c in pairs(codes) do
      assert.are.equal("number", type(code))
      assert.are.equal(code, math.floor(code))
      assert.is_string(c.message)
      assert.is_true(#c.message > 0)
      assert.is_boolean(c.ok)
      assert.is_truthy(categories[c.category], "category of " .. code)
      if c.note ~= nil then assert.is_string(c.note) end
    end
  end)

  it("has no duplicate key in the generated file", function()
    local src = assert(read_file("lua/billetterie/codes.lua"))
    local seen, n = {}, 0
    for k in src:gmatch("\n  %[(%d+)%] = ") do
      assert.is_nil(seen[k], "duplicate code " .. k)
      seen[k] = true
      n = n + 1
    end
    assert.are.equal(count(codes), n)
  end)

  it("keeps the categories of the table", function()
    assert.are.equal("Générique", codes[1].category)
    assert.are.equal("Session", codes[603].category)
    assert.are.equal("Organisme", codes[906].category)
    assert.are.equal("Attachement", codes[1111].category)
    assert.are.equal("Contact", codes[534].category)
  end)
end)

describe("catalogue", function()
  local services = catalogue.services
  local KNOWN_TYPES = {
    string = true, integer = true, boolean = true, date = true,
    base64_json = true, json = true, bracket_array = true, bracket_map = true,
    contact_fields = true,
  }
  local CREDENTIAL_PARAMS = {}
  for _, list in pairs(catalogue.credentials) do
    for _, name in ipairs(list) do CREDENTIAL_PARAMS[name] = true end
  end

  local function param(svc, name)
    for _, p in ipairs(services[svc].params) do
      if p.name == name then return p end
    end
  end

  it("names its source", function()
    assert.are.equal("Spécifications techniques L@billetterie, revision 13 (02/2024)", catalogue.source)
  end)

  it("has exactly 30 callable services and 3 pushes", function()
    assert.are.equal(30, count(services))
    assert.are.equal(3, count(catalogue.pushes))
    for _, name in ipairs({ "notify_impression_carte", "ws_det_achat#notification", "postmessage" }) do
      assert.is_table(catalogue.pushes[name], name)
      assert.is_nil(services[name], name)
    end
  end)

  it("describes the credential modes", function()
    local c = catalogue.credentials
    assert.are.same({ "x_rsi_ws_login", "x_rsi_ws_mdp", "x_rsi_client" }, c.ws)
    assert.are.same({ "x_rsi_token" }, c.token)
    assert.are.same({ "x_rsi_ws_login", "x_rsi_ws_mdp", "x_rsi_client", "x_rsi_token" }, c.ws_and_token)
    assert.are.same({ one_of = { "token", "ws" } }, c.ws_or_token)
    assert.are.same({ "x_rsi_pwd_key" }, c.pwd_key)
    assert.are.same({ "x_rsi_modele", "x_rsi_login", "x_rsi_client", "x_rsi_api_key" }, c.api_key)
    assert.are.same({}, c.none)
    for _, mode in ipairs(c.ws_or_token.one_of) do assert.is_table(c[mode]) end
  end)

  it("lists the secrets", function()
    for _, n in ipairs({ "x_rsi_ws_mdp", "x_rsi_token", "x_rsi_pwd_key", "x_rsi_api_key",
                         "web_passe", "v_passe", "v_passec", "v_ancien_passe" }) do
      assert.is_true(catalogue.secrets[n], n)
    end
    assert.is_nil(catalogue.secrets.x_rsi_ws_login)
    assert.is_nil(catalogue.secrets.w_identifiant)
  end)

  for _, group in ipairs({ "services", "pushes" }) do
    it("gives every entry of " .. group .. " the mandatory keys and valid params", function()
      for key, s in pairs(catalogue[group]) do
        assert.are.equal(key, s.name)
        for _, f in ipairs({ "section", "title", "summary", "path", "method", "host", "auth", "response", "envelope" }) do
          assert.is_string(s[f], key .. "." .. f)
        end
        assert.is_falsy(s.summary:find("\n"), key .. " summary is one line")
        assert.is_table(catalogue.credentials[s.auth], key .. " auth " .. s.auth)
        assert.is_truthy(s.response == "json" or s.response == "xml", key)
        if s.response == "xml" then
          assert.is_table(s.xml_arrays, key)
        else
          assert.is_nil(s.xml_arrays, key)
        end
        assert.is_table(s.params, key)
        local names = {}
        for _, p in ipairs(s.params) do
          assert.is_string(p.name)
          assert.is_nil(names[p.name], key .. ": duplicate param " .. p.name)
          names[p.name] = true
          assert.is_falsy(p.name:find("[%[%]]"), key .. "." .. p.name .. " has brackets")
        end
        for _, p in ipairs(s.params) do
          local where = key .. "." .. p.name
          assert.is_truthy(KNOWN_TYPES[p.type], where .. " type " .. tostring(p.type))
          assert.is_nil(CREDENTIAL_PARAMS[p.name], where .. " is a credential")
          if p.required ~= nil then assert.is_true(p.required, where) end
          if p.max ~= nil then assert.are.equal("number", type(p.max), where) end
          if p.enum ~= nil then assert.is_true(#p.enum > 0, where) end
          for _, n in ipairs(p.needs or {}) do
            assert.is_true(names[n] == true, where .. " needs unknown " .. n)
          end
          if p.secret then assert.is_true(catalogue.secrets[p.name], where) end
          if catalogue.secrets[p.name] then assert.is_true(p.secret, where .. " not marked secret") end
          if p.type == "bracket_map" then assert.is_string(p.key, where) end
          if p.object then assert.is_table(catalogue.objects[p.object], where .. " object") end
          for _, it in ipairs(p.items or {}) do
            assert.is_truthy(KNOWN_TYPES[it.type], where .. "." .. it.name)
          end
        end
        for _, field in ipairs({ "codes", "codes_likely" }) do
          assert.is_table(s[field], key .. "." .. field)
          for _, code in ipairs(s[field]) do
            assert.is_table(codes[code], key .. " code " .. code)
          end
        end
      end
    end)
  end

  it("puts callable services on the site or api host, without leading slash", function()
    for key, s in pairs(services) do
      assert.is_truthy(s.host == "site" or s.host == "api", key)
      assert.is_truthy(s.method == "POST" or s.method == "GET", key)
      assert.are_not.equal("/", s.path:sub(1, 1), key)
      if key ~= "ws_liste_fiches_modifiees" then
        assert.are.equal(key, s.path)
        assert.are.equal("site", s.host)
        assert.are.equal("POST", s.method)
      end
    end
  end)

  it("sends ws_liste_fiches_modifiees to the api host with GET", function()
    local s = services.ws_liste_fiches_modifiees
    assert.are.equal("ws_execute_programme", s.path)
    assert.are.equal("GET", s.method)
    assert.are.equal("api", s.host)
    assert.are.equal("api_key", s.auth)
    assert.are.equal("statut_data", s.envelope)
    assert.are.same({ x_rsi_modele = "ws_liste_fiches_modifiees" }, s.fixed)
    assert.is_true(param("ws_liste_fiches_modifiees", "ts").required)
    assert.are.equal("AAAA-MM-DDTHH:MM:SS", param("ws_liste_fiches_modifiees", "ts").format)
  end)

  it("uses the credential mode of the seed for every service", function()
    local want = {
      ws_programmation = "ws", ws_cat_spectacle = "ws", ws_cat_abonnement = "ws",
      ws_cat_article = "ws", ws_det_spectacle = "ws", ws_det_representation = "ws",
      ws_det_abonnement = "ws", ws_det_article = "ws", ws_idsession = "ws",
      ws_status_session = "token", ws_deconnexion_session = "ws_and_token",
      ws_info_formulaire = "none", ws_ccontact = "token", ws_login = "token",
      ws_modification_contact = "ws_or_token", ws_modification_pwd = "pwd_key",
      ws_info_contact = "ws_or_token", ws_suppression_compte = "token",
      ws_cat_histo_achat = "ws", ws_det_achat = "ws", ws_recap_achat = "ws",
      ws_info_telechargement = "token", ws_historique_contact = "token",
      ws_cat_listes = "ws", ws_cat_contacts_liste = "ws", ws_info_organisme = "ws",
      ws_organisme_creation = "ws", ws_organisme_modification = "ws",
      ws_organisme_contacts = "ws", ws_liste_fiches_modifiees = "api_key",
    }
    assert.are.equal(count(want), count(services))
    for name, auth in pairs(want) do
      assert.are.equal(auth, services[name].auth, name)
    end
    for _, name in ipairs({ "ws_modification_contact", "ws_info_contact" }) do
      local modes = {}
      for _, m in ipairs(services[name].auth_modes) do modes[m.mode] = m end
      assert.is_table(modes.token, name)
      assert.is_table(modes.ws, name)
    end
    assert.are.same({ "x_rsi_token" }, services.ws_modification_pwd.obsolete_params)
  end)

  it("answers in XML exactly for the catalogue and purchase services", function()
    local xml = {
      ws_programmation = true, ws_cat_spectacle = true, ws_cat_abonnement = true,
      ws_cat_article = true, ws_det_spectacle = true, ws_det_representation = true,
      ws_det_abonnement = true, ws_det_article = true, ws_cat_histo_achat = true,
      ws_det_achat = true,
    }
    for name, s in pairs(services) do
      assert.are.equal(xml[name] and "xml" or "json", s.response, name)
    end
    assert.are.same({ "caddy" }, services.ws_cat_histo_achat.xml_arrays)
    assert.are.same({ "article", "billet", "carte", "prestation" }, services.ws_det_achat.xml_arrays)
    for _, e in ipairs({ "SALLE", "GRILLE", "SPECTACLE", "REPRESENTATION" }) do
      local found = false
      for _, x in ipairs(services.ws_cat_spectacle.xml_arrays) do found = found or x == e end
      assert.is_true(found, e)
    end
  end)

  it("distinguishes base64 JSON, plain JSON and bracket parameters", function()
    local b64 = {
      { "ws_organisme_creation", "organisme" }, { "ws_organisme_creation", "adresses" },
      { "ws_organisme_creation", "Niveau_de_relations" }, { "ws_organisme_creation", "contacts" },
      { "ws_organisme_modification", "organisme" }, { "ws_organisme_modification", "adresses" },
      { "ws_organisme_modification", "Niveau_de_relations" }, { "ws_organisme_modification", "contacts" },
      { "ws_organisme_contacts", "contacts" }, { "ws_ccontact", "Adresses" },
      { "ws_ccontact", "Niveau_de_relations" }, { "ws_modification_contact", "Adresses" },
      { "ws_modification_contact", "Niveau_de_relations" },
    }
    for _, sp in ipairs(b64) do
      assert.are.equal("base64_json", param(sp[1], sp[2]).type, sp[1] .. "." .. sp[2])
    end
    assert.are.equal("json", param("ws_organisme_creation", "criteres").type)
    assert.are.equal("json", param("ws_organisme_modification", "criteres").type)
    assert.are.same({ "critere" }, param("ws_organisme_modification", "criteres").aliases)
    local liste = param("ws_ccontact", "liste")
    assert.are.equal("bracket_array", liste.type)
    assert.are.equal("integer", liste.item_type)
    local m = param("ws_modification_contact", "liste_maj_code_envoi")
    assert.are.equal("bracket_map", m.type)
    assert.are.same({ 1, 2, 3 }, m.enum)
    assert.are.same({ "maj_code_envoi" }, m.needs)
    assert.are.equal("id_codeenvoi", m.key)
    assert.are.equal("bracket_map", param("ws_modification_contact", "liste_maj_interet").type)
    assert.are.equal("contact_fields", param("ws_ccontact", "champs").type)
    assert.is_true(param("ws_ccontact", "champs").required)
  end)

  it("keeps parameters, order, formats and dependencies of the seed", function()
    local function names(svc)
      local out = {}
      for i, p in ipairs(services[svc].params) do out[i] = p.name end
      return out
    end
    assert.are.same({ "filtre", "date_modif", "date_debut", "date_fin" }, names("ws_programmation"))
    assert.are.same({ "filtre", "date_fin" }, param("ws_programmation", "date_debut").needs)
    assert.are.equal("AAAAMMJJ", param("ws_cat_spectacle", "date_modif").format)
    assert.are.equal("jj/mm/aaaa", param("ws_cat_histo_achat", "date_debut").format)
    assert.are.same({ "V", "A" }, param("ws_cat_histo_achat", "etat_caddy").enum)
    assert.are.same({ "id_organisme", "get_contact", "get_criteres" }, names("ws_info_organisme"))
    assert.is_true(param("ws_info_organisme", "id_organisme").required)
    assert.are.same({ "id_formulaire", "champs", "v_passe", "v_passec", "creation_compte",
                      "account_home", "liste", "Adresses", "Niveau_de_relations" }, names("ws_ccontact"))
    assert.are.same({ "id_formulaire", "champs", "maj_code_envoi", "liste_maj_code_envoi",
                      "maj_interet", "liste_maj_interet", "Adresses", "id_contact",
                      "Niveau_de_relations", "v_passe", "v_passec" }, names("ws_modification_contact"))
    assert.are.same({ "w_identifiant", "v_passe", "v_ancien_passe" }, names("ws_modification_pwd"))
    assert.are.equal(80, param("ws_modification_pwd", "w_identifiant").max)
    assert.are.same({ "web_ident", "web_passe" }, names("ws_login"))
    assert.are.same({ "id_contact", "format" }, names("ws_recap_achat"))
    assert.are.same({ "tableau" }, param("ws_recap_achat", "format").enum)
    assert.are.same({ "id_caddy" }, names("ws_det_achat"))
    assert.are.equal("string", param("ws_det_achat", "id_caddy").type)
    assert.are.same({ "id_organisme", "contacts" }, names("ws_organisme_contacts"))
    assert.are.equal(8, #param("ws_organisme_contacts", "contacts").items)
    assert.are.same({ "ts", "type_export", "Filtre_client" }, names("ws_liste_fiches_modifiees"))
    assert.are.same({ "filtre", "categorie", "categ_sec_un", "categ_sec_deux", "code_regroup" },
                    names("ws_historique_contact"))
    assert.are.same({ "id_formulaire" }, names("ws_info_formulaire"))
    assert.are.same({ "id_formulaire", "id_contact" }, names("ws_info_contact"))
    local total = 0
    for _, s in pairs(services) do total = total + #s.params end
    assert.are.equal(70, total)   -- with v_passe/v_passec of ws_modification_contact (2.3.3.2)
  end)

  it("keeps the seed's typographic apostrophes in titles", function()
    assert.are.equal("Détail d\u{2019}un spectacle", services.ws_det_spectacle.title)
    assert.are.equal("Information fiche organisme", services.ws_info_organisme.title)
    assert.are.equal("2.6.1", services.ws_info_organisme.section)
  end)

  it("documents the per-service codes", function()
    assert.are.same({ 603 }, services.ws_idsession.codes)
    assert.are.same({ 611 }, services.ws_deconnexion_session.codes)
    assert.are.same({ 534 }, services.ws_suppression_compte.codes)
    assert.are.same({ 102 }, services.ws_info_telechargement.codes)
    assert.are.same({ 1, 2, 3, 4, 5, 6, 7 }, catalogue.generic_codes)
  end)

  it("maps the contact fields of annex 4.1", function()
    local by_send = {}
    for _, f in ipairs(catalogue.contact_fields) do
      assert.is_string(f.send)
      assert.is_nil(by_send[f.send], "duplicate " .. f.send)
      by_send[f.send] = f
      assert.is_string(f.type)
    end
    assert.are.equal(43, #catalogue.contact_fields)
    assert.are.equal(4, #catalogue.contact_fields_read_only)
    assert.are.equal(3, #catalogue.contact_fields_extra_received)
    assert.are.equal("name", by_send.v_nom.receive)
    assert.are.equal(38, by_send.v_nom.max)
    assert.are.equal(80, by_send.w_identifiant.max)
    assert.are.equal("Adress4", by_send.v_adr4.receive)
    -- historically swapped rows, exactly as printed
    assert.are.equal("champ_libre_14", by_send.vW_Commentaire6.receive)
    assert.are.equal("champ_libre_15", by_send.vW_Commentaire7.receive)
    assert.are.equal("champ_libre_6", by_send.vW_Commentaire14.receive)
    assert.are.equal("champ_libre_7", by_send.vW_Commentaire15.receive)
    assert.are.equal("champ_libre_8", by_send.vW_Commentaire8.receive)
    assert.are.equal("bracket_array", by_send.interet.type)
    assert.are.equal("bracket_array", by_send.code_envoi.type)
    assert.are.equal("AAAA-MM-JJ", by_send.v_naissance.format)
  end)

  it("carries the objects of annex 4.3-4.6 and the password rules", function()
    for _, o in ipairs({ "adresse", "organisme", "niveau_de_relations", "criteres_in",
                         "criteres_out", "organisme_contact" }) do
      assert.is_table(catalogue.objects[o], o)
      assert.is_true(#catalogue.objects[o].fields > 0, o)
    end
    assert.are.equal(18, #catalogue.objects.adresse.fields)
    assert.are.equal(8, catalogue.password_rules.min_length)
    assert.are.same({ "@" }, catalogue.password_rules.forbidden_chars)
    assert.are.equal(523, catalogue.password_rules.violation_code)
  end)
end)

describe("generator", function()
  local have_ref = file_exists(REFERENCE)

  local function maybe(name, fn)
    if have_ref then
      it(name, fn)
    else
      pending(name .. " (reference " .. REFERENCE .. " absent)")
    end
  end

  maybe("is deterministic", function()
    local d1, d2 = tmpdir(), tmpdir()
    local cat1, codes1 = generate_into(d1)
    local cat2, codes2 = generate_into(d2)
    assert.is_string(cat1)
    assert.is_string(codes1)
    assert.are.equal(cat1, cat2)
    assert.are.equal(codes1, codes2)
    run("rm -rf '" .. d1 .. "' '" .. d2 .. "'")
  end)

  maybe("matches the committed files", function()
    local d = tmpdir()
    local cat, cds = generate_into(d)
    assert.are.equal(read_file("lua/billetterie/catalogue.lua"), cat)
    assert.are.equal(read_file("lua/billetterie/codes.lua"), cds)
    run("rm -rf '" .. d .. "'")
  end)
end)
