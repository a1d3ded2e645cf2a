#!/usr/bin/env lua5.4
-- tools/gen_catalogue.lua: generate lua/billetterie/catalogue.lua and
-- lua/billetterie/codes.lua from the machine-readable reference catalogue.
--
-- usage (from the repository root):
--   lua5.4 tools/gen_catalogue.lua [reference.json] [output-dir]
-- defaults: ../shared/reference/labilletterie-ws.json  lua/billetterie
--
-- Output is deterministic: keys are written in a fixed order (well-known keys
-- first, then the rest sorted), lists keep the order of the reference.

local cjson = require "cjson"

local REF_PATH = arg[1] or "../shared/reference/labilletterie-ws.json"
local OUT_DIR = arg[2] or "lua/billetterie"

---------------------------------------------------------------------------
-- Serialiser
---------------------------------------------------------------------------

-- Preferred key order; keys not listed here follow, sorted.
local KEY_ORDER = {
  -- codes
  "message", "ok", "category",
  -- top level of catalogue.lua
  "source", "credentials", "secrets", "generic_codes", "services", "pushes",
  "contact_fields", "contact_fields_read_only", "contact_fields_extra_received",
  "objects", "password_rules", "languages", "pages", "page_global_params", "b2b_return",
  -- services, params, fields
  "code", "name", "send", "receive", "mode", "section", "title", "summary", "path",
  "method", "methods_accepted", "host", "auth", "auth_modes", "fixed",
  "direction", "response", "envelope", "xml_arrays", "xml_each", "xml_integers", "codes", "codes_likely",
  "codes_as_printed", "obsolete_params",
  "required", "required_when", "required_in_mode", "required_with_any", "required_unless",
  "filter_criteria", "type", "format", "max", "enum", "default",
  "needs", "after", "not_before", "key", "key_type", "item_type", "item_reading", "received_type", "aliases",
  "object", "object_list", "secret", "read_only", "obsolete", "swapped", "group",
  "present", "absent", "ignored",
  "example", "description", "note", "rules", "params", "items", "fields",
}
local KEY_RANK = {}
for i, k in ipairs(KEY_ORDER) do KEY_RANK[k] = i end

local function is_identifier(s)
  if type(s) ~= "string" or not s:match("^[%a_][%w_]*$") then return false end
  local reserved = {
    ["and"] = 1, ["break"] = 1, ["do"] = 1, ["else"] = 1, ["elseif"] = 1,
    ["end"] = 1, ["false"] = 1, ["for"] = 1, ["function"] = 1, ["goto"] = 1,
    ["if"] = 1, ["in"] = 1, ["local"] = 1, ["nil"] = 1, ["not"] = 1,
    ["or"] = 1, ["repeat"] = 1, ["return"] = 1, ["then"] = 1, ["true"] = 1,
    ["until"] = 1, ["while"] = 1,
  }
  return not reserved[s]
end

-- Quote a string as a Lua literal, keeping UTF-8 bytes as they are.
local function quote(s)
  s = s:gsub('[%c"\\]', function(c)
    if c == "\n" then return "\\n" end
    if c == "\t" then return "\\t" end
    if c == "\r" then return "\\r" end
    if c == '"' then return '\\"' end
    if c == "\\" then return "\\\\" end
    return string.format("\\%03d", c:byte())
  end)
  return '"' .. s .. '"'
end

local function fmt_number(n)
  if n == math.floor(n) and n > -2^53 and n < 2^53 then
    return string.format("%d", n)
  end
  return string.format("%.17g", n)
end

local function is_array(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  if n == 0 then return true end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta == "number" end -- numbers first
    if ta == "number" then return a < b end
    local ra, rb = KEY_RANK[a], KEY_RANK[b]
    if ra and rb then return ra < rb end
    if ra then return true end
    if rb then return false end
    return a < b
  end)
  return keys
end

local function fmt_key(k)
  if type(k) == "number" then return "[" .. fmt_number(k) .. "]" end
  if is_identifier(k) then return k end
  return "[" .. quote(k) .. "]"
end

local serialise

local function scalar(v)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv == "number" then return fmt_number(v) end
  if tv == "boolean" then return tostring(v) end
  error("cannot serialise " .. tv)
end

