-- billetterie.sandbox.organismes: spec 2.6.1 ws_info_organisme and 2.6.2
-- ws_organisme_creation, with the objects of annexes 4.3, 4.4 and 4.6.
--
-- This slice stores the organisme and its adresses; Niveau_de_relations,
-- contacts and criteres are validated for shape and stored as given (no
-- contact base exists yet, so no contact is attached).

local services = require "billetterie.sandbox.services"
local codec = require "billetterie.sandbox.codec"
local ok, ko = services.ok, services.ko

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
local REQUIRED = { "intitule", "nature" } -- 903 otherwise (2.6.2.4)

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

---- storage (the organismes table belongs to this group) ----

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS organismes (
      id_organisme INTEGER PRIMARY KEY AUTOINCREMENT,
      client       INTEGER NOT NULL,
      data         TEXT NOT NULL,   -- annex 4.4 attributes, JSON
      niveaux      TEXT,            -- Niveau_de_relations, JSON
      contacts     TEXT,            -- contacts as given, JSON
      criteres     TEXT,            -- criteres as given, JSON
      created_at   INTEGER NOT NULL
    )]],
}

local function encode_opt(v)
  if v == nil then return nil end
  return codec.encode(v)
end

-- org: annex 4.4 attributes; adresses: list of adresse field tables;
-- extras: { niveaux =, contacts =, criteres = } kept as given. -> id_organisme
local function organisme_create(db, client, org, adresses, extras, now)
  return db:tx(function()
    db:exec([[INSERT INTO organismes (client, data, niveaux, contacts, criteres, created_at)
        VALUES (?, ?, ?, ?, ?, ?)]], client, codec.encode(org),
      encode_opt(extras.niveaux), encode_opt(extras.contacts), encode_opt(extras.criteres), now)
    local id = db:last_id()
    for _, a in ipairs(adresses) do
      db:adresse_upsert(id, 0, a, adresse_defaults())
    end
    db:journal(client, "organisme", id, "create", now)
    return id
  end)
end

-- -> { id_organisme, data, criteres, contacts, niveaux, adresses = {...} } or nil
local function organisme_get(db, client, id)
  local row = db:one("SELECT * FROM organismes WHERE client = ? AND id_organisme = ?", client, id)
  if not row then return nil end
  local rec = { id_organisme = row.id_organisme, data = codec.decode(row.data),
                adresses = db:adresses_of(id, 0) }
  for _, k in ipairs { "niveaux", "contacts", "criteres" } do
    rec[k] = row[k] and codec.decode(row[k]) or nil
  end
  return rec
end

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

local routes = {
  ws_organisme_creation = {
    auth = "ws",
    params = { organisme = "string!" },
    run = function(p, env)
      local detail, given = {}, {}
      local input, err = codec.decode_param(p.organisme, "object")
      if not input then
        return with_detail(ko(4), { "organisme : " .. err })
      end
      local refused = decode_optional(p, given, detail)
      if refused then return refused end
      local org = pick(ORGANISME, input, "organisme", detail)
      local missing = {}
      for _, k in ipairs(REQUIRED) do
        if type(org[k]) ~= "string" or org[k] == "" then missing[#missing + 1] = k end
      end
      if #missing > 0 then
        detail[#detail + 1] = "attributs obligatoires absents : " .. table.concat(missing, ", ")
        return with_detail(ko(903), detail)
      end
      if given.criteres then
        local code = check_criteres(given.criteres)
        if code then return with_detail(ko(code), detail) end
      end

      local adresses = {}
      for i, a in ipairs(given.adresses or (is_list(input.adresses) and input.adresses) or {}) do
        local fields = type(a) == "table" and pick(ADRESSE, a, "adresses[" .. i .. "]", detail) or {}
        if type(fields.type_adresse) == "string" and fields.type_adresse ~= "" then
          adresses[#adresses + 1] = fields
        else -- type_adresse is the upsert key: nothing to store without it
          detail[#detail + 1] = ("adresses[%d] : type_adresse absent, adresse ignorée"):format(i)
        end
      end

      org.date_creation = os.date("%Y-%m-%d", env.now)
      org.date_modif = "" -- returned empty on creation (2.6.2.5)
      org.fiche_supprimee = false
      local id = organisme_create(env.db, env.client, org, adresses, given, env.now)
      local out = organisme_out(organisme_get(env.db, env.client, id))
      out.contacts = codec.array({}) -- not attached in this slice
      if given.criteres then out.criteres = criteres_out(given.criteres) end
      return with_detail(ok(901, { organisme = out }), detail)
    end,
  },

  ws_info_organisme = {
    auth = "ws",
    params = { id_organisme = "integer!", get_contact = "integer", get_criteres = "integer" },
    run = function(p, env)
      local rec = organisme_get(env.db, env.client, p.id_organisme)
      if not rec then return ko(904) end
      if rec.data.fiche_supprimee then return ko(905) end
      local out = organisme_out(rec)
      if p.get_contact == 1 then out.contacts = codec.array({}) end
      if p.get_criteres == 1 then out.criteres = criteres_out(rec.criteres) end
      return ok(906, { organisme = out })
    end,
  },
}

return { schema = SCHEMA, routes = routes }
