-- billetterie.sandbox.catalogue: spec 2.1, the programme as XML
-- (ws_programmation, ws_cat_*, ws_det_*), and the tables behind it: venues
-- (salles), price grids (grilles + tarifs), shows, performances,
-- subscriptions/memberships (abonnements), shop articles (gift vouchers are
-- articles of famille "BON CADEAU", as page 3.12 suggests) and services
-- (prestations: fees, shipping).
--
-- The vendor's XML format (SPT_RSI_XML_Vx.pdf) is not public: the document
-- follows the shape the reference proposes (labilletterie-ws.md 6.2), an
-- INFERENCE built from a public integration. SALLES and GRILLES always come
-- before SPECTACLES (single-pass readers rely on it), every REP_SALLE is a
-- SALLE_ID of the document and every REP_GRILLE/REP_GRILLE_WEB the libelle/
-- libelle_web of one of its GRILLEs. Prices are euros with a decimal comma;
-- they are stored in centimes. Errors are the JSON envelope (codes 3, 4 and
-- the 4.2 category codes), as the reference chooses.
--
-- Also exported for the purchases group and the seeds: the XML element
-- builders and writer (M.element, M.text, M.document over core.xml_encode),
-- M.euros, the record readers and M.load.

local core = require "billetterie.core"
local services = require "billetterie.sandbox.services"
local ko, raw = services.ko, services.raw

local SCHEMA = {
  -- Every table is keyed by (client, id): each x_rsi_client has its own
  -- programme, and the ids are the venue's own (seeds give them).
  [[CREATE TABLE IF NOT EXISTS salles (
      client INTEGER NOT NULL, id_salle INTEGER NOT NULL,
      id_salle_mere INTEGER NOT NULL,  -- the venue a hall belongs to (itself for a venue)
      nom TEXT NOT NULL, ville TEXT NOT NULL DEFAULT '',
      numerotee INTEGER NOT NULL DEFAULT 0,
      ts_modif INTEGER NOT NULL,       -- unix seconds
      PRIMARY KEY (client, id_salle))]],
  [[CREATE TABLE IF NOT EXISTS grilles (
      client INTEGER NOT NULL, id_grille INTEGER NOT NULL,
      libelle TEXT NOT NULL, libelle_web TEXT NOT NULL,
      ts_modif INTEGER NOT NULL,
      PRIMARY KEY (client, id_grille))]],
  -- One price per (grid, public category, zone). A subscription is also a
  -- public category: its id appears here for the prices of its tickets.
  [[CREATE TABLE IF NOT EXISTS tarifs (
      client INTEGER NOT NULL, id_grille INTEGER NOT NULL,
      id_categ INTEGER NOT NULL, categ TEXT NOT NULL,
      id_zone INTEGER NOT NULL, zone TEXT NOT NULL,
      prix INTEGER NOT NULL,           -- centimes
      frais INTEGER NOT NULL DEFAULT 0, -- booking fee, centimes
      ordre INTEGER NOT NULL DEFAULT 0,
      PRIMARY KEY (client, id_grille, id_categ, id_zone))]],
  [[CREATE TABLE IF NOT EXISTS spectacles (
      client INTEGER NOT NULL, id_spectacle INTEGER NOT NULL,
      nom TEXT NOT NULL, type TEXT NOT NULL DEFAULT '',
      champ_libre1 TEXT NOT NULL DEFAULT '', champ_libre2 TEXT NOT NULL DEFAULT '',
      titre_libre2 TEXT NOT NULL DEFAULT '',
      en_vente INTEGER NOT NULL DEFAULT 1, -- on sale on the web
      ts_modif INTEGER NOT NULL,
      PRIMARY KEY (client, id_spectacle))]],
  [[CREATE TABLE IF NOT EXISTS representations (
      client INTEGER NOT NULL, id_representation INTEGER NOT NULL,
      id_spectacle INTEGER NOT NULL, id_salle INTEGER NOT NULL, id_grille INTEGER NOT NULL,
      debut INTEGER NOT NULL,          -- unix seconds (local time of the venue)
      duree INTEGER NOT NULL,          -- seconds
      nature TEXT NOT NULL DEFAULT 'Représentation',
      en_vente INTEGER NOT NULL DEFAULT 1,
      ts_modif INTEGER NOT NULL,
      PRIMARY KEY (client, id_representation))]],
  [[CREATE TABLE IF NOT EXISTS abonnements (
      client INTEGER NOT NULL, id_abonnement INTEGER NOT NULL,
      nom TEXT NOT NULL,
      categorie_web TEXT NOT NULL DEFAULT '', categ_sec_un TEXT NOT NULL DEFAULT '',
      categ_sec_deux TEXT NOT NULL DEFAULT '', code_regroup TEXT NOT NULL DEFAULT '',
      prix INTEGER NOT NULL,           -- centimes
      credit INTEGER NOT NULL DEFAULT 0, -- rights (tickets) the card gives
      saison INTEGER NOT NULL DEFAULT 0, type_saison TEXT NOT NULL DEFAULT '',
      renouvelable INTEGER NOT NULL DEFAULT 0,
      billet_at_home INTEGER NOT NULL DEFAULT 0, -- 0 box office, 2/3 printed at home
      en_vente INTEGER NOT NULL DEFAULT 1,
      ts_modif INTEGER NOT NULL,
      PRIMARY KEY (client, id_abonnement))]],
  [[CREATE TABLE IF NOT EXISTS articles (
      client INTEGER NOT NULL, id_article INTEGER NOT NULL,
      nom TEXT NOT NULL, famille TEXT NOT NULL DEFAULT '',
      type_produit INTEGER NOT NULL DEFAULT 1, -- ws_recap_achat: 1 produit, 2 nourriture, 3 alcool, 4 librairie
      prix INTEGER NOT NULL,           -- centimes
      en_vente INTEGER NOT NULL DEFAULT 1,
      ts_modif INTEGER NOT NULL,
      PRIMARY KEY (client, id_article))]],
  [[CREATE TABLE IF NOT EXISTS prestations (
      client INTEGER NOT NULL, id_prest INTEGER NOT NULL,
      libelle TEXT NOT NULL,
      type INTEGER NOT NULL,           -- 1 with an article/card, 2 shipping, 3 booking fee (2.4.2)
      prix INTEGER NOT NULL,           -- centimes
      PRIMARY KEY (client, id_prest))]],
}

