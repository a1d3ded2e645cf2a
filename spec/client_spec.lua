-- The client against a real HTTP peer (nginx answering the spec's own
-- example bodies): envelopes, errors, encoding, secrets, coroutines.
local billetterie = require "billetterie"
local core = require "billetterie.core"

local nginx
local PASSWORD = "xrsimdp-secret"

local function client(url, extra)
  -- retries off here: spec/retry_spec.lua tests them
  local opts = { url = url, login = "xrsitest", password = PASSWORD, client_id = 677, timeout = 5, retries = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function form_fields(body)
  local t = {}
  for pair in body:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    v = v:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    t[k] = v
  end
  return t
end

setup(function() nginx = require("spec.support.nginx").start() end)
teardown(function() if nginx then nginx.stop() end end)

describe("c:call success", function()
  it("sends the client's credentials, a caller's own credential in their place, and a changed option", function()
    local url = nginx.canned("creds", [[{"retour":{"statut":{"code":603,"traitement":"ok","message":"ok","extra":"x"},"message":{}}}]])
    local c = client(url)
    local _, statut = assert(c:call("ws_idsession"))
    assert.equal("x", statut.extra)   -- the vendor's statut as it came, unknown keys kept
    assert.same({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = PASSWORD, x_rsi_client = "677" },
      form_fields(select(3, nginx.last_request("creds"))))
    -- the account's own credentials per call: only on a client made with strict = false
    local loose = client(url, { strict = false })
    assert(loose:call("ws_idsession", { x_rsi_client = 678 }))
    assert.same({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = PASSWORD, x_rsi_client = "678" },
      form_fields(select(3, nginx.last_request("creds"))))
    c.client_id = 100
    assert(c:call("ws_idsession"))
    assert.same({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = PASSWORD, x_rsi_client = "100" },
      form_fields(select(3, nginx.last_request("creds"))))
  end)

  it("returns retour.message and the statut, codes as integers", function()
    local url = nginx.canned("idsession", [[{"retour": {"statut": {"code": 603, "message": "Session initialisée", "traitement": "ok"},
      "message": {"duree": "PT48H", "jeton": "A25DD850FF131140BA09A8B9ADFEE79A", "temps_restant": 172800,
      "id_session": "", "commande": {"id": "070401758672", "temps_restant": 0, "status": 0}}}}]])
    local msg, statut = client(url):call("ws_idsession")
    assert.same({ code = 603, traitement = "ok", message = "Session initialisée" }, statut)
    assert.equal("603", tostring(statut.code))
    assert.equal("A25DD850FF131140BA09A8B9ADFEE79A", msg.jeton)
    assert.equal("172800", tostring(msg.temps_restant))
    assert.equal("070401758672", msg.commande.id)
    local method, uri, body = nginx.last_request("idsession")
    assert.equal("POST", method)
    assert.equal("/canned/idsession/ws_idsession", uri)
    assert.same({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = PASSWORD, x_rsi_client = "677" }, form_fields(body))
  end)

  it("reads an answer that starts with a UTF-8 byte order mark, JSON or XML, streamed or not", function()
    local bom = "\239\187\191"
    local url = nginx.canned("bomjson", bom .. [[{"retour":{"statut":{"code":603,"traitement":"ok","message":"ok"},
      "message":{"jeton":"A25DD850FF131140BA09A8B9ADFEE79A"}}}]])
    local msg, statut = client(url):call("ws_idsession")
    assert.equal(603, statut and statut.code, tostring(statut))
    assert.equal("A25DD850FF131140BA09A8B9ADFEE79A", msg.jeton)
    url = nginx.canned("bomxml", bom .. [[<?xml version="1.0" encoding="UTF-8"?>
<CATALOGUE><SALLES><SALLE><SALLE_ID>28</SALLE_ID><NOM>THÉÂTRE</NOM></SALLE></SALLES></CATALOGUE>]])
    local doc, st = client(url):call("ws_programmation")
    assert.equal("CATALOGUE", st and st.root, tostring(st))
    assert.equal(28, doc.SALLES.SALLE[1].SALLE_ID)
    local names = {}
    for salle, err in client(url):call("ws_programmation", { each = "SALLE" }) do
      assert.is_not_false(salle, tostring(err))
      names[#names + 1] = salle.NOM
    end
    assert.same({ "THÉÂTRE" }, names)
  end)

  it("sends ids read from an answer exactly as the vendor wrote them", function()
    local url = nginx.canned("organisme", [[{"retour":{"message":{"organisme":{"id_organisme":5442,"intitule":"Le Pont"}},
      "statut":{"code":906,"traitement":"ok","message":"La fiche organisme a été trouvée"}}}]])
    local c = client(url)
    local msg = assert(c:call("ws_info_organisme", { id_organisme = 5442 }))
    assert(c:call("ws_info_organisme", { id_organisme = msg.organisme.id_organisme, get_contact = 1 }))
    local _, _, body = nginx.last_request("organisme")
    assert.matches("&id_organisme=5442&", "&" .. body .. "&", 1, true)
    assert.not_matches("5442%.0", body)
  end)

  it("encodes base64-JSON and plain JSON parameters from Lua tables", function()
    local url = nginx.canned("creation", [[{"retour":{"message":{"organisme":{"id_organisme":77}},"detail":"",
      "statut":{"code":901,"traitement":"ok","message":"organisme créé"}}}]])
    local msg, statut = client(url):call("ws_organisme_creation", {
      organisme = { intitule = "Théâtre du Pont", nature = "Association" },
      adresses = { { type_adresse = "Principale", ville = "Lyon" } },
      criteres = { id_formulaire = 6869, liste_champs = { { nom = "champ_1", valeur = 603 } } },
    })
    assert.equal(77, msg.organisme.id_organisme)
    assert.equal("", statut.detail)
    local fields = form_fields(select(3, nginx.last_request("creation")))
    local cjson = require "cjson"
    local organisme = cjson.decode(core.b64decode(fields.organisme))
    assert.equal("Théâtre du Pont", organisme.intitule)
    assert.equal("Lyon", cjson.decode(core.b64decode(fields.adresses))[1].ville)
    assert.matches('^{.*"id_formulaire":6869', fields.criteres)
    assert.matches('"valeur":603[,}]', fields.criteres)
  end)

  it("reads every envelope variant of the spec", function()
    -- retour_traitement: message is a string
    local url = nginx.canned("pwd", [[{"retour":{"message":"mot de passe mis a jour","traitement":"ok",
      "statut":{"code":2,"traitement":"ok","message":"Traitement effectue"}}}]])
    local msg, statut = client(url, { pwd_key = "0123456789abcdef0123456789abcdef" })
      :call("ws_modification_pwd", { w_identifiant = "a@b.fr", v_passe = "Secret123" })
    if msg == nil then error(tostring(statut)) end
    assert.equal("mot de passe mis a jour", msg)
    assert.equal(2, statut.code)
    -- retour_flat: no statut object, lists beside code/traitement/message
    url = nginx.canned("flat", [[{"retour":{"code":102,"traitement":"ok","message":"Traitement effectué",
      "liste_telechargement":[{"commande":"070401758672"}],"liste_non_telechargeable":[]}}]])
    msg, statut = client(url):call("ws_info_telechargement", { x_rsi_token = "A25DD850FF131140BA09A8B9ADFEE79A" })
    assert.equal(102, statut.code)
    assert.equal("070401758672", msg.liste_telechargement[1].commande)
    assert.is_nil(msg.code)
    -- retour_historique: no statut, no code
    url = nginx.canned("histo", [[{"retour":{"historique":[{"prix":5}],"traitement":"ok","message":"traitement réalisé"}}]])
    msg, statut = client(url):call("ws_historique_contact", { x_rsi_token = "A25DD850FF131140BA09A8B9ADFEE79A" })
    if msg == nil then error(tostring(statut)) end
    assert.equal(5, msg.historique[1].prix)
    assert.equal("traitement réalisé", statut.message)
    -- retour_erreur (ws_suppression_compte): statut + erreur.détail, no message
    url = nginx.canned("suppr", [[{"retour":{"statut":{"code":534,"traitement":"ko","message":"Suppression impossible"},
      "erreur":{"détail":"commande en cours"}}}]])
    local _, err = client(url):call("ws_suppression_compte", { x_rsi_token = "A25DD850FF131140BA09A8B9ADFEE79A" })
    assert.equal(534, err.code)
    assert.equal("commande en cours", err.detail)
    assert.matches("(commande en cours)", tostring(err), 1, true)
    -- statut_data on the api host, sent as GET with the api key credentials
    url = nginx.canned("api", [[{"statut":{"code":2,"traitement":"ok","message":"ok"},"data":{"contacts":[{"id":7}]}}]])
    msg, statut = client(nginx.url, { api_url = url, api_login = "WSCE", api_key = "0123456789abcdef0123456789abcdef01234567" })
      :call("ws_liste_fiches_modifiees", { ts = "2020-01-07T10:30:00" })
    if msg == nil then error(tostring(statut)) end
    assert.equal(7, msg.contacts[1].id)
    -- where the next call starts: this call's time less the overlap
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", statut.next_ts)
    local now = 1700000000
    local _, st2 = client(nginx.url, { api_url = url, api_login = "WSCE", api_key = "0123456789abcdef0123456789abcdef01234567",
      clock = function() return now end, sync_overlap = 120 }):call("ws_liste_fiches_modifiees", { ts = "2020-01-07T10:30:00" })
    assert.equal(os.date("%Y-%m-%dT%H:%M:%S", now - 120), st2.next_ts)
    local method, uri = nginx.last_request("api")
    assert.equal("GET", method)
    assert.matches("^/canned/api/ws_execute_programme%?", uri)
    assert.matches("x_rsi_modele=ws_liste_fiches_modifiees", uri, 1, true)
    assert.matches("x_rsi_login=WSCE", uri, 1, true)
    assert.matches("ts=2020-01-07T10%3A30%3A00", uri, 1, true)
    -- message array
    url = nginx.canned("recap", [[{"retour":{"message":[{"prix_total":2.4}],"statut":{"code":2,"traitement":"ok","message":"ok"}}}]])
    msg = client(url):call("ws_recap_achat", { id_contact = 12, format = "tableau" })
    assert.equal(2.4, msg[1].prix_total)
  end)

  it("decodes XML answers into tables, lists as arrays", function()
    local url = nginx.canned("caddy", [[<?xml version="1.0" encoding="UTF-8"?>
<caddy><id>073101758907</id><produits><cartes><carte><libelle>Carte Déclic</libelle><billets>
<billet><ref_spect>1876</ref_spect></billet></billets></carte></cartes></produits></caddy>]])
    local doc, statut = client(url):call("ws_det_achat", { id_caddy = "073101758907" })
    if not doc then error(tostring(statut)) end
    assert.equal("caddy", statut.root)
    assert.equal("073101758907", doc.id)
    local carte = doc.produits.cartes.carte
    carte = carte[1] or carte
    assert.equal("Carte Déclic", carte.libelle)
    -- an empty document is an empty table, and lists of one are still lists
    url = nginx.canned("emptyhisto", [[<?xml version="1.0"?><xmlrequest/>]])
    local none = assert(client(url):call("ws_cat_histo_achat", {}))
    assert.same({}, none)
    url = nginx.canned("onehisto", [[<xmlrequest><caddy><id>070401758672</id><transaction><montant>7540</montant></transaction></caddy></xmlrequest>]])
    local one = assert(client(url):call("ws_cat_histo_achat", {}))
    assert.equal("070401758672", one.caddy[1].id)
    assert.equal(7540, one.caddy[1].transaction.montant)
  end)
end)

describe("c:call failures", function()
  it("turns a vendor ko into a vendor error with the code", function()
    local url = nginx.canned("ko904", [[{"retour":{"message":{},"statut":{"code":904,"traitement":"ko","message":"La fiche organisme n'existe pas"}}}]])
    local msg, err = client(url):call("ws_info_organisme", { id_organisme = 999999 })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(904, err.code)
    assert.equal("ws_info_organisme", err.ws)
    assert.equal(200, err.http_status)
    assert.is_false(err.retryable)
    assert.equal("La fiche organisme n'existe pas", err.message)
    assert.equal("billetterie: ws_info_organisme: vendor error 904: La fiche organisme n'existe pas", tostring(err))
    assert.is_true(billetterie.errors.is(err))
  end)

  it("marks maintenance (7) and no communication (5) as retryable", function()
    local url = nginx.canned("ko7", [[{"retour":{"statut":{"code":7,"traitement":"ko","message":"Le site est actuellement en maintenance"}}}]])
    local _, err = client(url):call("ws_idsession")
    assert.equal(7, err.code)
    assert.is_true(err.retryable)
  end)

  it("reports an HTML page, a 5xx, a truncated or empty body with a kind and a readable message", function()
    local _, err = client(nginx.canned("html", "<html><head><title>Erreur interne</title></head><body>x</body></html>"))
      :call("ws_idsession")
    assert.equal("decode", err.kind)
    assert.matches("HTML page: Erreur interne", err.message, 1, true)

    _, err = client(nginx.url .. "status?code=503&x=/"):call("ws_idsession")
    assert.equal("http", err.kind)
    assert.equal(503, err.http_status)
    assert.is_true(err.retryable)
    assert.matches("Service Unavailable", err.message)

    _, err = client(nginx.canned("trunc", '{"retour":{"statut":{"code":603,')):call("ws_idsession")
    assert.equal("decode", err.kind)
    assert.matches("malformed JSON", err.message)

    _, err = client(nginx.canned("empty", "")):call("ws_idsession")
    assert.equal("decode", err.kind)

    _, err = client(nginx.canned("nostatus", '{"contact":{"id":1}}')):call("ws_idsession")
    assert.equal("decode", err.kind)
  end)

  it("reports a timeout and a refused connection", function()
    local _, err = client(nginx.url .. "sleepy/", { timeout = 0.3 }):call("ws_idsession")
    assert.equal("timeout", err.kind)
    assert.is_true(err.retryable)
    _, err = client("http://127.0.0.1:1/"):call("ws_idsession")
    assert.equal("network", err.kind)
  end)

  it("reports an answer over max_size as a non-retryable http error", function()
    -- (a Content-Length over max_size: spec/core_spec.lua, same errkind)
    local _, err = client(nginx.url .. "big?n=5000&x=/", { max_size = 100 }):call("ws_idsession")
    assert.equal("http", err.kind)
    assert.is_false(err.retryable)
    assert.matches("response larger than max_size (100 bytes)", err.message, 1, true)
  end)

  it("tells a failed TLS handshake (retryable) from a failed verification (not)", function()
    local _, err = client((nginx.url:gsub("^http:", "https:"))):call("ws_idsession")
    assert.equal("network", err.kind)
    assert.is_true(err.retryable)
    assert.matches("TLS handshake failed: ", err.message, 1, true)
    assert.not_matches("CA bundle", err.message, 1, true)
    _, err = client(nginx.tls_url):call("ws_idsession")
    assert.equal("network", err.kind)
    assert.is_false(err.retryable)
    assert.matches("TLS verification failed", err.message, 1, true)
  end)

  it("validates parameters before sending anything", function()
    local url = nginx.canned("never", "{}")
    local c = client(url)
    local cases = {
      { "ws_info_organisme", {}, "id_organisme", "is required" },
      { "ws_info_organisme", { id_organisme = "12a" }, "id_organisme", "integer" },
      { "ws_info_organisme", { id_organisme = 1, get_contact = 2 }, "get_contact", "one of" },
      { "ws_info_organisme", { id_organisme = 1, typo = 1 }, "typo", "not a parameter" },
      { "ws_programmation", { date_modif = "20190701" }, "date_modif", "needs filtre" },
      { "ws_programmation", { filtre = 1, date_modif = "2019-07-01" }, "date_modif", "AAAAMMJJ" },
      { "ws_programmation", { filtre = 1, date_debut = "20190101" }, "date_debut", "needs date_fin" },
      { "ws_status_session", {}, "x_rsi_token", "required" },
      { "ws_nope", {}, nil, "unknown web service" },
    }
    for _, case in ipairs(cases) do
      local msg, err = c:call(case[1], case[2])
      assert.is_nil(msg)
      assert.equal("invalid_param", err.kind)
      assert.equal(case[3], err.param)
      assert.matches(case[4], err.message, 1, true)
      assert.is_false(err.retryable)
    end
    assert.is_nil(nginx.last_request("never"))
    local _, err = billetterie.new{ url = url }:call("ws_idsession")
    assert.equal("x_rsi_ws_login", err.param)
  end)

  it("raises for programmer mistakes in options", function()
    assert.has_error(function() billetterie.new{ url = "ftp://x" } end)
    assert.has_error(function() billetterie.new{ url = "http://x/", passwd = "x" } end)
    assert.has_error(function() billetterie.new{ url = "http://x/", timeout = "10" } end)
    assert.has_error(function() client(nginx.url):call(42) end)
  end)
end)

describe("secrets", function()
  it("never appear in a client, an error or its string", function()
    local url = nginx.canned("echoes", ([[{"retour":{"statut":{"code":3,"traitement":"ko","message":"Accès refusé pour %s"}}}]]):format(PASSWORD))
    local c = client(url)
    local _, err = c:call("ws_idsession")
    assert.equal(3, err.code)
    assert.not_matches(PASSWORD, tostring(err), 1, true)
    assert.not_matches(PASSWORD, err.message, 1, true)
    assert.not_matches(PASSWORD, tostring(c), 1, true)
    -- nowhere in the client's tables, after a call either (its reused request)
    local function scan(t, path, seen)
      if seen[t] then return end
      seen[t] = true
      for k, v in pairs(t) do
        if type(v) == "string" then
          assert.falsy(v:find(PASSWORD, 1, true), "client field " .. path .. "." .. tostring(k))
        elseif type(v) == "table" then
          scan(v, path .. "." .. tostring(k), seen)
        end
      end
    end
    scan(c, "c", { [require("billetterie.catalogue")] = true })
  end)

  it("keep a call's own secret parameters (a session token) out of its errors", function()
    local token = "A25DD850FF131140BA09A8B9ADFEE79A"
    local url = nginx.canned("echotoken", ([[{"retour":{"statut":{"code":605,"traitement":"ko","message":"Session %s invalide"}}}]]):format(token))
    local _, err = client(url):call("ws_status_session", { x_rsi_token = token })
    assert.equal(605, err.code)
    assert.equal("Session *** invalide", err.message)
    assert.not_matches(token, tostring(err), 1, true)
  end)
end)

describe("billetterie.run", function()
  it("overlaps calls made from tasks and returns results in order", function()
    local c = client(nginx.url .. "sleepy/")
    local t0 = os.time()
    local results = billetterie.run(function()
      local tasks = {}
      for i = 1, 8 do tasks[i] = billetterie.spawn(function() return c:call("ws_idsession") end) end
      local out = {}
      for i = 1, 8 do
        local msg = tasks[i]:wait()
        out[i] = msg and msg.slept
      end
      return out
    end)
    assert.same({ true, true, true, true, true, true, true, true }, results)
    -- eight half-second answers overlapped (4 s in a row)
    assert.is_true(os.time() - t0 <= 2)
  end)

  it("keeps other tasks alive when one fails, and raises in the waiter only", function()
    local c = client(nginx.url .. "sleepy/")
    local ok_result, failure = billetterie.run(function()
      local bad = billetterie.spawn(function() error("boom") end)
      local good = billetterie.spawn(function() return c:call("ws_idsession") end)
      local caught = select(2, pcall(bad.wait, bad))
      return good:wait(), caught
    end)
    assert.is_true(ok_result.slept)
    assert.matches("boom", failure)
  end)

  it("blocks outside run and refuses spawn there", function()
    local msg = client(nginx.url .. "sleepy/"):call("ws_idsession")
    assert.is_true(msg.slept)
    assert.has_error(function() billetterie.spawn(function() end) end)
  end)
end)

describe("contacts (annex 4.1 and 4.7)", function()
  local TOKEN = "A25DD850FF131140BA09A8B9ADFEE79A"
  local OK = [[{"retour":{"message":{"id_contact":12},"detail":"","statut":{"code":501,"traitement":"ok","message":"ok"}}}]]

  it("takes send names or receive names and sends the send names", function()
    local url = nginx.canned("ccontact", OK)
    local msg, err = client(url):call("ws_ccontact", {
      x_rsi_token = TOKEN, id_formulaire = 3, name = "Dupont", v_prenom = "Jean", mail = "j@d.fr",
      v_passe = "Secret123", v_passec = "Secret123", liste = { 12, 13 }, interet = { 4 },
    })
    assert.is_table(msg, tostring(err))
    local fields = form_fields(select(3, nginx.last_request("ccontact")))
    assert.equal("Dupont", fields.v_nom)
    assert.equal("j@d.fr", fields.v_mail)
    assert.is_nil(fields.name)
    local body = select(3, nginx.last_request("ccontact"))
    assert.matches("liste[]=12&liste[]=13", body, 1, true)
    assert.matches("interet[]=4", body, 1, true)
  end)

  it("maps the historically swapped fields as the spec prints them", function()
    local catalogue = require "billetterie.catalogue"
    local url = nginx.canned("swapped", OK)
    local c = client(url)
    local seen = 0
    for _, f in ipairs(catalogue.contact_fields) do
      if f.swapped and f.receive then
        seen = seen + 1
        local value = f.type == "number" and "12" or "x"   -- "Numérique" fields take numbers only
        assert(c:call("ws_modification_contact", { id_contact = 7, [f.receive] = value }))
        local fields = form_fields(select(3, nginx.last_request("swapped")))
        assert.equal(value, fields[f.send], f.receive .. " goes as " .. f.send)
      end
    end
    assert.equal(4, seen)
    -- the spec's own rows: champ_libre_6 is received for vW_Commentaire14
    assert(c:call("ws_modification_contact", { id_contact = 7, champ_libre_6 = "6" }))
    assert.equal("6", form_fields(select(3, nginx.last_request("swapped"))).vW_Commentaire14)
  end)

  it("checks lengths, dates and the password rules with the vendor's codes, sending nothing", function()
    local url = nginx.canned("refused", OK)
    local c = client(url)
    local cases = {
      { { v_nom = string.rep("é", 39), v_passe = "Secret123" }, "v_nom", nil, "longer than 38" },
      { { v_naissance = "17/05/1980", v_passe = "Secret123" }, "v_naissance", nil, "AAAA-MM-JJ" },
      { { v_passe = "short1A", v_passec = "short1A" }, "v_passe", 523, "at least 8" },
      { { v_passe = "nouppercase1", v_passec = "nouppercase1" }, "v_passe", 523, "upper-case" },
      { { v_passe = "Pass@word1", v_passec = "Pass@word1" }, "v_passe", 523, "@" },
      { { v_passe = "Password1", v_passec = "Password2" }, "v_passec", 524, "differs" },
      { { name = "x", v_nom = "y", v_passe = "Secret123" }, "name", nil, "given twice" },
    }
    for _, case in ipairs(cases) do
      local given = { x_rsi_token = TOKEN, id_formulaire = 3 }
      for k, v in pairs(case[1]) do given[k] = v end
      local msg, err = c:call("ws_ccontact", given)
      assert.is_nil(msg)
      assert.equal("invalid_param", err.kind)
      assert.equal(case[2], err.param)
      assert.equal(case[3], err.code)
      assert.matches(case[4], err.message, 1, true)
      assert.not_matches("Password", tostring(err), 1, true)
    end
    -- strict = false lets unknown parameters through, never a bad password
    local _, err = client(url, { strict = false }):call("ws_info_organisme", { id_organisme = 1, v_passe = "short" })
    assert.equal(523, err.code)
    assert.equal("v_passe", err.param)
    assert.is_nil(nginx.last_request("refused"))
    -- date windows in order: the purchase period strictly, the catalogue's may be one day
    local dates = {
      { "ws_cat_histo_achat", { date_debut = "01/07/2019", date_fin = "01/07/2019" }, "must be later than date_debut" },
      { "ws_cat_histo_achat", { date_debut = "01/07/2019", date_fin = "30/06/2020" } },
      { "ws_programmation", { filtre = 1, date_debut = "20190701", date_fin = "20190630" }, "must not be before date_debut" },
      { "ws_cat_spectacle", { filtre = 1, date_debut = "20190701", date_fin = "20190701" } },
    }
    for _, case in ipairs(dates) do
      local msg, e = client(nginx.canned("dates", OK)):call(case[1], case[2])
      if case[3] then
        assert.is_nil(msg)
        assert.equal("date_fin", e.param)
        assert.matches(case[3], e.message, 1, true)
      else
        assert.is_true(msg ~= nil or e.kind ~= "invalid_param", tostring(e))
      end
    end
  end)

  it("sends maps as liste_maj_code_envoi[id]=value", function()
    local url = nginx.canned("majce", [[{"retour":{"message":{},"statut":{"code":2,"traitement":"ok","message":"ok"}}}]])
    assert(client(url):call("ws_modification_contact", {
      id_contact = 7, liste_maj_code_envoi = { [152] = 3, [145] = 2 }, maj_code_envoi = 1,
    }))
    local body = select(3, nginx.last_request("majce"))
    assert.matches("liste_maj_code_envoi[145]=2&liste_maj_code_envoi[152]=3", body, 1, true)
    assert.matches("x_rsi_ws_login=xrsitest", body, 1, true)   -- credential mode: no token
    assert.not_matches("x_rsi_token", body, 1, true)
  end)

  it("sends the catalogue's maps keyed even when their ids are 1..n", function()
    local url = nginx.canned("majkeys", [[{"retour":{"message":{},"statut":{"code":508,"traitement":"ok","message":"ok"}}}]])
    local c = client(url)
    assert(c:modification_contact{ id_contact = 7, maj_code_envoi = 1, liste_maj_code_envoi = { [1] = 2 },
      maj_interet = 1, liste_maj_interet = { 3, 2 } })
    local body = select(3, nginx.last_request("majkeys"))
    assert.matches("liste_maj_code_envoi[1]=2&liste_maj_interet[1]=3&liste_maj_interet[2]=2", body, 1, true)
    assert.not_matches("[]", body, 1, true)
    -- a token call (the caller's own credential) goes through the same encoding
    assert(c:call("ws_modification_contact", { x_rsi_token = ("A"):rep(32), maj_code_envoi = 1,
      liste_maj_code_envoi = { [1] = 3 } }))
    assert.matches("liste_maj_code_envoi[1]=3", select(3, nginx.last_request("majkeys")), 1, true)
  end)

  it("refuses id_contact with a session token before sending (the token's contact is used)", function()
    local url = nginx.canned("idtok", [[{"retour":{"message":{},"statut":{"code":508,"traitement":"ok","message":"ok"}}}]])
    local counting = require("spec.support.counting").new()
    local c = client(url, { transport = counting })
    for _, ws in ipairs{ "ws_modification_contact", "ws_info_contact" } do
      local msg, err = c:call(ws, { x_rsi_token = ("A"):rep(32), id_contact = 3 })
      assert.is_nil(msg)
      assert.same({ "invalid_param", "id_contact" }, { err.kind, err.param })
      assert.matches("session's contact", err.message, 1, true)
    end
    assert.equal(0, counting.n)
    assert(c:call("ws_modification_contact", { id_contact = 3 }))   -- the web-service account: fine
    assert.equal(1, counting.n)
  end)
end)

describe("clear raises for common mistakes", function()
  it("names the session for a session-only method called on a client", function()
    local c = client("http://127.0.0.1:9/")
    for _, m in ipairs{ "historique_contact", "ccontact", "info_telechargement", "suppression_compte" } do
      assert.has_error(function() c[m](c, {}) end,
        m .. " needs a session: local s = c:session(); s:login(...); s:" .. m .. "{}")
    end
    assert.has_error(function() c:logout() end, "logout needs a session: local s = c:session(); s:login(...); s:logout()")
    assert.not_function(c.historique_contact)   -- type(c[name]) still tells a client's own method
    assert.is_function(c.info_contact)          -- ws_or_token: on both
    assert.equal("xrsitest", c.login)           -- the option keeps its name and its value
  end)
end)

describe("a password written in the URL", function()
  it("is masked in tostring(client) and scrubbed from every error", function()
    local pw = "url-Secret-77"
    local url = nginx.canned("urlpw", ("<html><head><title>500 for http://wsuser:%s@host/ (%s)</title></head></html>")
      :format(pw, pw), 500)
    local with = url:gsub("^http://", "http://wsuser:" .. pw .. "@")
    local c = client(with)
    assert.equal(with, c.url)
    assert.not_matches(pw, tostring(c), 1, true)
    assert.matches("http://wsuser:***@", tostring(c), 1, true)
    local _, err = c:call("ws_idsession")
    assert.equal("http", err.kind)
    assert.matches("wsuser:***@", err.message, 1, true)
    assert.not_matches(pw, tostring(err), 1, true)
    -- api_url too, and a URL without a password is shown as it is
    local c2 = client("http://127.0.0.1:9/", { api_url = "http://api:" .. pw .. "@127.0.0.1:9/" })
    assert.equal("billetterie client http://127.0.0.1:9/ (login xrsitest)", tostring(c2))
    local _, neterr = c2:call("ws_liste_fiches_modifiees", { ts = "2024-01-01T00:00:00" })
    assert.not_matches(pw, tostring(neterr), 1, true)
  end)

  it("is refused when a '/', '?' or '#' in it is not percent-encoded (it would be read as host and port)", function()
    for _, url in ipairs{ "http://bob:S3c?retPW@vendor.example/", "http://bob:S3c#retPW@vendor.example/",
                          "http://bob:S3c/retPW@vendor.example/", "http://bob:1234/retPW@vendor.example/",
                          "http://bob/x:retPW@vendor.example/", "http://bob:99?retPW@vendor.example/",
                          "http://bob:Pa@retPW@vendor.example/" } do
      local ok, err = pcall(billetterie.new, { url = url, login = "xrsitest", password = "xrsimdp", client_id = 677 })
      assert.is_false(ok)
      assert.matches("must be percent-encoded", err, 1, true)
      assert.is_nil(err:find("retPW", 1, true), url)
      ok, err = pcall(require("billetterie.s360").new, { url = url, operator = "DEMO_B2C", password = "s360-secret" })
      assert.is_false(ok)
      assert.matches("must be percent-encoded", err, 1, true)
    end
    -- encoded, and the usual addresses, are taken
    for _, url in ipairs{ "http://bob:S3c%3FretPW@vendor.example/", "http://vendor.example:8080/", "http://[::1]:8080/",
                          "https://vendor.example/", "http://u:p@[::1]:9/" } do
      assert(billetterie.new{ url = url, login = "xrsitest", password = "xrsimdp", client_id = 677 })
    end
  end)

  it("is left out of page links and cache keys, and masked by the S-360 client too", function()
    local pw = "url-Secret-78"
    local c = client("https://shop:" .. pw .. "@billetterie.example.fr/")
    assert.equal("https://billetterie.example.fr/spectacle?id_spectacle=515",
      assert(c:page("spectacle", { id_spectacle = 515 })))
    local key = require("billetterie.client_cache").key(c, require("billetterie.catalogue").services.ws_cat_listes, {})
    assert.not_matches(pw, key, 1, true)
    local s360 = require("billetterie.s360").new{ url = "http://op:" .. pw .. "@127.0.0.1:9/s360",
      institution = "DEMO", operator = "DEMO_B2C", password = "s360-secret", retries = 0 }
    assert.not_matches(pw, tostring(s360), 1, true)
    local _, err = s360:getAvailableAutorizations()
    assert.equal("network", err.kind)
    assert.not_matches(pw, tostring(err), 1, true)
  end)
end)

describe("organismes", function()
  it("reports a partly failed ws_organisme_contacts (1111) with every contact's results kept", function()
    local url = nginx.canned("orgcontacts", [[{"retour": {
      "statut": {"code": 1111, "message": "Il y a eu un problème dans la requête.", "traitement": "ko"},
      "message": {"contacts": [
        {"id_contact": 20899, "success": [{"code": 526, "message": "Contact trouvé", "champ": "id_contact"},
                                         {"code": 1118, "message": "Fonction du contact attachée avec succès.", "champ": "action_fonction"}]},
        {"id_contact": 36, "success": [{"code": 526, "message": "Contact trouvé", "champ": "id_contact"}],
         "errors": [{"code": 1112, "message": "Impossible de détacher un contact qui n'est pas attaché à l’organisme.", "champ": "action_attachement"}]}],
        "organisme": [{"id_organisme": 9505, "success": {"code": 906, "champ": "id_organisme", "message": "La fiche organisme a été trouvée"}}]}}}]])
    local msg, err = client(url):call("ws_organisme_contacts", {
      id_organisme = 9505,
      contacts = { { id_contact = 20899, action_fonction = "attacher", fonction = "Administrateur" },
                   { id_contact = 36, action_attachement = "detacher" } },
    })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(1111, err.code)
    assert.is_true(err.partial)
    local by_id = {}
    for _, c in ipairs(err.payload.contacts) do by_id[c.id_contact] = c end
    assert.equal(1118, by_id[20899].success[2].code)
    assert.equal(1112, by_id[36].errors[1].code)
    -- what went on the wire is the vendor's own example
    local fields = form_fields(select(3, nginx.last_request("orgcontacts")))
    local sent = require("cjson").decode(core.b64decode(fields.contacts))
    assert.equal(20899, sent[1].id_contact)
    assert.equal("detacher", sent[2].action_attachement)
  end)

  it("keeps no payload on a plain ko", function()
    local url = nginx.canned("plainko", [[{"retour":{"message":{},"statut":{"code":904,"traitement":"ko","message":"x"}}}]])
    local _, err = client(url):call("ws_info_organisme", { id_organisme = 1 })
    assert.is_nil(err.payload)
    assert.is_nil(err.partial)
  end)
end)

describe("streaming an XML answer (each = TAG)", function()
  local function season(n)
    local parts = { '<?xml version="1.0" encoding="UTF-8"?><CATALOGUE><SALLES><SALLE SALLE_ID="1">Grande salle</SALLE></SALLES><SPECTACLES>' }
    for i = 1, n do
      parts[#parts + 1] = ('<SPECTACLE IDENT="%d" NOM="Spectacle n°%d"><TYPE>Théâtre</TYPE><REPRESENTATIONS>'
        .. '<REPRESENTATION REP_DATE="12/03/2027" REP_HEURE="20:30:00" REP_SALLE="1"/></REPRESENTATIONS></SPECTACLE>'):format(i, i)
    end
    parts[#parts + 1] = "</SPECTACLES></CATALOGUE>"
    return table.concat(parts)
  end

  local function temp_files()
    local set, p = {}, io.popen("ls /tmp/lua_* 2>/dev/null")
    for line in p:lines() do set[line] = true end
    p:close()
    return set
  end

  it("yields every element in bounded memory and leaves no file behind", function()
    local url = nginx.canned("season", season(20000))   -- about 3.5 MB
    local c = client(url)
    local files_before = temp_files()
    collectgarbage()
    local before = collectgarbage("count")
    local n, peak, last = 0, 0, nil
    for show, err in c:programmation{ each = "SPECTACLE" } do
      assert(show, tostring(err))
      n = n + 1
      last = show
      if n % 1000 == 0 then
        collectgarbage()   -- what is still held, not garbage not yet collected
        peak = math.max(peak, collectgarbage("count") - before)
      end
    end
    assert.equal(20000, n)
    assert.equal(20000, last.IDENT)   -- an id: an integer (catalogue xml_integers)
    assert.equal("Théâtre", last.TYPE)
    -- the whole document as tables would take tens of MB; one element at a time stays small
    assert.is_true(peak < 1024, "Lua memory held grew by " .. peak .. " KB")
    for path in pairs(temp_files()) do
      if not files_before[path] then
        local f = io.open(path)
        local head = f and f:read(200) or ""
        if f then f:close() end
        assert.not_matches("<CATALOGUE>", head, 1, true)
      end
    end
  end)

  it("reports failures as false, err inside the loop", function()
    local cases = {
      { nginx.canned("stream_html", "<html><head><title>Maintenance</title></head></html>"), "decode" },
      { nginx.canned("stream_ko", [[{"retour":{"statut":{"code":3,"traitement":"ko","message":"Accès web service refusé"}}}]]), "vendor" },
      { nginx.canned("stream_bad", "<CATALOGUE><SPECTACLE IDENT='1'></CATALOGUE>"), "decode" },
      { "http://127.0.0.1:1/", "network" },
    }
    for _, case in ipairs(cases) do
      local got = {}
      for show, err in client(case[1]):programmation{ each = "SPECTACLE" } do
        got[#got + 1] = { show, err }
      end
      local last = got[#got]
      assert.is_false(last[1])
      assert.equal(case[2], last[2].kind)
    end
    local got = {}
    for show, err in client(nginx.url):programmation{ each = "SPECTACLE", date_modif = "20190701" } do got[#got + 1] = err end
    assert.equal("invalid_param", got[1].kind)
    assert.has_error(function() client(nginx.url):info_organisme{ id_organisme = 1, each = "X" } end)
  end)
end)
