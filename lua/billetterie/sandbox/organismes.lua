-- billetterie.sandbox.organismes: spec 2.6 (ws_info_organisme,
-- ws_organisme_creation, ws_organisme_modification, ws_organisme_contacts)
-- with the objects of annexes 4.3 (adresse), 4.4 (organisme), 4.5 (niveau
-- de relations) and 4.6 (criteres).
--
-- Tables of this group: organismes, organisme_niveaux and organisme_contacts
-- (the "fiches lien" between an organisme and a contact, which
-- ws_liste_fiches_modifiees lists as liste_liens). Contacts themselves belong
-- to billetterie.sandbox.contacts (exists / get). Every write journals the
-- organisme (db:journal) in its transaction.

local services = require "billetterie.sandbox.services"
local codec = require "billetterie.sandbox.codec"
local codes = require "billetterie.codes"
local ok, ko = services.ok, services.ko

-- The contacts group, loaded on first use (it may load after this one).
local function contacts() return require "billetterie.sandbox.contacts" end

-- Writable attributes with their default (which also gives their type),
-- annex 4.4. Read-only ones (id_organisme, date_creation, date_modif,
-- fiche_supprimee) are set by the server and ignored on input.
local ORGANISME = {
  champ_libre1 = "", champ_libre2 = "", champ_libre3 = "", champ_libre4 = "",
  champ_libre5 = "", champ_libre6 = 0, champ_libre7 = 0, champ_libre8 = 0,
  champ_libre9 = "", champ_libre10 = "", champ_libre11 = "", champ_libre12 = "",
  code_libre_stru = "", detail_type = "", email_structure = "", intitule = "",
  intitule2 = "", memo1 = "", memo2 = "", memo3 = "", nature = "",
  num_internet = "", raison_sociale = "", remarque_struc = "",
  sous_detail_type = "", type = "",
}
local REQUIRED = { "intitule", "nature" } -- 903 otherwise (2.6.2.4, 2.6.3.3)

-- Annex 4.3; id_adresse, id_organisme and id_contact are set by the server.
local ADRESSE = {
  adress1 = "", adress2 = "", adress3 = "", adress4 = "", cedex = "",
  code_postal = "", date_debut = "", date_fin = "", fax = "", pays = "",
  prioritaire = false, tel1 = "", tel2 = "", type_adresse = "", ville = "",
}

local function adresse_defaults()
  local t = {}
  for k, v in pairs(ADRESSE) do t[k] = v end
  return t
end

local function present(v) return v ~= nil and v ~= codec.null and v ~= "" end

local function integer(v)
  if type(v) == "string" and v:match("^%s*%d+%s*$") then v = tonumber(v) end
  return math.type(v) == "integer" and v or (type(v) == "number" and math.tointeger(v)) or nil
end

-- Case-insensitive comparison key (4.5.1): ASCII and the accented capitals
-- of Latin-1 (UTF-8 C3 80..9E, but not the × sign) fold to lower case.
local function fold(s)
  return (s:lower():gsub("\195([\128-\158])", function(c)
    return c ~= "\151" and "\195" .. string.char(c:byte() + 32) or nil
  end))
end

-- Keeps the attributes of `input` that `schema` knows and whose type matches
-- the default's; the others become messages for retour.detail.
local function pick(schema, input, where, detail)
  local out = {}
  for k, v in pairs(input) do
    local default = schema[k]
    if default ~= nil then
      if type(v) == type(default) then
        out[k] = v
      elseif v ~= codec.null then
        detail[#detail + 1] = ("%s.%s : %s attendu"):format(where, k, type(default) == "string"
          and "texte" or type(default) == "number" and "nombre" or "booléen")
      end
    end
  end
  return out
end

