-- Normalises every JSON envelope variant the spec shows (reference 1.4) to
-- one pair: payload, statut = { code, traitement, message [, detail] }.
-- Success is decided on traitement, not on the code alone: the vendor reuses
-- codes (102 is "Abonnement non trouvé" in annex 4.2 but an ok answer of
-- ws_info_telechargement). The shape is recognised from the document itself,
-- so an answer in an unexpected variant still reads correctly.
local codes = require "billetterie.codes"
local json = require "billetterie.json"

local envelope = {}

local function lower(s)
  return type(s) == "string" and s:lower() or nil
end

local null = json.null

-- A detail is text: a string as it came, an object or list as a short JSON
-- text, anything else (null, false, a number...) as nothing, or tostring.
local function detail_of(v)
  if type(v) == "string" then return v end
  if type(v) == "number" then return tostring(v) end
  if type(v) == "table" then
    local text = json.encode(v)
    if text and #text > 200 then text = text:sub(1, 197) .. "..." end
    return text
  end
  return nil
end

-- Services whose answer the spec prints as a bare document, with no status
-- at all: ws_login (2.3.2.3, {"contact": {...}}). For them such a document
-- is a success; for any other service it is a broken answer.
local BARE = { ws_login = "contact" }

-- Makes a statut's fields what their names say, in place: null fields are
-- no fields, a code is a number ("7" is read as 7; anything else is no
-- code), a message or traitement is text. Every answer comes here: the
-- checks are kept plain.
local function normalise(statut)
  local code, message, traitement = statut.code, statut.message, statut.traitement
  if message ~= nil and type(message) ~= "string" then statut.message = nil end
  if traitement ~= nil and type(traitement) ~= "string" then statut.traitement = nil end
  if code ~= nil and type(code) ~= "number" then statut.code = code ~= null and tonumber(code) or nil end
  return statut
end

-- Builds the statut of a decoded JSON document (the answer of service `ws`),
-- and the payload. Returns payload, statut, or nil, reason when the document
-- has no status.
function envelope.open(doc, ws)
  if type(doc) ~= "table" then return nil, "answer is not a JSON object" end
  local r = doc.retour
  if r == nil or r == null then
    -- statut_data (ws_liste_fiches_modifiees): {"statut": {...}, "data": ...}
    if type(doc.statut) == "table" then
      local st = doc.statut
      local data = doc.data
      if data == nil or data == null then data = {} end   -- null data: nothing changed
      return data, normalise{ code = st.code, traitement = st.traitement, message = st.message }
    end
    local bare = BARE[ws]
    if bare and type(doc[bare]) == "table" then return doc, { traitement = "ok" } end
    return nil, "answer has neither retour nor statut"
  end
  if type(r) ~= "table" then return nil, "retour is not an object" end

  local st = r.statut
  if type(st) == "table" then
    -- The decoded statut object is ours: it becomes the statut as it is.
    local statut = st
    normalise(statut)
    if statut.detail ~= nil then statut.detail = detail_of(statut.detail) end
    if type(r.detail) == "string" then statut.detail = r.detail end      -- retour_detail
    if type(r.erreur) == "table" then                                    -- retour_erreur
      local d = r.erreur["détail"]
      if d == nil or d == null then d = r.erreur.detail end
      statut.detail = detail_of(d)
    end
    if statut.traitement == nil and type(r.traitement) == "string" then  -- retour_traitement
      statut.traitement = r.traitement
    end
    -- message null is no message (a payload is never json.null)
    if r.message ~= nil and r.message ~= null then return r.message, statut end
    -- No message: the retour without its status fields is the payload.
    local payload = {}
    for k, v in pairs(r) do
      if k ~= "statut" and k ~= "detail" and k ~= "erreur" and k ~= "traitement" and v ~= null then
        payload[k] = v
      end
    end
    return payload, statut
  end

  if (r.code ~= nil and r.code ~= null) or (r.traitement ~= nil and r.traitement ~= null) then
    -- retour_flat (code, traitement, message string, lists beside them) and
    -- retour_historique (historique, traitement, message string, no code).
    local statut = normalise{ code = r.code, traitement = r.traitement, message = r.message }
    local payload = {}
    for k, v in pairs(r) do
      if k ~= "code" and k ~= "traitement" and not (k == "message" and statut.message) and v ~= null then
        payload[k] = v
      end
    end
    return payload, statut
  end
  return nil, "answer has no status"
end

-- ok(statut) -> true when the vendor says the request succeeded.
function envelope.ok(statut)
  local t = statut.traitement
  if t == "ok" then return true end   -- the usual spelling, without a lower()
  t = lower(t)
  if t == "ok" then return true end
  if t == "ko" then return false end
  local known = statut.code and codes[statut.code]
  return known ~= nil and known.ok == true
end

-- The readable message of a ko statut: the vendor's, else annex 4.2's.
function envelope.message(statut)
  if type(statut.message) == "string" and statut.message ~= "" then return statut.message end
  local known = statut.code and codes[statut.code]
  return known and known.message or "the vendor refused the request"
end

return envelope
