-- billetterie.sandbox.changes: spec 2.7.3 ws_liste_fiches_modifiees, the
-- change feed of the api host (GET /ws_execute_programme with
-- x_rsi_modele=ws_liste_fiches_modifiees, operator code + API key).
--
-- It answers from the `changes` journal (db.lua) that every write to a
-- contact or an organisme appends to: the records changed since `ts`, each
-- in its current state (not as it was at the change), with the lists that
-- hang on them (adresses, fiches lien, niveaux de relations). This group has
-- no table of its own.

local services = require "billetterie.sandbox.services"
local codec = require "billetterie.sandbox.codec"
local organismes = require "billetterie.sandbox.organismes"
local ok, ko = services.ok, services.ko

local function contacts() return require "billetterie.sandbox.contacts" end

local TS_FORMAT = "%Y-%m-%dT%H:%M:%S"

-- "AAAA-MM-DDTHH:MM:SS" (local time, like every date the sandbox prints)
-- -> unix seconds, or nil. The round trip rejects 2020-02-31 and the like.
local function parse_ts(s)
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  local t = os.time { year = tonumber(y), month = tonumber(mo), day = tonumber(d),
    hour = tonumber(h), min = tonumber(mi), sec = tonumber(se) }
  return os.date(TS_FORMAT, t) == s and t or nil
end

-- The seven lists, in the spec's order (2.7.3.3), and the id of each object.
local LISTS = { "contacts", "organismes", "adresses", "liens", "envois", "interets", "niveaux_relations" }
local ID_OF = { contacts = "id_contact", organismes = "id_organisme", adresses = "id_adresse", liens = "id",
  envois = "id", interets = "id", niveaux_relations = "Num_id_unique" }

-- type_export -> the lists answered as ids (2.7.3.2)
local EXPORTS = {
  liste_contact = { "contacts" },
  liste_organisme = { "organismes" },
  liste_lien = { "liens" },
  liste_fiches = LISTS,
}

-- Filtre_client looks at criterion champ_35 (2.7.3.2): which values count
-- as "vrai" (the spec does not say; a text, an enumeration id or a boolean).
local TRUE_VALUES = { ["1"] = true, ["true"] = true, ["vrai"] = true, ["oui"] = true }
local function champ_35(criteres)
  for _, f in ipairs(type(criteres) == "table" and criteres.liste_champs or {}) do
    if type(f) == "table" and type(f.nom) == "string" and f.nom:lower() == "champ_35" then
      return TRUE_VALUES[tostring(f.valeur):lower()] == true
    end
  end
  return false -- absent: "à faux ou non renseigné"
end

-- What makes an object of a list unique: its id (relation levels of
-- contacts and organismes share one, db:niveau_id), but the ticks of
-- envois/interets are per contact.
local KEY_OF = {
  envois = function(o) return o.id_contact .. ":" .. o.id end,
  interets = function(o) return o.id_contact .. ":" .. o.id end,
}

-- The current state of the records journalled since `since`, filtered.
-- -> lists { contacts = {objects}, ... } in order of their last change
local function changed_since(db, client, since, filtre)
  local lists = {}
  for _, name in ipairs(LISTS) do lists[name] = {} end
  local seen = {}
  local function add(list, obj)
    local key = list .. ":" .. (KEY_OF[list] and KEY_OF[list](obj) or obj[ID_OF[list]])
    if not seen[key] then seen[key] = true; table.insert(lists[list], obj) end
  end
  local function keep(criteres)
    return filtre == nil or champ_35(criteres) == filtre
  end
  for _, ch in ipairs(db:rows([[SELECT kind, record_id, MAX(seq) AS last FROM changes
      WHERE client = ? AND at >= ? GROUP BY kind, record_id ORDER BY last]], client, since)) do
    local id = ch.record_id
    if ch.kind == "organisme" then
      local org = organismes.show(db, client, id)
      if org and keep(organismes.criteres_of(db, client, id)) then
        add("organismes", org)
        for _, a in ipairs(db:adresses_of(id, 0)) do add("adresses", a) end
        for _, l in ipairs(organismes.links_of(db, client, "organisme", id)) do add("liens", l) end
        for _, n in ipairs(organismes.niveaux_of(db, client, id)) do add("niveaux_relations", n) end
      end
    elseif ch.kind == "contact" then
      local c = contacts().get(db, client, id)
      if c and keep(c.criteres) then
        add("contacts", contacts().shape(c)) -- its lists as JSON arrays, even empty
        for _, a in ipairs(db:adresses_of(0, id)) do add("adresses", a) end
        for _, l in ipairs(organismes.links_of(db, client, "contact", id)) do add("liens", l) end
        for _, n in ipairs(c.Niveau_de_relations or {}) do add("niveaux_relations", n) end
        -- the contact's ticks of each back-office option; id_contact added
        -- (not in 2.7.3.3) so that the ticks of two contacts can be told apart
        for list, field in pairs { envois = "code_envoi", interets = "interet" } do
          for _, o in ipairs(c[field] or {}) do
            add(list, { id = o.id, label = o.label, code = o.code, checked = o.checked, id_contact = id })
          end
        end
      end
    end
  end
  return lists
end

-- ws_liste_fiches_modifiees. Besides the seven lists, data.ts_suivant is
-- the ts of the next call: the time of this answer. Records are those
-- changed at or after ts (seconds included), so a change made in the same
-- second as this answer, after it, is still in the next one; the price is
-- that a record changed in that second may come twice (in its current
-- state both times), which a sync loop absorbs.
local function liste_fiches_modifiees(p, env)
  local since = p.ts and parse_ts(p.ts)
  if not since then return ko(4) end
  local export = p.type_export
  if export == "" then export = nil end
  if export and not EXPORTS[export] then return ko(4) end
  local filtre = p.Filtre_client
  if filtre == "" or filtre == nil then filtre = nil
  elseif filtre == "1" or filtre == "0" then filtre = filtre == "1"
  else return ko(4) end

  local lists = changed_since(env.db, env.client, since, filtre)
  local data = {}
  if export then
    for _, name in ipairs(EXPORTS[export]) do
      local ids, seen = {}, {}
      for _, obj in ipairs(lists[name]) do
        local id = obj[ID_OF[name]]
        if not seen[id] then seen[id] = true; ids[#ids + 1] = id end
      end
      data["liste_" .. name .. "_id"] = codec.array(ids)
    end
  else
    for _, name in ipairs(LISTS) do data["liste_" .. name] = codec.array(lists[name]) end
  end
  data.ts_suivant = os.date(TS_FORMAT, env.now)
  return ok(2, data)
end

-- The programmes ws_execute_programme runs, by x_rsi_modele.
local PROGRAMMES = {
  ws_liste_fiches_modifiees = liste_fiches_modifiees,
}

local routes = {
  ws_execute_programme = {
    auth = "api_key",
    envelope = "statut_data", -- {"statut": {...}, "data": {...}}, no retour
    scalars = { ts = true, type_export = true, Filtre_client = true }, -- read by the programme
    run = function(p, env)
      local programme = PROGRAMMES[p.x_rsi_modele]
      if not programme then return ko(4) end
      return programme(p, env)
    end,
  },
}

return { schema = {}, routes = routes }
