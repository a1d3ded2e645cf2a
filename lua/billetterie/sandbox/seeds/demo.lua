-- billetterie.sandbox.seeds.demo: a believable venue for `--seed demo`.
--
-- "Scène des Garrigues", a fictional theatre with halls in three towns: a
-- season of shows whose performances are placed relative to today (so the
-- date filters always have something to find), price grids in euros with
-- comma decimals, subscriptions and a membership, shop articles and gift
-- vouchers, contacts with web accounts, lists, organismes, and paid and cancelled carts over the last days (so
-- ws_cat_histo_achat's default j-3..j window is not empty). Every configured client gets the same programme; ids are the
-- venue's own (contacts and carts get the ids their groups give).
--
-- M.load(db, { clients = {677, 100}, now = unix seconds }) loads it once per
-- client (a marker row in seed_runs), so a reused base keeps its state.
-- Web accounts: the contacts' mail addresses, password "Garrigues-2024!".

local catalogue = require "billetterie.sandbox.catalogue"
local purchases = require "billetterie.sandbox.purchases"
local contacts = require "billetterie.sandbox.contacts"
local lists = require "billetterie.sandbox.lists"
local organismes = require "billetterie.sandbox.organismes"

local M = {}

M.PASSWORD = "Garrigues-2024!"

-- Local time `days` from `now` at "HH:MM" (os.time normalises the day, so
-- month ends and DST changes are handled).
local function at(now, days, hhmm)
  local d = os.date("*t", now)
  local h, m = (hhmm or "00:00"):match("^(%d+):(%d+)$")
  return os.time { year = d.year, month = d.month, day = d.day + days, hour = tonumber(h), min = tonumber(m) }
end

---- the programme ----

local SALLES = {
  { id_salle = 28, id_salle_mere = 28, nom = "THEATRE DES GARRIGUES", ville = "NIMES", numerotee = 1 },
  { id_salle = 29, id_salle_mere = 28, nom = "GRANDE SALLE", ville = "NIMES", numerotee = 1 },
  { id_salle = 30, id_salle_mere = 28, nom = "STUDIO", ville = "NIMES" },
  { id_salle = 40, id_salle_mere = 40, nom = "LA FABRIQUE", ville = "ALES" },
  { id_salle = 41, id_salle_mere = 40, nom = "HALLE", ville = "ALES" },
  { id_salle = 50, id_salle_mere = 50, nom = "CHAPITEAU DU PARC", ville = "UZES", modif = -2 },
}

local GRILLES = {
  { id_grille = 12, libelle = "GRILLE A", libelle_web = "Tarifs saison" },
  { id_grille = 13, libelle = "GRILLE B", libelle_web = "Tarif unique" },
  { id_grille = 14, libelle = "GRILLE JP", libelle_web = "Jeune public", modif = -2 },
}

-- grid -> { id_categ, label, { {id_zone, zone, prix, frais} ... } } (centimes).
-- Subscriptions are public categories too (363, 364, 373): their tickets
-- are priced here.
local TARIFS = {
  [12] = {
    { 217, "TARIF PLEIN", { { 1, "SERIE 1", 2800, 150 }, { 2, "SERIE 2", 2200, 150 } } },
    { 218, "TARIF REDUIT", { { 1, "SERIE 1", 2400, 150 }, { 2, "SERIE 2", 1800, 150 } } },
    { 219, "MOINS DE 26 ANS", { { 1, "SERIE 1", 1200, 0 }, { 2, "SERIE 2", 1000, 0 } } },
    { 363, "Carte Déclic", { { 1, "SERIE 1", 1600, 0 }, { 2, "SERIE 2", 1400, 0 } } },
    { 364, "Pass Jeune", { { 1, "SERIE 1", 800, 0 }, { 2, "SERIE 2", 800, 0 } } },
    { 373, "Adhérent", { { 1, "SERIE 1", 2200, 0 }, { 2, "SERIE 2", 1800, 0 } } },
  },
  [13] = {
    { 217, "TARIF PLEIN", { { 3, "PLACEMENT LIBRE", 1500, 100 } } },
    { 218, "TARIF REDUIT", { { 3, "PLACEMENT LIBRE", 1050, 100 } } },
    { 219, "MOINS DE 26 ANS", { { 3, "PLACEMENT LIBRE", 800, 0 } } },
    { 363, "Carte Déclic", { { 3, "PLACEMENT LIBRE", 800, 0 } } },
    { 364, "Pass Jeune", { { 3, "PLACEMENT LIBRE", 550, 0 } } },
    { 373, "Adhérent", { { 3, "PLACEMENT LIBRE", 1200, 0 } } },
  },
  [14] = {
    { 220, "ADULTE", { { 3, "PLACEMENT LIBRE", 800, 50 } } },
    { 221, "ENFANT", { { 3, "PLACEMENT LIBRE", 550, 50 } } },
    { 363, "Carte Déclic", { { 3, "PLACEMENT LIBRE", 500, 0 } } },
    { 364, "Pass Jeune", { { 3, "PLACEMENT LIBRE", 500, 0 } } },
  },
}

-- Shows with their performances: { id, day offset, "HH:MM", salle, grille,
-- duration in minutes, extra fields }. `modif` = days since the last change
-- (default -60).
local SPECTACLES = {
  { id_spectacle = 2185, nom = "L'IGNORANT ET LE FOU", type = "Théâtre", champ_libre1 = "Thomas Bernhard",
    champ_libre2 = "Création", titre_libre2 = "Mise en scène Anne Roux",
    reps = { { 12151, 5, "20:30", 29, 12, 90 }, { 12152, 6, "20:30", 29, 12, 90 },
             { 12153, 40, "15:00", 29, 12, 90, modif = -1 } } },
  { id_spectacle = 2186, nom = "LA TRAVIATA", type = "Opéra", champ_libre1 = "Giuseppe Verdi",
    champ_libre2 = "Coup de cœur \"presse\"", titre_libre2 = "Surtitré en français",
    reps = { { 12160, 12, "20:00", 29, 12, 165 }, { 12161, 14, "15:00", 29, 12, 165 } } },
  { id_spectacle = 2187, nom = "SENTIRES", type = "Danse", champ_libre1 = "Compagnie Alta",
    reps = { { 12170, -10, "20:30", 30, 13, 60 }, { 12171, 20, "20:30", 30, 13, 60 },
             { 12172, 21, "19:00", 30, 13, 60 } } },
  { id_spectacle = 2188, nom = "CONCERT DU NOUVEL AN", type = "Musique", champ_libre1 = "Orchestre des Cévennes",
    reps = { { 12180, 60, "17:00", 41, 13, 120 } } },
  { id_spectacle = 2189, nom = "PIERRE ET LE LOUP", type = "Jeune public", champ_libre1 = "Dès 5 ans",
    modif = -2,
    reps = { { 12190, 8, "10:00", 30, 14, 50 }, { 12191, 8, "14:30", 30, 14, 50 },
             { 12192, 9, "10:00", 30, 14, 50 } } },
  { id_spectacle = 2190, nom = "CIRQUE ÉLECTRIQUE", type = "Cirque", champ_libre2 = "En famille",
    reps = { { 12200, 89, "20:00", 50, 13, 100, nature = "Avant-première" },
             { 12201, 90, "20:00", 50, 13, 100, nature = "Première" }, { 12202, 91, "16:00", 50, 13, 100 },
             { 12203, 92, "20:00", 50, 13, 100, nature = "Dernière" } } },
  -- over: no longer in the catalogue (ws_det_spectacle 203)
  { id_spectacle = 2191, nom = "LA MORT DE DANTON", type = "Théâtre", champ_libre1 = "Georg Büchner",
    reps = { { 12210, -20, "20:30", 29, 12, 150 }, { 12211, -19, "20:30", 29, 12, 150 } } },
  -- not on sale on the web
  { id_spectacle = 2192, nom = "RESIDENCE : ETAPE DE TRAVAIL", type = "Théâtre", en_vente = 0,
    reps = { { 12220, 30, "18:00", 30, 13, 45 } } },
  { id_spectacle = 2193, nom = "LES FOURBERIES DE SCAPIN", type = "Théâtre", champ_libre1 = "Molière",
    reps = { { 12230, 100, "20:30", 29, 12, 110 }, { 12231, 101, "20:30", 29, 12, 110, en_vente = 0 } } },
  -- markup characters in every kind of field, for the XML escaping
  { id_spectacle = 2194, nom = "ROMÉO & JULIETTE", type = "Théâtre", champ_libre1 = "Création <2024>",
    titre_libre2 = "d'après \"Shakespeare\" & Cie",
    reps = { { 12240, 30, "20:30", 29, 12, 130 } } },
}

local ABONNEMENTS = {
  { id_abonnement = 363, nom = "Carte Déclic", categorie_web = "tout public", categ_sec_un = "abonnement",
    code_regroup = "PASS", prix = 1500, credit = 6, saison = 38, type_saison = "TH", renouvelable = 1,
    billet_at_home = 2 },
  { id_abonnement = 364, nom = "Pass Jeune", categorie_web = "moins de 26 ans", categ_sec_un = "abonnement",
    categ_sec_deux = "jeune public", code_regroup = "ABO", prix = 1000, credit = 4, saison = 38,
    type_saison = "TH", billet_at_home = 2, modif = -3 },
  { id_abonnement = 373, nom = "Adhésion", categorie_web = "tout public", categ_sec_un = "adhésion",
    code_regroup = "ADH", prix = 500, credit = 10, saison = 38, type_saison = "TH", renouvelable = 1 },
  { id_abonnement = 380, nom = "Carte Famille", categorie_web = "famille", code_regroup = "ABO", prix = 4000,
    credit = 8, saison = 38, type_saison = "TH", en_vente = 0 },
}

local ARTICLES = {
  { id_article = 9, nom = "BENABAR - BENABAR", famille = "CD", type_produit = 1, prix = 1500 },
  { id_article = 16, nom = "PROGRAMME DE SAISON", famille = "LIBRAIRIE", type_produit = 4, prix = 500 },
  { id_article = 17, nom = "SAC EN TOILE", famille = "BOUTIQUE", type_produit = 1, prix = 1200 },
  { id_article = 18, nom = "L'IGNORANT ET LE FOU - TEXTE", famille = "LIBRAIRIE", type_produit = 4, prix = 950 },
  { id_article = 19, nom = "AFFICHE COLLECTOR", famille = "BOUTIQUE", type_produit = 1, prix = 2000, en_vente = 0 },
  -- gift vouchers (bons cadeaux, page 3.12) are articles of their own famille
  { id_article = 30, nom = "BON CADEAU 20 €", famille = "BON CADEAU", type_produit = 1, prix = 2000 },
  { id_article = 31, nom = "BON CADEAU 50 €", famille = "BON CADEAU", type_produit = 1, prix = 5000, modif = -1 },
}

local PRESTATIONS = {
  { id_prest = 11, libelle = "FRAIS DOSSIER WEB", type = 3, prix = 240 },
  { id_prest = 12, libelle = "ENVOI A DOMICILE", type = 2, prix = 450 },
  { id_prest = 13, libelle = "EMBALLAGE CADEAU", type = 1, prix = 100 },
}

-- The rows of catalogue.load, times resolved against `now`.
local function programme(now)
  local function stamp(row)
    local out = {}
    for k, v in pairs(row) do if k ~= "modif" and k ~= "reps" then out[k] = v end end
    out.ts_modif = at(now, row.modif or -60, "10:00")
    return out
  end
  local data = { salles = {}, grilles = {}, tarifs = {}, spectacles = {}, representations = {},
    abonnements = {}, articles = {}, prestations = PRESTATIONS }
  for _, s in ipairs(SALLES) do data.salles[#data.salles + 1] = stamp(s) end
  for _, g in ipairs(GRILLES) do
    data.grilles[#data.grilles + 1] = stamp(g)
    for ordre, c in ipairs(TARIFS[g.id_grille]) do
      for _, z in ipairs(c[3]) do
        data.tarifs[#data.tarifs + 1] = { id_grille = g.id_grille, id_categ = c[1], categ = c[2], id_zone = z[1],
          zone = z[2], prix = z[3], frais = z[4], ordre = ordre }
      end
    end
  end
  for _, s in ipairs(SPECTACLES) do
    local row = stamp(s)
    data.spectacles[#data.spectacles + 1] = row
    for _, r in ipairs(s.reps) do
      data.representations[#data.representations + 1] = {
        id_representation = r[1], id_spectacle = s.id_spectacle, debut = at(now, r[2], r[3]), id_salle = r[4],
        id_grille = r[5], duree = r[6] * 60, nature = r.nature, en_vente = r.en_vente,
        ts_modif = r.modif and at(now, r.modif, "10:00") or row.ts_modif,
      }
    end
  end
  for _, a in ipairs(ABONNEMENTS) do data.abonnements[#data.abonnements + 1] = stamp(a) end
  for _, a in ipairs(ARTICLES) do data.articles[#data.articles + 1] = stamp(a) end
  return data
end

---- people, lists, carts ----

local CONTACTS = {
  herve = { civilite = "M.", name = "RICHON", surname = "Hervé", mail = "herve.richon@example.org",
    tel_port = "0611223344", champ_libre_1 = "Abonné depuis 2015", code_envoi = { 1 }, interet = { 11, 12 } },
  claire = { civilite = "Mme", name = "MARTIN", surname = "Claire", mail = "claire.martin@example.org",
    tel_port = "0622334455" },
  lan = { civilite = "Mme", name = "NGUYEN", surname = "Thi Lan", mail = "lan.nguyen@example.net",
    v_naissance = "2003-04-17" },
  paul = { civilite = "M.", name = "DUBOIS", surname = "Paul", mail = "paul.dubois@example.com" },
  sophie = { civilite = "Mme", name = "LEROY", surname = "Sophie", mail = "sophie.leroy@example.com" },
}
local CONTACT_ORDER = { "herve", "claire", "lan", "paul", "sophie" }

local LISTS = {
  { titre_court = "Invitations première", members = { "herve", "claire" } },
  { titre_court = "Lettre jeune public", members = { "lan" } },
  { titre_court = "Soirée d'ouverture", liste = false, members = { "herve", "paul", "sophie" } },
  { titre_court = "Mécènes", web = false, members = { "paul" } },
}

-- Loaded through the organismes group's insert(db, client, fields, now)
-- (annex 4.4 fields, like contacts.insert).
local ORGANISMES = {
  { intitule = "Lycée Alphonse Daudet", nature = "Etablissement scolaire", raison_sociale = "LYCEE ALPHONSE DAUDET",
    email_structure = "culture@lycee-daudet.example.fr" },
  { intitule = "CSE Cévennes Énergie", nature = "Comité d'entreprise", raison_sociale = "CEVENNES ENERGIE SA" },
  { intitule = "Les Amis du Théâtre", nature = "Association", email_structure = "bureau@amis-theatre.example.org" },
}

-- Seats of the numbered Grande Salle.
local function seat(place, extra)
  local t = { place = place, niveau = "Niveau 1", acces = "Accès 1", emplacement = "FAUTEUIL",
    salle_zone = "Orchestre" }
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local function ticket(rep, categ, zone, place, extra)
  local t = place and seat(place, extra) or {}
  if not place then for k, v in pairs(extra or {}) do t[k] = v end end
  t.billet, t.categ, t.zone = rep, categ, zone
  return t
end

-- Carts: who, when (days, "HH:MM" or seconds before now), state, items.
-- `card_of` books a ticket on the card of an earlier cart (by its key).
local function carts(now)
  return {
    { key = "old3", who = "herve", at = at(now, -1200, "12:00"), items = { { carte = 373 } } },
    { key = "old", who = "herve", at = at(now, -400, "09:40"),
      items = { { carte = 363, debut = at(now, -400, "00:00"), fin = at(now, -35, "00:00") } } },
    { key = "abo", who = "herve", at = at(now, -40, "11:05"), option = "170515-tito",
      items = { { carte = 363, billets = { ticket(12151, 363, 1, "E 2"), ticket(12210, 363, 1, "F 10") } },
        { prestation = 11 } } },
    { key = "guichet", who = "claire", at = at(now, -8, "16:45"),
      items = { ticket(12201, 217, 3, nil, { mode_retrait = "Retrait au guichet" }) } },
    { key = "annule", who = "claire", at = at(now, -5, "21:10"), etat = "A",
      items = { ticket(12180, 217, 3) } },
    { key = "adhesion", who = "paul", at = at(now, -3, "14:00"),
      items = { { carte = 373, billets = { ticket(12172, 373, 3, nil,
          { mode_retrait = "Retrait au guichet", justificatif = 1 }) } },
        { article = 30, prestations = { { prestation = 13 } } }, { prestation = 12 } } },
    { key = "traviata", who = "claire", at = at(now, -2, "10:36"), option = "newsletter-octobre",
      items = { ticket(12160, 217, 1, "C 12"), ticket(12160, 218, 1, "C 13"),
        { article = 9, prestations = { { prestation = 13 } } }, { prestation = 11 } } },
    { key = "sur_carte", who = "herve", at = at(now, -1, "18:20"),
      items = { ticket(12171, 363, 3, nil, { card_of = "abo" }), { article = 16 } } },
    { key = "annule2", who = "paul", at = at(now, -1, "08:05"), etat = "A", items = { { article = 31 } } },
    -- an hour ago, but today: the default window and day filters count it as today's
    { key = "jeune", who = "lan", at = math.max(now - 3600, at(now, 0, "00:00")),
      items = { { carte = 364, billets = { ticket(12190, 364, 3) } },
        ticket(12152, 219, 2, "H 4", { justificatif = 4 }), { prestation = 11 } } },
  }
end

---- loading ----

-- What the venue's forms offer to tick (ws_ccontact code_envoi[] / interet[]).
local OPTIONS = {
  code_envoi = {
    { id = 1, code = "NEWS", label = "Lettre d'information" },
    { id = 2, code = "SMS", label = "Alertes SMS" },
    { id = 3, code = "PART", label = "Offres des partenaires" },
  },
  interet = {
    { id = 11, code = "THEA", label = "Théâtre" },
    { id = 12, code = "MUSI", label = "Musique" },
    { id = 13, code = "JEUN", label = "Jeune public" },
  },
}
M.NEWSLETTER = 1  -- the code_envoi id of the newsletter

local function load_client(db, client, now)
  catalogue.load(db, client, programme(now))
  db:tx(function()
    for kind, list in pairs(OPTIONS) do
      for _, o in ipairs(list) do contacts.create_option(db, client, kind, o) end
    end
  end)

  local people = {}
  for _, key in ipairs(CONTACT_ORDER) do
    local fields = { web_passe = M.PASSWORD }
    for k, v in pairs(CONTACTS[key]) do fields[k] = v end
    local id = db:tx(function() return contacts.insert(db, client, fields, now) end)
    local rec = contacts.get(db, client, id) or {}
    people[key] = { id = id, buyer = { genre = fields.civilite, nom = fields.name, prenom = fields.surname,
      email = fields.mail, id_clistru = rec.id } }
  end

  db:tx(function()
    for _, l in ipairs(LISTS) do
      local id = lists.create(db, client, { titre_court = l.titre_court, web = l.web, liste = l.liste })
      for _, key in ipairs(l.members) do lists.add(db, client, id, people[key].id) end
    end
  end)

  for _, o in ipairs(ORGANISMES) do
    db:tx(function() organismes.insert(db, client, o, now) end)
  end

  local cards = {}
  for _, c in ipairs(carts(now)) do
    for _, item in ipairs(c.items) do
      if item.card_of then item.id_carte, item.card_of = cards[item.card_of], nil end
    end
    local person = people[c.who]
    local _, made = purchases.cart_create(db, client, { at = c.at, etat = c.etat, x_rsi_option = c.option,
      id_contact = person.id, buyer = person.buyer, items = c.items })
    cards[c.key] = made[1]
  end
end

---- S-360 (docs/sandbox-s360.md): the same people in every institution ----

-- Loaded in this order, so their contact numbers are 10001, 10002...
-- (s360_contacts numbers from 10001). Keys of `members` name earlier entries.
M.S360 = {
  { key = "camille", individualContactData = { title = "MRS", firstname = "Camille", lastname = "Martin",
      email = "camille.martin@example.org", birthDate = "1986-03-14", language = "fr",
      mobilePhoneNumber = "+33612345678" },
    addresses = { { street1 = "12 rue de la Madeleine", zipCode = "30000", town = "Nîmes", countryCode = "FR", main = true } },
    authorizations = { { authorizationCode = "NEWS", allowed = true }, { authorizationCode = "PARTNERS", allowed = false } },
    contactCriteria = { { criterionCode = "INTEREST", values = { "THEATRE", "MUSIC" } },
      { criterionCode = "NEWSTHEA", value = "true" } },
    createLogin = true, social = { provider = "FACEBOOK", reference = "fb-100001" } },
  { key = "lucas", individualContactData = { title = "MR", firstname = "Lucas", lastname = "Bernard",
      email = "lucas.bernard@example.org", language = "fr" },
    addresses = { { street1 = "3 place aux Herbes", zipCode = "30700", town = "Uzès", countryCode = "FR" } },
    createLogin = true },
  { key = "ines", individualContactData = { title = "MISS", firstname = "Inès", lastname = "Petit",
      email = "ines.petit@example.org" } },
  { key = "ce", structureContactData = { name = "CE Garrigues Industries", structureTypeCode = "COMPANY",
      email = "ce@garrigues-industries.example", phoneNumber = "+33466000000" },
    addresses = { { street1 = "ZI du Mas de Mingue", zipCode = "30900", town = "Nîmes", countryCode = "FR" } },
    administrativeNumbers = { { code = "SIRET", value = "12345678900012" }, { code = "VAT", value = "FR12123456789" } } },
  { key = "julie", member_of = "ce", role = "RELAY", ["function"] = "Responsable CE",
    individualContactData = { title = "MRS", firstname = "Julie", lastname = "Roux", email = "julie.roux@example.org" },
    createLogin = true },
  { key = "thomas", member_of = "ce", role = "MEMBER", ["function"] = "Technicien",
    individualContactData = { title = "MR", firstname = "Thomas", lastname = "Moreau", email = "thomas.moreau@example.org" } },
  { key = "amis", structureContactData = { name = "Les Amis du Théâtre", structureTypeCode = "ASSOC" },
    administrativeNumbers = { { code = "RNA", value = "W302001234" } } },
}

local function load_s360(db, instit, now)
  local s360 = require "billetterie.sandbox.s360_contacts"
  local social = require "billetterie.sandbox.s360_social"
  local rows = {}
  db:tx(function()
    for _, e in ipairs(M.S360) do
      local p = { password = e.createLogin and M.PASSWORD or nil }
      for k, v in pairs(e) do p[k] = v end
      local row
      if e.structureContactData then
        row = s360.save_structure(db, instit, p, now)
        if e.administrativeNumbers then s360.save_admin_numbers(db, instit, { contactNumber = row.number,
          administrativeNumbers = e.administrativeNumbers }, now) end
      elseif e.member_of then
        row = s360.save_member(db, instit, { structureContactNumber = rows[e.member_of].number,
          individualContactData = e.individualContactData, role = e.role, ["function"] = e["function"] }, now)
        s360.save_individual(db, instit, { contactNumber = row.number, createLogin = e.createLogin,
          password = p.password }, now)
      else
        row = s360.save_individual(db, instit, p, now)
      end
      if e.social then
        social.methods.addLink({ contactNumber = row.number, provider = e.social.provider,
          providerUserReference = e.social.reference }, { db = db, instit = instit })
      end
      rows[e.key] = row
    end
  end)
end

function M.load(db, opts)
  db:exec([[CREATE TABLE IF NOT EXISTS seed_runs (
      client INTEGER NOT NULL, name TEXT NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (client, name))]])
  for _, client in ipairs(opts.clients) do
    if not db:one("SELECT 1 AS x FROM seed_runs WHERE client = ? AND name = 'demo'", client) then
      load_client(db, client, opts.now)
      db:tx(function()
        db:exec("INSERT INTO seed_runs (client, name, at) VALUES (?, 'demo', ?)", client, opts.now)
      end)
    end
  end
  for _, instit in ipairs(opts.s360_institutions or require("billetterie.sandbox.s360").DEFAULTS.institutions) do
    instit = instit:upper()
    if not db:one("SELECT 1 AS x FROM seed_runs WHERE client = 0 AND name = ?", "s360:" .. instit) then
      load_s360(db, instit, opts.now)
      db:tx(function()
        db:exec("INSERT INTO seed_runs (client, name, at) VALUES (0, ?, ?)", "s360:" .. instit, opts.now)
      end)
    end
  end
end

return M
