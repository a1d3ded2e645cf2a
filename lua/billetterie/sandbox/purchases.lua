-- billetterie.sandbox.purchases: spec 2.4, the purchase cycle seen from the
-- web services: ws_cat_histo_achat (XML <xmlrequest>), ws_det_achat (XML
-- <caddy>), ws_recap_achat (JSON lines, euros), ws_info_telechargement
-- (retour_flat) and ws_historique_contact (retour_historique); and the push
-- side (2.4.2.2 and 2.4.6) through the sandbox's control routes
-- /_sandbox/notify and /_sandbox/pushes.
--
-- Carts are made by the seeds (M.cart_create): the spec has no web service
-- that sells. A cart keeps what a sale record keeps: the buyer as they were,
-- and per line the label, prices (centimes) and references of the moment.
-- Order ids are 12-digit TEXT with leading zeros (MMDD of the sale + an
-- 8-digit sequence, like every id printed in the spec).

local services = require "billetterie.sandbox.services"
local codec = require "billetterie.sandbox.codec"
local catalogue = require "billetterie.sandbox.catalogue"
local codes = require "billetterie.codes"
local ok, ko, raw = services.ok, services.ko, services.raw
local E, T = catalogue.element, catalogue.text

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS caddies (
      id_caddy    TEXT PRIMARY KEY,    -- "070401758672": never a number
      client      INTEGER NOT NULL,
      id_contact  INTEGER,             -- the buyer's fiche contact
      id_clistru  INTEGER,             -- the buyer's fiche lien (NOTIFY)
      etat        TEXT NOT NULL,       -- 'V' paid, 'A' invalidated (etat_caddy)
      datevente   INTEGER NOT NULL,    -- unix seconds
      x_rsi_option TEXT NOT NULL DEFAULT '',
      genre TEXT NOT NULL DEFAULT '', nom TEXT NOT NULL DEFAULT '',
      prenom TEXT NOT NULL DEFAULT '', email TEXT NOT NULL DEFAULT '',
      identifiant TEXT NOT NULL DEFAULT '' -- buyer identifier, 24 hex
    )]],
  -- One row per product line; a card's tickets and services and an
  -- article's services point to it through parent.
  [[CREATE TABLE IF NOT EXISTS lignes (
      id_detail   INTEGER PRIMARY KEY AUTOINCREMENT,
      id_caddy    TEXT NOT NULL,
      parent      INTEGER,
      kind        TEXT NOT NULL,       -- carte | billet | article | prestation
      libelle     TEXT NOT NULL,
      qtte        INTEGER NOT NULL DEFAULT 1,
      prix_unitaire INTEGER NOT NULL,  -- centimes
      frais       INTEGER NOT NULL DEFAULT 0, -- centimes per unit (tickets)
      ref_categ INTEGER NOT NULL DEFAULT 0, ref_rep INTEGER NOT NULL DEFAULT 0,
      ref_spect INTEGER NOT NULL DEFAULT 0, ref_article INTEGER NOT NULL DEFAULT 0,
      ref_prest INTEGER NOT NULL DEFAULT 0,
      type_prest INTEGER NOT NULL DEFAULT 0,   -- prestation type 1-3
      type_produit INTEGER NOT NULL DEFAULT 0, -- ws_recap_achat 1-6
      mode_retrait TEXT NOT NULL DEFAULT '',
      spectacle   TEXT NOT NULL DEFAULT '',
      dateheure   TEXT NOT NULL DEFAULT ''   -- AAAAMMJJTHHMMSS
    )]],
  -- The ticket side of a billet line.
  [[CREATE TABLE IF NOT EXISTS billets (
      id_detail   INTEGER PRIMARY KEY,
      id_carte    INTEGER,             -- the card it was booked on (subscriber ticket)
      place TEXT NOT NULL DEFAULT '', zone TEXT NOT NULL DEFAULT '',
      niveau TEXT NOT NULL DEFAULT '', acces TEXT NOT NULL DEFAULT '',
      emplacement TEXT NOT NULL DEFAULT '', salle_zone TEXT NOT NULL DEFAULT '',
      billet_at_home INTEGER NOT NULL DEFAULT 0, -- 0 box office, 2/3 print at home
      justificatif INTEGER NOT NULL DEFAULT 0,   -- statut_justificatif 0-5
      qrcode TEXT NOT NULL DEFAULT ''
    )]],
  -- Cards (subscriptions, memberships) sold; their rights are used by the
  -- tickets whose id_carte is theirs.
  [[CREATE TABLE IF NOT EXISTS cartes (
      id_carte    INTEGER PRIMARY KEY AUTOINCREMENT,
      client      INTEGER NOT NULL,
      id_contact  INTEGER,
      id_caddy    TEXT NOT NULL,
      id_detail   INTEGER NOT NULL,
      id_abonnement INTEGER NOT NULL,
      debut INTEGER, fin INTEGER,      -- local midnights of the first and last day; NULL: no dates
      valide INTEGER NOT NULL DEFAULT 1
    )]],
  -- What the control route pushed, and how it went.
  [[CREATE TABLE IF NOT EXISTS pushes (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      client INTEGER NOT NULL, kind TEXT NOT NULL, url TEXT NOT NULL, ref TEXT NOT NULL,
      at INTEGER NOT NULL, http_status INTEGER NOT NULL, error TEXT, bytes INTEGER NOT NULL
    )]],
}

