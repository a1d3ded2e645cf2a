-- The catalogue services (spec 2.1) end to end: the project's client
-- against a real sandbox started with `--seed demo`, over real sockets.
-- The XML shape is the reference's inferred one (labilletterie-ws.md 6.2).
-- Runs under Lua 5.4 and LuaJIT (the sandbox itself is always lua5.4).
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local xml = require "billetterie.xml"

local sb, c

setup(function()
  sb = sandbox.start { args = { "--seed", "demo" } }
  c = sb:client()
end)
teardown(function() if sb then sb:stop() end end)

-- AAAAMMJJ of today + days (the seed places its performances from today).
local function ymd(days)
  local d = os.date("*t")
  return os.date("%Y%m%d", os.time { year = d.year, month = d.month, day = d.day + days, hour = 12 })
end

local CREDS = "x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677"

-- GET with a query string, as the public integration calls it; -> body
local function get(ws, query)
  local p = io.popen(("curl -s '%s%s?%s&%s'"):format(sb.url, ws, CREDS, query or ""))
  local body = p:read("*a")
  p:close()
  return body
end

local function code_of(body)
  return tonumber(body:match('"code":(%d+)'))
end

-- list of the values of field `k` of items (ids: integers), sorted
local function ids(items, k)
  local out = {}
  for i, it in ipairs(items or {}) do out[i] = it[k] end
  table.sort(out)
  return out
end

local function section(doc, container, item)
  local s = doc[container]
  if s == "" then return {} end -- an empty element decodes to ""
  return s[item]
end

local function reps_of(show)
  return show.REPRESENTATIONS == "" and {} or show.REPRESENTATIONS.REPRESENTATION
end

local function show(doc, ident)
  for _, s in ipairs(section(doc, "SPECTACLES", "SPECTACLE")) do
    if s.IDENT == ident then return s end
  end
end

