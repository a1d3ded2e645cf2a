-- The purchase services (spec 2.4) and the push side (2.4.2.2, 2.4.6) end to
-- end: the project's client against a real sandbox started with
-- `--seed demo`. Sessions are logged in with ws_login and the seed's web
-- accounts (mail + demo password). The push receiver is a
-- billetterie.httpd server inside this process, stepped while we wait.
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local json = require "billetterie.json"
local xml = require "billetterie.xml"
local core = require "billetterie.core"
local httpd = require "billetterie.httpd"

local PASSWORD = "Garrigues-2024!" -- the demo seed's web accounts
local MAIL = { herve = "herve.richon@example.org", claire = "claire.martin@example.org",
  lan = "lan.nguyen@example.net", paul = "paul.dubois@example.com", sophie = "sophie.leroy@example.com" }
local CREDS = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = "677" }

local sb, c

setup(function()
  sb = sandbox.start { args = { "--seed", "demo" } }
  c = sb:client()
end)
teardown(function() if sb then sb:stop() end end)

local function day(days, hour)
  local d = os.date("*t")
  return os.time { year = d.year, month = d.month, day = d.day + days, hour = hour or 12 }
end
local function dmy(days) return os.date("%d/%m/%Y", day(days)) end

-- POST form fields to a path of the sandbox with curl; -> body
local function post(path, fields)
  local args = {}
  for k, v in pairs(fields) do args[#args + 1] = ("--data-urlencode '%s=%s'"):format(k, v) end
  local p = io.popen(("curl -s %s '%s%s'"):format(table.concat(args, " "), sb.url, path))
  local body = p:read("*a")
  p:close()
  return body
end

local function with_creds(t)
  local out = {}
  for k, v in pairs(CREDS) do out[k] = v end
  for k, v in pairs(t or {}) do out[k] = v end
  return out
end

local function code_of(body) return tonumber(body:match('"code":(%d+)')) end

-- A session logged in as one of the seed's contacts. -> token, contact
local function login(who, client)
  client = client or c
  local s = assert(client:call("ws_idsession"))
  local msg, st = client:call("ws_login", { x_rsi_token = s.jeton, web_ident = MAIL[who], web_passe = PASSWORD })
  assert(msg, tostring(st))
  return s.jeton, msg.contact
end

local function carts(params)
  local doc, err = c:call("ws_cat_histo_achat", params)
  assert(doc, tostring(err))
  return doc.caddy or {} -- <xmlrequest/> (no cart) is an empty table
end

local function sorted(list, k)
  local out = {}
  for i, x in ipairs(list) do out[i] = x[k] or x.contact[k] end
  table.sort(out)
  return out
end

-- Every prix_total of a <caddy>, as numbers.
local function line_totals(node, sum)
  sum = sum or 0
  if type(node) ~= "table" then return sum end
  for k, v in pairs(node) do
    if k == "prix_total" then sum = sum + tonumber(v) else sum = line_totals(v, sum) end
  end
  return sum
end

describe("ws_cat_histo_achat", function()
  it("defaults to the paid carts of today and the three previous days", function()
    local list = carts()
    assert.same({ MAIL.claire, MAIL.herve, MAIL.lan, MAIL.paul }, sorted(list, "email"))
    for _, cart in ipairs(list) do
      assert.equal("OK", cart.transaction.paye)
      assert.matches("^%d%d%d%d%d%d%d%dT%d%d%d%d%d%d$", cart.transaction.datevente)
      assert.equal("integer", math.type(cart.transaction.montant)) -- centimes (catalogue xml_integers)
      -- 12 digits, kept as text: MMDD of the sale first (leading zero kept)
      assert.is_string(cart.id)
      assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d$", cart.id)
      assert.equal(cart.transaction.datevente:sub(5, 8), cart.id:sub(1, 4))
      if cart.contact.email == MAIL.claire then
        assert.equal(7340, cart.transaction.montant)
        assert.equal("newsletter-octobre", cart.x_rsi_option)
        assert.same({ nom = "MARTIN", prenom = "Claire", email = MAIL.claire }, cart.contact)
      end
    end
  end)

  it("gives the invalidated carts with etat_caddy=A", function()
    local list = carts { etat_caddy = "A" }
    assert.equal(1, #list)
    assert.equal(MAIL.paul, list[1].contact.email)
    assert.equal("KO", list[1].transaction.paye)
    assert.equal(5000, list[1].transaction.montant)
  end)

  it("reads date_debut alone as that single day", function()
    local list = carts { date_debut = dmy(-40) }
    assert.equal(1, #list)
    assert.equal("170515-tito", list[1].x_rsi_option)
    assert.same({}, carts { date_debut = dmy(-39) })
  end)

  it("includes both bounds of a period", function()
    assert.equal(4, #carts { date_debut = dmy(-8), date_fin = dmy(-1) })
    assert.equal(3, #carts { date_debut = dmy(-7), date_fin = dmy(-1) })
    assert.equal(2, #carts { etat_caddy = "A", date_debut = dmy(-8), date_fin = dmy(-1) })
    -- the old carts of the seed are found too
    assert.equal(1, #carts { date_debut = dmy(-401), date_fin = dmy(-399) })
  end)

  it("refuses a date_fin not later than date_debut, or without it, with code 4", function()
    for _, q in ipairs {
      { date_debut = dmy(-2), date_fin = dmy(-2) },
      { date_debut = dmy(-2), date_fin = dmy(-3) },
    } do
      assert.equal(4, code_of(post("ws_cat_histo_achat", with_creds(q))))
      -- the client refuses them before sending
      local msg, err = c:call("ws_cat_histo_achat", q)
      assert.is_nil(msg)
      assert.equal("invalid_param", err.kind)
    end
    local _, err = c:call("ws_cat_histo_achat", { date_fin = dmy(-1) })
    assert.equal("invalid_param", err.kind)
    _, err = c:call("ws_cat_histo_achat", { etat_caddy = "X" })
    assert.equal("invalid_param", err.kind)
    for _, q in ipairs { { date_fin = dmy(-1) }, { etat_caddy = "X" }, { date_debut = "31/02/2026" },
      { date_debut = "2026-01-01" } } do
      assert.equal(4, code_of(post("ws_cat_histo_achat", with_creds(q))))
    end
  end)
end)

describe("ws_det_achat", function()
  local function id_of(params) return carts(params)[1].id end

  it("gives a whole cart: card with its tickets, fees, amounts in centimes", function()
    local id = id_of { date_debut = dmy(-40) }
    local doc, st = c:call("ws_det_achat", { id_caddy = id })
    assert.is_table(doc, tostring(st))
    assert.equal("caddy", st.root)
    assert.equal(id, doc.id)
    assert.equal("170515-tito", doc.x_rsi_option)
    assert.equal("M.", doc.contact.genre)
    assert.equal("RICHON", doc.contact.nom)
    assert.matches("^%x+$", doc.contact.identifiant)
    assert.equal(24, #doc.contact.identifiant)
    assert.equal(4940, doc.transaction.montant)
    assert.equal(4940, line_totals(doc.produits))
    local carte = doc.produits.cartes.carte[1]
    assert.same({ "Carte Déclic", 1500, 1500, 1, 363 },
      { carte.libelle, carte.prix_total, carte.prix_unitaire, carte.qtte, carte.ref_categ })
    assert.equal(2, #carte.billets.billet)
    local b = carte.billets.billet[1]
    assert.equal("Carte Déclic", b.libelle)
    assert.equal(0, b.frais)
    assert.equal("E-ticket", b.mode_retrait)
    assert.equal("E 2", b.liste_place)
    assert.equal("L'IGNORANT ET LE FOU", b.spectacle)
    assert.equal(12151, b.ref_rep)
    assert.equal(2185, b.ref_spect)
    assert.equal(os.date("%Y%m%d", day(5)) .. "T203000", b.dateheure)
    local fee = doc.produits.prestations.prestation[1]
    assert.same({ "FRAIS DOSSIER WEB", 240, 3, 11 }, { fee.libelle, fee.prix_total, fee.type, fee.ref_prest })
    assert.is_nil(doc.produits.billets)  -- absent collections are left out
    assert.is_nil(doc.produits.articles)
  end)

  it("counts booking fees in a ticket's prix_total; articles carry their services", function()
    local id
    for _, cart in ipairs(carts()) do
      if cart.contact.email == MAIL.claire then id = cart.id end
    end
    local doc = assert(c:call("ws_det_achat", { id_caddy = id }))
    local b = doc.produits.billets.billet
    assert.equal(2, #b)
    assert.same({ 150, 2800, 2950, "C 12" }, { b[1].frais, b[1].prix_unitaire, b[1].prix_total, b[1].liste_place })
    assert.same({ "TARIF REDUIT", 2550 }, { b[2].libelle, b[2].prix_total })
    local art = doc.produits.articles.article[1]
    assert.equal("BENABAR - BENABAR", art.libelle)
    assert.equal(1, art.prestations.prestation[1].type)
    assert.equal(doc.transaction.montant, line_totals(doc.produits))
  end)

  it("shows an invalidated cart as not paid", function()
    local doc = assert(c:call("ws_det_achat", { id_caddy = id_of { etat_caddy = "A" } }))
    assert.equal("KO", doc.transaction.paye)
    assert.equal("BON CADEAU 50 €", doc.produits.articles.article[1].libelle)
  end)

  it("answers 702 for an unknown cart, or one of another client", function()
    local id = id_of {}
    local other = billetterie.new { url = sb.url, login = "xrsitest", password = "xrsimdp", client_id = 100 }
    for _, case in ipairs { { c, "000000000000" }, { other, id } } do
      local msg, err = case[1]:call("ws_det_achat", { id_caddy = case[2] })
      assert.is_nil(msg)
      assert.equal("vendor", err.kind)
      assert.equal(702, err.code)
    end
    assert.equal(4, code_of(post("ws_det_achat", with_creds {})))
  end)
end)

describe("ws_recap_achat", function()
  local function lines(id_contact)
    local msg, st = c:call("ws_recap_achat", { id_contact = id_contact, format = "tableau" })
    assert(msg, tostring(st))
    return msg, st
  end

  it("lists every line of the contact's paid carts, in euros", function()
    local _, claire = login("claire")
    local list, st = lines(claire.id_contact)
    assert.equal(2, st.code)
    assert.equal(6, #list) -- the invalidated cart is left out
    local by = {}
    for _, l in ipairs(list) do
      assert.matches("^%d%d%d%d%d%d%d%d%d%d%d%d$", l.id_caddy)
      by[l.libelle_complet] = l
    end
    local t = assert(by["LA TRAVIATA " .. ({ "Dim", "Lun", "Mar", "Mer", "Jeu", "Ven", "Sam" })[os.date("*t", day(12)).wday]
      .. " " .. os.date("%d/%m/%Y", day(12)) .. " - 20:00 TARIF PLEIN C 12"])
    assert.same({ 28, 1.5, 29.5, true, true, false, 6, 12160, 2186 },
      { t.prix_unitaire, t.frais, t.prix_total, t.eticket, t.numerote, t.carte, t.type_produit, t.ref_rep, t.ref_spect })
    assert.matches("^http://.*print_eticket", t.lien_telechargement)
    local fee = assert(by["FRAIS DOSSIER WEB"])
    assert.same({ 5, 2.4, "3", 11 }, { fee.type_produit, fee.prix_total, fee.spectacle, fee.ref_prest })
    assert.is_nil(fee.carte) -- as in the vendor's fee example
    local art = assert(by["BENABAR - BENABAR"])
    assert.same({ 1, 15, 9, false, "" }, { art.type_produit, art.prix_total, art.ref_article, art.carte, art.spectacle })
    local counter = assert(by["CIRQUE ÉLECTRIQUE " .. ({ "Dim", "Lun", "Mar", "Mer", "Jeu", "Ven", "Sam" })[os.date("*t", day(90)).wday]
      .. " " .. os.date("%d/%m/%Y", day(90)) .. " - 20:00 TARIF PLEIN"])
    assert.same({ false, false, "", "Retrait au guichet" },
      { counter.eticket, counter.numerote, counter.lien_telechargement, counter.mode_retrait })
  end)

  it("marks cards with carte = true and ref_spect -2", function()
    local _, herve = login("herve")
    local cards = {}
    for _, l in ipairs((lines(herve.id_contact))) do
      if l.carte then
        cards[#cards + 1] = l.libelle
        assert.same({ -2, 6 }, { l.ref_spect, l.type_produit })
      end
    end
    table.sort(cards)
    -- this season's, last season's, and a membership of three years ago
    assert.same({ "Adhésion", "Carte Déclic", "Carte Déclic" }, cards)
  end)

  it("gives an empty array to a contact without purchases, 503 to an unknown one", function()
    local _, sophie = login("sophie")
    local list = lines(sophie.id_contact)
    assert.same({}, list)
    local msg, err = c:call("ws_recap_achat", { id_contact = 999999, format = "tableau" })
    assert.is_nil(msg)
    assert.equal(503, err.code)
    _, err = c:call("ws_recap_achat", { id_contact = sophie.id_contact, format = "liste" })
    assert.equal("invalid_param", err.kind)
    assert.equal(4, code_of(post("ws_recap_achat", with_creds { id_contact = sophie.id_contact, format = "liste" })))
    assert.matches('"message":%[%]', post("ws_recap_achat", with_creds { id_contact = sophie.id_contact, format = "tableau" }))
  end)
end)

describe("ws_info_telechargement", function()
  local function lists(token)
    local msg, st = c:call("ws_info_telechargement", { x_rsi_token = token })
    assert(msg, tostring(st))
    return msg.liste_telechargement, msg.liste_non_telechargeable, st
  end

  it("splits the logged-in contact's active tickets and cards", function()
    local token = login("lan")
    local yes, no, st = lists(token)
    assert.same({ code = 102, traitement = "ok", message = "Traitement effectué" }, st)
    assert.equal(2, #yes)
    local ticket, card = yes[1], yes[2]
    if ticket.type == 1 then ticket, card = card, ticket end
    assert.same({ 2, 12190, 2189, "PIERRE ET LE LOUP", "STUDIO", "NIMES", 2, 0 },
      { ticket.type, ticket.Code_rep, ticket.Num_Spectacle, ticket.spectacle, ticket.Nom_pour_Billet,
        ticket.Ville, ticket.billet_at_home, ticket.statut })
    assert.equal(os.date("%Y%m%d", day(8)) .. "T100000", ticket.DTSTART)
    assert.equal(os.date("%Y%m%d", day(8)) .. "T105000", ticket.DTEND)
    assert.matches("^%w+$", ticket.str_qrcode)
    assert.equal(22, #ticket.str_qrcode)
    assert.matches("print_eticket", ticket.lien)
    assert.equal(1, card.type)
    assert.equal("Pass Jeune", card.libelle)
    -- a ticket waiting for a proof: not downloadable, statut 100
    assert.equal(1, #no)
    local n = no[1]
    assert.same({ 12152, 100, 4, "", "", "H 4", "BI10012152/0/0/1/1/H-4", true, 3, "SERIE 2" },
      { n.Code_rep, n.statut, n.statut_justificatif, n.lien, n.str_qrcode, n.Numero_de_place, n.num_detail,
        n.Numerote, n.type, n.Zone_Tarifaire })
    assert.equal("L'IGNORANT ET LE FOU " .. os.date("%d/%m/%Y", day(6)) .. " 20:30 10,00 €", n.texte)
    assert.equal(10, n.prix)
  end)

  it("leaves box-office tickets, over performances and invalidated carts out of the downloads", function()
    local yes, no = lists((login("claire")))
    assert.equal(2, #yes) -- the two LA TRAVIATA tickets
    for _, t in ipairs(yes) do assert.equal(12160, t.Code_rep) end
    assert.equal(1, #no)  -- the box-office ticket; the invalidated concert is not listed
    assert.same({ 12201, 0, 0, "Première" }, { no[1].Code_rep, no[1].billet_at_home, no[1].statut, no[1].nature })
    local hy, hn = lists((login("herve")))
    local reps = {}
    for _, t in ipairs(hy) do reps[#reps + 1] = t.Code_rep end
    table.sort(reps)
    assert.same({ 0, 12151, 12171 }, reps) -- the card, and its tickets still to come (12210 is over)
    assert.same({}, hn)
    -- box office with a validated proof: statut 101; a card printed at the box office
    local py, pn = lists((login("paul")))
    assert.same({}, py)
    table.sort(pn, function(a, b) return a.type < b.type end)
    assert.same({ 1, "Adhésion", 0 }, { pn[1].type, pn[1].libelle, pn[1].billet_at_home })
    assert.same({ 2, 12172, 101, 1 }, { pn[2].type, pn[2].Code_rep, pn[2].statut, pn[2].statut_justificatif })
  end)

  it("answers 602 before ws_login and 605 once the session is closed", function()
    local s = assert(c:call("ws_idsession"))
    local msg, err = c:call("ws_info_telechargement", { x_rsi_token = s.jeton })
    assert.is_nil(msg)
    assert.equal(602, err.code)
    local token = login("lan")
    assert(c:call("ws_deconnexion_session", { x_rsi_token = token }))
    msg, err = c:call("ws_info_telechargement", { x_rsi_token = token })
    assert.is_nil(msg)
    assert.equal(605, err.code)
  end)
end)

describe("ws_historique_contact", function()
  local function cards(token, filters)
    local params = { x_rsi_token = token }
    for k, v in pairs(filters or {}) do params[k] = v end
    local msg, st = c:call("ws_historique_contact", params)
    assert(msg, tostring(st))
    return msg.historique, st
  end

  it("lists the cards of the last three years with the tickets booked on them", function()
    local token = login("herve")
    local list, st = cards(token)
    assert.same({ traitement = "ok", message = "traitement réalisé" }, st)
    assert.equal(2, #list) -- the membership of 1200 days ago is too old
    local now, old = list[2], list[1]
    assert.same({ true, true, 6, 3, 3, 363, "Carte Déclic", 15, 1, 38, "TH" },
      { now.active, now.valide, now.credit, now.consommation, now.solde, now.id_categ, now.libelle, now.prix,
        now.renouveler_la_carte, now.saison, now.type_saison })
    local iso = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.000Z$"
    assert.matches(iso, now.date_achat)
    assert.matches(iso, now.start)
    assert.matches(iso, now["end"])
    assert.equal(3, #now.liste_billets)
    local b = now.liste_billets[1]
    assert.same({ now.id, 12210, 2191, "GRANDE SALLE", "LA MORT DE DANTON" },
      { b.id_carte, b.id_rep, b.id_spectacle, b.salle_nom, b.spectacle })
    assert.is_false(old.active) -- its validity ended
    assert.equal(0, old.consommation)
  end)

  it("filters on the card's public category when filtre=1", function()
    local token = login("herve")
    assert.equal(2, #cards(token, { filtre = 1, code_regroup = "pass" }))
    assert.equal(2, #cards(token, { filtre = 1, categorie = "Tout Public", categ_sec_un = "abonnement" }))
    assert.same({}, cards(token, { filtre = 1, code_regroup = "ADH" }))
    local paul = cards(login("paul"), { filtre = 1, categ_sec_un = "adhésion" })
    assert.equal(1, #paul)
    assert.equal("Adhésion", paul[1].libelle)
    local msg, err = c:call("ws_historique_contact", { x_rsi_token = token, code_regroup = "PASS" })
    assert.is_nil(msg)
    assert.equal("invalid_param", err.kind)
    assert.equal(4, code_of(post("ws_historique_contact", { x_rsi_token = token, code_regroup = "PASS" })))
  end)

  it("answers 602 when nobody is logged in", function()
    local s = assert(c:call("ws_idsession"))
    local msg, err = c:call("ws_historique_contact", { x_rsi_token = s.jeton })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(602, err.code)
  end)
end)

describe("the push side", function()
  local rx, received, rx_url

  setup(function()
    received = {}
    rx = assert(httpd.new { port = 0, signals = false, handler = function(req)
      received[#received + 1] = { method = req.method, path = req.path, body = req.body,
        content_type = req.headers["content-type"] }
      return 200, { ["Content-Type"] = "text/plain" }, "OK"
    end })
    rx_url = ("http://127.0.0.1:%d/ws_creation_carte"):format(rx:port())
  end)
  teardown(function() if rx then rx:close() end end)

  -- A control call; the receiver is stepped until the sandbox answers
  -- (the sandbox waits for the receiver before it answers us).
  local engine = core.http_engine {}
  local function control(path, fields)
    local id = assert(engine:start { url = sb.url .. path, method = "POST", timeout = 30,
      body = core.form_encode(with_creds(fields)),
      headers = { "Content-Type: application/x-www-form-urlencoded" } })
    local done = false
    while not done do
      rx:step(5)
      for _, f in ipairs(engine:poll(5)) do done = done or f == id end
    end
    local status, body = engine:result(id)
    return status, json.decode(body) or body
  end

  it("POSTs the <caddy> of ws_det_achat, byte for byte, as text/xml", function()
    local id = carts { date_debut = dmy(-40) }[1].id
    local status, answer = control("_sandbox/notify", { url = rx_url, kind = "ws_det_achat", id_caddy = id })
    assert.equal(200, status)
    assert.same({ kind = "ws_det_achat", ref = id, url = rx_url, http_status = 200, delivered = true },
      { kind = answer.push.kind, ref = answer.push.ref, url = answer.push.url,
        http_status = answer.push.http_status, delivered = answer.push.delivered })
    local got = received[#received]
    assert.equal("POST", got.method)
    assert.equal("/ws_creation_carte", got.path)
    assert.matches("^text/xml", got.content_type)
    -- the same document as the pull mode (2.4.2.2)
    assert.equal(post("ws_det_achat", with_creds { id_caddy = id }), got.body)
    local doc, root = xml.decode(got.body, { arrays = { billet = true, carte = true } })
    assert.equal("caddy", root)
    assert.equal(id, doc.id)
    assert.equal(2, #doc.produits.cartes.carte[1].billets.billet)
  end)

  it("POSTs the NOTIFY of a printed card", function()
    local _, herve = login("herve")
    local id = carts { date_debut = dmy(-40) }[1].id
    local status, answer = control("_sandbox/notify", { url = rx_url, kind = "notify_impression_carte", id_caddy = id })
    assert.equal(200, status)
    assert.is_true(answer.push.delivered)
    local got = received[#received]
    -- the vendor's example has a space before "?>", libxml2 writes none
    assert.matches("^<%?xml version=\"1.0\" encoding=\"UTF%-8\" standalone=\"yes\" ?%?>\n<NOTIFY>", got.body)
    local doc, root = xml.decode(got.body)
    assert.equal("NOTIFY", root)
    assert.matches("^/CA%d%d%d%d%d%d%d%d%d%d%d%d%d$", doc.idcarte)
    assert.same({ "PASS", "RICHON", "Hervé", "M.", "", tostring(herve.id_clistru), tostring(herve.id_contact), "0" },
      { doc.type_public, doc.nom, doc.prenom, doc.civilite, doc.organisme, doc.id_clistru, doc.id_contact,
        doc.id_organisme })
    -- by card number too
    local by_card = doc.idcarte:match("^/CA0*(%d+)$")
    status, answer = control("_sandbox/notify", { url = rx_url, kind = "notify_impression_carte", id_carte = by_card })
    assert.equal(200, status)
    assert.equal(by_card, answer.push.ref)
    assert.equal(got.body, received[#received].body)
  end)

  it("records every push, delivered or not", function()
    local id = carts()[1].id
    local closed = httpd.new { port = 0, signals = false, handler = function() end }
    local dead = ("http://127.0.0.1:%d/gone"):format(closed:port())
    closed:close() -- nothing listens there any more
    local status, answer = control("_sandbox/notify", { url = dead, kind = "ws_det_achat", id_caddy = id })
    assert.equal(200, status)
    assert.is_false(answer.push.delivered)
    assert.equal(0, answer.push.http_status)
    assert.is_string(answer.push.error)
    local _, listed = control("_sandbox/pushes", {})
    assert.equal(dead, listed.pushes[1].url) -- newest first
    assert.is_true(#listed.pushes >= 4)
  end)

  it("refuses bad requests", function()
    assert.equal(400, (control("_sandbox/notify", { url = rx_url, kind = "other", id_caddy = "1" })))
    assert.equal(400, (control("_sandbox/notify", { url = "ftp://x/", kind = "ws_det_achat", id_caddy = "1" })))
    assert.equal(404, (control("_sandbox/notify", { url = rx_url, kind = "ws_det_achat", id_caddy = "000000000000" })))
    local _, answer = control("_sandbox/notify", { url = rx_url, kind = "ws_det_achat", x_rsi_ws_mdp = "wrong" })
    assert.equal(3, answer.retour.statut.code)
  end)
end)

describe("the demo seed", function()
  it("has lists with their members", function()
    local list, st = c:call("ws_cat_listes")
    assert(list, tostring(st))
    local titles, first = {}, nil
    for _, l in ipairs(list) do
      titles[#titles + 1] = l.titre_court
      if l.titre_court == "Invitations première" then first = l.id end
    end
    table.sort(titles)
    -- "Mécènes" is not on the web
    assert.same({ "Invitations première", "Lettre jeune public", "Soirée d'ouverture" }, titles)
    local members = assert(c:call("ws_cat_contacts_liste", { id_liste = first }))
    local names = {}
    for i, m in ipairs(members) do names[i] = m.contact.nom end
    table.sort(names)
    assert.same({ "MARTIN", "RICHON" }, names)
  end)

  it("is loaded once per base: a restart keeps the state", function()
    local path = os.tmpname()
    for _ = 1, 2 do
      local s = sandbox.start { db = path, args = { "--seed", "demo" } }
      local cl = billetterie.new { url = s.url, login = "xrsitest", password = "xrsimdp", client_id = 677 }
      local doc = assert(cl:call("ws_cat_histo_achat"))
      assert.equal(4, #doc.caddy)
      login("herve", cl) -- one account per mail: a second load would make ws_login ambiguous (510)
      s:stop()
    end
    os.remove(path)
  end)
end)
