-- billetterie.sandbox.contacts: spec 2.3 (contact records and their web
-- accounts) and 2.2.4 ws_info_formulaire, with annex 4.1 (sent and received
-- field names), 4.3 (adresses), 4.5 (relation levels) and 4.7 (passwords).
--
-- Annex 4.1 is read from the catalogue, so the send -> receive renames
-- (v_nom -> name, the swapped vW_Commentaire6/7 -> champ_libre_14/15 and
-- 14/15 -> champ_libre_6/7, v_adr4 -> Adress4) exist in one place only.
--
-- For other groups and seed data (all take an open billetterie.sandbox.db):
--   exists(db, client, id_contact)               -> boolean (the fiche contact;
--       true after ws_suppression_compte, which removes the web account only)
--   insert(db, client, fields, now)              -> id_contact; `fields` by
--       receive name (name, mail, web_identifiant, web_passe, champ_libre_6,
--       code_envoi = {ids}, interet = {ids}, adresses = {...},
--       Niveau_de_relations = {"label", ...}); call inside a transaction
--   get(db, client, id_contact)                  -> record by receive name, or nil
--   create_option(db, client, kind, {id=, code=, label=}) -> id; kind is
--       "code_envoi" or "interet" (the back-office lists the forms offer)
--   set_pwd_key(db, client, key)                 the client's x_rsi_pwd_key

local catalogue = require "billetterie.catalogue"
local codes = require "billetterie.codes"
local params = require "billetterie.params"
local codec = require "billetterie.sandbox.codec"
local lists = require "billetterie.sandbox.lists"
local services = require "billetterie.sandbox.services"
local ok, ko = services.ok, services.ko

local M = {}

-- The sandbox's default x_rsi_pwd_key: the spec's own example (2.3.4.2), as
-- the ws account defaults are the spec's xrsitest/xrsimdp. A client gets
-- another one with set_pwd_key; services.new{ pwd_key = } changes the default.
M.DEFAULT_PWD_KEY = "B470CF16245D405986E5A546A1429B86"

---- annex 4.1 as data ----

local SEND, RECV, SCALARS = {}, {}, {}
local SCALAR_TYPES = { string = true, date = true, number = true, boolean = true }
-- The form's scalar parameters (route `scalars`: their array form answers 4,
-- services.lua); the lists (code_envoi[], interet[], liste[]) are not.
local FORM_SCALARS = { v_passe = true, v_passec = true, Adresses = true, adresses = true,
  Niveau_de_relations = true }
for _, f in ipairs(catalogue.contact_fields) do
  SEND[f.send] = f
  if SCALAR_TYPES[f.type] then FORM_SCALARS[f.send] = true end
  if f.receive then
    RECV[f.receive] = f
    if SCALAR_TYPES[f.type] then SCALARS[#SCALARS + 1] = f end
  end
end
-- Returned by every contact service but absent from 4.1 (no input field on
-- the web; seed data may set it through insert).
local TEL_PERSO = { receive = "tel_perso", type = "string", max = 20 }
RECV.tel_perso = TEL_PERSO
SCALARS[#SCALARS + 1] = TEL_PERSO

local DEFAULT = { string = "", date = "", number = 0, boolean = false }
local KINDS = { code_envoi = true, interet = true } -- ticked back-office options

local valid_date = params.DATE_FORMATS["AAAA-MM-JJ"]

local BOOLEAN = { ["1"] = true, ["true"] = true, on = true, oui = true,
  ["0"] = false, ["false"] = false, off = false, non = false, [""] = false }

-- A value for a field of type string/date/number/boolean (`max` in UTF-8
-- characters). Too long text is cut, as the vendor's fixed-width columns
-- do, and the cut is reported. -> value, note | nil, error
local function coerce(f, v)
  local t = f.type
  if t == "boolean" then
    if type(v) == "boolean" then return v end
    local b = BOOLEAN[tostring(v):lower()]
    if b == nil then return nil, "booléen attendu (0 ou 1)" end
    return b
  elseif t == "number" then
    if v == "" then return 0 end
    local n = math.type(v) and v or tonumber((tostring(v):gsub(",", ".", 1)))
    if not n or n ~= n or n == math.huge or n == -math.huge then return nil, "nombre attendu" end
    return math.tointeger(n) or n
  end
  if type(v) == "table" then return nil, "texte attendu" end
  if type(v) ~= "string" then v = tostring(v) end
  if t == "date" then
    if v ~= "" and not valid_date(v) then return nil, "date au format AAAA-MM-JJ attendue" end
    return v
  end
  local n = utf8.len(v)
  if not n then return nil, "texte UTF-8 invalide" end
  if f.max and n > f.max then
    return v:sub(1, utf8.offset(v, f.max + 1) - 1), ("tronqué à %d caractères"):format(f.max)
  end
  return v
end

local function lower(s) return s ~= nil and s ~= "" and s:lower() or nil end

---- storage ----

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS contacts (
      id_contact  INTEGER PRIMARY KEY AUTOINCREMENT,
      client      INTEGER NOT NULL,
      id_lien     INTEGER NOT NULL,  -- `id` / id_clistru: the contact's fiche lien
      data        TEXT NOT NULL,     -- annex 4.1 scalar fields by receive name, JSON
      ident       TEXT,              -- lower(web_identifiant): login, 515
      mail        TEXT,              -- lower(mail): 518
      passe       TEXT,              -- web password as received; never logged nor returned
      created_at  INTEGER NOT NULL,  -- unix seconds
      modified_at INTEGER NOT NULL,
      deleted_at  INTEGER            -- ws_suppression_compte: the web account's end
    )]],
  "CREATE INDEX IF NOT EXISTS contacts_ident ON contacts (client, ident)",
  "CREATE INDEX IF NOT EXISTS contacts_mail ON contacts (client, mail)",
  -- The codes envoi and interests a client's forms offer (back-office lists).
  [[CREATE TABLE IF NOT EXISTS contact_options (
      client INTEGER NOT NULL,
      kind   TEXT NOT NULL,          -- 'code_envoi' | 'interet'
      id     INTEGER NOT NULL,
      code   TEXT NOT NULL,
      label  TEXT NOT NULL,
      PRIMARY KEY (client, kind, id)
    )]],
  [[CREATE TABLE IF NOT EXISTS contact_ticks (
      id_contact INTEGER NOT NULL,
      kind       TEXT NOT NULL,
      id         INTEGER NOT NULL,
      PRIMARY KEY (id_contact, kind, id)
    )]],
  -- Annex 4.5 relation levels of a contact (Num_id_unique is the row id).
  [[CREATE TABLE IF NOT EXISTS contact_niveaux (
      id_unique  INTEGER PRIMARY KEY AUTOINCREMENT,
      id_contact INTEGER NOT NULL,
      niveau     TEXT NOT NULL
    )]],
  -- x_rsi_pwd_key per client; a client without a row uses the default key.
  [[CREATE TABLE IF NOT EXISTS pwd_keys (
      client INTEGER PRIMARY KEY,
      key    TEXT NOT NULL
    )]],
  -- Files of the previous version, where ws_suppression_compte hid the
  -- whole contact: its account ends as it does now (no identifier, no
  -- password, no session logged in as it). No-ops once done.
  "UPDATE contacts SET ident = NULL, passe = NULL WHERE deleted_at IS NOT NULL AND (ident IS NOT NULL OR passe IS NOT NULL)",
  [[UPDATE sessions SET id_contact = NULL
      WHERE id_contact IN (SELECT id_contact FROM contacts WHERE deleted_at IS NOT NULL)]],
}