describe("ws_programmation against the demo seed", function()
  it("returns the whole catalogue as XML decoded into tables", function()
    local doc, statut = c:call("ws_programmation")
    assert.is_table(doc, tostring(statut))
    assert.equal("CATALOGUE", statut.root)
    assert.same({ 28, 29, 30, 40, 41, 50 }, ids(section(doc, "SALLES", "SALLE"), "SALLE_ID"))
    assert.same({ 12, 13, 14 }, ids(section(doc, "GRILLES", "GRILLE"), "ID"))
    -- over (2191), not on sale (2192): not in the catalogue
    assert.same({ 2185, 2186, 2187, 2188, 2189, 2190, 2193, 2194 },
      ids(section(doc, "SPECTACLES", "SPECTACLE"), "IDENT"))
    assert.same({ 363, 364, 373 }, ids(section(doc, "ABONNEMENTS", "ABONNEMENT"), "ID"))
    assert.same({ 9, 16, 17, 18, 30, 31 }, ids(section(doc, "ARTICLES", "ARTICLE"), "ID"))
  end)

  it("keeps every reference inside the document, SALLES and GRILLES first", function()
    local doc = assert(c:call("ws_programmation"))
    local salles, labels, webs = {}, {}, {}
    for _, s in ipairs(doc.SALLES.SALLE) do salles[s.SALLE_ID] = s end
    for _, s in ipairs(doc.SALLES.SALLE) do assert.truthy(salles[s.SALLE_MERE_ID]) end
    for _, g in ipairs(doc.GRILLES.GRILLE) do labels[g.libelle], webs[g.libelle_web] = true, true end
    local n = 0
    for _, s in ipairs(doc.SPECTACLES.SPECTACLE) do
      for _, r in ipairs(reps_of(s)) do
        n = n + 1
        assert.truthy(salles[r.REP_SALLE], r.REP_SALLE)
        assert.truthy(labels[r.REP_GRILLE], r.REP_GRILLE)
        assert.truthy(webs[r.REP_GRILLE_WEB], r.REP_GRILLE_WEB)
        assert.matches("^%d%d/%d%d/%d%d%d%d$", r.REP_DATE)
        assert.matches("^%d%d:%d%d:%d%d$", r.REP_HEURE)
        assert.matches("^%d%d:%d%d:%d%d$", r.REP_DUREE)
      end
    end
    assert.equal(17, n) -- past (12170) and not on sale (12231) performances left out
    local text = get("ws_programmation")
    local at = function(s) return assert(text:find(s, 1, true), s) end
    assert.is_true(at("<SALLES>") < at("<GRILLES>") and at("<GRILLES>") < at("<SPECTACLES>"))
    assert.matches("^<%?xml version=\"1.0\" encoding=\"UTF%-8\"%?>", text)
  end)

  it("prints prices in euros with a decimal comma", function()
    local doc = assert(c:call("ws_programmation"))
    local b
    for _, g in ipairs(doc.GRILLES.GRILLE) do if g.ID == 13 then b = g end end
    local prices = {}
    for _, cat in ipairs(b.CATEGORIE_PUBLIQUE) do
      for _, z in ipairs(cat.ZONE) do prices[cat.LIBELLE] = { z.PRIX._text, z.PRIX.FRAIS } end
    end
    assert.same({ "15", "1" }, prices["TARIF PLEIN"])
    assert.same({ "10,5", "1" }, prices["TARIF REDUIT"])
    assert.same({ "5,5", "0" }, prices["Pass Jeune"])
    assert.equal(10.5, xml.decimal(prices["TARIF REDUIT"][1]))
    local articles = {}
    for _, a in ipairs(doc.ARTICLES.ARTICLE) do articles[a.ID] = a end
    assert.equal("9,5", articles[18].PRIX)
    assert.equal("BON CADEAU", articles[30].FAMILLE) -- gift vouchers
  end)

  it("escapes markup characters", function()
    local s = show(assert(c:call("ws_programmation")), 2194)
    assert.equal("ROMÉO & JULIETTE", s.NOM)
    assert.equal("Création <2024>", s.CHAMP_LIBRE1)
    assert.equal("d'après \"Shakespeare\" & Cie", s.TITRE_LIBRE2)
    assert.equal("Coup de cœur \"presse\"", show(assert(c:call("ws_programmation")), 2186).CHAMP_LIBRE2)
  end)

  it("filters on date_modif: only what changed since that day", function()
    local doc = assert(c:call("ws_programmation", { filtre = 1, date_modif = ymd(-7) }))
    assert.same({ 2185, 2189 }, ids(doc.SPECTACLES.SPECTACLE, "IDENT"))
    -- the show did not change, one performance did: only that one
    assert.same({ 12153 }, ids(reps_of(show(doc, 2185)), "ID"))
    assert.same({ 12190, 12191, 12192 }, ids(reps_of(show(doc, 2189)), "ID"))
    -- modified (50, 14) or used by a performance of the answer (29, 30, 12), with mother venues
    assert.same({ 28, 29, 30, 50 }, ids(doc.SALLES.SALLE, "SALLE_ID"))
    assert.same({ 12, 14 }, ids(doc.GRILLES.GRILLE, "ID"))
    assert.same({ 364 }, ids(doc.ABONNEMENTS.ABONNEMENT, "ID"))
    assert.same({ 31 }, ids(doc.ARTICLES.ARTICLE, "ID"))
    -- nothing changed since tomorrow
    local none = assert(c:call("ws_programmation", { filtre = 1, date_modif = ymd(1) }))
    assert.equal("", none.SPECTACLES)
    assert.equal("", none.ABONNEMENTS)
  end)

  it("filters on a performance window, both days included, and ANDs both filters", function()
    local doc = assert(c:call("ws_cat_spectacle", { filtre = 1, date_debut = ymd(5), date_fin = ymd(9) }))
    assert.same({ 2185, 2189 }, ids(doc.SPECTACLES.SPECTACLE, "IDENT"))
    assert.same({ 12151, 12152 }, ids(reps_of(show(doc, 2185)), "ID"))
    assert.same({ 12190, 12191, 12192 }, ids(reps_of(show(doc, 2189)), "ID"))
    -- a window filter concerns shows: every venue and grid is still there
    assert.equal(6, #doc.SALLES.SALLE)
    local one_day = assert(c:call("ws_cat_spectacle", { filtre = 1, date_debut = ymd(8), date_fin = ymd(8) }))
    assert.same({ 2189 }, ids(one_day.SPECTACLES.SPECTACLE, "IDENT"))
    assert.same({ 12190, 12191 }, ids(reps_of(one_day.SPECTACLES.SPECTACLE[1]), "ID"))
    local both = assert(c:call("ws_programmation",
      { filtre = 1, date_modif = ymd(-7), date_debut = ymd(5), date_fin = ymd(9) }))
    assert.same({ 2189 }, ids(both.SPECTACLES.SPECTACLE, "IDENT"))
    local empty = assert(c:call("ws_cat_spectacle", { filtre = 1, date_debut = ymd(300), date_fin = ymd(310) }))
    assert.equal("", empty.SPECTACLES)
  end)

  it("needs filtre as soon as a date is sent: invalid_param locally, code 4 raw", function()
    local msg, err = c:call("ws_programmation", { date_modif = ymd(-7) })
    assert.is_nil(msg)
    assert.equal("invalid_param", err.kind)
    assert.equal("date_modif", err.param)
    msg, err = c:call("ws_cat_spectacle", { filtre = 1, date_debut = ymd(1) })
    assert.is_nil(msg)
    assert.equal("invalid_param", err.kind)
    for _, q in ipairs {
      "date_modif=" .. ymd(-7),                                   -- no filtre
      "date_debut=" .. ymd(1) .. "&date_fin=" .. ymd(2),           -- no filtre
      "filtre=1&date_debut=" .. ymd(1),                          -- no date_fin
      "filtre=1&date_fin=" .. ymd(1),                            -- no date_debut
      "filtre=1&date_debut=" .. ymd(2) .. "&date_fin=" .. ymd(1),  -- reversed
      "filtre=1&date_modif=20261340",                            -- not a date
      "filtre=2&date_modif=" .. ymd(-7),                          -- filtre is 1
    } do
      local body = get("ws_programmation", q)
      assert.equal(4, code_of(body), q .. " -> " .. body)
      assert.equal(4, code_of(get("ws_cat_spectacle", q)), q)
    end
    assert.matches("^<%?xml", get("ws_programmation", "filtre=1&date_modif=" .. ymd(-7)))
  end)

  it("answers wrong credentials with code 3 in the JSON envelope", function()
    local bad = billetterie.new { url = sb.url, login = "xrsitest", password = "wrong-one", client_id = 677 }
    local msg, err = bad:call("ws_cat_article")
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(3, err.code)
  end)
end)

describe("ws_cat_spectacle, ws_cat_abonnement, ws_cat_article", function()
  it("return their own sections only", function()
    local doc, st = c:call("ws_cat_spectacle")
    assert.is_table(doc, tostring(st))
    assert.truthy(doc.SALLES and doc.GRILLES and doc.SPECTACLES)
    assert.is_nil(doc.ABONNEMENTS)
    assert.is_nil(doc.ARTICLES)
    local abo = assert(c:call("ws_cat_abonnement"))
    assert.same({ "ABONNEMENTS" }, (function() local k = {} for n in pairs(abo) do k[#k + 1] = n end return k end)())
    local a363 = abo.ABONNEMENTS.ABONNEMENT[1]
    assert.same({ ID = 363, NOM = "Carte Déclic", CATEGORIE_WEB = "tout public",
      CATEGORIE_SECONDAIRE_UN = "abonnement", CATEGORIE_SECONDAIRE_DEUX = "", CODE_REGROUP = "PASS",
      PRIX = "15", TS_MODIF = a363.TS_MODIF }, a363)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", a363.TS_MODIF)
    local art = assert(c:call("ws_cat_article"))
    assert.is_nil(art.SPECTACLES)
    assert.equal(6, #art.ARTICLES.ARTICLE)
  end)

  it("give each client its own programme", function()
    local other = billetterie.new { url = sb.url, login = "xrsitest", password = "xrsimdp", client_id = 100 }
    local doc = assert(other:call("ws_cat_spectacle"))
    assert.equal(8, #doc.SPECTACLES.SPECTACLE)
  end)
end)

describe("ws_det_* against the demo seed", function()
  it("gives one show with its performances and what they use", function()
    local doc, st = c:call("ws_det_spectacle", { id_spectacle = 2189 })
    assert.is_table(doc, tostring(st))
    assert.equal(1, #doc.SPECTACLES.SPECTACLE)
    assert.equal("PIERRE ET LE LOUP", doc.SPECTACLES.SPECTACLE[1].NOM)
    assert.equal(3, #reps_of(doc.SPECTACLES.SPECTACLE[1]))
    assert.same({ 28, 30 }, ids(doc.SALLES.SALLE, "SALLE_ID"))
    assert.same({ 14 }, ids(doc.GRILLES.GRILLE, "ID"))
  end)

  it("gives one performance inside its show", function()
    local doc = assert(c:call("ws_det_representation", { id_representation = 12201 }))
    local s = doc.SPECTACLES.SPECTACLE[1]
    assert.equal(2190, s.IDENT)
    assert.same({ 12201 }, ids(reps_of(s), "ID"))
    assert.equal(50, reps_of(s)[1].REP_SALLE)
    assert.same({ 50 }, ids(doc.SALLES.SALLE, "SALLE_ID"))
    assert.same({ 13 }, ids(doc.GRILLES.GRILLE, "ID"))
  end)

  it("gives one subscription and one article", function()
    local abo = assert(c:call("ws_det_abonnement", { id_abonnement = 364 }))
    assert.equal("Pass Jeune", abo.ABONNEMENTS.ABONNEMENT[1].NOM)
    assert.equal("jeune public", abo.ABONNEMENTS.ABONNEMENT[1].CATEGORIE_SECONDAIRE_DEUX)
    local art = assert(c:call("ws_det_article", { id_article = 31 }))
    assert.same({ ID = 31, NOM = "BON CADEAU 50 €", FAMILLE = "BON CADEAU", PRIX = "50",
      TS_MODIF = art.ARTICLES.ARTICLE[1].TS_MODIF }, art.ARTICLES.ARTICLE[1])
  end)

  it("answers unknown or unavailable ids with the 4.2 codes", function()
    for _, case in ipairs {
      { "ws_det_spectacle", { id_spectacle = 1 }, 202 },
      { "ws_det_spectacle", { id_spectacle = 2191 }, 203 },        -- every performance is over
      { "ws_det_spectacle", { id_spectacle = 2192 }, 203 },        -- not on sale on the web
      { "ws_det_representation", { id_representation = 1 }, 204 },
      { "ws_det_representation", { id_representation = 12231 }, 205 }, -- not on sale
      { "ws_det_representation", { id_representation = 12210 }, 206 }, -- over
      { "ws_det_abonnement", { id_abonnement = 1 }, 102 },
      { "ws_det_abonnement", { id_abonnement = 380 }, 103 },
      { "ws_det_article", { id_article = 1 }, 302 },
      { "ws_det_article", { id_article = 19 }, 303 },
    } do
      local msg, err = c:call(case[1], case[2])
      assert.is_nil(msg, case[1])
      assert.equal("vendor", err.kind)
      assert.equal(case[3], err.code, case[1])
    end
    assert.equal(4, code_of(get("ws_det_spectacle", "id_spectacle=abc")))
    assert.equal(4, code_of(get("ws_det_article", "")))
  end)
end)

describe("the streaming reader over a saved ws_programmation answer", function()
  it("yields every SPECTACLE of the file", function()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(get("ws_programmation"))
    f:close()
    local seen, reps = {}, 0
    for item, err in xml.each({ file = path }, "SPECTACLE", { arrays = { REPRESENTATION = true } }) do
      assert.is_table(item, err)
      seen[#seen + 1] = item.IDENT
      reps = reps + #item.REPRESENTATIONS.REPRESENTATION
    end
    os.remove(path)
    table.sort(seen)
    assert.same({ "2185", "2186", "2187", "2188", "2189", "2190", "2193", "2194" }, seen)
    assert.equal(17, reps)
  end)

  it("streams through the client too (each = TAG)", function()
    local n = 0
    for item, err in c:call("ws_programmation", { each = "SPECTACLE" }) do
      assert.is_table(item, tostring(err))
      assert.equal(item.IDENT, math.floor(item.IDENT))   -- an id: an integer, as the client gives it
      n = n + 1
    end
    assert.equal(8, n)
  end)
end)
