-- Findings of a sandbox conformance review (seed 004), against a real
-- `billetterie sandbox` process on a real SQLite file holding the demo seed:
-- - the change feed lists each contact's own fiche lien in liste_liens
--   (2.7.3.3: id_organisme "Vide si pas d'organisme"), and the fiches lien
--   of contacts and of attachments share one id space, also in a file of
--   the previous version;
-- - the card-print NOTIFY carries the holder's organisme (2.4.6);
-- - the lists services keep the retour_traitement shape on refusals (2.5);
-- - negative amounts print as -1,5 / -1,50;
-- - a request without Host gets download links to the server's own address;
-- - a scalar parameter sent in array or map form answers 4.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_review_spec.lua

local sandbox = require "spec.support.sandbox"
local json = require "billetterie.json"
local xml = require "billetterie.xml"
local core = require "billetterie.core"
local httpd = require "billetterie.httpd"
local catalogue = require "billetterie.sandbox.catalogue"

local PASSWORD = "Garrigues-2024!" -- the demo seed's web accounts
local HERVE = "herve.richon@example.org"
local CREDS = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = "677" }
local API = { x_rsi_modele = "ws_liste_fiches_modifiees", x_rsi_login = "WSCE", x_rsi_client = "677",
  x_rsi_api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a" }
local NEGATIVE = -150 -- centimes given to one ticket line and one article below

local sb, DB, c

-- The demo seed in a fresh file, with one ticket line of Hervé's and one
-- article at a negative price (a credit the back office may record).
setup(function()
  DB = sandbox.seeded_db(function(db)
    require("billetterie.sandbox.seeds.demo").load(db, { clients = { 677, 100 }, now = os.time() })
    db:exec([[UPDATE lignes SET prix_unitaire = ? WHERE id_detail = (SELECT MIN(l.id_detail) FROM lignes l
        JOIN caddies k ON k.id_caddy = l.id_caddy WHERE k.client = 677 AND k.email = ? AND k.etat = 'V'
        AND l.kind = 'billet')]], NEGATIVE, HERVE)
    db:exec("UPDATE articles SET prix = ? WHERE client = 677 AND id_article = (SELECT MIN(id_article) FROM articles)",
      NEGATIVE)
  end)
  sb = sandbox.start { db = DB }
  c = sb:client()
end)
teardown(function()
  if sb then sb:stop() end
  if DB then os.remove(DB) end
end)

local function with(base, extra)
  local out = {}
  for k, v in pairs(base) do out[k] = v end
  for k, v in pairs(extra or {}) do out[k] = v end
  return out
end

-- Raw form POST with curl; `fields` is a list of {name, value} (repeated or
-- bracketed names kept as sent); `curl_args` extra options. -> body
local function post(path, fields, curl_args)
  local args = {}
  for _, kv in ipairs(fields) do
    args[#args + 1] = "--data-urlencode " .. ("'%s=%s'"):format(kv[1], kv[2])
  end
  local p = io.popen(("curl -s %s %s '%s%s'"):format(curl_args or "", table.concat(args, " "), sb.url, path))
  local body = p:read("*a")
  p:close()
  return body
end

-- The pairs of a table, sorted by name (then `extra` pairs in order).
local function pairs_of(t, extra)
  local out = {}
  for k, v in pairs(t) do out[#out + 1] = { k, tostring(v) } end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  for _, kv in ipairs(extra or {}) do out[#out + 1] = kv end
  return out
end

local function code_of(body)
  local v = json.decode(body)
  local st = v and (v.statut or (v.retour and (v.retour.statut or v.retour)))
  return st and st.code
end

local function feed(p)
  local data, st = c:call("ws_liste_fiches_modifiees", with({ ts = "2020-01-01T00:00:00" }, p))
  assert.is_table(data, tostring(st))
  return data
end

local function login(mail)
  local s = assert(c:call("ws_idsession"))
  local msg, st = c:call("ws_login", { x_rsi_token = s.jeton, web_ident = mail, web_passe = PASSWORD })
  assert(msg, tostring(st))
  return s.jeton, msg.contact
end

local function attach(id_contact, intitule)
  local org = assert(c:call("ws_organisme_creation", { organisme = { intitule = intitule, nature = "Association" },
    contacts = { { id_contact = id_contact, action_attachement = "attacher" } } }))
  return org.organisme
end

describe("liste_liens (2.7.3.3)", function()
  it("lists every contact's own fiche lien, with no organisme", function()
    local data = feed()
    local liens = {}
    for _, l in ipairs(data.liste_liens) do liens[l.id] = l end
    assert.is_true(#data.liste_contacts >= 5)
    for _, ct in ipairs(data.liste_contacts) do
      assert.same({ id = ct.id, id_contact = ct.id_contact, id_organisme = "", fonction = "", service = "",
        telephone = "", portable = "", email = "" }, liens[ct.id])
    end
    for id = 50001, 50005 do assert.is_table(liens[id], "fiche lien " .. id) end
  end)

  it("lists a new contact's fiche lien with the contact", function()
    local since = os.date("%Y-%m-%dT%H:%M:%S")
    local s = assert(c:call("ws_idsession"))
    local msg, st = c:call("ws_ccontact", { x_rsi_token = s.jeton, id_formulaire = 1, v_nom = "NOUVEAU",
      v_prenom = "Léa", v_mail = ("lea.%d@exemple.fr"):format(os.time()), v_passe = "Secret123" })
    assert.is_table(msg, tostring(st))
    local new = msg.contact
    local ids = feed { ts = since, type_export = "liste_fiches" }
    local contacts, liens = {}, {}
    for _, id in ipairs(ids.liste_contacts_id) do contacts[id] = true end
    for _, id in ipairs(ids.liste_liens_id) do liens[id] = true end
    assert.is_true(contacts[new.id_contact])
    assert.is_true(liens[new.id], "fiche lien " .. tostring(new.id))
  end)

  it("gives an attachment its own fiche lien, numbered with the contacts' ones", function()
    local _, herve = login(HERVE)
    local org = attach(herve.id_contact, "Cercle des Amis")
    local data = feed()
    local seen, own, attached = {}, nil, nil
    for _, l in ipairs(data.liste_liens) do
      assert.is_nil(seen[l.id], "fiche lien id listed twice: " .. l.id)
      seen[l.id] = true
      if l.id_contact == herve.id_contact then
        if l.id_organisme == "" then own = l elseif l.id_organisme == org.id_organisme then attached = l end
      end
    end
    -- the contact's own fiche lien is still the one ws_login and ws_info_contact give
    assert.equal(herve.id_clistru, own.id)
    local info = assert(c:call("ws_info_contact", { id_contact = herve.id_contact, id_formulaire = 1 }))
    assert.equal(own.id, info.contact.id)
    assert.is_table(attached)
    assert.is_true(attached.id > 50000)
    assert.are_not.equal(own.id, attached.id)
    -- the invitation shows that attachment's fiche lien (2.5.2.3)
    local found
    for _, l in ipairs(assert(c:call("ws_cat_listes"))) do
      for _, m in ipairs(assert(c:call("ws_cat_contacts_liste", { id_liste = l.id }))) do
        if m.contact.id == herve.id_contact then found = m end
      end
    end
    assert.is_table(found) -- the demo invites Hervé
    assert.equal(attached.id, found.clistru_id)
  end)
end)

describe("a file of the previous version", function()
  it("moves an attachment whose id a contact's fiche lien has", function()
    local contacts = require "billetterie.sandbox.contacts"
    local organismes = require "billetterie.sandbox.organismes"
    local path = sandbox.seeded_db(function(db)
      local now = os.time()
      local id = contacts.insert(db, 677, { name = "ANCIEN", surname = "Jean", mail = "ancien@exemple.fr" }, now)
      local org = organismes.insert(db, 677, { intitule = "Ancienne Scène", nature = "Association" }, now)
      -- the previous version numbered attachments apart, from 1: one of them
      -- reached the first contact fiche lien's number
      db:exec([[INSERT INTO organisme_contacts (id, client, id_organisme, id_contact, fonction)
          VALUES (?, 677, ?, ?, 'Trésorier')]], contacts.get(db, 677, id).id, org, id)
    end)
    local old = sandbox.start { db = path }
    local data, st = old:client():call("ws_liste_fiches_modifiees", { ts = "2020-01-01T00:00:00" })
    old:stop()
    os.remove(path)
    assert.is_table(data, tostring(st))
    local own, attached
    for _, l in ipairs(data.liste_liens) do
      if l.id_organisme == "" then own = l else attached = l end
    end
    assert.equal(data.liste_contacts[1].id, own.id)
    assert.equal("Trésorier", attached.fonction)
    assert.are_not.equal(own.id, attached.id)
  end)
end)

describe("the card-print NOTIFY (2.4.6)", function()
  it("names the organisme the holder is attached to", function()
    local received = {}
    local rx = assert(httpd.new { port = 0, signals = false, handler = function(req)
      received[#received + 1] = req.body
      return 200, { ["Content-Type"] = "text/plain" }, "OK"
    end })
    local rx_url = ("http://127.0.0.1:%d/notify"):format(rx:port())
    local _, herve = login(HERVE)
    local org = attach(herve.id_contact, "Théâtre des Porteurs")
    -- Hervé's paid carts; the first with a card
    local doc = assert(c:call("ws_cat_histo_achat", { date_debut = os.date("%d/%m/%Y", os.time() - 40 * 86400) }))
    local id
    for _, cart in ipairs(doc.caddy or {}) do
      if cart.contact.email == HERVE then id = id or cart.id end
    end
    assert.is_string(id)
    local engine = core.http_engine {}
    local req = assert(engine:start { url = sb.url .. "_sandbox/notify", method = "POST", timeout = 30,
      body = core.form_encode(with(CREDS, { url = rx_url, kind = "notify_impression_carte", id_caddy = id })),
      headers = { "Content-Type: application/x-www-form-urlencoded" } })
    local done = false
    while not done do
      rx:step(5)
      for _, f in ipairs(engine:poll(5)) do done = done or f == req end
    end
    assert.equal(200, (engine:result(req)))
    rx:close()
    local n = xml.decode(received[#received])
    -- the holder's first attachment (lowest fiche lien id, as first_link)
    local first
    for _, l in ipairs(feed().liste_liens) do
      if l.id_contact == herve.id_contact and l.id_organisme ~= "" and (not first or l.id < first.id) then first = l end
    end
    assert.equal(tostring(first.id_organisme), n.id_organisme)
    assert.are_not.equal("0", n.id_organisme)
    local info = assert(c:call("ws_info_organisme", { id_organisme = first.id_organisme }))
    assert.equal(info.organisme.intitule, n.organisme)
    assert.equal(tostring(herve.id_clistru), n.id_clistru) -- as ws_info_contact gives it
    assert.is_number(org.id_organisme)
    assert.is_true(first.id_organisme <= org.id_organisme)
  end)
end)

describe("the lists envelope (2.5)", function()
  local function shape(body)
    local v = assert(json.decode(body), body)
    local r = v.retour
    return r.traitement, r.statut.traitement, r.statut.code, body:match('"message":(%b[])') ~= nil
  end

  it("is the same on success and on every refusal", function()
    assert.same({ "ok", "ok", 2, true }, { shape(post("ws_cat_listes", pairs_of(CREDS))) })
    assert.same({ "ko", "ko", 3, true },
      { shape(post("ws_cat_listes", pairs_of(with(CREDS, { x_rsi_ws_mdp = "faux" })))) })
    assert.same({ "ko", "ko", 4, true },
      { shape(post("ws_cat_contacts_liste", pairs_of(with(CREDS, { id_liste = "abc" })))) })
    assert.same({ "ko", "ko", 4, true }, { shape(post("ws_cat_contacts_liste", pairs_of(CREDS))) })
    assert.same({ "ko", "ko", 4, true },
      { shape(post("ws_cat_contacts_liste", pairs_of(with(CREDS, { id_liste = "999999" })))) })
  end)
end)

describe("negative amounts", function()
  it("print with the sign before the magnitude", function()
    assert.same({ "-1,5", "-1,05", "-2", "-0,5", "18", "5,5" },
      { catalogue.euros(-150), catalogue.euros(-105), catalogue.euros(-200), catalogue.euros(-50),
        catalogue.euros(1800), catalogue.euros(550) })
    -- through the services: an article's PRIX and a ticket's texte
    local body = post("ws_cat_article", pairs_of(CREDS))
    assert.matches("<PRIX>%-1,5</PRIX>", body)
    local jeton = login(HERVE)
    local msg = json.decode(post("ws_info_telechargement", { { "x_rsi_token", jeton } }))
    local texts = {}
    for _, list in ipairs { msg.retour.liste_telechargement, msg.retour.liste_non_telechargeable } do
      for _, t in ipairs(type(list) == "table" and list or {}) do texts[#texts + 1] = t.texte end
    end
    local all = table.concat(texts, "\n")
    assert.matches(" %-1,50 €", all)
    assert.not_matches("%-2,50", all)
  end)
end)

describe("download links without Host", function()
  it("use the server's own address and port", function()
    local _, herve = login(HERVE)
    local fields = pairs_of(with(CREDS, { id_contact = herve.id_contact, format = "tableau" }))
    local prefix = ("http://127.0.0.1:%d/print_eticket.php?"):format(sb.port)
    for _, args in ipairs { "--http1.0 -H 'Host:'", "--http1.0 -H 'Host;'" } do
      local v = json.decode(post("ws_recap_achat", fields, args))
      local links = 0
      for _, l in ipairs(v.retour.message) do
        if l.lien_telechargement and l.lien_telechargement ~= "" then
          links = links + 1
          assert.equal(prefix, l.lien_telechargement:sub(1, #prefix), args)
        end
      end
      assert.is_true(links > 0, args)
    end
    -- with a Host, the caller's
    local v = json.decode(post("ws_recap_achat", fields, "-H 'Host: billetterie.example:8080'"))
    for _, l in ipairs(v.retour.message) do
      if (l.lien_telechargement or "") ~= "" then
        assert.matches("^http://billetterie%.example:8080/print_eticket%.php%?", l.lien_telechargement)
      end
    end
  end)
end)

describe("a scalar parameter in array or map form", function()
  it("answers 4, on every kind of service", function()
    local today = os.date("%d/%m/%Y")
    -- the plain form works
    assert.matches("^<xmlrequest>", post("ws_cat_histo_achat", pairs_of(CREDS, { { "etat_caddy", "A" } })))
    for _, case in ipairs {
      { "ws_cat_histo_achat", pairs_of(CREDS, { { "etat_caddy[]", "A" } }) },
      { "ws_cat_histo_achat", pairs_of(CREDS, { { "etat_caddy[0]", "A" } }) },
      { "ws_cat_histo_achat", pairs_of(CREDS, { { "date_debut[]", today } }) },
      { "ws_cat_histo_achat", pairs_of({ x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp" },
          { { "x_rsi_client[]", "677" } }) },
      { "ws_det_achat", pairs_of(CREDS, { { "id_caddy[]", "000000000001" } }) },
      { "ws_cat_contacts_liste", pairs_of(CREDS, { { "id_liste[x]", "1" } }) },
      { "ws_info_organisme", pairs_of(CREDS, { { "id_organisme", "1" }, { "get_contact[]", "1" } }) },
      { "ws_organisme_contacts", pairs_of(CREDS, { { "id_organisme", "1" }, { "contacts[]", "[]" } }) },
      { "ws_execute_programme", pairs_of(API, { { "ts[]", "2020-01-01T00:00:00" } }) },
      { "ws_execute_programme", pairs_of(API, { { "ts", "2020-01-01T00:00:00" }, { "type_export[]", "liste_contact" } }) },
    } do
      assert.equal(4, code_of(post(case[1], case[2])), case[1] .. " " .. case[2][#case[2]][1])
    end
    -- ws_modification_pwd keeps its own shape (message a text) on that refusal
    local pwd = json.decode(post("ws_modification_pwd", { { "x_rsi_pwd_key[]", "B470CF16245D405986E5A546A1429B86" },
      { "w_identifiant", HERVE }, { "v_passe", "Nouveau-2025!" } }))
    assert.same({ 4, "ko", "string" }, { pwd.retour.statut.code, pwd.retour.traitement, type(pwd.retour.message) })
    -- ws_ccontact: a form field; its lists keep their bracket form
    local s = assert(c:call("ws_idsession"))
    local base = { { "x_rsi_token", s.jeton }, { "id_formulaire", "1" }, { "v_prenom", "Zoé" },
      { "v_mail", ("zoe.%d@exemple.fr"):format(os.time()) }, { "v_passe", "Secret123" } }
    local bad = { table.unpack(base) }
    bad[#bad + 1] = { "v_nom[]", "ARRAY" }
    assert.equal(4, code_of(post("ws_ccontact", bad)))
    local good = { table.unpack(base) }
    good[#good + 1] = { "v_nom", "PLAIN" }
    good[#good + 1] = { "liste[]", tostring(assert(c:call("ws_cat_listes"))[1].id) }
    assert.equal(513, code_of(post("ws_ccontact", good)))
    -- a bracketed name no service reads stays ignored, like any unknown one
    local plain = post("ws_cat_histo_achat", pairs_of(CREDS))
    assert.equal(plain, post("ws_cat_histo_achat", pairs_of(CREDS, { { "inconnu[]", "1" } })))
  end)
end)