-- The fiche contact, with or without a web account (ws_suppression_compte
-- ends the account, 2.3.6.1; the fiche stays, 2.3.1.1).
local function row_of(db, client, id)
  return db:one("SELECT * FROM contacts WHERE client = ? AND id_contact = ?", client, id)
end

function M.exists(db, client, id)
  return math.type(id) == "integer" and row_of(db, client, id) ~= nil
end

-- The options of one kind with the contact's ticks: {label, code, id, checked}.
local function options_of(db, client, id, kind)
  local out = {}
  for _, o in ipairs(db:rows([[SELECT o.id, o.code, o.label, t.id AS ticked FROM contact_options o
      LEFT JOIN contact_ticks t ON t.id_contact = ? AND t.kind = o.kind AND t.id = o.id
      WHERE o.client = ? AND o.kind = ? ORDER BY o.id]], id, client, kind)) do
    out[#out + 1] = { label = o.label, code = o.code, id = o.id, checked = o.ticked ~= nil }
  end
  return out
end

-- The whole record by receive name (annex 4.1, read-only attributes, tel_perso).
local function record(db, row)
  local data, id = codec.decode(row.data), row.id_contact
  local c = {}
  for _, f in ipairs(SCALARS) do
    local v = data[f.receive]
    if v == nil then v = DEFAULT[f.type] end
    c[f.receive] = v
  end
  c.adresses = db:adresses_of(0, id)
  c.code_envoi = options_of(db, row.client, id, "code_envoi")
  c.interet = options_of(db, row.client, id, "interet")
  c.Niveau_de_relations = {}
  for _, n in ipairs(db:rows("SELECT * FROM contact_niveaux WHERE id_contact = ? ORDER BY id_unique", id)) do
    c.Niveau_de_relations[#c.Niveau_de_relations + 1] = { Num_id_unique = n.id_unique,
      Num_contact = id, Num_clistru = row.id_lien, Num_Organisme = 0, Niveau_relation = n.niveau }
  end
  if row.deleted_at then c.web_identifiant = "" end -- no account (a previous version's file kept it)
  c.date_creation = os.date("%Y-%m-%d", row.created_at)
  c.date_modif = os.date("%Y-%m-%dT%H:%M:%S", row.modified_at)
  c.id, c.id_contact, c.id_contactlist = row.id_lien, id, 0
  return c
end

function M.get(db, client, id)
  local row = math.type(id) == "integer" and row_of(db, client, id)
  return row and record(db, row) or nil
end

-- Applies a validated change (see read_fields) to a new (id nil) or an
-- existing contact and journals it. Call inside a transaction. -> id_contact
local function store(db, client, id, change, now)
  local action = id and "update" or "create"
  local data = {}
  if id then
    data = codec.decode(db:one("SELECT data FROM contacts WHERE id_contact = ?", id).data)
  else
    for _, f in ipairs(SCALARS) do data[f.receive] = DEFAULT[f.type] end
  end
  for k, v in pairs(change.data or {}) do data[k] = v end
  if id then
    db:exec("UPDATE contacts SET data = ?, mail = ?, modified_at = ? WHERE id_contact = ?",
      codec.encode(data), lower(data.mail), now, id)
  else
    local lien = db:lien_id() -- one id space with the attachments (db.lua)
    db:exec([[INSERT INTO contacts (client, id_lien, data, ident, mail, passe, created_at, modified_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)]], client, lien, codec.encode(data),
      lower(data.web_identifiant), lower(data.mail), change.passe, now, now)
    id = db:last_id()
  end
  for kind, t in pairs(change.ticks or {}) do
    if t.replace then
      db:exec("DELETE FROM contact_ticks WHERE id_contact = ? AND kind = ?", id, kind)
      for _, o in ipairs(t.replace) do
        db:exec("INSERT OR IGNORE INTO contact_ticks (id_contact, kind, id) VALUES (?, ?, ?)", id, kind, o)
      end
    end
    for o, tick in pairs(t.partial or {}) do
      if tick then
        db:exec("INSERT OR IGNORE INTO contact_ticks (id_contact, kind, id) VALUES (?, ?, ?)", id, kind, o)
      else
        db:exec("DELETE FROM contact_ticks WHERE id_contact = ? AND kind = ? AND id = ?", id, kind, o)
      end
    end
  end
  for _, a in ipairs(change.adresses or {}) do db:adresse_upsert(0, id, a.fields, a.defaults) end
  -- 4.5.1: matched case-insensitively; add when absent, remove when present
  for _, n in ipairs(change.niveaux or {}) do
    local found = db:one("SELECT id_unique FROM contact_niveaux WHERE id_contact = ? AND lower(niveau) = ?",
      id, n.label:lower())
    if n.checked and not found then
      db:exec("INSERT INTO contact_niveaux (id_unique, id_contact, niveau) VALUES (?, ?, ?)",
        db:niveau_id(), id, n.label)
    elseif found and not n.checked then
      db:exec("DELETE FROM contact_niveaux WHERE id_unique = ?", found.id_unique)
    end
  end
  for _, l in ipairs(change.listes or {}) do lists.add(db, client, l, id) end
  db:journal(client, "contact", id, action, now)
  return id
end

-- Id of an option given by id or by code (reference 2.3.1 ambiguity:
-- numeric ids chosen, codes accepted). -> id or nil
local function option_id(db, client, kind, v)
  local n = tostring(v):match("^%s*(%d+)%s*$")
  local row = n and db:one("SELECT id FROM contact_options WHERE client = ? AND kind = ? AND id = ?",
    client, kind, math.tointeger(tonumber(n)))
  row = row or db:one("SELECT id FROM contact_options WHERE client = ? AND kind = ? AND code = ?",
    client, kind, tostring(v))
  return row and row.id
end

---- annex 4.3 adresses and 4.5 relation levels ----

local ADRESSE = {}   -- name -> catalogue field, without the server's ids
local ADRESSE_IDS = { id_adresse = true, id_organisme = true, id_contact = true }
for _, f in ipairs(catalogue.objects.adresse.fields) do
  if not ADRESSE_IDS[f.name] then ADRESSE[f.name] = f end
end

local function adresse_defaults()
  local t = {}
  for name, f in pairs(ADRESSE) do t[name] = DEFAULT[f.type] end
  return t
end

local function is_list(v) return type(v) == "table" and (next(v) == nil or #v > 0) end

-- Validates the decoded `adresses` array. In modification (id given) the
-- ids an adresse carries must designate this contact's own adresse of that
-- type (code 1000). -> list of { fields, defaults } | nil, code, note
local function read_adresses(db, list, id, notes)
  if not is_list(list) then return nil, 4, "adresses : tableau JSON attendu" end
  local out = {}
  for i, a in ipairs(list) do
    local where = ("adresses[%d]"):format(i)
    if type(a) ~= "table" then return nil, 4, where .. " : objet attendu" end
    local fields = {}
    for k, v in pairs(a) do
      local f = ADRESSE[k]
      if f and v ~= codec.null then
        local want = f.type == "boolean" and "boolean" or "string"
        if type(v) ~= want then return nil, 4, ("%s.%s : %s attendu"):format(where, k, want == "string" and "texte" or "booléen") end
        local value, note = coerce(f, v)
        if value == nil then return nil, 4, ("%s.%s : %s"):format(where, k, note) end
        if note then notes[#notes + 1] = ("%s.%s : %s"):format(where, k, note) end
        fields[k] = value
      end
    end
    if type(fields.type_adresse) ~= "string" or fields.type_adresse == "" then
      return nil, 4, where .. " : type_adresse absent"
    end
    if id then
      local own = db:one("SELECT id_adresse FROM adresses WHERE id_organisme = 0 AND id_contact = ? AND type_adresse = ?",
        id, fields.type_adresse)
      local function differs(k, want)
        local v = a[k]
        return math.type(v) == "integer" and v ~= 0 and v ~= want
      end
      if differs("id_contact", id) or differs("id_organisme", 0)
        or differs("id_adresse", own and own.id_adresse or -1) then
        return nil, 1000, where .. " : id_adresse, id_organisme et id_contact ne correspondent pas"
      end
    end
    out[#out + 1] = { fields = fields, defaults = adresse_defaults() }
  end
  return out
end

local NIVEAU_MAX = 40 -- annex 4.5 Niveau_relation

-- -> list of { label, checked } | nil, code, note
local function read_niveaux(list)
  if not is_list(list) then return nil, 4, "Niveau_de_relations : tableau JSON attendu" end
  local out = {}
  for i, n in ipairs(list) do
    local label = type(n) == "table" and n.Niveau_relation
    if type(label) ~= "string" or label == "" or type(n.checked) ~= "boolean" then
      return nil, 4, ("Niveau_de_relations[%d] : {Niveau_relation, checked} attendu"):format(i)
    end
    out[#out + 1] = { label = coerce({ type = "string", max = NIVEAU_MAX }, label), checked = n.checked }
  end
  return out
end

---- exported writes for seeds and other groups ----

function M.insert(db, client, fields, now)
  local change = { data = {}, ticks = {} }
  for k, v in pairs(fields) do
    local f = RECV[k]
    if k == "web_passe" then
      change.passe = v
    elseif KINDS[k] then
      local ids = {}
      for _, x in ipairs(v) do
        ids[#ids + 1] = option_id(db, client, k, x) or error(("contacts.insert: no %s %s"):format(k, x), 2)
      end
      change.ticks[k] = { replace = ids }
    elseif k == "adresses" then
      local list, _, err = read_adresses(db, v, nil, {})
      change.adresses = list or error("contacts.insert: " .. err, 2)
    elseif k == "Niveau_de_relations" then
      local items = {}
      for i, n in ipairs(v) do items[i] = type(n) == "string" and { Niveau_relation = n, checked = true } or n end
      local list, _, err = read_niveaux(items)
      change.niveaux = list or error("contacts.insert: " .. err, 2)
    elseif f and SCALAR_TYPES[f.type] then
      local value, err = coerce(f, v)
      if value == nil then error(("contacts.insert: %s: %s"):format(k, err), 2) end
      change.data[k] = value
    else
      error("contacts.insert: unknown field " .. tostring(k), 2)
    end
  end
  if change.data.web_identifiant == nil and change.passe then change.data.web_identifiant = change.data.mail end
  return store(db, client, nil, change, now)
end

function M.create_option(db, client, kind, o)
  assert(KINDS[kind], "contacts.create_option: kind is code_envoi or interet")
  assert(math.type(o.id) == "integer", "contacts.create_option: integer id required")
  db:exec("INSERT OR REPLACE INTO contact_options (client, kind, id, code, label) VALUES (?, ?, ?, ?, ?)",
    client, kind, o.id, o.code or tostring(o.id), o.label or o.code or tostring(o.id))
  return o.id
end

function M.set_pwd_key(db, client, key)
  assert(type(key) == "string" and key:find("^%x+$"), "contacts.set_pwd_key: hex key expected")
  db:exec("INSERT OR REPLACE INTO pwd_keys (client, key) VALUES (?, ?)", client, key:upper())
end

---- forms (2.2.4) ----

-- The sandbox's back-office forms. 1 is the short sign-up form whose fields
-- the vendor's ws_info_contact example shows; 2 offers every input field of
-- annex 4.1. Both end with the password pair. A form's `required` fields
-- missing from ws_ccontact answer 505; in token mode ws_info_contact shows
-- the received names of the form's fields (plus id and tel_perso).
local PASSWORD_FIELDS = { "v_passe", "v_passec" }
local FORM_1 = { "web_civil", "v_nom", "v_prenom", "v_mail", "w_identifiant", "v_tel_port",
  "v_adr1", "v_adr2", "v_adr3", "v_cp", "v_ville", "v_pays", "code_envoi", "interet" }
local FORM_2 = {}
for _, f in ipairs(catalogue.contact_fields) do
  if f.receive and (SCALAR_TYPES[f.type] or KINDS[f.send]) then FORM_2[#FORM_2 + 1] = f.send end
end
local REQUIRED = { v_nom = true, v_prenom = true, v_mail = true, v_passe = true }
local FORMS = { [1] = FORM_1, [2] = FORM_2 }

-- Labels of the short form, in the site's language; form 2's other fields
-- are labelled with the catalogue's description.
local LABELS = {
  web_civil = "Civilité", v_nom = "Nom", v_prenom = "Prénom", v_mail = "Email",
  w_identifiant = "Identifiant", v_tel_port = "Téléphone portable", v_adr1 = "Adresse 1",
  v_adr2 = "Adresse 2", v_adr3 = "Adresse 3", v_cp = "Code postal", v_ville = "Ville",
  v_pays = "Pays", code_envoi = "Codes envoi", interet = "Centres d'intérêt",
  v_passe = "Mot de passe", v_passec = "Confirmation du mot de passe",
}
local HTML_TYPE = { string = "text", date = "date", number = "number", boolean = "checkbox",
  bracket_array = "checkbox" }

local RULE_TEXT = "Le mot de passe de compte doit contenir au moins une majuscule, une minuscule et "
  .. "un chiffre. Le mot de passe doit faire au moins 8 caractères. L'arobase (@) n'est pas acceptée."

local function form_fields(id)
  local list = FORMS[id]
  if not list then return nil end
  local out = {}
  for _, name in ipairs(list) do out[#out + 1] = name end
  for _, name in ipairs(PASSWORD_FIELDS) do out[#out + 1] = name end
  return out
end

local function formulaire(db, client, id)
  local items = {}
  for i, name in ipairs(form_fields(id)) do
    local f = SEND[name]
    local item = {
      name = KINDS[name] and name .. "[]" or name, index = i, checked = false, value = "",
      type = f and (name == "v_mail" and "email" or HTML_TYPE[f.type]) or "password",
      label = LABELS[name] or f.description, required = REQUIRED[name] or false,
      visible = true, disabled = false, action_fieldset = codec.empty_array,
    }
    local option, value, code = {}, {}, {}
    if KINDS[name] then
      for _, o in ipairs(options_of(db, client, 0, name)) do
        option[#option + 1], value[#value + 1], code[#code + 1] = o.label, tostring(o.id), o.code
      end
    end
    item.option, item.option_value, item.option_code = codec.array(option), codec.array(value), codec.array(code)
    items[i] = item
  end
  return items
end

---- request reading ----

-- Bracket parameters (spec 1.5) come from the raw request: services merges
-- parameters keeping the last value of a key, which would lose all but one
-- `liste[]`. `name[]=v` (or a plain `name=v`) adds v to the list (empty
-- values skipped); so does `name[0]=v`, `name[1]=v`... (PHP's
-- http_build_query, the seed's example language, numbers array items),
-- in the order sent, unless `is_map` (liste_maj_*[id], whose keys are ids).
-- Other `name[key]=v` set map[key]. -> list or nil when the name was not
-- sent at all, map, and for a map whether an entry came without its key
-- (`name[]=v` or `name=v`: the id is missing, a parameter error)
local function brackets(env, name, is_map)
  local list, map, seen, keyless = {}, {}, false, false
  for _, kv in ipairs(env.req and env.req.params or {}) do
    -- name[key]: the first '[' and a final ']' (a lazy pattern would cost a
    -- long run of brackets its length squared)
    local open = kv[1]:find("[", 1, true)
    local base, key
    if open and kv[1]:sub(-1) == "]" then base, key = kv[1]:sub(1, open - 1), kv[1]:sub(open + 1, -2) end
    if (base or kv[1]) == name then
      seen = true
      if key and key ~= "" and (is_map or not key:find("^%d+$")) then
        map[key] = kv[2]
      else
        if is_map then keyless = true end
        if kv[2] ~= "" then list[#list + 1] = kv[2] end
      end
    end
  end
  return seen and list or nil, map, keyless
end

local function present(v) return v ~= nil and v ~= "" end

-- Turns the annex 4.1 form fields of a request into a change for store().
-- id: the contact being modified (nil on creation). Unusable values answer
-- 4 and nothing is written; text cut to its maximum is noted.
-- -> change | nil, code, note
local function read_fields(env, p, client, id, notes)
  local db = env.db
  local change = { data = {}, ticks = {} }
  for _, f in ipairs(catalogue.contact_fields) do
    local v = p[f.send]
    if v ~= nil and f.receive and SCALAR_TYPES[f.type] then
      if id and f.send == "w_identifiant" then
        notes[#notes + 1] = "w_identifiant : non modifiable par ce service, ignoré"
      else
        local value, note = coerce(f, v)
        if value == nil then return nil, 4, f.send .. " : " .. note end
        if note then notes[#notes + 1] = f.send .. " : " .. note end
        change.data[f.receive] = value
      end
    end
  end
  for kind in pairs(KINDS) do
    local list, map = brackets(env, kind)
    local ticks = {}
    if id and tonumber(p["maj_" .. kind]) == 1 then
      -- partial mode (2.3.3): 1 leave, 2 tick, 3 untick; code_envoi[] ignored
      local _, changes, keyless = brackets(env, "liste_maj_" .. kind, true)
      if keyless then
        return nil, 4, ("liste_maj_%s[] : identifiant attendu entre crochets (liste_maj_%s[id]=valeur)"):format(kind, kind)
      end
      ticks.partial = {}
      for key, v in pairs(changes) do
        local o = option_id(db, client, kind, key)
        if not o or not (v == "1" or v == "2" or v == "3") then
          return nil, 4, ("liste_maj_%s[%s] : identifiant connu et valeur 1, 2 ou 3 attendus"):format(kind, key)
        end
        if v ~= "1" then ticks.partial[o] = v == "2" end
      end
      change.ticks[kind] = ticks
    elseif list then
      -- default mechanism: the list sent is the whole selection
      ticks.replace = {}
      for _, v in ipairs(list) do
        local o = option_id(db, client, kind, v)
        if not o then return nil, 4, ("%s[] : %s inconnu"):format(kind, v) end
        ticks.replace[#ticks.replace + 1] = o
      end
      for key in pairs(map) do return nil, 4, ("%s[%s] : liste[] attendue"):format(kind, key) end
      change.ticks[kind] = ticks
    end
  end
  local text = p.Adresses or p.adresses
  if present(text) then
    local list, err = codec.decode_param(text, "array")
    if list == nil then return nil, 4, "adresses : " .. err end
    local code, note
    change.adresses, code, note = read_adresses(db, list, id, notes)
    if not change.adresses then return nil, code, note end
  end
  if present(p.Niveau_de_relations) then
    local list, err = codec.decode_param(p.Niveau_de_relations, "array")
    if list == nil then return nil, 4, "Niveau_de_relations : " .. err end
    local code, note
    change.niveaux, code, note = read_niveaux(list)
    if not change.niveaux then return nil, code, note end
  end
  return change
end

-- Annex 4.7 from the catalogue. -> nil when the password follows the rules,
-- else the reason
local RULES = catalogue.password_rules
local function password_problem(pw)
  local n = utf8.len(pw)
  if not n or n < RULES.min_length then return ("au moins %d caractères"):format(RULES.min_length) end
  -- letter cases as the client counts them (accented capitals are capitals)
  if RULES.require_uppercase and not params.has_case(pw, "upper") then return "une majuscule attendue" end
  if RULES.require_lowercase and not params.has_case(pw, "lower") then return "une minuscule attendue" end
  if RULES.require_digit and not pw:find("%d") then return "un chiffre attendu" end
  for _, c in ipairs(RULES.forbidden_chars) do
    if pw:find(c, 1, true) then return ("caractère %s interdit"):format(c) end
  end
end

-- Another contact of the client already uses this mail / identifier (a
-- fiche whose account was deleted keeps its mail, not its identifier).
local function taken(db, client, column, value, except)
  return present(value) and db:one(("SELECT 1 AS x FROM contacts WHERE client = ? AND %s = ? AND id_contact <> ?"):format(column),
    client, value:lower(), except or 0) ~= nil
end

-- One @ with something on both sides and no blank: the vendor's own sample
-- addresses have no dot in the domain (reference, quirk 64).
local function valid_mail(m) return m:find("^[^@%s]+@[^@%s]+$") ~= nil end

---- sessions ----

-- The running session of a token route, or nil (unknown, ended, expired).
local function live(env)
  local s = env.session
  if s and not s.ended_at and s.created_at + s.duration > env.now then return s end
end

local function bind(db, jeton, id)
  db:exec("UPDATE sessions SET id_contact = ? WHERE jeton = ?", id, jeton)
end

-- The contact a token or ws request acts on. -> client, row | nil, answer
local function target(env, p, mode)
  local db = env.db
  if mode == "ws" then
    local row = row_of(db, env.client, p.id_contact)
    if not row then return nil, ko(503) end
    return env.client, row
  end
  local s = live(env)
  if not s then return nil, ko(605) end
  if not s.id_contact then return nil, ko(602) end
  local row = row_of(db, s.client, s.id_contact)
  if not row then return nil, ko(503) end
  return s.client, row
end

---- answers ----

local ARRAYS = { adresses = true, code_envoi = true, interet = true, Niveau_de_relations = true }

-- The record restricted to `keys` (all when nil), JSON-ready.
local function shape(rec, keys)
  local out = {}
  local function put(k)
    local v = rec[k]
    out[k] = ARRAYS[k] and codec.array(v) or v
  end
  if keys then for _, k in ipairs(keys) do put(k) end else for k in pairs(rec) do put(k) end end
  return out
end
M.shape = shape -- the change feed (changes.lua) shows contacts as ws_info_contact does

-- Keys of the vendor's ws_ccontact example, plus the two ids (read-only
-- attributes of 4.1) a caller needs to find the contact again.
local CREATED = { "tel_perso", "tel_port", "name", "mail", "surname", "civilite", "adress1",
  "adress2", "code_postal", "adress3", "ville", "pays", "id_contactlist", "id", "id_contact" }
local MODIFIED = { "web_identifiant", table.unpack(CREATED) }

local function with_detail(answer, notes)
  answer.retour.detail = table.concat(notes, " ; ")
  return answer
end

-- retour_traitement of ws_modification_pwd: message is a string, traitement
-- repeated beside statut, code 2 printed without its accent (2.3.4.3).
local PRINTED = catalogue.services.ws_modification_pwd.codes_as_printed or {}
local function pwd_answer(code, text)
  local c = PRINTED[code] or codes[code]
  local traitement = c.ok and "ok" or "ko"
  return { retour = { message = text or codes[code].message, traitement = traitement,
    statut = { code = code, traitement = traitement, message = c.message } } }
end

-- retour_erreur of ws_suppression_compte: statut and erreur.détail, no message.
local function erreur_answer(code, detail)
  local a = ok(code)
  a.retour.message = nil
  a.retour.erreur = { ["détail"] = detail or (codes[code].ok and "" or codes[code].message) }
  return a
end

---- routes ----

local routes = {}

routes.ws_info_formulaire = {
  auth = "none",
  params = { id_formulaire = "integer!", x_rsi_client = "integer" },
  run = function(p, env)
    if not FORMS[p.id_formulaire] then return ko(4) end
    -- No credentials (2.2.4): the options offered are those of the client
    -- named by x_rsi_client if sent, else of the first configured one.
    local client = p.x_rsi_client or env.config.clients[1]
    return ok(2, {
      id_formulaire = p.id_formulaire,
      formulaire = formulaire(env.db, client, p.id_formulaire),
      libelles = {
        libelle_info_cnil = "www.cnil.fr",
        libelle_legend_oblig = "Les champs obligatoires sont en rouge",
        libelle_description_haut = "", libelle_description_bas = "",
        libelle_regle_mdp = RULE_TEXT,
      },
    })
  end,
}

routes.ws_ccontact = {
  auth = "token",
  scalars = FORM_SCALARS,
  params = { id_formulaire = "integer!", creation_compte = "integer", account_home = "integer" },
  run = function(p, env)
    local db, notes = env.db, {}
    local s = live(env)
    if not s then return with_detail(ko(605), notes) end
    local client = s.client
    local fields = form_fields(p.id_formulaire)
    if not fields then return with_detail(ko(4), { "id_formulaire : formulaire inconnu" }) end
    local change, code, note = read_fields(env, p, client, nil, notes)
    if not change then return with_detail(ko(code), { note }) end
    local missing = {}
    for _, name in ipairs(fields) do
      if REQUIRED[name] and name ~= "v_passe" and not present(p[name]) then missing[#missing + 1] = name end
    end
    if #missing > 0 then
      return with_detail(ko(505), { "champs obligatoires absents : " .. table.concat(missing, ", ") })
    end
    local data = change.data
    if not valid_mail(data.mail) then return with_detail(ko(527), { "v_mail : adresse incorrecte" }) end
    if not present(p.v_passe) then return with_detail(ko(522), { "v_passe absent" }) end
    local problem = password_problem(p.v_passe)
    if problem then return with_detail(ko(523), { "v_passe : " .. problem }) end
    if p.v_passec ~= nil and p.v_passec ~= p.v_passe then return with_detail(ko(524), {}) end
    -- the web identifier is the mail unless one is chosen
    if not present(data.web_identifiant) then data.web_identifiant = data.mail end
    if taken(db, client, "mail", data.mail) then return with_detail(ko(518), notes) end
    if taken(db, client, "ident", data.web_identifiant) then return with_detail(ko(515), notes) end
    local listes, keyed = brackets(env, "liste")
    for key in pairs(keyed) do return with_detail(ko(4), { ("liste[%s] : liste[] attendue"):format(key) }) end
    change.listes = {}
    for _, v in ipairs(listes or {}) do
      local l = tostring(v):match("^%s*(%d+)%s*$")
      l = l and math.tointeger(tonumber(l))
      if not (l and lists.usable(db, client, l)) then
        return with_detail(ko(4), { ("liste[] : %s n'est pas une liste disponible sur le web"):format(v) })
      end
      change.listes[#change.listes + 1] = l
    end
    change.passe = p.v_passe
    -- The contact "sera authentifiable sur le web" (2.3.1.1): it can log in,
    -- it is not logged in; the token stays as it was (ws_login next).
    local id = db:tx(function() return store(db, client, nil, change, env.now) end)
    return with_detail(ok(513, { contact = shape(M.get(db, client, id), CREATED) }), notes)
  end,
}

routes.ws_login = {
  auth = "token",
  params = { web_ident = "string!", web_passe = "string!" },
  run = function(p, env)
    local db = env.db
    local s = live(env)
    if not s then return ko(605) end
    if s.id_contact then return ko(609) end
    local rows = db:rows("SELECT * FROM contacts WHERE client = ? AND ident = ? AND deleted_at IS NULL",
      s.client, p.web_ident:lower())
    if #rows > 1 then return ko(510) end
    local row = rows[1]
    if not row or row.passe == nil or row.passe ~= p.web_passe then return ko(504) end
    db:tx(function() bind(db, s.jeton, row.id_contact) end)
    local data = codec.decode(row.data)
    return ok(514, { contact = { name = data.name or "", surname = data.surname or "",
      id_clistru = row.id_lien, id_contact = row.id_contact } })
  end,
}

routes.ws_modification_contact = {
  auth = "ws_or_token",
  scalars = FORM_SCALARS,
  params = { id_formulaire = "integer", id_contact = "integer", maj_code_envoi = "integer",
    maj_interet = "integer" },
  run = function(p, env)
    local db = env.db
    -- token mode needs the form (ws mode, 2.3.3.3, ignores it)
    if env.mode == "token" and not FORMS[p.id_formulaire] then return ko(4) end
    local client, row = target(env, p, env.mode)
    if not client then return row end
    local id, notes = row.id_contact, {}
    local change, code = read_fields(env, p, client, id, notes)
    if not change then return ko(code) end
    local mail = change.data.mail
    if mail ~= nil then
      if not valid_mail(mail) then return ko(527) end
      if taken(db, client, "mail", mail, id) then return ko(518) end
    end
    db:tx(function() store(db, client, id, change, env.now) end)
    local out = shape(M.get(db, client, id), MODIFIED)
    -- The vendor returns the password in clear here; the sandbox keeps the
    -- key (shape) but never sends a password back.
    out.web_passe = ""
    return ok(508, { contact = out })
  end,
}

routes.ws_modification_pwd = {
  auth = "none",
  envelope = "retour_traitement_texte", -- refusals before run too (NUL, array form)
  scalars = { x_rsi_pwd_key = true, w_identifiant = true, v_passe = true, v_ancien_passe = true },
  run = function(p, env)
    local db = env.db
    if not present(p.x_rsi_pwd_key) or not present(p.w_identifiant) then return pwd_answer(4) end
    local key = p.x_rsi_pwd_key:upper()
    local default = (env.config.pwd_key or M.DEFAULT_PWD_KEY):upper()
    -- the key designates the client(s): its own row, else the default key
    local clients = {}
    for _, c in ipairs(env.config.clients) do
      local own = db:one("SELECT key FROM pwd_keys WHERE client = ?", c)
      if (own and own.key or default) == key then clients[#clients + 1] = c end
    end
    if #clients == 0 then return pwd_answer(3) end
    if not present(p.v_passe) then return pwd_answer(522) end
    local rows = {}
    for _, c in ipairs(clients) do
      for _, r in ipairs(db:rows("SELECT * FROM contacts WHERE client = ? AND ident = ? AND deleted_at IS NULL",
          c, p.w_identifiant:lower())) do
        rows[#rows + 1] = r
      end
    end
    if #rows == 0 then return pwd_answer(503) end
    if #rows > 1 then return pwd_answer(516) end
    local row = rows[1]
    if password_problem(p.v_passe) then return pwd_answer(523) end
    if p.v_ancien_passe ~= nil and p.v_ancien_passe ~= row.passe then return pwd_answer(528) end
    if p.v_passe == row.passe then return pwd_answer(529) end
    db:tx(function()
      db:exec("UPDATE contacts SET passe = ?, modified_at = ? WHERE id_contact = ?", p.v_passe, env.now,
        row.id_contact)
      db:journal(row.client, "contact", row.id_contact, "update", env.now)
    end)
    return pwd_answer(2, "mot de passe mis a jour")
  end,
}

routes.ws_info_contact = {
  auth = "ws_or_token",
  params = { id_formulaire = "integer", id_contact = "integer" },
  run = function(p, env)
    if env.mode == "token" and not FORMS[p.id_formulaire] then return ko(4) end
    local client, row = target(env, p, env.mode)
    if not client then return row end
    local rec = record(env.db, row)
    if env.mode == "ws" then return ok(2, { contact = shape(rec) }) end
    -- token mode: the received names of the form's fields
    local keys = { "id", "tel_perso" }
    for _, name in ipairs(FORMS[p.id_formulaire]) do keys[#keys + 1] = SEND[name].receive end
    return ok(2, { contact = shape(rec, keys) })
  end,
}

-- "Supprimer le compte de l'internaute" (2.3.6.1): the web account, which
-- 2.3.1.1 sets apart from the fiche contact. The identifier and password
-- go (login 504, the identifier is free again; the fiche keeps its mail)
-- and every session logged in as it is logged out. The fiche stays for the
-- back-office services, lists, organismes and carts; the change feed
-- (2.7.3, which has no deletions) shows it changed, web_identifiant "".
routes.ws_suppression_compte = {
  auth = "token",
  run = function(_, env)
    local db = env.db
    local s = live(env)
    if not s then return erreur_answer(605) end
    if not s.id_contact then return erreur_answer(602) end
    local row = row_of(db, s.client, s.id_contact)
    if not row or row.deleted_at then return erreur_answer(503) end
    local data = codec.decode(row.data)
    data.web_identifiant = ""
    db:tx(function()
      db:exec([[UPDATE contacts SET deleted_at = ?, modified_at = ?, ident = NULL, passe = NULL, data = ?
          WHERE id_contact = ?]], env.now, env.now, codec.encode(data), row.id_contact)
      db:exec("UPDATE sessions SET id_contact = NULL WHERE id_contact = ?", row.id_contact)
      db:journal(s.client, "contact", row.id_contact, "update", env.now)
    end)
    return erreur_answer(534)
  end,
}

M.schema = SCHEMA
M.routes = routes
return M