---- storage ----

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS organismes (
      id_organisme INTEGER PRIMARY KEY AUTOINCREMENT,
      client       INTEGER NOT NULL,
      data         TEXT NOT NULL,   -- annex 4.4 attributes, JSON
      criteres     TEXT,            -- annex 4.6 input form, JSON
      created_at   INTEGER NOT NULL
    )]],
  -- Annex 4.5: id is Num_id_unique, given by db:niveau_id() (one id space
  -- with contact_niveaux); one row per level, matched without case.
  [[CREATE TABLE IF NOT EXISTS organisme_niveaux (
      id           INTEGER PRIMARY KEY AUTOINCREMENT,
      client       INTEGER NOT NULL,
      id_organisme INTEGER NOT NULL,
      libelle      TEXT NOT NULL
    )]],
  -- Files of the previous version numbered the two tables apart: the
  -- organisme levels whose id a contact level has move past every id (a
  -- no-op once done). contact_niveaux exists: the contacts group's schema
  -- runs first (services.lua GROUPS).
  [[UPDATE organisme_niveaux SET id = id + (SELECT MAX(n) FROM (
      SELECT COALESCE(MAX(id_unique), 0) AS n FROM contact_niveaux
      UNION ALL SELECT COALESCE(MAX(id), 0) FROM organisme_niveaux
      UNION ALL SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence
        WHERE name IN ('contact_niveaux', 'organisme_niveaux')))
    WHERE id IN (SELECT id_unique FROM contact_niveaux)]],
  -- Fiches lien (2.6.4): a contact may be attached several times to the
  -- same organisme, each link with its own fonction and contact details.
  [[CREATE TABLE IF NOT EXISTS organisme_contacts (
      id           INTEGER PRIMARY KEY AUTOINCREMENT,
      client       INTEGER NOT NULL,
      id_organisme INTEGER NOT NULL,
      id_contact   INTEGER NOT NULL,
      fonction     TEXT NOT NULL DEFAULT '',
      service      TEXT NOT NULL DEFAULT '',
      telephone    TEXT NOT NULL DEFAULT '',
      portable     TEXT NOT NULL DEFAULT '',
      email        TEXT NOT NULL DEFAULT ''
    )]],
  -- Files of the previous version numbered attachments from 1, apart from
  -- the contacts' own fiches lien (50001...): now one id space
  -- (db:lien_id); an attachment whose id a contact's fiche lien has moves
  -- past every id (a no-op once done; contacts' schema runs first).
  [[UPDATE organisme_contacts SET id = id + (SELECT MAX(n) FROM (
      SELECT COALESCE(MAX(id_lien), 0) AS n FROM contacts
      UNION ALL SELECT COALESCE(MAX(id), 0) FROM organisme_contacts
      UNION ALL SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'organisme_contacts'))
    WHERE id IN (SELECT id_lien FROM contacts)]],
  [[CREATE INDEX IF NOT EXISTS organisme_contacts_org
      ON organisme_contacts (client, id_organisme, id_contact)]],
}

-- -> { id_organisme, data, criteres, adresses = {...} } or nil
local function organisme_get(db, client, id)
  local row = db:one("SELECT * FROM organismes WHERE client = ? AND id_organisme = ?", client, id)
  if not row then return nil end
  return { id_organisme = row.id_organisme, data = codec.decode(row.data),
           criteres = row.criteres and codec.decode(row.criteres) or nil,
           adresses = db:adresses_of(id, 0) }
end

-- The links of a contact to an organisme, first one first.
local function links(db, client, id_organisme, id_contact)
  return db:rows([[SELECT * FROM organisme_contacts
      WHERE client = ? AND id_organisme = ? AND id_contact = ? ORDER BY id]],
    client, id_organisme, id_contact)
end

-- Every link of an organisme (column "id_organisme") or of a contact
-- ("id_contact"; a constant, never input).
local function links_by(db, client, column, id)
  return db:rows("SELECT * FROM organisme_contacts WHERE client = ? AND " .. column .. " = ? ORDER BY id",
    client, id)
end

local function niveaux_rows(db, client, id)
  return db:rows("SELECT * FROM organisme_niveaux WHERE client = ? AND id_organisme = ? ORDER BY id", client, id)
end

---- Niveau_de_relations (4.5.1) ----