local M = { schema = SCHEMA }

---- XML answers: element tables for core.xml_encode (libxml2) ----

-- The control characters XML 1.0 forbids: xml_encode refuses them, and a
-- seed may hold some, so they are dropped from every value.
local CONTROLS = "[%z\1-\8\11\12\14-\31]"

local function str(v)
  if type(v) == "number" then return tostring(v) end
  v = tostring(v)
  if v:find(CONTROLS) then v = v:gsub(CONTROLS, "") end
  return v
end

-- element("TAG", { ATTR = value, ... } or nil, { child, ... } or text)
-- -> the element form of core.xml_encode. Attributes come out in name order.
function M.element(tag, attrs, kids)
  local e = { name = tag }
  if attrs then
    e.attrs = {}
    for k, v in pairs(attrs) do e.attrs[k] = str(v) end
  end
  if type(kids) == "table" then
    for i = 1, #kids do e[i] = kids[i] end
  elseif kids ~= nil then
    local text = str(kids)
    if text ~= "" then e[1] = text end
  end
  return e
end

-- A text-only element; nil or "" gives an empty one (<x_rsi_option/>).
function M.text(tag, value)
  local text = value == nil and "" or str(value)
  if text == "" then return { name = tag } end
  return { name = tag, text }
end
local E, T = M.element, M.text

-- The document text, indented like the vendor's examples; `declaration`
-- true puts <?xml version="1.0" encoding="UTF-8"?> first, "standalone"
-- adds standalone="yes". A refusal of xml_encode is a bug or bad data: an
-- error (the route answers 500).
function M.document(root, declaration)
  local text, err = core.xml_encode(root, { indent = true, declaration = declaration })
  if not text then error("sandbox XML answer <" .. tostring(root.name) .. ">: " .. err, 2) end
  return text
end

local XML_TYPE = "application/xml; charset=utf-8"

-- The route answer for an XML document.
function M.answer(root, declaration)
  return raw(200, XML_TYPE, M.document(root, declaration))
end

---- values ----