local M = { schema = SCHEMA }

---- small helpers ----

-- FNV-1a, to derive stable codes (QR strings, buyer identifiers) from ids.
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff end
  return h
end

local B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
local function code(seed, n, alphabet)
  local out, h = {}, fnv(seed)
  for i = 1, n do
    h = fnv(seed .. i .. h)
    local k = h % #alphabet + 1
    out[i] = alphabet:sub(k, k)
  end
  return table.concat(out)
end

local function euros(c) -- centimes -> JSON number (2.4, 20)
  return c % 100 == 0 and c // 100 or c / 100
end

local function comma2(c) -- centimes -> "18,00" (texte of ws_info_telechargement)
  -- on the magnitude: floor division would print -150 as "-2,50"
  return ("%s%d,%02d"):format(c < 0 and "-" or "", math.abs(c) // 100, math.abs(c) % 100)
end

local function basic(t) return os.date("%Y%m%dT%H%M%S", t) end

-- Local midnight of a date, printed in UTC with milliseconds, as the
-- ws_historique_contact example does ("2021-01-17T23:00:00.000Z").
local function iso_day(t)
  if not t then return "" end
  local d = os.date("*t", t)
  return os.date("!%Y-%m-%dT%H:%M:%S.000Z", os.time { year = d.year, month = d.month, day = d.day, hour = 0 })
end

-- jj/mm/aaaa -> unix time of that local midnight, or nil
local function dmy(s)
  local d, m, y = (s or ""):match("^(%d%d)/(%d%d)/(%d%d%d%d)$")
  return d and catalogue.day_start(y .. m .. d)
end

local function today(now)
  local d = os.date("*t", now)
  return os.time { year = d.year, month = d.month, day = d.day, hour = 0 }
end

---- writing carts (used by the seeds) ----

local LINE_COLUMNS = { "id_caddy", "parent", "kind", "libelle", "qtte", "prix_unitaire", "frais",
  "ref_categ", "ref_rep", "ref_spect", "ref_article", "ref_prest", "type_prest", "type_produit",
  "mode_retrait", "spectacle", "dateheure" }

-- Absent values take the column's default.
local function insert_line(db, line)
  local cols, vals, marks = {}, {}, {}
  for _, c in ipairs(LINE_COLUMNS) do
    if line[c] ~= nil then cols[#cols + 1], vals[#vals + 1], marks[#marks + 1] = c, line[c], "?" end
  end
  db:exec(("INSERT INTO lignes (%s) VALUES (%s)"):format(table.concat(cols, ", "), table.concat(marks, ", ")),
    table.unpack(vals))
  return db:last_id()
end

local add_item

local function add_prestation(ctx, item, parent)
  local pr = catalogue.prestation(ctx.db, ctx.client, item.prestation)
    or error("no prestation " .. tostring(item.prestation))
  return insert_line(ctx.db, { id_caddy = ctx.id, parent = parent, kind = "prestation",
    libelle = pr.libelle, qtte = item.qtte or 1, prix_unitaire = item.prix or pr.prix,
    ref_prest = pr.id_prest, type_prest = pr.type, type_produit = 5 })
end

-- A ticket: { billet = id_representation, categ =, zone =, place =,
-- mode_retrait = "E-ticket", billet_at_home, justificatif, niveau, acces,
-- emplacement, salle_zone, id_carte } priced from the performance's grid.
local function add_billet(ctx, item, parent, card)
  local db = ctx.db
  local rep = catalogue.representation(db, ctx.client, item.billet) or error("no representation " .. item.billet)
  local categ = item.categ or (card and card.categ)
  local tarif = catalogue.tarif(db, ctx.client, rep.id_grille, categ, item.zone or 1)
    or error(("no price for categ %s zone %s in grid %d"):format(tostring(categ), tostring(item.zone), rep.id_grille))
  local mode = item.mode_retrait or "E-ticket"
  local id = insert_line(db, { id_caddy = ctx.id, parent = parent, kind = "billet", libelle = tarif.categ,
    qtte = 1, prix_unitaire = tarif.prix, frais = tarif.frais, ref_categ = tarif.id_categ,
    ref_rep = rep.id_representation, ref_spect = rep.id_spectacle, type_produit = 6,
    mode_retrait = mode, spectacle = rep.spectacle.nom, dateheure = basic(rep.debut) })
  db:exec([[INSERT INTO billets (id_detail, id_carte, place, zone, niveau, acces, emplacement,
      salle_zone, billet_at_home, justificatif, qrcode) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
    id, item.id_carte or (card and card.id), item.place or "", tarif.zone, item.niveau or "",
    item.acces or "", item.emplacement or "", item.salle_zone or "",
    item.billet_at_home or (mode == "E-ticket" and 2 or 0), item.justificatif or 0,
    code(("%d/%s/%d"):format(ctx.client, ctx.id, id), 22, B62))
  return id
end

-- A card: { carte = id_abonnement, debut =, fin = (local midnights; default
-- the sale day and one year later), billets = {...}, prestations = {...} }
local function add_carte(ctx, item)
  local db = ctx.db
  local a = catalogue.abonnement(db, ctx.client, item.carte) or error("no abonnement " .. item.carte)
  local id = insert_line(db, { id_caddy = ctx.id, kind = "carte", libelle = a.nom, qtte = 1,
    prix_unitaire = a.prix, ref_categ = a.id_abonnement, type_produit = 6 })
  local debut = item.debut or today(ctx.at)
  local fin = item.fin
  if fin == nil then
    local d = os.date("*t", debut)
    fin = os.time { year = d.year + 1, month = d.month, day = d.day - 1, hour = 0 }
  end
  if item.no_dates then debut, fin = nil, nil end
  db:exec([[INSERT INTO cartes (client, id_contact, id_caddy, id_detail, id_abonnement, debut, fin, valide)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)]], ctx.client, ctx.id_contact, ctx.id, id, a.id_abonnement,
    debut, fin, item.valide == false and 0 or 1)
  local card = { id = db:last_id(), categ = a.id_abonnement }
  ctx.cards[#ctx.cards + 1] = card.id
  for _, b in ipairs(item.billets or {}) do add_billet(ctx, b, id, card) end
  for _, pr in ipairs(item.prestations or {}) do add_prestation(ctx, pr, id) end
  return id
end

local function add_article(ctx, item)
  local a = catalogue.article(ctx.db, ctx.client, item.article) or error("no article " .. item.article)
  local id = insert_line(ctx.db, { id_caddy = ctx.id, kind = "article", libelle = a.nom,
    qtte = item.qtte or 1, prix_unitaire = a.prix, ref_article = a.id_article, type_produit = a.type_produit })
  for _, pr in ipairs(item.prestations or {}) do add_prestation(ctx, pr, id) end
  return id
end

function add_item(ctx, item)
  if item.carte then return add_carte(ctx, item) end
  if item.billet then return add_billet(ctx, item) end
  if item.article then return add_article(ctx, item) end
  if item.prestation then return add_prestation(ctx, item) end
  error("cart item of unknown kind")
end

-- cart = { at = unix seconds, etat = "V"|"A", id_contact =, x_rsi_option =,
-- buyer = { genre, nom, prenom, email, identifiant, id_clistru },
-- items = { {carte=}, {billet=}, {article=}, {prestation=} } }.
-- One transaction. -> id_caddy, { id_carte of each card, in order }
function M.cart_create(db, client, cart)
  return db:tx(function()
    local row = db:one("SELECT MAX(CAST(substr(id_caddy, 5) AS INTEGER)) AS n FROM caddies")
    local id = os.date("%m%d", cart.at) .. ("%08d"):format(((row and row.n) or 1758600) + 1)
    local b = cart.buyer or {}
    db:exec([[INSERT INTO caddies (id_caddy, client, id_contact, id_clistru, etat, datevente,
        x_rsi_option, genre, nom, prenom, email, identifiant) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]],
      id, client, cart.id_contact, b.id_clistru or cart.id_contact, cart.etat or "V", cart.at,
      cart.x_rsi_option or "", b.genre or "", b.nom or "", b.prenom or "", b.email or "",
      b.identifiant or code(("%d/%s"):format(client, tostring(cart.id_contact or b.email)), 24, "0123456789abcdef"))
    local ctx = { db = db, client = client, id = id, at = cart.at, id_contact = cart.id_contact, cards = {} }
    for _, item in ipairs(cart.items or {}) do add_item(ctx, item) end
    return id, ctx.cards
  end)
end

---- reading carts ----

local function cart_get(db, client, id)
  return db:one("SELECT * FROM caddies WHERE client = ? AND id_caddy = ?", client, id)
end

local function lines_of(db, id_caddy)
  return db:rows([[SELECT l.*, b.id_carte, b.place, b.zone, b.niveau, b.acces, b.emplacement,
      b.salle_zone, b.billet_at_home, b.justificatif, b.qrcode
      FROM lignes l LEFT JOIN billets b ON b.id_detail = l.id_detail
      WHERE l.id_caddy = ? ORDER BY l.id_detail]], id_caddy)
end

-- A line's total: a ticket's includes its booking fee (2.4.2).
local function total(l) return (l.prix_unitaire + l.frais) * l.qtte end

local function montant(db, id_caddy)
  local r = db:one("SELECT COALESCE(SUM((prix_unitaire + frais) * qtte), 0) AS m FROM lignes WHERE id_caddy = ?",
    id_caddy)
  return r.m
end

local PAYE = { V = "OK", A = "KO" }

local function transaction_node(db, c)
  return E("transaction", nil, { T("datevente", basic(c.datevente)), T("montant", montant(db, c.id_caddy)),
    T("paye", PAYE[c.etat] or "KO") })
end

-- <caddy> of ws_cat_histo_achat (summary) or ws_det_achat (full).
local function summary_node(db, c)
  return E("caddy", nil, { T("id", c.id_caddy), T("x_rsi_option", c.x_rsi_option),
    E("contact", nil, { T("nom", c.nom), T("prenom", c.prenom), T("email", c.email) }),
    transaction_node(db, c) })
end

local function prestation_node(l)
  return E("prestation", nil, { T("libelle", l.libelle), T("prix_total", total(l)),
    T("prix_unitaire", l.prix_unitaire), T("qtte", l.qtte), T("ref_prest", l.ref_prest),
    T("type", l.type_prest), T("id_detail", l.id_detail) })
end

local function billet_node(l)
  return E("billet", nil, { T("dateheure", l.dateheure), T("frais", ("%03d"):format(l.frais)),
    T("libelle", l.libelle), T("liste_place", l.place), T("mode_retrait", l.mode_retrait),
    T("prix_total", total(l)), T("prix_unitaire", l.prix_unitaire), T("qtte", l.qtte),
    T("ref_categ", l.ref_categ), T("ref_rep", l.ref_rep), T("ref_spect", l.ref_spect),
    T("spectacle", l.spectacle), T("id_detail", l.id_detail) })
end

-- Collections with no item are left out ("up to four collections").
local function collection(kids, tag, list, node)
  if #list == 0 then return end
  local items = {}
  for i, l in ipairs(list) do items[i] = node(l) end
  kids[#kids + 1] = E(tag, nil, items)
end

local function children(all, parent, kind)
  local out = {}
  for _, l in ipairs(all) do
    if l.parent == parent and l.kind == kind then out[#out + 1] = l end
  end
  return out
end

local function caddy_node(db, c)
  local all = lines_of(db, c.id_caddy)
  local function carte_node(l)
    local kids = { T("libelle", l.libelle), T("prix_total", total(l)), T("prix_unitaire", l.prix_unitaire),
      T("qtte", l.qtte), T("ref_categ", l.ref_categ), T("id_detail", l.id_detail) }
    collection(kids, "billets", children(all, l.id_detail, "billet"), billet_node)
    collection(kids, "prestations", children(all, l.id_detail, "prestation"), prestation_node)
    return E("carte", nil, kids)
  end
  local function article_node(l)
    local kids = { T("libelle", l.libelle), T("prix_total", total(l)), T("prix_unitaire", l.prix_unitaire),
      T("qtte", l.qtte), T("ref_article", l.ref_article), T("id_detail", l.id_detail) }
    collection(kids, "prestations", children(all, l.id_detail, "prestation"), prestation_node)
    return E("article", nil, kids)
  end
  local produits = {}
  collection(produits, "cartes", children(all, nil, "carte"), carte_node)
  collection(produits, "billets", children(all, nil, "billet"), billet_node)
  collection(produits, "articles", children(all, nil, "article"), article_node)
  collection(produits, "prestations", children(all, nil, "prestation"), prestation_node)
  return E("caddy", nil, { T("id", c.id_caddy), T("x_rsi_option", c.x_rsi_option),
    E("contact", nil, { T("genre", c.genre), T("nom", c.nom), T("prenom", c.prenom), T("email", c.email),
      T("identifiant", c.identifiant) }),
    transaction_node(db, c), E("produits", nil, produits) }), #all
end

---- sessions of the token services ----

-- -> the running session with a logged-in contact, or nil and the code:
-- 605 unknown, expired or closed; 602 running but nobody logged in.
local function logged(env)
  local s = env.session
  if not s or s.ended_at or s.created_at + s.duration <= env.now then return nil, 605 end
  if not s.id_contact then return nil, 602 end
  return s
end

-- The buyer's tickets and cards, with what the lists need.
local function paid_lines(db, client, id_contact)
  return db:rows([[SELECT l.*, c.datevente, b.id_carte, b.place, b.zone, b.niveau, b.acces,
      b.emplacement, b.salle_zone, b.billet_at_home, b.justificatif, b.qrcode
      FROM lignes l JOIN caddies c ON c.id_caddy = l.id_caddy
      LEFT JOIN billets b ON b.id_detail = l.id_detail
      WHERE c.client = ? AND c.id_contact = ? AND c.etat = 'V'
      ORDER BY c.datevente, l.id_detail]], client, id_contact)
end

-- Print-at-home allowed and no proof pending: downloadable.
local function downloadable(billet_at_home, justificatif)
  return (billet_at_home == 2 or billet_at_home == 3) and (justificatif == 0 or justificatif == 1)
end

local function print_link(env, l)
  -- the address the caller used; without one (HTTP/1.0 sends no Host) the
  -- server's own, port included
  local host = env.req and env.req.headers and env.req.headers.host
  if host == nil or host == "" then host = env.config.own_authority or "127.0.0.1" end
  return ("http://%s/print_eticket.php?id_detail=%d&cle=%s"):format(host, l.id_detail, l.qrcode or "")
end

local WEEKDAYS = { "Dim", "Lun", "Mar", "Mer", "Jeu", "Ven", "Sam" }

-- "LA TRAVIATA Dim 21/08/2016 - 20:30 Plein Tarif J13" (2.4.3 table).
local function libelle_complet(l, debut)
  local parts = { l.spectacle, WEEKDAYS[tonumber(os.date("%w", debut)) + 1],
    os.date("%d/%m/%Y - %H:%M", debut), l.libelle }
  if (l.place or "") ~= "" then parts[#parts + 1] = l.place end
  return table.concat(parts, " ")
end

-- One ws_recap_achat line (euros). The fee line has no `carte` key and
-- prints its prestation type as `spectacle`, as in the vendor example.
local function recap_line(env, l)
  local out = {
    ref_article = l.ref_article, mode_retrait = l.mode_retrait, lien_telechargement = "",
    id_caddy = l.id_caddy, frais = euros(l.frais), type_produit = l.type_produit,
    eticket = l.mode_retrait == "E-ticket", prix_total = euros(total(l)),
    prix_unitaire = euros(l.prix_unitaire), spectacle = "", dateheure = "", liste_place = "",
    libelle_complet = l.libelle, ref_rep = 0, libelle = l.libelle, qtte = l.qtte, num_dossier = 0,
    ref_prest = l.ref_prest, id_detail = l.id_detail, ref_spect = 0, numerote = false,
    ref_categ = l.ref_categ, carte = false,
  }
  if l.kind == "billet" then
    local rep = catalogue.representation(env.db, env.client, l.ref_rep)
    out.spectacle, out.dateheure, out.liste_place = l.spectacle, l.dateheure, l.place
    out.ref_rep, out.ref_spect, out.numerote = l.ref_rep, l.ref_spect, l.place ~= ""
    if rep then
      out.libelle_complet = libelle_complet(l, rep.debut)
      if rep.debut > env.now and downloadable(l.billet_at_home, l.justificatif) then
        out.lien_telechargement = print_link(env, l)
      end
    end
  elseif l.kind == "carte" then
    out.carte, out.ref_spect = true, -2
  elseif l.kind == "prestation" then
    out.carte, out.spectacle = nil, tostring(l.type_prest)
  end
  return out
end

-- One item of liste_telechargement / liste_non_telechargeable.
local function ticket_item(env, l, rep, down)
  local salle, spect = rep.salle or {}, rep.spectacle or {}
  local statut = 0 -- 2.4.4: 0 no proof needed, 100 waiting for one, 101 validated
  if not down then
    statut = l.justificatif == 1 and 101 or (l.justificatif >= 2 and 100 or 0)
  end
  return {
    Zonee = l.niveau, Code_rep = l.ref_rep,
    num_detail = ("BI1%07d/0/0/1/1/%s"):format(l.ref_rep, (l.place:gsub(" ", "-"))),
    texte = ("%s %s %s €"):format(l.spectacle, os.date("%d/%m/%Y %H:%M", rep.debut), comma2(l.prix_unitaire)),
    prix = euros(l.prix_unitaire), id_detail = l.id_detail, libelle = l.libelle,
    Num_Spectacle = l.ref_spect, Nom_pour_Billet = salle.nom or "", billet_at_home = l.billet_at_home,
    Zone_Tarifaire = l.zone, Numero_de_place = l.place, Acces = l.acces, Ville = salle.ville or "",
    statut = statut, Emplacement = l.emplacement, Numerote = (salle.numerotee or 0) == 1,
    DTSTART = basic(rep.debut), DTEND = basic(rep.debut + rep.duree), commande = l.id_caddy,
    spectacle = l.spectacle, representation = spect.nom or l.spectacle, nature = rep.nature,
    type = l.id_carte and 2 or 3, lien = down and print_link(env, l) or "",
    str_qrcode = down and l.qrcode or "", statut_justificatif = l.justificatif,
    salle_zone = l.salle_zone, id_salle = rep.id_salle,
  }
end

local function card_item(env, l, card, a, down)
  local qr = code(("%d/carte/%d"):format(card.client, card.id_carte), 22, B62)
  return {
    Zonee = "", Code_rep = 0, num_detail = ("CA%013d"):format(card.id_carte),
    texte = ("%s %s €"):format(l.libelle, comma2(l.prix_unitaire)), prix = euros(l.prix_unitaire),
    id_detail = l.id_detail, libelle = l.libelle, Num_Spectacle = 0, Nom_pour_Billet = l.libelle,
    billet_at_home = a.billet_at_home, Zone_Tarifaire = "", Numero_de_place = "", Acces = "", Ville = "",
    statut = 0, Emplacement = "", Numerote = false,
    DTSTART = card.debut and basic(card.debut) or "", DTEND = card.fin and basic(card.fin) or "",
    commande = l.id_caddy, spectacle = l.libelle, representation = "", nature = "", type = 1,
    lien = down and print_link(env, { id_detail = l.id_detail, qrcode = qr }) or "",
    str_qrcode = down and qr or "", statut_justificatif = 0, salle_zone = "", id_salle = 0,
  }
end

-- Cards of a contact bought in paid carts since `since`, with their tickets.
local function cards_of(db, client, id_contact, since)
  local cards = db:rows([[SELECT k.*, c.datevente, l.prix_unitaire, l.libelle, l.id_caddy
      FROM cartes k JOIN caddies c ON c.id_caddy = k.id_caddy JOIN lignes l ON l.id_detail = k.id_detail
      WHERE k.client = ? AND k.id_contact = ? AND c.etat = 'V' AND c.datevente >= ?
      ORDER BY c.datevente, k.id_carte]], client, id_contact, since)
  for _, k in ipairs(cards) do
    k.billets = db:rows([[SELECT l.* FROM billets b JOIN lignes l ON l.id_detail = b.id_detail
        JOIN caddies c ON c.id_caddy = l.id_caddy
        WHERE b.id_carte = ? AND c.etat = 'V' ORDER BY l.dateheure, l.id_detail]], k.id_carte)
    k.used = 0
    for _, b in ipairs(k.billets) do k.used = k.used + b.qtte end
  end
  return cards
end

local function card_active(k, credit, now)
  local in_dates = not k.debut or (k.debut <= now and now < catalogue.next_day(k.fin))
  return k.valide == 1 and in_dates and credit - k.used > 0
end

-- Is id_contact a contact of this client? Asked to the contacts group when
-- it can tell; otherwise a contact is known by its carts.
local function contact_known(db, client, id)
  local contacts = require "billetterie.sandbox.contacts"
  if type(contacts.exists) == "function" then return contacts.exists(db, client, id) end
  if type(contacts.get) == "function" then return contacts.get(db, client, id) ~= nil end
  return db:one("SELECT 1 AS x FROM caddies WHERE client = ? AND id_contact = ?", client, id) ~= nil
end

---- the push side (2.4.2.2, 2.4.6) ----

local engine -- libcurl engine of billetterie.core, made on the first push

-- POSTs an XML body (text/xml, raw: the reference's reading of both pushes)
-- and waits for the answer: the sandbox serves nothing meanwhile.
-- -> http_status (0 when none), error message or nil
local function post_xml(url, body)
  local core = require "billetterie.core"
  engine = engine or core.http_engine { user_agent = "billetterie-sandbox/" .. core.version }
  local id, err = engine:start { url = url, method = "POST", body = body, timeout = 10, connect_timeout = 5,
    headers = { "Content-Type: text/xml; charset=UTF-8", "Expect:" } }
  if not id then return 0, tostring(err) end
  local status, _, _, errkind, errmsg = engine:wait(id)
  if errkind then return status or 0, errkind .. ": " .. tostring(errmsg) end
  return status
end

-- The vendor's example declares standalone="yes" (libxml2 writes it
-- without the space the example has before "?>").
local NOTIFY_DECLARATION = "standalone"

-- 2.4.6: the card and its holder (the buyer of the cart that sold it).
-- organisme / id_organisme: the holder's organisme as it is now, through
-- his first attachment (organismes.first_link, as ws_cat_contacts_liste
-- shows it); id_clistru stays his own fiche lien, "le même numéro obtenu
-- dans le web service ws_info_contact".
local function notify_node(db, card)
  local c = db:one("SELECT * FROM caddies WHERE id_caddy = ?", card.id_caddy)
  local a = catalogue.abonnement(db, card.client, card.id_abonnement) or {}
  local link = c.id_contact and require("billetterie.sandbox.organismes").first_link(db, card.client, c.id_contact)
  return E("NOTIFY", nil, { T("idcarte", ("/CA%013d"):format(card.id_carte)),
    T("type_public", a.code_regroup or ""), T("nom", c.nom), T("prenom", c.prenom), T("civilite", c.genre),
    T("organisme", link and link.intitule or ""), T("id_clistru", c.id_clistru or c.id_contact or 0),
    T("id_contact", c.id_contact or 0), T("id_organisme", link and link.id_organisme or 0) })
end

local JSON_TYPE = "application/json; charset=utf-8"
local function http_error(status, message)
  return raw(status, JSON_TYPE, codec.encode { error = { status = status, message = message } })
end

-- The document a push sends, or nil, HTTP status, message.
local function push_document(p, env)
  local db = env.db
  if p.kind == "ws_det_achat" then
    if not p.id_caddy then return nil, 400, "id_caddy is required" end
    local c = cart_get(db, env.client, p.id_caddy)
    if not c then return nil, 404, "no cart " .. p.id_caddy end
    return catalogue.document((caddy_node(db, c))), p.id_caddy
  elseif p.kind == "notify_impression_carte" then
    local card
    if p.id_carte then
      card = db:one("SELECT * FROM cartes WHERE client = ? AND id_carte = ?", env.client, p.id_carte)
    elseif p.id_caddy then
      card = db:one("SELECT * FROM cartes WHERE client = ? AND id_caddy = ? ORDER BY id_carte", env.client, p.id_caddy)
    else
      return nil, 400, "id_carte or id_caddy is required"
    end
    if not card then return nil, 404, "no card" end
    return catalogue.document(notify_node(db, card), NOTIFY_DECLARATION), tostring(card.id_carte)
  end
  return nil, 400, "kind must be ws_det_achat or notify_impression_carte"
end

local function push_out(row)
  return { id = row.id, kind = row.kind, url = row.url, ref = row.ref, at = os.date("%Y-%m-%dT%H:%M:%S", row.at),
    http_status = row.http_status, delivered = row.http_status >= 200 and row.http_status < 300,
    error = row.error or codec.null, bytes = row.bytes }
end

---- routes ----

local routes = {
  -- Carts of a period: paid (V, default) or invalidated (A). No date_debut:
  -- today and the 3 previous calendar days; date_debut alone: that day;
  -- date_fin needs date_debut and must be strictly later. Bounds inclusive.
  ws_cat_histo_achat = {
    auth = "ws",
    params = { etat_caddy = "string", date_debut = "string", date_fin = "string" },
    run = function(p, env)
      local etat = p.etat_caddy or "V"
      if not PAYE[etat] then return ko(4) end
      local from, to
      if p.date_debut then
        from = dmy(p.date_debut)
        if not from then return ko(4) end
        to = catalogue.next_day(from)
        if p.date_fin then
          local last = dmy(p.date_fin)
          if not last or last <= from then return ko(4) end
          to = catalogue.next_day(last)
        end
      elseif p.date_fin then
        return ko(4)
      else
        local d = os.date("*t", env.now)
        from = os.time { year = d.year, month = d.month, day = d.day - 3, hour = 0 }
        to = catalogue.next_day(today(env.now))
      end
      local nodes = {}
      for _, c in ipairs(env.db:rows([[SELECT * FROM caddies WHERE client = ? AND etat = ?
          AND datevente >= ? AND datevente < ? ORDER BY datevente, id_caddy]], env.client, etat, from, to)) do
        nodes[#nodes + 1] = summary_node(env.db, c)
      end
      return catalogue.answer(E("xmlrequest", nil, nodes))
    end,
  },

  -- The whole cart, paid or not; 702 for an unknown cart (or one with no
  -- product): "Pas de produit dans la commande".
  ws_det_achat = {
    auth = "ws",
    params = { id_caddy = "string!" },
    run = function(p, env)
      local c = cart_get(env.db, env.client, p.id_caddy)
      if not c then return ko(702) end
      local node, n = caddy_node(env.db, c)
      if n == 0 then return ko(702) end
      return catalogue.answer(node)
    end,
  },

  -- Every line of the contact's paid carts; 503 for an unknown contact.
  ws_recap_achat = {
    auth = "ws",
    params = { id_contact = "integer!", format = "string!" },
    run = function(p, env)
      if p.format ~= "tableau" then return ko(4) end
      if not contact_known(env.db, env.client, p.id_contact) then return ko(503) end
      local out = {}
      for _, l in ipairs(paid_lines(env.db, env.client, p.id_contact)) do
        out[#out + 1] = recap_line(env, l)
      end
      return ok(2, codec.array(out))
    end,
  },

  -- Tickets of performances not over yet, and cards in their dates, of the
  -- logged-in contact; retour_flat with code 102 "Traitement effectué".
  ws_info_telechargement = {
    auth = "token",
    run = function(_, env)
      local s, why = logged(env)
      local function flat(code, message, yes, no)
        return { retour = { code = code, traitement = code == 102 and "ok" or "ko", message = message,
          liste_telechargement = codec.array(yes), liste_non_telechargeable = codec.array(no) } }
      end
      if not s then return flat(why, codes[why].message, {}, {}) end
      local yes, no = {}, {}
      for _, l in ipairs(paid_lines(env.db, s.client, s.id_contact)) do
        if l.kind == "billet" then
          local rep = catalogue.representation(env.db, s.client, l.ref_rep)
          if rep and rep.debut + rep.duree > env.now then
            local down = downloadable(l.billet_at_home, l.justificatif)
            table.insert(down and yes or no, ticket_item(env, l, rep, down))
          end
        end
      end
      for _, k in ipairs(cards_of(env.db, s.client, s.id_contact, 0)) do
        local a = catalogue.abonnement(env.db, s.client, k.id_abonnement)
        if a and card_active(k, a.credit, env.now) then
          local down = downloadable(a.billet_at_home, 0)
          table.insert(down and yes or no, card_item(env, { id_detail = k.id_detail, libelle = k.libelle,
            prix_unitaire = k.prix_unitaire, id_caddy = k.id_caddy }, k, a, down))
        end
      end
      return flat(102, "Traitement effectué", yes, no)
    end,
  },

  -- Cards sold to the logged-in contact in the last 3 years, with the
  -- tickets booked on each; optional filters on the card's public category
  -- (need filtre=1; exact match, case-insensitive). filtre=0 without them
  -- means no filter, as on the catalogue services (2.1.1.2).
  ws_historique_contact = {
    auth = "token",
    envelope = "retour_historique",   -- every refusal in the flat shape (2.4.5.4)
    params = { filtre = "integer", categorie = "string", categ_sec_un = "string",
      categ_sec_deux = "string", code_regroup = "string" },
    run = function(p, env)
      local filters = { categorie = "categorie_web", categ_sec_un = "categ_sec_un",
        categ_sec_deux = "categ_sec_deux", code_regroup = "code_regroup" }
      if p.filtre ~= nil and p.filtre ~= 0 and p.filtre ~= 1 then return ko(4) end
      for name in pairs(filters) do
        if p[name] and p.filtre ~= 1 then return ko(4) end
      end
      local s, why = logged(env)
      if not s then return ko(why) end
      local since = env.now - 3 * 365 * 86400
      local out = {}
      for _, k in ipairs(cards_of(env.db, s.client, s.id_contact, since)) do
        local a = catalogue.abonnement(env.db, s.client, k.id_abonnement) or {}
        local keep = true
        for name, column in pairs(filters) do
          if p[name] and (a[column] or ""):lower() ~= p[name]:lower() then keep = false end
        end
        if keep then
          local billets = {}
          for i, b in ipairs(k.billets) do
            local rep = catalogue.representation(env.db, s.client, b.ref_rep)
            billets[i] = { dateheure = b.dateheure, id_carte = k.id_carte, id_rep = b.ref_rep,
              id_spectacle = b.ref_spect, salle_nom = rep and rep.salle and rep.salle.nom or "",
              spectacle = b.spectacle }
          end
          local credit = a.credit or 0
          out[#out + 1] = {
            active = card_active(k, credit, env.now), consommation = k.used, credit = credit,
            date_achat = iso_day(k.datevente), ["end"] = iso_day(k.fin), id = k.id_carte,
            id_categ = k.id_abonnement, libelle = k.libelle, liste_billets = codec.array(billets),
            prix = euros(k.prix_unitaire), renouveler_la_carte = a.renouvelable or 0, saison = a.saison or 0,
            solde = math.max(0, credit - k.used), start = iso_day(k.debut), type_saison = a.type_saison or "",
            valide = k.valide == 1,
          }
        end
      end
      return { retour = { historique = codec.array(out), traitement = "ok", message = "traitement réalisé" } }
    end,
  },

  -- Sandbox control route (not a vendor service): makes the sandbox push
  -- kind=ws_det_achat (the <caddy> of id_caddy) or kind=notify_impression_carte
  -- (the NOTIFY of id_carte, or of the first card of id_caddy) to `url`,
  -- as a POST with a raw text/xml body, and records the outcome.
  ["_sandbox/notify"] = {
    auth = "ws",
    params = { url = "string!", kind = "string!", id_caddy = "string", id_carte = "integer" },
    run = function(p, env)
      if not p.url:match("^https?://[^/]") then return http_error(400, "url must be http:// or https://") end
      local body, ref, message = push_document(p, env)
      if not body then return http_error(ref, message) end
      local status, err = post_xml(p.url, body)
      local row = env.db:tx(function(db)
        db:exec([[INSERT INTO pushes (client, kind, url, ref, at, http_status, error, bytes)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?)]], env.client, p.kind, p.url, ref, env.now, status, err, #body)
        return db:one("SELECT * FROM pushes WHERE id = ?", db:last_id())
      end)
      return { push = push_out(row) }
    end,
  },

  -- The pushes made for this client, newest first.
  ["_sandbox/pushes"] = {
    auth = "ws",
    run = function(_, env)
      local out = {}
      for i, row in ipairs(env.db:rows("SELECT * FROM pushes WHERE client = ? ORDER BY id DESC", env.client)) do
        out[i] = push_out(row)
      end
      return { pushes = codec.array(out) }
    end,
  },
}

M.routes = routes
return M