-- Adds (checked true) or removes (checked false) levels, matched without
-- case; an add that finds the level and a removal that does not are no-ops.
-- Call inside a transaction.
local function niveaux_apply(db, client, id, list, detail)
  for i, n in ipairs(list) do
    local label = type(n) == "table" and n.Niveau_relation
    local checked = type(n) == "table" and n.checked
    if type(label) ~= "string" or label == "" or type(checked) ~= "boolean" then
      detail[#detail + 1] = ("Niveau_de_relations[%d] : Niveau_relation et checked attendus, ignoré")
        :format(i)
    else
      local found
      for _, row in ipairs(niveaux_rows(db, client, id)) do
        if fold(row.libelle) == fold(label) then found = row.id; break end
      end
      if checked and not found then
        db:exec("INSERT INTO organisme_niveaux (id, client, id_organisme, libelle) VALUES (?, ?, ?, ?)",
          db:niveau_id(), client, id, label)
      elseif not checked and found then
        db:exec("DELETE FROM organisme_niveaux WHERE id = ?", found)
      end
    end
  end
end

---- criteres (4.6) ----

local function is_list(v) return type(v) == "table" and (next(v) == nil or #v > 0) end

-- Annex 4.6 input form -> nil when valid, or the 907-910 code.
local function check_criteres(c)
  if math.type(c.id_formulaire) ~= "integer" then return 907 end
  if c.liste_champs == nil or c.liste_champs == codec.null then return 909 end
  if not is_list(c.liste_champs) then return 908 end
  for _, f in ipairs(c.liste_champs) do
    if type(f) ~= "table" then return 908 end
    if f.nom == nil or f.nom == codec.null or f.valeur == nil or f.valeur == codec.null then
      return 910
    end
    local v = f.valeur
    if type(v) == "table" then
      if not is_list(v) then return 908 end
      for _, id in ipairs(v) do if math.type(id) ~= "integer" then return 908 end end
    elseif type(v) ~= "string" and math.type(v) ~= "integer" then
      return 908
    end
  end
end

-- A modification sets the fields it names (matched on nom) and keeps the
-- others; id_formulaire becomes the one sent.
local function criteres_merge(old, new)
  if not old then return new end
  local champs, at = {}, {}
  for _, f in ipairs(old.liste_champs or {}) do champs[#champs + 1] = f; at[f.nom] = #champs end
  for _, f in ipairs(new.liste_champs) do
    if at[f.nom] then champs[at[f.nom]] = f else champs[#champs + 1] = f; at[f.nom] = #champs end
  end
  return { id_formulaire = new.id_formulaire, liste_champs = champs }
end

-- Annex 4.6 output form. Only the ids are known to the sandbox, so an
-- enumeration value is { id, libelle = "", code = "", ordre = 0 } and a
-- field's libelle is its nom.
local function criteres_out(c)
  local function enum(id) return { id = id, libelle = "", code = "", ordre = 0 } end
  local champs = {}
  for _, f in ipairs(c and c.liste_champs or {}) do
    local v, out = f.valeur, { nom = f.nom, libelle = f.nom }
    if type(v) == "string" then
      out.type, out.multi_valeur, out.valeur = "texte", 0, v
    elseif type(v) == "table" then
      local list = {}
      for i, id in ipairs(v) do list[i] = enum(id) end
      out.type, out.multi_valeur, out.valeur = "enumeration", 1, codec.array(list)
    else
      out.type, out.multi_valeur, out.valeur = "enumeration", 0, enum(v)
    end
    champs[#champs + 1] = out
  end
  return { id_formulaire = c and c.id_formulaire or 0, liste_champs = codec.array(champs) }
end

---- contact attachment (2.6.4) ----

local ACTIONS = { attacher = true, detacher = true }
-- item field -> organisme_contacts column (the "fiche lien" details)
local LINK_FIELDS = { service = "service", telephone_lien = "telephone", portable_lien = "portable",
  email_lien = "email" }

local function entry_of(code, champ)
  return { code = code, message = codes[code].message, champ = champ }
end

-- Critical checks of one item (2.6.4.3, in the order of the spec's list).
-- -> normalised item, or nil, code, champ
local function contact_item(item)
  if type(item) ~= "table" or #item > 0 then return nil, 1102, "contacts" end
  local it = { id_contact = integer(item.id_contact), link = {} }
  if not it.id_contact then return nil, 1103, "id_contact" end
  local aa = present(item.action_attachement) and item.action_attachement or nil
  local af = present(item.action_fonction) and item.action_fonction or nil
  local f = math.type(item.fonction) and tostring(item.fonction) or item.fonction
  f = type(f) == "string" and f ~= "" and f or nil
  if not aa and not af then return nil, 1104, "action_attachement" end
  if aa and not ACTIONS[aa] then return nil, 1105, "action_attachement" end
  if af and not ACTIONS[af] then return nil, 1106, "action_fonction" end
  if af and not f then return nil, 1107, "fonction" end
  if f and not af then return nil, 1108, "action_fonction" end
  it.aa, it.af, it.fonction = aa, af, f
  for field, column in pairs(LINK_FIELDS) do
    if type(item[field]) == "string" then it.link[column] = item[field] end
  end
  return it
end

-- A whole contacts list. -> items, or nil, code, report (the item in error,
-- for message.contacts)
local function contact_items(list)
  if not is_list(list) or #list == 0 then return nil, 1102 end
  local items = {}
  for i, raw in ipairs(list) do
    local it, code, champ = contact_item(raw)
    if not it then
      local id = type(raw) == "table" and integer(raw.id_contact) or nil
      return nil, code, { id_contact = id, errors = { entry_of(code, champ) } }, i
    end
    items[i] = it
  end
  return items
end

local function link_insert(db, client, id_org, it, fonction)
  local l = it.link
  -- an attachment is a fiche lien of its own (see M.links_of), numbered
  -- with the contacts' own fiches lien
  db:exec([[INSERT INTO organisme_contacts
      (id, client, id_organisme, id_contact, fonction, service, telephone, portable, email)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)]], db:lien_id(), client, id_org, it.id_contact, fonction or "",
    l.service or "", l.telephone or "", l.portable or "", l.email or "")
end

-- One contact's actions, inside the caller's transaction. Order: a new
-- attachment first (so action_attachement=attacher with a fonction gives a
-- second link carrying it), then the fonction, then a detachment.
-- -> { id_contact, success, errors }, changed
local function contact_apply(db, client, id_org, it)
  local success, errors = {}, {}
  local out = { id_contact = it.id_contact }
  if not contacts().exists(db, client, it.id_contact) then
    out.errors = { entry_of(503, "id_contact") } -- targeted: this contact only
    return out, false
  end
  success[1] = entry_of(526, "id_contact")
  local changed = false
  local function did(code, champ) success[#success + 1] = entry_of(code, champ); changed = true end

  if it.aa == "attacher" then
    link_insert(db, client, id_org, it, it.af == "attacher" and it.fonction or nil)
    did(1116, "action_attachement")
    if it.af == "attacher" then did(1118, "action_fonction") end
  elseif it.af == "attacher" then
    -- on the first link found, replacing its fonction; attached if need be
    local first = links(db, client, id_org, it.id_contact)[1]
    if first then
      db:exec("UPDATE organisme_contacts SET fonction = ? WHERE id = ?", it.fonction, first.id)
      for column, v in pairs(it.link) do
        db:exec("UPDATE organisme_contacts SET " .. column .. " = ? WHERE id = ?", v, first.id)
      end
    else
      link_insert(db, client, id_org, it, it.fonction)
    end
    did(1118, "action_fonction")
  end

  if it.af == "detacher" then
    local ls = links(db, client, id_org, it.id_contact)
    if #ls == 0 then
      errors[#errors + 1] = entry_of(1109, "action_fonction")
    else
      local n = 0
      for _, l in ipairs(ls) do
        if fold(l.fonction) == fold(it.fonction) then
          db:exec("UPDATE organisme_contacts SET fonction = '' WHERE id = ?", l.id) -- every time it is there
          n = n + 1
        end
      end
      if n == 0 then errors[#errors + 1] = entry_of(1110, "fonction") else did(1119, "action_fonction") end
    end
  end

  if it.aa == "detacher" then
    if #links(db, client, id_org, it.id_contact) == 0 then
      errors[#errors + 1] = entry_of(1112, "action_attachement")
    else -- as many times as it was attached
      db:exec("DELETE FROM organisme_contacts WHERE client = ? AND id_organisme = ? AND id_contact = ?",
        client, id_org, it.id_contact)
      did(1117, "action_attachement")
    end
  end
  out.success = success
  if #errors > 0 then out.errors = errors end
  return out, changed
end

-- All items, inside the caller's transaction. -> results, any_error, changed
local function contacts_apply(db, client, id_org, items)
  local results, any_error, changed = {}, false, false
  for i, it in ipairs(items) do
    local r, c = contact_apply(db, client, id_org, it)
    results[i] = r
    any_error = any_error or r.errors ~= nil
    changed = changed or c
  end
  return results, any_error, changed
end

local function contacts_detail(results, detail)
  for i, r in ipairs(results) do
    for _, e in ipairs(r.errors or {}) do
      detail[#detail + 1] = ("contacts[%d] (id_contact %d) : %d %s")
        :format(i, r.id_contact, e.code, e.message)
    end
  end
end

---- shared by the routes ----

-- The organisme as the services show it (annex 4.4 plus adresses).
local function organisme_out(rec)
  local o = {}
  for k, v in pairs(ORGANISME) do o[k] = v end
  for k, v in pairs(rec.data) do o[k] = v end
  o.id_organisme = rec.id_organisme
  o.adresses = codec.array(rec.adresses)
  return o
end

local function with_detail(answer, detail)
  answer.retour.detail = table.concat(detail, " ; ")
  return answer
end

-- The optional parameters of creation and modification (read below, not
-- declared): scalars, so their array form answers 4 (services.lua).
local OPTIONAL_SCALARS = { adresses = true, Adresses = true, Niveau_de_relations = true, contacts = true,
  criteres = true, critere = true }

-- Decodes the optional base64-JSON parameters into `given`.
-- -> nil, or the code 4 answer.
local function decode_optional(p, given, detail)
  local specs = {
    { "adresses", p.adresses or p.Adresses, "array" },
    { "niveaux", p.Niveau_de_relations, "array" },
    { "contacts", p.contacts, "array" },
    { "criteres", p.criteres or p.critere, "object" },
  }
  for _, s in ipairs(specs) do
    local key, text, want = s[1], s[2], s[3]
    if text and text ~= "" then
      local v, err = codec.decode_param(text, want)
      if v == nil then
        detail[#detail + 1] = ("%s : %s"):format(key, err)
        return with_detail(ko(4), detail)
      end
      given[key] = v
    end
  end
end

-- The adresse list of creation/modification -> list of field tables (an
-- adresse without type_adresse, the upsert key, is skipped and named).
local function adresse_list(list, detail)
  local out = {}
  for i, a in ipairs(list or {}) do
    local fields = type(a) == "table" and pick(ADRESSE, a, "adresses[" .. i .. "]", detail) or {}
    if type(fields.type_adresse) == "string" and fields.type_adresse ~= "" then
      out[#out + 1] = { fields = fields, raw = a }
    else
      detail[#detail + 1] = ("adresses[%d] : type_adresse absent, adresse ignorée"):format(i)
    end
  end
  return out
end

-- 1000 (annex 4.2), modification only: ids sent with an adresse must be
-- those of the stored one it updates; 0 or absent means "not given".
local function adresse_ids_wrong(db, id_org, a)
  local function given(v) return math.type(v) == "integer" and v ~= 0 end
  local raw = a.raw
  if given(raw.id_organisme) and raw.id_organisme ~= id_org then return true end
  if given(raw.id_contact) then return true end -- an organisme adresse has id_contact 0
  if given(raw.id_adresse) then
    local row = db:one([[SELECT type_adresse FROM adresses
        WHERE id_adresse = ? AND id_organisme = ? AND id_contact = 0]], raw.id_adresse, id_org)
    return not row or row.type_adresse ~= a.fields.type_adresse
  end
  return false
end

local function missing_required(org, detail)
  local missing = {}
  for _, k in ipairs(REQUIRED) do
    if type(org[k]) ~= "string" or org[k] == "" then missing[#missing + 1] = k end
  end
  if #missing > 0 then
    detail[#detail + 1] = "attributs obligatoires absents : " .. table.concat(missing, ", ")
    return true
  end
end

-- Checks shared by creation and modification, after the organisme object:
-- criteres (907-910) and contacts (critical 1102-1108). -> nil, or the ko
-- answer; fills given.items.
local function check_extras(given, detail)
  if given.criteres then
    local code = check_criteres(given.criteres)
    if code then return with_detail(ko(code), detail) end
  end
  if given.contacts and #given.contacts > 0 then
    local items, code, report, i = contact_items(given.contacts)
    if not items then
      detail[#detail + 1] = ("contacts[%d] : %s"):format(i or 1, codes[code].message)
      return with_detail(ko(code, { contacts = codec.array({ report }) }), detail)
    end
    given.items = items
  end
end

local function now_iso(now) return os.date("%Y-%m-%dT%H:%M:%S", now) end

local routes = {}

-- The organisme object and the optional parameters of a creation or a
-- modification. -> input, given, detail | nil, refusal
local function read_request(p)
  local detail, given = {}, {}
  local input, err = codec.decode_param(p.organisme, "object")
  if not input then return nil, with_detail(ko(4), { "organisme : " .. err }) end
  local refused = decode_optional(p, given, detail)
  if refused then return nil, refused end
  return input, given, detail
end

-- What a creation or a modification writes beside the organisme row, in
-- its transaction: adresses, relation levels, attached contacts, journal.
-- -> the per-contact results, or nil when no contacts were sent
local function write_related(db, client, id, adresses, given, detail, action, now)
  for _, a in ipairs(adresses) do db:adresse_upsert(id, 0, a.fields, adresse_defaults()) end
  niveaux_apply(db, client, id, given.niveaux or {}, detail)
  local results = given.items and contacts_apply(db, client, id, given.items) or nil
  db:journal(client, "organisme", id, action, now)
  return results
end

-- A new organisme's record from its attributes. -> org | nil (detail says why)
local function new_organisme(input, detail, now)
  local org = pick(ORGANISME, input, "organisme", detail)
  if missing_required(org, detail) then return nil end
  org.date_creation = os.date("%Y-%m-%d", now)
  org.date_modif = "" -- returned empty on creation (2.6.2.5)
  org.fiche_supprimee = false
  return org
end

routes.ws_organisme_creation = {
  auth = "ws",
  params = { organisme = "string!" },
  scalars = OPTIONAL_SCALARS,
  run = function(p, env)
    local db, client = env.db, env.client
    local input, given, detail = read_request(p)
    if not input then return given end
    local org = new_organisme(input, detail, env.now)
    if not org then return with_detail(ko(903), detail) end
    local refused = check_extras(given, detail)
    if refused then return refused end
    local adresses = adresse_list(given.adresses or (is_list(input.adresses) and input.adresses), detail)

    local id, results = db:tx(function()
      db:exec("INSERT INTO organismes (client, data, criteres, created_at) VALUES (?, ?, ?, ?)",
        client, codec.encode(org), given.criteres and codec.encode(given.criteres), env.now)
      local id = db:last_id()
      return id, write_related(db, client, id, adresses, given, detail, "create", env.now) or {}
    end)
    contacts_detail(results, detail)
    local out = organisme_out(organisme_get(db, client, id))
    out.contacts = codec.array(results)
    if given.criteres then out.criteres = criteres_out(given.criteres) end
    return with_detail(ok(901, { organisme = out }), detail)
  end,
}

routes.ws_organisme_modification = {
  auth = "ws",
  params = { organisme = "string!" },
  scalars = OPTIONAL_SCALARS,
  run = function(p, env)
    local db, client = env.db, env.client
    local input, given, detail = read_request(p)
    if not input then return given end
    local id = integer(input.id_organisme)
    if not id then
      return with_detail(ko(903), { "attributs obligatoires absents : id_organisme" })
    end
    local rec = organisme_get(db, client, id)
    if not rec then return ko(904) end
    if rec.data.fiche_supprimee then return ko(905) end
    local changes = pick(ORGANISME, input, "organisme", detail)
    if missing_required(changes, detail) then return with_detail(ko(903), detail) end
    local refused = check_extras(given, detail)
    if refused then return refused end
    local adresses = adresse_list(given.adresses or (is_list(input.adresses) and input.adresses), detail)
    for i, a in ipairs(adresses) do
      if adresse_ids_wrong(db, id, a) then
        detail[#detail + 1] = ("adresses[%d] : id_adresse, id_organisme ou id_contact ne correspondent pas")
          :format(i)
        return with_detail(ko(1000), detail)
      end
    end

    -- absent attributes stay as stored; id_organisme, date_creation and
    -- fiche_supprimee are never taken from the input (pick drops them)
    local data = rec.data
    for k, v in pairs(changes) do data[k] = v end
    data.date_modif = now_iso(env.now)
    local criteres = given.criteres and criteres_merge(rec.criteres, given.criteres)
    local results = db:tx(function()
      db:exec("UPDATE organismes SET data = ? WHERE id_organisme = ?", codec.encode(data), id)
      if criteres then
        db:exec("UPDATE organismes SET criteres = ? WHERE id_organisme = ?", codec.encode(criteres), id)
      end
      return write_related(db, client, id, adresses, given, detail, "update", env.now)
    end)
    local out = organisme_out(organisme_get(db, client, id))
    if results then
      contacts_detail(results, detail)
      out.contacts = codec.array(results)
    end
    if criteres then out.criteres = criteres_out(criteres) end
    return with_detail(ok(902, { organisme = out }), detail)
  end,
}

routes.ws_organisme_contacts = {
  auth = "ws",
  -- no declared params: a missing id_organisme or contacts is 1100-1102
  -- here, not the generic 4
  scalars = { id_organisme = true, contacts = true },
  run = function(p, env)
    local db, client = env.db, env.client
    local has_id, has_contacts = present(p.id_organisme), present(p.contacts)
    if not has_id and not has_contacts then return ko(1100) end
    if not has_id then return ko(1101) end
    if not has_contacts then return ko(1102) end
    local id = integer(p.id_organisme)
    if not id then return ko(4) end

    local rec = organisme_get(db, client, id)
    if not rec or rec.data.fiche_supprimee then
      local code = rec and 905 or 904
      return ko(code, { organisme = { { id_organisme = id, errors = entry_of(code, "id_organisme") } } })
    end
    -- one contact object alone is taken as a list of one
    local list = codec.decode_param(p.contacts, "array") or codec.decode_param(p.contacts, "object")
    if type(list) == "table" and next(list) ~= nil and #list == 0 then list = { list } end
    local items, code, report = contact_items(list)
    if not items then
      return ko(code, report and { contacts = codec.array({ report }) } or nil)
    end

    local results, any_error = db:tx(function()
      local results, any_error, changed = contacts_apply(db, client, id, items)
      if changed then
        -- its links are part of the organisme: dated like a modification (2.6.3.5)
        rec.data.date_modif = now_iso(env.now)
        db:exec("UPDATE organismes SET data = ? WHERE id_organisme = ?", codec.encode(rec.data), id)
        db:journal(client, "organisme", id, "update", env.now)
      end
      return results, any_error
    end)
    -- targeted errors do not undo the others: the successes are kept and
    -- the statut says 1111 so the caller looks at the errors
    return (any_error and ko or ok)(any_error and 1111 or 1115, {
      contacts = codec.array(results),
      organisme = { { id_organisme = id, success = entry_of(906, "id_organisme") } },
    })
  end,
}

routes.ws_info_organisme = {
  auth = "ws",
  params = { id_organisme = "integer!", get_contact = "integer", get_criteres = "integer" },
  run = function(p, env)
    local rec = organisme_get(env.db, env.client, p.id_organisme)
    if not rec then return ko(904) end
    if rec.data.fiche_supprimee then return ko(905) end
    local out = organisme_out(rec)
    if p.get_contact == 1 then
      -- the reduced list (2.6.1.2: id and fonction), one entry per link,
      -- with the link's details (revision 04: "info supplémentaire")
      local list = {}
      for _, l in ipairs(links_by(env.db, env.client, "id_organisme", rec.id_organisme)) do
        list[#list + 1] = { id_contact = l.id_contact, fonction = l.fonction, service = l.service,
          telephone_lien = l.telephone, portable_lien = l.portable, email_lien = l.email }
      end
      out.contacts = codec.array(list)
    end
    if p.get_criteres == 1 then out.criteres = criteres_out(rec.criteres) end
    return ok(906, { organisme = out })
  end,
}

---- for ws_liste_fiches_modifiees (billetterie.sandbox.changes) ----

local M = { schema = SCHEMA, routes = routes }

-- The organisme as ws_info_organisme shows it, or nil.
function M.show(db, client, id)
  local rec = organisme_get(db, client, id)
  return rec and organisme_out(rec)
end

-- Its criteres in the input form (annex 4.6), or nil.
function M.criteres_of(db, client, id)
  local rec = organisme_get(db, client, id)
  return rec and rec.criteres
end

-- The fiches lien of an organisme (owner "organisme") or of a contact
-- (owner "contact"), as liste_liens objects (2.7.3.3). A contact's list
-- starts with its own fiche lien (annex 4.1 `id`, no organisme: id_organisme
-- "", "Vide si pas d'organisme"); each attachment to an organisme is another
-- fiche lien, since one contact may be attached several times to the same
-- organisme, each time with its own fonction and details (2.6.4.1).
function M.links_of(db, client, owner, id)
  local out = {}
  if owner == "contact" then
    local c = contacts().get(db, client, id)
    if c then
      out[1] = { id = c.id, id_contact = id, id_organisme = "", fonction = "", service = "",
        telephone = "", portable = "", email = "" }
    end
  end
  for _, l in ipairs(links_by(db, client, owner == "contact" and "id_contact" or "id_organisme", id)) do
    out[#out + 1] = { id = l.id, id_contact = l.id_contact, id_organisme = l.id_organisme,
      fonction = l.fonction, service = l.service, telephone = l.telephone, portable = l.portable,
      email = l.email }
  end
  return out
end

-- For seeds: creates an organisme from annex 4.4 fields, inside the
-- caller's transaction, journalled like a ws_organisme_creation.
-- -> id_organisme. Raises on a missing intitule/nature (a seed mistake).
function M.insert(db, client, fields, now)
  local detail = {}
  local org = new_organisme(fields, detail, now)
  assert(org, "organisme: " .. table.concat(detail, "; "))
  db:exec("INSERT INTO organismes (client, data, created_at) VALUES (?, ?, ?)", client, codec.encode(org), now)
  local id = db:last_id()
  db:journal(client, "organisme", id, "create", now)
  return id
end

-- The first fiche lien (lowest id) of a contact to an organisme that is not
-- deleted: { id, id_organisme, intitule }, or nil.
function M.first_link(db, client, id_contact)
  for _, l in ipairs(links_by(db, client, "id_contact", id_contact)) do
    local rec = organisme_get(db, client, l.id_organisme)
    if rec and not rec.data.fiche_supprimee then
      return { id = l.id, id_organisme = l.id_organisme, intitule = rec.data.intitule or "" }
    end
  end
end

-- The relation levels of an organisme (annex 4.5 objects).
function M.niveaux_of(db, client, id)
  local out = {}
  for _, n in ipairs(niveaux_rows(db, client, id)) do
    out[#out + 1] = { Num_contact = 0, Num_clistru = 0, Num_id_unique = n.id, Num_Organisme = id,
      Niveau_relation = n.libelle }
  end
  return out
end

return M