-- centimes -> the feed's euros with a decimal comma: 1800 -> "18",
-- 550 -> "5,5", 1275 -> "12,75" (the public integration reads "5,5").
function M.euros(c)
  -- on the magnitude: floor division would print -150 as "-2,5"
  local s = ("%s%d"):format(c < 0 and "-" or "", math.abs(c) // 100)
  local cents = math.abs(c) % 100
  if cents == 0 then return s end
  return ((s .. (",%02d"):format(cents)):gsub("0$", ""))
end

local function hms(seconds)
  return ("%02d:%02d:%02d"):format(seconds // 3600, seconds % 3600 // 60, seconds % 60)
end

-- TS_MODIF: the element is observed, its format is not; ISO 8601 chosen.
local function ts(t) return os.date("%Y-%m-%dT%H:%M:%S", t) end

-- AAAAMMJJ -> unix time of that local midnight, or nil when not a real date.
local function day_start(s)
  local y, m, d = (s or ""):match("^(%d%d%d%d)(%d%d)(%d%d)$")
  if not y then return nil end
  local t = os.time { year = tonumber(y), month = tonumber(m), day = tonumber(d), hour = 0 }
  local back = os.date("*t", t)
  if back.year ~= tonumber(y) or back.month ~= tonumber(m) or back.day ~= tonumber(d) then return nil end
  return t
end

-- The next local midnight after the day starting at t (DST-safe).
local function next_day(t)
  local d = os.date("*t", t)
  return os.time { year = d.year, month = d.month, day = d.day + 1, hour = 0 }
end
M.day_start, M.next_day = day_start, next_day

---- records ----

-- -> representation row with .spectacle (row) and .salle (row), or nil
function M.representation(db, client, id)
  local r = db:one("SELECT * FROM representations WHERE client = ? AND id_representation = ?", client, id)
  if not r then return nil end
  r.spectacle = db:one("SELECT * FROM spectacles WHERE client = ? AND id_spectacle = ?", client, r.id_spectacle)
  r.salle = db:one("SELECT * FROM salles WHERE client = ? AND id_salle = ?", client, r.id_salle)
  return r
end

function M.tarif(db, client, id_grille, id_categ, id_zone)
  return db:one("SELECT * FROM tarifs WHERE client = ? AND id_grille = ? AND id_categ = ? AND id_zone = ?",
    client, id_grille, id_categ, id_zone)
end

function M.abonnement(db, client, id)
  return db:one("SELECT * FROM abonnements WHERE client = ? AND id_abonnement = ?", client, id)
end

function M.article(db, client, id)
  return db:one("SELECT * FROM articles WHERE client = ? AND id_article = ?", client, id)
end

function M.prestation(db, client, id)
  return db:one("SELECT * FROM prestations WHERE client = ? AND id_prest = ?", client, id)
end

-- Column lists per table, for M.load.
local COLUMNS = {
  salles = { "id_salle", "id_salle_mere", "nom", "ville", "numerotee", "ts_modif" },
  grilles = { "id_grille", "libelle", "libelle_web", "ts_modif" },
  tarifs = { "id_grille", "id_categ", "categ", "id_zone", "zone", "prix", "frais", "ordre" },
  spectacles = { "id_spectacle", "nom", "type", "champ_libre1", "champ_libre2", "titre_libre2",
    "en_vente", "ts_modif" },
  representations = { "id_representation", "id_spectacle", "id_salle", "id_grille", "debut", "duree",
    "nature", "en_vente", "ts_modif" },
  abonnements = { "id_abonnement", "nom", "categorie_web", "categ_sec_un", "categ_sec_deux",
    "code_regroup", "prix", "credit", "saison", "type_saison", "renouvelable", "billet_at_home",
    "en_vente", "ts_modif" },
  articles = { "id_article", "nom", "famille", "type_produit", "prix", "en_vente", "ts_modif" },
  prestations = { "id_prest", "libelle", "type", "prix" },
}
local LOAD_ORDER = { "salles", "grilles", "tarifs", "spectacles", "representations", "abonnements",
  "articles", "prestations" }

-- Writes a programme in one transaction: data = { salles = { row, ... },
-- grilles = ..., ... } with the columns above (absent ones take the table's
-- default). Rows are replaced on their key, so loading twice is harmless.
function M.load(db, client, data)
  db:tx(function()
    for _, name in ipairs(LOAD_ORDER) do
      for _, row in ipairs(data[name] or {}) do
        local cols, marks, vals = { "client" }, { "?" }, { client }
        for _, c in ipairs(COLUMNS[name]) do
          if row[c] ~= nil then
            cols[#cols + 1], marks[#marks + 1], vals[#vals + 1] = c, "?", row[c]
          end
        end
        db:exec(("INSERT OR REPLACE INTO %s (%s) VALUES (%s)"):format(name, table.concat(cols, ", "),
          table.concat(marks, ", ")), table.unpack(vals))
      end
    end
  end)
end

---- the programme of a client, as the feed shows it ----

-- Everything of a client, indexed; a performance is available on the web
-- while it and its show are on sale and it has not started.
local function programme(db, client, now)
  local p = { salle = {}, grille = {}, tarifs = {}, reps = {} }
  p.salles = db:rows("SELECT * FROM salles WHERE client = ? ORDER BY id_salle", client)
  for _, s in ipairs(p.salles) do p.salle[s.id_salle] = s end
  p.grilles = db:rows("SELECT * FROM grilles WHERE client = ? ORDER BY id_grille", client)
  for _, g in ipairs(p.grilles) do p.grille[g.id_grille] = g; p.tarifs[g.id_grille] = {} end
  for _, t in ipairs(db:rows("SELECT * FROM tarifs WHERE client = ? ORDER BY id_grille, ordre, id_categ, id_zone",
      client)) do
    local list = p.tarifs[t.id_grille]
    if list then list[#list + 1] = t end
  end
  p.spectacles = db:rows("SELECT * FROM spectacles WHERE client = ? ORDER BY id_spectacle", client)
  for _, s in ipairs(p.spectacles) do p.reps[s.id_spectacle] = {} end
  for _, r in ipairs(db:rows("SELECT * FROM representations WHERE client = ? ORDER BY debut, id_representation",
      client)) do
    local list = p.reps[r.id_spectacle]
    if list then
      r.available = r.en_vente == 1 and r.debut > now
      list[#list + 1] = r
    end
  end
  for _, s in ipairs(p.spectacles) do
    s.available = false
    if s.en_vente == 1 then
      for _, r in ipairs(p.reps[s.id_spectacle]) do s.available = s.available or r.available end
    end
  end
  return p
end

local function salle_node(s)
  return E("SALLE", { SALLE_ID = s.id_salle, SALLE_MERE_ID = s.id_salle_mere },
    { T("NOM", s.nom), T("VILLE", s.ville) })
end

-- CATEGORIE_PUBLIQUE in the grid's order, each with its ZONEs and one PRIX
-- (text = price, FRAIS = fee, both euros with a comma).
local function grille_node(g, tarifs)
  local kids, categ = { T("libelle", g.libelle), T("libelle_web", g.libelle_web) }, {}
  for _, t in ipairs(tarifs) do
    local c = categ[t.id_categ]
    if not c then
      c = E("CATEGORIE_PUBLIQUE", { ID = t.id_categ, LIBELLE = t.categ })
      categ[t.id_categ] = c
      kids[#kids + 1] = c
    end
    -- an element's children are its array part
    c[#c + 1] = E("ZONE", { ID = t.id_zone, LIBELLE = t.zone },
      { E("PRIX", { FRAIS = M.euros(t.frais) }, M.euros(t.prix)) })
  end
  return E("GRILLE", { ID = g.id_grille }, kids)
end

local function representation_node(r, p)
  local g = p.grille[r.id_grille]
  return E("REPRESENTATION", {
    ID = r.id_representation,
    REP_DATE = os.date("%d/%m/%Y", r.debut), REP_HEURE = os.date("%H:%M:%S", r.debut),
    REP_GRILLE = g and g.libelle or "", REP_GRILLE_WEB = g and g.libelle_web or "",
    REP_DUREE = hms(r.duree), REP_SALLE = r.id_salle,
  })
end

local function spectacle_node(s, reps, p)
  local rep_nodes = {}
  for i, r in ipairs(reps) do rep_nodes[i] = representation_node(r, p) end
  return E("SPECTACLE", { IDENT = s.id_spectacle, NOM = s.nom }, {
    T("CHAMP_LIBRE1", s.champ_libre1), T("CHAMP_LIBRE2", s.champ_libre2),
    T("TITRE_LIBRE2", s.titre_libre2), T("TYPE", s.type), T("TS_MODIF", ts(s.ts_modif)),
    E("REPRESENTATIONS", nil, rep_nodes),
  })
end

local function abonnement_node(a)
  return E("ABONNEMENT", { ID = a.id_abonnement, NOM = a.nom }, {
    T("CATEGORIE_WEB", a.categorie_web), T("CATEGORIE_SECONDAIRE_UN", a.categ_sec_un),
    T("CATEGORIE_SECONDAIRE_DEUX", a.categ_sec_deux), T("CODE_REGROUP", a.code_regroup),
    T("PRIX", M.euros(a.prix)), T("TS_MODIF", ts(a.ts_modif)),
  })
end

local function article_node(a)
  return E("ARTICLE", { ID = a.id_article, NOM = a.nom }, {
    T("FAMILLE", a.famille), T("PRIX", M.euros(a.prix)), T("TS_MODIF", ts(a.ts_modif)),
  })
end

-- The SALLES and GRILLES containers: `want` nil means all of them,
-- otherwise the sets of ids to show (mother venues are added, so every
-- SALLE_MERE_ID of the document is a SALLE_ID too).
local function venue_sections(p, want_salles, want_grilles)
  local salles, grilles = {}, {}
  if want_salles then
    for id in pairs(want_salles) do
      local s = p.salle[id]
      if s then want_salles[s.id_salle_mere] = true end
    end
  end
  for _, s in ipairs(p.salles) do
    if not want_salles or want_salles[s.id_salle] then salles[#salles + 1] = salle_node(s) end
  end
  for _, g in ipairs(p.grilles) do
    if not want_grilles or want_grilles[g.id_grille] then
      grilles[#grilles + 1] = grille_node(g, p.tarifs[g.id_grille])
    end
  end
  return E("SALLES", nil, salles), E("GRILLES", nil, grilles)
end

-- The date filters of 2.1.1 -> { modif = t | nil, from = t, to = t } or nil
-- when the parameters are wrong. filtre "permet de filtrer par date": 1
-- turns the filter on, 0 (or no filtre) leaves it off; another value is 4.
-- filtre must be 1 as soon as a date is sent; date_debut and date_fin go
-- together (and fin >= debut, both inclusive); date_modif is inclusive
-- (modified on or after that day).
local function date_filters(p)
  local f = {}
  if p.filtre ~= nil and p.filtre ~= 0 and p.filtre ~= 1 then return nil end
  if p.date_modif or p.date_debut or p.date_fin then
    if p.filtre ~= 1 then return nil end
    if (p.date_debut == nil) ~= (p.date_fin == nil) then return nil end
  end
  if p.date_modif then
    f.modif = day_start(p.date_modif)
    if not f.modif then return nil end
  end
  if p.date_debut then
    local from, last = day_start(p.date_debut), day_start(p.date_fin)
    if not from or not last or last < from then return nil end
    f.from, f.to = from, next_day(last)
  end
  return f
end

-- Shows, their performances and the venues/grids they use, under the
-- filters. A performance is kept when it is available, modified since
-- date_modif (if given) and inside the window (if given). A show is kept
-- with its kept performances when it has one, or, under date_modif, when
-- the show itself was modified (and, with a window too, has a performance
-- in it). SALLES/GRILLES: all of them without date_modif; with it, the
-- modified ones plus those the kept performances use.
local function spectacle_sections(p, f)
  local shows, used_salles, used_grilles = {}, {}, {}
  for _, s in ipairs(p.spectacles) do
    if s.available then
      local kept, in_window = {}, false
      for _, r in ipairs(p.reps[s.id_spectacle]) do
        local inside = not f.from or (r.debut >= f.from and r.debut < f.to)
        if r.available and inside then
          in_window = true
          if not f.modif or r.ts_modif >= f.modif then kept[#kept + 1] = r end
        end
      end
      if #kept > 0 or (f.modif and s.ts_modif >= f.modif and in_window) then
        shows[#shows + 1] = spectacle_node(s, kept, p)
        for _, r in ipairs(kept) do used_salles[r.id_salle], used_grilles[r.id_grille] = true, true end
      end
    end
  end
  local want_salles, want_grilles
  if f.modif then
    want_salles, want_grilles = used_salles, used_grilles
    for _, x in ipairs(p.salles) do if x.ts_modif >= f.modif then want_salles[x.id_salle] = true end end
    for _, x in ipairs(p.grilles) do if x.ts_modif >= f.modif then want_grilles[x.id_grille] = true end end
  end
  local salles, grilles = venue_sections(p, want_salles, want_grilles)
  return salles, grilles, E("SPECTACLES", nil, shows)
end

local function on_sale(db, sql, client, f)
  local out = {}
  for _, row in ipairs(db:rows(sql, client)) do
    if not (f and f.modif) or row.ts_modif >= f.modif then out[#out + 1] = row end
  end
  return out
end

local function abonnements_section(db, client, f)
  local nodes = {}
  for i, a in ipairs(on_sale(db, "SELECT * FROM abonnements WHERE client = ? AND en_vente = 1 ORDER BY id_abonnement",
      client, f)) do
    nodes[i] = abonnement_node(a)
  end
  return E("ABONNEMENTS", nil, nodes)
end

local function articles_section(db, client, f)
  local nodes = {}
  for i, a in ipairs(on_sale(db, "SELECT * FROM articles WHERE client = ? AND en_vente = 1 ORDER BY id_article",
      client, f)) do
    nodes[i] = article_node(a)
  end
  return E("ARTICLES", nil, nodes)
end

local function catalogue(sections)
  return M.answer(E("CATALOGUE", nil, sections), true)
end

local FILTER_PARAMS = { filtre = "integer", date_modif = "string", date_debut = "string", date_fin = "string" }

local routes = {
  -- Every section; the date filters apply to shows (both), and date_modif
  -- to subscriptions and articles too ("seuls les éléments modifiés").
  ws_programmation = {
    auth = "ws",
    params = FILTER_PARAMS,
    run = function(p, env)
      local f = date_filters(p)
      if not f then return ko(4) end
      local salles, grilles, spectacles = spectacle_sections(programme(env.db, env.client, env.now), f)
      return catalogue { salles, grilles, spectacles, abonnements_section(env.db, env.client, f),
        articles_section(env.db, env.client, f) }
    end,
  },

  ws_cat_spectacle = {
    auth = "ws",
    params = FILTER_PARAMS,
    run = function(p, env)
      local f = date_filters(p)
      if not f then return ko(4) end
      return catalogue { spectacle_sections(programme(env.db, env.client, env.now), f) }
    end,
  },

  ws_cat_abonnement = {
    auth = "ws",
    run = function(_, env) return catalogue { abonnements_section(env.db, env.client) } end,
  },

  ws_cat_article = {
    auth = "ws",
    run = function(_, env) return catalogue { articles_section(env.db, env.client) } end,
  },

  -- One show with all its available performances and what they use.
  -- 202 unknown, 203 not on sale (or nothing left to sell).
  ws_det_spectacle = {
    auth = "ws",
    params = { id_spectacle = "integer!" },
    run = function(p, env)
      local prog = programme(env.db, env.client, env.now)
      local show
      for _, s in ipairs(prog.spectacles) do
        if s.id_spectacle == p.id_spectacle then show = s end
      end
      if not show then return ko(202) end
      if not show.available then return ko(203) end
      local reps, salles, grilles = {}, {}, {}
      for _, r in ipairs(prog.reps[show.id_spectacle]) do
        if r.available then
          reps[#reps + 1] = r
          salles[r.id_salle], grilles[r.id_grille] = true, true
        end
      end
      local s_node, g_node = venue_sections(prog, salles, grilles)
      return catalogue { s_node, g_node, E("SPECTACLES", nil, { spectacle_node(show, reps, prog) }) }
    end,
  },

  -- The performance inside its show. 204 unknown, 206 already started
  -- ("plus disponible"), 205 not on sale.
  ws_det_representation = {
    auth = "ws",
    params = { id_representation = "integer!" },
    run = function(p, env)
      local prog = programme(env.db, env.client, env.now)
      local rep, show
      for _, s in ipairs(prog.spectacles) do
        for _, r in ipairs(prog.reps[s.id_spectacle]) do
          if r.id_representation == p.id_representation then rep, show = r, s end
        end
      end
      if not rep then return ko(204) end
      if rep.debut <= env.now then return ko(206) end
      if not rep.available or show.en_vente ~= 1 then return ko(205) end
      local s_node, g_node = venue_sections(prog, { [rep.id_salle] = true }, { [rep.id_grille] = true })
      return catalogue { s_node, g_node, E("SPECTACLES", nil, { spectacle_node(show, { rep }, prog) }) }
    end,
  },

  -- 102 unknown, 103 not available on the web.
  ws_det_abonnement = {
    auth = "ws",
    params = { id_abonnement = "integer!" },
    run = function(p, env)
      local a = M.abonnement(env.db, env.client, p.id_abonnement)
      if not a then return ko(102) end
      if a.en_vente ~= 1 then return ko(103) end
      return catalogue { E("ABONNEMENTS", nil, { abonnement_node(a) }) }
    end,
  },

  -- 302 unknown, 303 not on sale.
  ws_det_article = {
    auth = "ws",
    params = { id_article = "integer!" },
    run = function(p, env)
      local a = M.article(env.db, env.client, p.id_article)
      if not a then return ko(302) end
      if a.en_vente ~= 1 then return ko(303) end
      return catalogue { E("ARTICLES", nil, { article_node(a) }) }
    end,
  },
}

M.routes = routes
return M