-- Render a table on one line if it is small and flat.
local function inline(v, budget)
  if type(v) ~= "table" then return scalar(v) end
  local parts = {}
  if is_array(v) then
    for _, x in ipairs(v) do
      if type(x) == "table" then return nil end
      parts[#parts + 1] = scalar(x)
    end
  else
    for _, k in ipairs(sorted_keys(v)) do
      local x = v[k]
      if type(x) == "table" then
        local s = inline(x, budget)
        if not s then return nil end
        parts[#parts + 1] = fmt_key(k) .. " = " .. s
      else
        parts[#parts + 1] = fmt_key(k) .. " = " .. scalar(x)
      end
    end
  end
  if #parts == 0 then return "{}" end
  local s = "{ " .. table.concat(parts, ", ") .. " }"
  if #s > budget then return nil end
  return s
end

-- Values nested at depth >= `flat_depth` go on one line when possible.
serialise = function(v, indent, out, width)
  if type(v) ~= "table" then out[#out + 1] = scalar(v); return end
  local pad = string.rep("  ", indent)
  local s = inline(v, width - #pad)
  if s then out[#out + 1] = s; return end
  local inner = pad .. "  "
  local flat = is_array(v)
  if flat then
    for _, x in ipairs(v) do if type(x) == "table" then flat = false end end
  end
  if flat then
    -- list of scalars too long for one line: fill lines up to the width
    out[#out + 1] = "{\n"
    local line = inner
    for _, x in ipairs(v) do
      local item = scalar(x) .. ","
      if #line > #inner and #line + 1 + #item > #pad + width then
        out[#out + 1] = line .. "\n"
        line = inner
      end
      line = (#line > #inner) and (line .. " " .. item) or (line .. item)
    end
    out[#out + 1] = line .. "\n" .. pad .. "}"
    return
  end
  out[#out + 1] = "{\n"
  if is_array(v) then
    for _, x in ipairs(v) do
      out[#out + 1] = inner
      serialise(x, indent + 1, out, width)
      out[#out + 1] = ",\n"
    end
  else
    for _, k in ipairs(sorted_keys(v)) do
      out[#out + 1] = inner .. fmt_key(k) .. " = "
      serialise(v[k], indent + 1, out, width - #fmt_key(k) - 3)
      out[#out + 1] = ",\n"
    end
  end
  out[#out + 1] = pad .. "}"
end

local function render(value, header, width)
  local out = { header, "return " }
  serialise(value, 0, out, width or 100)
  out[#out + 1] = "\n"
  return table.concat(out)
end

---------------------------------------------------------------------------
-- Helpers
---------------------------------------------------------------------------

-- math.tointeger for Lua 5.4; LuaJIT has a single number type.
local function tointeger(x)
  x = tonumber(x)
  if x == nil or x ~= math.floor(x) then return nil end
  return math.tointeger and math.tointeger(x) or x
end

-- Deep copy, dropping JSON nulls and turning integral floats into integers.
local function clean(v)
  if v == cjson.null then return nil end
  if type(v) == "number" then return tointeger(v) or v end
  if type(v) ~= "table" then return v end
  local t = {}
  for k, x in pairs(v) do t[k] = clean(x) end
  return t
end

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local REF = clean(cjson.decode(read_file(REF_PATH)))

---------------------------------------------------------------------------
-- codes.lua (annex 4.2)
---------------------------------------------------------------------------

-- Every message of the reference was compared with the seed's table 4.2.2
-- (117 rows, lines 5670-5947): all identical, byte for byte. Only 534 is not
-- in the table: it appears in the example of 2.3.6.3 (ws_suppression_compte,
-- seed line 1811).
local CODE_NOTES = {
  [534] = "Not in table 4.2; documented by the example of 2.3.6.3 (ws_suppression_compte).",
}

local function build_codes()
  local codes = {}
  for k, c in pairs(REF.codes) do
    local n = assert(tointeger(k), "bad code " .. k)
    assert(codes[n] == nil, "duplicate code " .. n)
    codes[n] = {
      message = c.message,
      ok = c.ok == true,
      category = c.category,
      note = CODE_NOTES[n] or c.note,
    }
  end
  return codes
end

local CODES_HEADER = [[
-- GENERATED by tools/gen_catalogue.lua from the L@billetterie reference
-- catalogue; do not edit by hand (edit the generator's overrides instead).
-- Return codes of annex 4.2 ("Tableau des codes retours") of the
-- "Spécifications techniques L@billetterie" revision 13 (02/2024), plus 534
-- (ws_suppression_compte, 2.3.6.3). ok = traitement "ok".
]]


---------------------------------------------------------------------------
-- catalogue.lua
---------------------------------------------------------------------------

local SOURCE = "Spécifications techniques L@billetterie, revision 13 (02/2024)"

-- Parameters each credential mode adds to a request. The client fills them
-- from its options; they are never listed in a service's params.
-- ws_or_token has no fixed list: it is a choice between two modes, tried in
-- the order given (token when the caller has a session token, else ws).
local CREDENTIALS = {
  ws = { "x_rsi_ws_login", "x_rsi_ws_mdp", "x_rsi_client" },
  token = { "x_rsi_token" },
  ws_and_token = { "x_rsi_ws_login", "x_rsi_ws_mdp", "x_rsi_client", "x_rsi_token" },
  ws_or_token = { one_of = { "token", "ws" } },
  pwd_key = { "x_rsi_pwd_key" },
  api_key = { "x_rsi_modele", "x_rsi_login", "x_rsi_client", "x_rsi_api_key" },
  none = {},
}

-- Every parameter/field name whose value must never be logged.
--   x_rsi_ws_mdp, x_rsi_token, x_rsi_pwd_key, x_rsi_api_key: credentials
--   (1.1, 2.2.2, 2.3.4.2, 2.7.3.2);
--   web_passe: ws_login (2.3.2.2), and returned in clear by
--   ws_modification_contact (2.3.3.4 example, l.1394);
--   v_passe, v_passec: ws_ccontact (2.3.1.2), ws_modification_pwd, annex 4.7;
--   v_ancien_passe: ws_modification_pwd (2.3.4.2);
--   jeton: the session token as returned by ws_idsession (2.2.1.3).
-- Annex 4.1 itself has no password field (w_identifiant is the login).
local SECRETS = {
  "x_rsi_ws_mdp", "x_rsi_token", "x_rsi_pwd_key", "x_rsi_api_key",
  "web_passe", "v_passe", "v_passec", "v_ancien_passe", "jeton",
}

-- Services that are not called by the integrator (they call the integrator
-- or the browser): listed under `pushes`.
local PUSH_HOSTS = { integrator = true, browser = true }

-- Repeated elements of the catalogue XML (xml_catalogue envelope). The vendor
-- document SPT_RSI_XML_Vx.pdf is not available: SALLE, GRILLE,
-- CATEGORIE_PUBLIQUE, ZONE, SPECTACLE and REPRESENTATION are observed in a
-- public integration (reference catalogue_xml_observed); ABONNEMENT and
-- ARTICLE come from the reference's inferred sandbox shape (md 6.2).
local CATALOGUE_XML_ARRAYS = {
  "ABONNEMENT", "ARTICLE", "CATEGORIE_PUBLIQUE", "GRILLE", "REPRESENTATION",
  "SALLE", "SPECTACLE", "ZONE",
}

-- What a show's catalogue holds (ws_cat_spectacle, ws_det_spectacle,
-- ws_det_representation): see the OVERRIDES below.
local SHOW_XML_EACH = { "CATEGORIE_PUBLIQUE", "GRILLE", "REPRESENTATION", "SALLE", "SPECTACLE", "ZONE" }
-- The ids of the catalogue XML read as integers (OVERRIDES below).
local CATALOGUE_XML_IDS = { "ID", "IDENT", "REP_SALLE", "SALLE_ID", "SALLE_MERE_ID" }

-- Objects (annex 4.3-4.6 and 2.6.4.2) that base64_json / json params carry.
-- list = the param is a JSON array of such objects (examples of 4.3.1,
-- 4.5.1, 2.6.4.4); otherwise a single object (2.6.2.3, 4.6.1.1).
local PARAM_OBJECTS = {
  organisme = { "organisme" },
  adresses = { "adresse", list = true },
  Adresses = { "adresse", list = true },
  Niveau_de_relations = { "niveau_de_relations", list = true },
  criteres = { "criteres_in" },
  contacts = { "organisme_contact", list = true },
}

---------------------------------------------------------------------------
-- OVERRIDES: corrections where the seed (vendor text) disagrees with the
-- reference JSON. Each entry cites the seed line / section justifying it.
-- Line numbers refer to seeds/004_1c1cc86fe3b677f2.txt.
---------------------------------------------------------------------------

local APOS = "\u{2019}" -- the seed's typographic apostrophe

-- x_rsi_provenance (2.7.1.3, l.4177 ...&x_rsi_provenance=http%3A%2F%2F127.0.0.1):
-- the origin as is; the link encodes it whole, "/" included (query_encoding
-- "component"). A value with %XX in it was encoded already: it is decoded
-- once first, so it is never encoded twice.
local PROVENANCE = {
  format = "origin, e.g. http://127.0.0.1 (sent as http%3A%2F%2F127.0.0.1; an already encoded value is not encoded twice)",
  query_encoding = "component",
}

local OVERRIDES = {
  -- Titles: the seed headings use the typographic apostrophe (U+2019); the
  -- reference normalised it to "'". Keep the vendor's bytes.
  { service = "ws_det_spectacle", set = { title = "Détail d" .. APOS .. "un spectacle" },
    why = "seed l.400, heading 2.1.5" },
  { service = "ws_det_representation", set = { title = "Détail d" .. APOS .. "une représentation" },
    why = "seed l.445, heading 2.1.6" },
  { service = "ws_det_abonnement", set = { title = "Détail d" .. APOS .. "un abonnement / adhésion" },
    why = "seed l.490, heading 2.1.7" },
  { service = "ws_det_article", set = { title = "Détail d" .. APOS .. "un article" },
    why = "seed l.536, heading 2.1.8" },
  { service = "ws_status_session", set = { title = "Statut d" .. APOS .. "une session" },
    why = "seed l.711, heading 2.2.2" },
  { service = "ws_deconnexion_session", set = { title = "Déconnexion d" .. APOS .. "une session" },
    why = "seed l.805, heading 2.2.3" },
  { service = "ws_suppression_compte", set = { title = "Suppression compte par l" .. APOS .. "internaute" },
    why = "seed l.1773, heading 2.3.6" },
  { service = "ws_det_achat", set = { title = "Détail d" .. APOS .. "un achat" },
    why = "seed l.1971, heading 2.4.2" },
  { service = "ws_det_achat#notification", set = { title = "Détail d" .. APOS .. "un achat - mode notification" },
    why = "seed l.1971, heading 2.4.2 (notification mode: NB of 2.4.2.2, l.1978)" },
  { service = "ws_organisme_contacts", set = { title = "Gestion des contacts attachés à l" .. APOS .. "Organisme (BETA)" },
    why = "seed l.3701, heading 2.6.4" },

  -- ws_modification_contact: the reference lists id_contact (a parameter of
  -- the "mise à jour sans connexion" mode, table of 2.3.3.3, l.1313-1352)
  -- before champs. The seed's order is: main table of 2.3.3.2 (id_formulaire,
  -- x_rsi_token, champs; l.1173-1190), optional table (maj_code_envoi ...
  -- Adresses; l.1227-1286), then 2.3.3.3 (id_contact, l.1350), and finally
  -- Niveau_de_relations which only annex 4.5.1 (l.6236-6239) lists.
  -- Date windows the client can check before sending: ws_cat_histo_achat's
  -- date_fin must be strictly later than date_debut (l.1879); the
  -- catalogue's may be the same day (the vendor's own link sends
  -- date_debut=04/09/2015&date_fin=04/09/2015, l.4496), not before it.
  { service = "ws_cat_histo_achat", param = "date_fin", param_set = { after = "date_debut" },
    why = "seed 2.4.1, l.1879" },
  { service = "ws_programmation", param = "date_fin", param_set = { not_before = "date_debut" },
    why = "seed 2.1.1, l.190-200; example l.4496" },
  { service = "ws_cat_spectacle", param = "date_fin", param_set = { not_before = "date_debut" },
    why = "seed 2.1.2, l.277-309; example l.4496" },

  -- A site may let this service change the password; then it must be sent
  -- on every call (l.1164-1166). The field names and rules are those of
  -- annex 4.7 (v_passe, v_passec; l.6444-6462), as in ws_ccontact (l.1005-1008).
  { service = "ws_modification_contact",
    add = {
      { name = "v_passe", type = "string", secret = true,
        description = "New password, when the site lets this service change it; then required on every call (annex 4.7 rules)." },
      { name = "v_passec", type = "string", secret = true,
        description = "Password confirmation (code 524 when it differs from v_passe)." },
    },
    why = "seed 2.3.3.2, l.1164-1166; annex 4.7, l.6444-6462" },

  -- The catalogue XML (2.1.x.3 refer to SPT_RSI_XML_Vx.pdf, not in the
  -- seed; element names: reference 6.2, observed in a public integration).
  -- xml_each: the repeated elements each answer holds, i.e. the tags
  -- c:call(ws, { each = TAG }) accepts, from what the seed says each
  -- service returns: the whole catalogue "salles, grilles tarifaire,
  -- articles, abonnements" (2.1.1.1, l.165), the shows (2.1.2.1, one show
  -- or performance: 2.1.5, 2.1.6) with the venues and price grids their
  -- performances use (reference 6.2), the subscriptions (2.1.3, 2.1.7),
  -- the shop articles (2.1.4, 2.1.8).
  -- xml_integers: ids the seed types "Entier long" with numeric examples:
  -- SPECTACLE IDENT = id_spectacle (l.420) = ref_spect (l.2218);
  -- REPRESENTATION ID = id_representation (l.465) = ref_rep (l.2216);
  -- ABONNEMENT ID = id_abonnement (l.511); ARTICLE ID = id_article (l.556)
  -- = ref_article (l.2256); CATEGORIE_PUBLIQUE ID = ref_categ (l.2214);
  -- SALLE_ID, SALLE_MERE_ID, REP_SALLE = id_salle (l.2797). The names are
  -- not scoped by element: GRILLE and ZONE IDs (no seed id) come as
  -- integers too. Labels, dates, prices ("5,5") and TS_MODIF stay text.
  { service = "ws_programmation", set = { xml_each = CATALOGUE_XML_ARRAYS, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.1.1, l.165; ids: l.420, 465, 511, 556, 2214, 2797" },
  { service = "ws_cat_spectacle", set = { xml_each = SHOW_XML_EACH, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.2.1; ids: l.420, 465, 2214, 2797" },
  { service = "ws_det_spectacle", set = { xml_each = SHOW_XML_EACH, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.5.1; ids: l.420, 465, 2214, 2797" },
  { service = "ws_det_representation", set = { xml_each = SHOW_XML_EACH, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.6.1; ids: l.420, 465, 2214, 2797" },
  { service = "ws_cat_abonnement", set = { xml_each = { "ABONNEMENT" }, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.3.1; id: l.511" },
  { service = "ws_det_abonnement", set = { xml_each = { "ABONNEMENT" }, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.7.1; id: l.511" },
  { service = "ws_cat_article", set = { xml_each = { "ARTICLE" }, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.4.1; id: l.556" },
  { service = "ws_det_article", set = { xml_each = { "ARTICLE" }, xml_integers = CATALOGUE_XML_IDS },
    why = "seed 2.1.8.1; id: l.556" },

  { service = "ws_modification_contact",
    order = { "id_formulaire", "champs", "maj_code_envoi", "liste_maj_code_envoi",
              "maj_interet", "liste_maj_interet", "Adresses", "id_contact",
              "Niveau_de_relations", "v_passe", "v_passec" },
    why = "seed 2.3.3.2 / 2.3.3.3, l.1173-1352 (parameter order)" },

  -- What one service requires or refuses of the object a param carries
  -- (params.lua checks it before sending, as organisme.<attribute>): the
  -- modification needs the record's id, the creation leaves to the vendor
  -- what it fills.
  { service = "ws_organisme_modification", param = "organisme",
    param_set = { required_attributes = { "id_organisme" } },
    why = "seed 2.6.3.2 l.3569 and 2.6.3.3 l.3608: L'attribut id_organisme doit être renseigné" },
  { service = "ws_organisme_creation", param = "organisme",
    param_set = { refused_attributes = { "id_organisme", "date_creation", "fiche_supprimee" } },
    why = "seed 2.6.2.5 l.3493: date_creation, id_organisme et fiche_supprimee sont retournés remplis" },

  -- x_rsi_provenance: the caller gives the origin, pages.url encodes it
  { service = "postmessage", param = "x_rsi_provenance", param_set = PROVENANCE,
    why = "seed 2.7.1.3 l.4177: x_rsi_provenance=http%3A%2F%2F127.0.0.1" },
}

-- Attributes of the annex objects the reference does not list.
local OBJECT_OVERRIDES = {
  -- the input item of Niveau_de_relations is {Niveau_relation, checked};
  -- the 4.5 table lists the stored record only
  { object = "niveau_de_relations",
    add = { { name = "checked", type = "boolean",
              description = "true adds the relation level, false removes it" } },
    why = "seed 4.5.1 l.6245 (repose sur l'attribut checked), example l.6266 \"checked\": true" },
}

---------------------------------------------------------------------------
-- Transformation of the reference into the catalogue format
---------------------------------------------------------------------------

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local CREDENTIAL_PARAMS = {}
for _, list in pairs(CREDENTIALS) do
  for _, name in ipairs(list) do CREDENTIAL_PARAMS[name] = true end
end
local SECRET_SET = set_of(SECRETS)

-- "liste[]" -> "liste"; "liste_maj_code_envoi[<id_codeenvoi>]" -> "liste_maj_code_envoi"
local function bare_name(name)
  return (name:gsub("%[.*%]$", ""))
end

-- required_when is free text in the reference; params.lua reads it as data:
--   "token mode" / "ws mode"             -> required_in_mode = "token" / "ws"
--   "X present", "a, b or c is sent"     -> required_with_any = { ... }
--   "X absent"                           -> required_unless = { ... }
--   "any filter criterion is sent"       -> required_with_any = the page's criteria
-- Clauses joined by ", or " add up (required when any holds). Text that is
-- not understood stops the generator, so no rule is silently dropped.
local function parse_required_when(q, criteria)
  local text = q.required_when
  if not text then return end
  local function add(key, names)
    q[key] = q[key] or {}
    for _, n in ipairs(names) do q[key][#q[key] + 1] = n end
  end
  for clause in (text .. ", or "):gmatch("(.-), or ") do
    local mode = clause:match("^(%w+) mode$")
    local absent = clause:match("^([%w_]+) absent$")
    local present = clause:match("^([%w_]+) present$")
    local list = clause:match("^any of (.+) is sent$") or clause:match("^(.+) is sent$")
    if mode then
      assert(CREDENTIALS[mode], "unknown mode in required_when: " .. text)
      q.required_in_mode = mode
    elseif absent then
      add("required_unless", { absent })
    elseif present then
      add("required_with_any", { present })
    elseif clause == "any filter criterion is sent" or clause == "a filter criterion is sent" then
      add("required_with_any", assert(criteria, "filter criteria outside a page: " .. text))
    elseif list then
      local names = {}
      for n in (list:gsub(" or ", ", ") .. ", "):gmatch("([%w_]+), ") do names[#names + 1] = n end
      add("required_with_any", names)
    else
      error("required_when not understood: " .. text)
    end
  end
end

local function convert_param(p)
  local q = {
    name = bare_name(p.name),
    required = p.required == true or nil,
    type = p.type,
    format = p.format,
    max = p.max_length,
    enum = p.enum,
    default = p.default,
    needs = p.depends_on,
    required_when = p.required_when,
    aliases = p.aliases,
    item_type = p.item_type,
    example = p.example,
    description = p.description,
    note = p.note,
    secret = SECRET_SET[p.name] or nil,
    object = PARAM_OBJECTS[p.name] and PARAM_OBJECTS[p.name][1],
    object_list = PARAM_OBJECTS[p.name] and PARAM_OBJECTS[p.name].list,
  }
  if p.key then
    -- "id_codeenvoi (integer)" -> key = "id_codeenvoi", key_type = "integer"
    local k, kt = p.key:match("^(%S+)%s*%((%w+)%)$")
    q.key, q.key_type = k or p.key, kt
  end
  if p.items then
    q.items = {}
    for _, it in ipairs(p.items) do q.items[#q.items + 1] = convert_param(it) end
  end
  parse_required_when(q)
  return q
end

-- Collect element names marked "name[]" in an XML response schema.
local function xml_arrays_of(schema)
  local found = {}
  local function walk(t)
    if type(t) ~= "table" then return end
    for k, v in pairs(t) do
      if type(k) == "string" and k:sub(-2) == "[]" then found[k:sub(1, -3)] = true end
      walk(v)
    end
  end
  walk(schema)
  local list = {}
  for k in pairs(found) do list[#list + 1] = k end
  table.sort(list)
  return list
end

-- Leaf elements of an XML answer whose schema type is an integer (centimes,
-- ids, quantities): the client gives them back as Lua integers. A name that
-- is an integer in one place and text in another is left as text.
local function xml_integers_of(schema)
  local integer, text = {}, {}
  local function walk(t)
    for k, v in pairs(t) do
      local name = type(k) == "string" and k:gsub("%[%]$", "") or nil
      if type(v) == "table" then
        walk(v)
      elseif name and type(v) == "string" then
        if v:match("^integer") then integer[name] = true else text[name] = true end
      end
    end
  end
  if type(schema) == "table" then walk(schema) end
  local list = {}
  for k in pairs(integer) do
    if not text[k] then list[#list + 1] = k end
  end
  table.sort(list)
  return #list > 0 and list or nil
end

local function convert_auth_modes(modes)
  if not modes then return nil end
  local out = {}
  for _, m in ipairs(modes) do
    local name, rest = m.mode:match("^(%S+)%s*%((.*)%)$")
    out[#out + 1] = {
      mode = name or m.mode,
      note = rest,
      present = m.present,
      absent = (m.absent and #m.absent > 0) and m.absent or nil,
      ignored = m.ignored,
    }
  end
  return out
end

local function convert_service(s)
  local params, dropped = {}, {}
  for _, p in ipairs(s.params or {}) do
    if CREDENTIAL_PARAMS[p.name] then
      dropped[#dropped + 1] = p.name
    else
      params[#params + 1] = convert_param(p)
    end
  end
  local path = s.path
  if path:sub(1, 1) == "/" then path = path:sub(2) end
  local xml_arrays
  if s.response == "xml" then
    if s.envelope == "xml_catalogue" then
      xml_arrays = CATALOGUE_XML_ARRAYS
    else
      xml_arrays = xml_arrays_of(s.response_schema)
    end
  end
  local svc = {
    name = s.name,
    section = s.section,
    title = s.title_fr,
    summary = s.summary,
    path = path,
    method = s.method,
    methods_accepted = s.methods_accepted,
    host = s.host,
    auth = s.auth,
    auth_modes = convert_auth_modes(s.auth_modes),
    response = s.response,
    envelope = s.envelope,
    xml_arrays = xml_arrays,
    -- the catalogue XML's come from OVERRIDES (per service, from the seed)
    xml_each = s.envelope ~= "xml_catalogue" and xml_arrays or nil,
    xml_integers = s.response == "xml" and xml_integers_of(s.response_schema) or nil,
    direction = s.direction,
    params = params,
    codes = s.codes or {},
    codes_likely = s.codes_likely or {},
    rules = s.rules,
    note = s.note,
  }
  if s.codes_as_printed then
    local cap = {}
    for k, v in pairs(s.codes_as_printed) do
      cap[assert(tointeger(k))] = { message = v.message, ok = v.ok }
    end
    svc.codes_as_printed = cap
  end
  if s.name == "ws_liste_fiches_modifiees" then
    -- x_rsi_modele is a credential of the api_key mode, but its value is the
    -- programme to run: the service name itself (2.7.3.2, l.4261).
    svc.fixed = { x_rsi_modele = "ws_liste_fiches_modifiees" }
  end
  -- credential parameters the reference lists outside the service's mode
  -- (ws_modification_pwd: x_rsi_token "Obsolète", 2.3.4.2 l.1507)
  local mode_params = set_of(CREDENTIALS[s.auth] or {})
  local extra = {}
  for _, n in ipairs(dropped) do
    if not mode_params[n] and s.auth ~= "ws_or_token" then extra[#extra + 1] = n end
  end
  if #extra > 0 then svc.obsolete_params = extra end
  return svc
end

local function same(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local function apply_overrides(all)
  for _, o in ipairs(OVERRIDES) do
    local svc = assert(all[o.service], "override for unknown service " .. o.service)
    if o.set then
      for k, v in pairs(o.set) do
        assert(not same(svc[k], v), "override does not change " .. o.service .. "." .. k)
        svc[k] = v
      end
    end
    if o.order then
      local by_name = {}
      for _, p in ipairs(svc.params) do by_name[p.name] = p end
      assert(#o.order == #svc.params, "order override of " .. o.service .. " does not list every param")
      local ordered = {}
      local changed = false
      for i, n in ipairs(o.order) do
        ordered[i] = assert(by_name[n], "unknown param " .. n)
        if ordered[i] ~= svc.params[i] then changed = true end
      end
      assert(changed, "order override does not change " .. o.service)
      svc.params = ordered
    end
    if o.add then
      for _, p in ipairs(o.add) do
        for _, q in ipairs(svc.params) do
          assert(q.name ~= p.name, "override adds an existing param " .. o.service .. "." .. p.name)
        end
        svc.params[#svc.params + 1] = p
      end
    end
    if o.param then
      local found
      for _, p in ipairs(svc.params) do
        if p.name == o.param then
          found = p
          for k, v in pairs(o.param_set or {}) do p[k] = v end
        end
      end
      assert(found, "override for unknown param " .. o.service .. "." .. o.param)
    end
  end
end

local function convert_field(f)
  local g = {}
  for k, v in pairs(f) do g[k] = v end
  if g.max_length then g.max, g.max_length = g.max_length, nil end
  if g.item_type then
    -- "integer (id; see ambiguity)" -> item_reading "integer" + note. The
    -- seed only says "Tableau contenant un objet interet / code envoi"
    -- (annex 4.1, l.5516-5522): the reading is not a rule, so it is not
    -- item_type (which params.lua enforces) and ids or codes both pass.
    local t, rest = g.item_type:match("^(%w+)%s*%((.*)%)$")
    if t then
      g.item_type, g.item_reading = nil, t
      local extra = "Items: " .. rest .. " - the reference reads them as numeric ids (ws_info_contact code_envoi.id); codes are a second reading."
      g.note = g.note and (g.note .. " " .. extra) or extra
    end
  end
  if g.items then
    local items = {}
    for i, it in ipairs(g.items) do items[i] = convert_field(it) end
    g.items = items
  end
  return g
end

local build_pages  -- defined below

-- The params of every page (3.15), x_rsi_provenance given as an origin.
local function page_global_params()
  local list, found = {}, false
  for i, p in ipairs(REF.page_global_params) do
    local q = {}
    for k, v in pairs(p) do q[k] = v end
    if q.name == "x_rsi_provenance" then
      for k, v in pairs(PROVENANCE) do q[k] = v end
      found = true
    end
    list[i] = q
  end
  assert(found, "no page param x_rsi_provenance")
  return list
end

local function build_catalogue()
  local all, order = {}, {}
  for _, s in ipairs(REF.services) do
    all[s.name] = convert_service(s)
    order[#order + 1] = s.name
  end
  apply_overrides(all)
  for name, svc in pairs(all) do   -- each = TAG is refused unless listed: none may be forgotten
    assert(svc.response ~= "xml" or svc.xml_each, "no xml_each for the XML service " .. name)
  end

  local services, pushes = {}, {}
  for _, name in ipairs(order) do
    local svc = all[name]
    if PUSH_HOSTS[svc.host] then pushes[name] = svc else services[name] = svc end
  end

  -- annex 4.1; entries with a send name go to contact_fields (the names the
  -- client expands `champs` into); read-only ones to contact_fields_read_only.
  local contact_fields, read_only = {}, {}
  for _, f in ipairs(REF.contact_fields) do
    local g = convert_field(f)
    if g.send then
      if g.send:sub(-2) == "[]" then g.send = g.send:sub(1, -3) end -- bracket_array
      contact_fields[#contact_fields + 1] = g
    else
      read_only[#read_only + 1] = g
    end
  end
  local extra_received = {}
  for _, f in ipairs(REF.contact_fields_extra_received) do
    extra_received[#extra_received + 1] = convert_field(f)
  end

  local objects = {}
  for name, o in pairs(REF.objects) do
    local fields = {}
    for i, f in ipairs(o.fields) do fields[i] = convert_field(f) end
    local obj = { section = o.section, fields = fields, rules = o.rules }
    for k, v in pairs(o) do
      if obj[k] == nil and k ~= "fields" then obj[k] = v end
    end
    objects[name] = obj
  end
  -- the contacts item of ws_organisme_contacts (2.6.4.2), also used by the
  -- contacts parameter of ws_organisme_creation / ws_organisme_modification
  local oc = assert(services.ws_organisme_contacts)
  for _, p in ipairs(oc.params) do
    if p.name == "contacts" then
      objects.organisme_contact = { section = "2.6.4.2", fields = p.items }
    end
  end
  for _, o in ipairs(OBJECT_OVERRIDES) do
    local obj = assert(objects[o.object], "override for unknown object " .. o.object)
    for _, f in ipairs(o.add) do
      for _, g in ipairs(obj.fields) do
        assert(g.name ~= f.name, "override adds an existing attribute " .. o.object .. "." .. f.name)
      end
      obj.fields[#obj.fields + 1] = f
    end
  end
  -- a service's attribute rules name attributes of the param's object
  for name, svc in pairs(services) do
    for _, p in ipairs(svc.params or {}) do
      for _, list in ipairs { p.required_attributes or {}, p.refused_attributes or {} } do
        for _, attr in ipairs(list) do
          local found = false
          for _, f in ipairs(assert(objects[p.object], name .. "." .. p.name .. " has no object").fields) do
            found = found or f.name == attr
          end
          assert(found, name .. "." .. p.name .. ": unknown attribute " .. attr)
        end
      end
    end
  end

  local secrets = {}
  for _, n in ipairs(SECRETS) do secrets[n] = true end

  return {
    source = SOURCE,
    credentials = CREDENTIALS,
    secrets = secrets,
    generic_codes = REF.generic_codes,
    services = services,
    pushes = pushes,
    contact_fields = contact_fields,
    contact_fields_read_only = read_only,
    contact_fields_extra_received = extra_received,
    objects = objects,
    password_rules = REF.password_rules,
    languages = REF.languages,
    pages = build_pages(),
    page_global_params = page_global_params(),
    b2b_return = REF.b2b_return,
  }
end

-- Page params that are not filter criteria (chapter 3 tables): the switch
-- itself, display options, and the ids that choose the page's object
-- (3.7.1: spectacle?id_spectacle=577&filtre=1&categ=..., l.4789).
local PAGE_NOT_CRITERIA = {
  filtre = true, forcer_param = true, affiche_selection_quantite = true,
  id_spectacle = true, id_film = true, id_event = true,
}

-- Page rules the reference does not record.
local PAGE_OVERRIDES = {
  -- the window of the catalogue may be one day (the vendor's link sends
  -- date_debut=04/09/2015&date_fin=04/09/2015), never reversed
  { page = "catalogue_spectacle", param = "date_fin", param_set = { not_before = "date_debut" },
    why = "seed 3.2, l.4450-4496" },
}

-- Chapter 3 pages keyed by name (the path without its slash); the
-- reference's depends_on is the same relation as a service's needs.
-- filtre is marked "filtre* 1 Boolean" on every filtered page (e.g. l.4455):
-- 1 is its only value, so when a criterion is sent without it, it is
-- added (default = 1) rather than the link silently showing everything.
build_pages = function()
  local pages = {}
  for _, page in ipairs(REF.pages) do
    local copy = {}
    for k, v in pairs(page) do copy[k] = v end
    copy.name = page.path:gsub("^/", "")
    copy.path = copy.name
    copy.params = {}
    local criteria = {}
    for _, param in ipairs(page.params or {}) do
      if not PAGE_NOT_CRITERIA[param.name] then criteria[#criteria + 1] = param.name end
    end
    for i, param in ipairs(page.params or {}) do
      local q = {}
      for k, v in pairs(param) do q[k] = v end
      if q.depends_on then q.needs, q.depends_on = q.depends_on, nil end
      parse_required_when(q, criteria)
      if q.name == "filtre" and (q.required_with_any or q.required) then
        -- also where the page always needs it (3.5 catalogue_bc?filtre=1&famille=...)
        assert(q.enum and #q.enum == 1, "page filtre with more than one value")
        q.default = q.enum[1]
      end
      copy.params[i] = q
    end
    for _, q in ipairs(copy.params) do
      if q.name == "filtre" and #criteria > 0 then copy.filter_criteria = criteria end
    end
    pages[copy.name] = copy
  end
  for _, o in ipairs(PAGE_OVERRIDES) do
    local page = assert(pages[o.page], "override for unknown page " .. o.page)
    local found
    for _, p in ipairs(page.params) do
      if p.name == o.param then
        found = p
        for k, v in pairs(o.param_set) do p[k] = v end
      end
    end
    assert(found, "override for unknown page param " .. o.page .. "." .. o.param)
  end
  return pages
end

local CATALOGUE_HEADER = [[
-- GENERATED by tools/gen_catalogue.lua from the L@billetterie reference
-- catalogue; do not edit by hand (edit the generator's overrides instead).
--
-- Format:
--   credentials[auth]  parameter names a credential mode adds (the client
--                      fills them from its options). ws_or_token is a choice:
--                      { one_of = { "token", "ws" } } - use token mode when
--                      a session token is available, else ws mode; see the
--                      service's auth_modes for what must be present/absent.
--   secrets[name]      true for every parameter/field never to be logged.
--   services[name]     callable services (site or api host):
--                      path is relative to the host base URL (no leading /),
--                      params exclude credential parameters, keep the spec
--                      order; max = maximum length; needs = params that must
--                      be sent too; after / not_before = the date param this
--                      one must be later than / not earlier than;
--                      bracket_array = name[]=v repeated; bracket_map =
--                      name[<key>]=v; base64_json = base64 of
--                      minified JSON; json = plain JSON; contact_fields = the
--                      annex 4.1 fields (contact_fields[].send), one form
--                      field each. required_attributes /
--                      refused_attributes: attributes of the param's object
--                      this service needs / refuses (organisme.id_organisme).
--                      xml_arrays: XML elements that are lists;
--                      xml_each: the repeated elements the answer holds
--                      (the tags c:call(ws, { each = TAG }) accepts);
--                      xml_integers: leaf elements and attributes read as
--                      integers.
--   pushes[name]       what the ticketing side sends to the integrator or
--                      the browser (informational, same shape).
--   contact_fields     annex 4.1 (send -> receive), in the seed's order,
--                      including the historically swapped vW_Commentaire6/7
--                      and 14/15 rows.
--   objects            annex 4.3-4.6 and the 2.6.4.2 contact item.
--   pages[name]        chapter 3 pages (GET, HTML) with their own params;
--                      page_global_params apply to every page (3.15);
--                      query_encoding "component": the value is encoded
--                      whole in the link, "/" too (x_rsi_provenance);
--                      b2b_return is the return URL of 3.15.4.
]]

local function main()
  local codes = build_codes()
  write_file(OUT_DIR .. "/codes.lua", render(codes, CODES_HEADER, 200))
  local catalogue = build_catalogue()
  write_file(OUT_DIR .. "/catalogue.lua", render(catalogue, CATALOGUE_HEADER, 100))
end

main()
