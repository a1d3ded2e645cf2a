-- Checks a call's parameters against the catalogue and turns them into form
-- fields, before anything is sent. Every failure is an invalid_param error
-- naming the parameter; nothing leaves the machine.
local catalogue = require "billetterie.catalogue"
local json = require "billetterie.json"
local core = require "billetterie.core"

local params = {}

local floor = math.floor
local math_type = math.type or function() end   -- LuaJIT: no integer subtype
local utf8_len = utf8 and utf8.len or function(s)
  -- LuaJIT: count bytes that do not continue a UTF-8 sequence.
  local _, n = s:gsub("[^\128-\191]", "")
  return n
end

local function is_integer(v)
  if type(v) == "number" then return v == floor(v) and v > -2^53 and v < 2^53 end
  return type(v) == "string" and v:match("^%-?%d+$") ~= nil
end

local NONE = {}   -- an empty list, shared (never written)

local function is_scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

local function leap(y) return (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0 end
local function valid_day(y, m, d)
  local days = { 31, leap(y) and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  return m >= 1 and m <= 12 and d >= 1 and d <= days[m]
end

-- Date formats of the spec (reference 1.6): pattern and field order.
local DATE_FORMATS = {
  ["AAAAMMJJ"] = function(s)
    local y, m, d = s:match("^(%d%d%d%d)(%d%d)(%d%d)$")
    return y and valid_day(tonumber(y), tonumber(m), tonumber(d))
  end,
  ["jj/mm/aaaa"] = function(s)
    local d, m, y = s:match("^(%d%d)/(%d%d)/(%d%d%d%d)$")
    return d and valid_day(tonumber(y), tonumber(m), tonumber(d))
  end,
  ["AAAA-MM-JJ"] = function(s)
    local y, m, d = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
    return y and valid_day(tonumber(y), tonumber(m), tonumber(d))
  end,
  ["AAAA-MM-DDTHH:MM:SS"] = function(s)
    local y, m, d, hh, mm, ss = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)$")
    return y and valid_day(tonumber(y), tonumber(m), tonumber(d))
      and tonumber(hh) < 24 and tonumber(mm) < 60 and tonumber(ss) < 60
  end,
}
params.DATE_FORMATS = DATE_FORMATS

-- The same dates as comparable text (year first), for after / not_before.
local DATE_KEYS = {
  ["AAAAMMJJ"] = function(s) return s end,
  ["jj/mm/aaaa"] = function(s) return s:sub(7, 10) .. s:sub(4, 5) .. s:sub(1, 2) end,
  ["AAAA-MM-JJ"] = function(s) return (s:gsub("%-", "")) end,
  ["AAAA-MM-DDTHH:MM:SS"] = function(s) return (s:gsub("[%-T:]", "")) end,
}

local function in_enum(enum, v)
  for i = 1, #enum do
    if enum[i] == v or tostring(enum[i]) == tostring(v) then return true end
  end
  return false
end

local function enum_reason(enum)
  local shown = {}
  for i = 1, #enum do shown[i] = tostring(enum[i]) end
  return "must be one of " .. table.concat(shown, ", ")
end

-- Annex 4.1 "Numérique": a number, or its text (a dot or a comma, an
-- exponent), or "" which clears the field.
local function is_number(v)
  if type(v) == "number" then return v == v and v ~= 1 / 0 and v ~= -1 / 0 end
  if type(v) ~= "string" then return false end
  if v == "" then return true end
  local mantissa, exponent = v:match("^[-+]?([%d.,]+)(.*)$")
  return mantissa ~= nil and (mantissa:match("^%d+$") or mantissa:match("^%d*[.,]%d+$") or mantissa:match("^%d+[.,]$"))
    ~= nil and (exponent == "" or exponent:match("^[eE][-+]?%d+$") ~= nil)
end

-- A table form_encode writes as brackets: scalar values under integer or
-- string keys, nothing nested.
local function flat_table(t)
  if type(t) ~= "table" then return false end
  for k, v in pairs(t) do
    local kt = type(k)
    if (kt ~= "string" and kt ~= "number") or not is_scalar(v) then return false end
  end
  return true
end

local function is_list(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return false end
  end
  return true
end

-- What the items (bracket_array), keys and values (bracket_map) and the
-- alternatives of a union type of a param must be, as specs check() reads,
-- worked out once per param.
local part_cache = setmetatable({}, { __mode = "k" })
local function parts_of(spec)
  local parts = part_cache[spec]
  if not parts then
    parts = {
      item = { type = spec.item_type or "scalar", enum = spec.enum },
      key = { type = spec.key_type or "scalar" },
      alternatives = {},   -- "integer|array<integer>|string" (4.6.1.1 valeur)
    }
    for alt in (spec.type or ""):gmatch("[^|]+") do
      parts.alternatives[#parts.alternatives + 1] = { name = spec.name, type = alt, max = spec.max, enum = spec.enum }
    end
    part_cache[spec] = parts
  end
  return parts
end

local check  -- one value against its spec, below
local objects = catalogue.objects

-- Present attributes that make one required (required_with_any), absent
-- ones that do (required_unless), or the call's mode (required_in_mode):
-- -> why it is required, or nil.
local function required_because(spec, present, mode)
  if spec.required then return "is required" end
  if spec.required_in_mode and spec.required_in_mode == mode then
    return "is required in " .. mode .. " mode"
  end
  for _, other in ipairs(spec.required_with_any or NONE) do
    if present[other] ~= nil then return "is required with " .. other end
  end
  local unless = spec.required_unless
  if unless then
    for _, other in ipairs(unless) do
      if present[other] ~= nil then return nil end
    end
    return "is required without " .. table.concat(unless, " or ")
  end
end
params.required_because = required_because

-- Inside the JSON objects (annex 4.3-4.6, 2.6.4.2) a value is sent in the
-- JSON type of its annex row: "Réél" a number (4.4 example "champ_libre6":
-- 0), "Entier long" an integer, "Booléen" true/false (4.3 example
-- "prioritaire": true). The vendor drops a value of another JSON type and
-- still answers ok, so the update would be lost: text is converted where it
-- reads only one way, anything else refused. -> value | nil, reason
local JSON_TYPED = {
  number = function(v)
    if type(v) == "number" then
      if v ~= v or v == 1 / 0 or v == -1 / 0 then return nil, "must be a finite number" end
      return v
    end
    if type(v) == "string" then
      if v:match("^%-?%d+$") or v:match("^%-?%d+%.%d+$") then return tonumber(v) end
      -- "12,5": a French decimal is converted on purpose, never silently
      if v:match("^%s*[-+]?[%d \194\160\226\128\175]+,%d+%s*$") then
        return nil, "must be a number: a decimal comma is converted explicitly, with billetterie.decimal"
      end
    end
    return nil, "must be a number (a Lua number, or digits with \".\" as decimal point)"
  end,
  integer = function(v)
    local n = v
    if type(v) == "string" and v:match("^%-?%d+$") then n = tonumber(v) end
    if type(n) ~= "number" or n ~= floor(n) or n <= -2^53 or n >= 2^53 then
      return nil, "must be an integer"
    end
    return math.tointeger and math.tointeger(n) or n
  end,
  boolean = function(v)
    if v == true or v == 1 or v == "1" or v == "true" then return true end
    if v == false or v == 0 or v == "0" or v == "false" then return false end
    return nil, "must be a boolean (true/false, 1/0, \"true\"/\"false\")"
  end,
}

-- A param's rules on its object's attributes in one service (catalogue
-- required_attributes / refused_attributes: ws_organisme_modification needs
-- organisme.id_organisme, ws_organisme_creation refuses what the vendor
-- fills), worked out once: { by_name = { name = "required" | "refused" },
-- required = { names } }, or false.
local attribute_rules_cache = setmetatable({}, { __mode = "k" })
local function attribute_rules(spec)
  local rules = attribute_rules_cache[spec]
  if rules == nil then
    rules = false
    if spec.required_attributes or spec.refused_attributes then
      rules = { by_name = {}, required = spec.required_attributes or NONE }
      for _, name in ipairs(rules.required) do rules.by_name[name] = "required" end
      for _, name in ipairs(spec.refused_attributes or NONE) do rules.by_name[name] = "refused" end
    end
    attribute_rules_cache[spec] = rules
  end
  return rules
end

-- One attribute against its field (rules: attribute_rules of the param, or
-- nil): -> true, the value to encode | nil, reason, deeper path.
local function check_attribute_value(f, v, t, rules)
  local rule = rules and rules.by_name[f.name]
  if rule == "refused" and v ~= nil then
    return nil, "is filled by the vendor in this service: leave it out"
  end
  if v == nil or v == json.null or (v == "" and f.type == "date") then
    -- an empty date means none ("vide si pas de début", 4.3)
    local why = rule == "required" and "is required" or required_because(f, t)
    if why then return nil, why end
    return true, v
  end
  if v == "" and (f.required or rule == "required") then
    return nil, "must not be empty"   -- "doivent être renseignés et présents" (2.6.3.3)
  end
  local typed = JSON_TYPED[f.type]
  if typed then
    local value, reason = typed(v)
    if value == nil then return nil, reason end
    v = value
  end
  local out, reason, deeper = check(f, v)
  if out == nil then return nil, reason, deeper end
  -- check() gives form values (a boolean as 1/0); JSON keeps its own types
  if typed then return true, v end
  return true, out
end

-- Per object (its field list): fields by name, and those with a rule on
-- their absence. Worked out once.
local object_plans = setmetatable({}, { __mode = "k" })
local function object_plan(fields)
  local plan = object_plans[fields]
  if not plan then
    plan = { by_name = {}, ruled = {} }
    for _, f in ipairs(fields) do
      plan.by_name[f.name] = f
      if f.required or f.required_with_any or f.required_unless then plan.ruled[#plan.ruled + 1] = f end
    end
    object_plans[fields] = plan
  end
  return plan
end

-- Checks a Lua table against an object of annex 4.3-4.6 (or the 2.6.4.2
-- contact item): -> the copy to encode, its described attributes in their
-- JSON types | nil, reason, path below the param (".intitule"). The
-- caller's table is never changed. Attributes the object does not describe
-- are left to the vendor, as given. The attributes given and the rules on
-- absent ones are checked first (an object has 31 fields, a call sets a
-- few); on a failure the fields are read in the annex's order, so the one
-- reported is always the first.
local function check_object(fields, t, path, rules)
  if type(t) ~= "table" or (next(t) ~= nil and is_list(t)) then
    return nil, "must be an object (a table of attributes)", path
  end
  local plan, bad = object_plan(fields), false
  local out = setmetatable({}, getmetatable(t))
  for k, v in pairs(t) do
    local f = plan.by_name[k]
    if f then
      local ok, value = check_attribute_value(f, v, t, rules)
      if not ok then bad = true; break end
      out[k] = value
    else
      out[k] = v
    end
  end
  if not bad then
    for _, f in ipairs(plan.ruled) do
      if not check_attribute_value(f, t[f.name], t, rules) then bad = true; break end
    end
    for _, name in ipairs(rules and rules.required or NONE) do
      if t[name] == nil then bad = true; break end
    end
    if not bad then return out end
  end
  for _, f in ipairs(fields) do
    local ok, reason, deeper = check_attribute_value(f, t[f.name], t, rules)
    if not ok then return nil, reason, path .. "." .. f.name .. (deeper or "") end
  end
  -- a rule naming an attribute the object does not describe (the
  -- catalogue generator refuses those)
  error("check_object: a failure without a field at " .. path)
end

-- Objects a param may carry alone instead of in a list: ws_organisme_contacts'
-- contacts is "un ou plusieurs contacts" (2.6.4.2), sent as given.
local ONE_OR_MANY = { organisme_contact = true }

-- A JSON array of objects (1..n, no gaps): -> the copy to encode | nil,
-- reason, path ("[2].ville"); one object alone only where ONE_OR_MANY says so.
local function check_list(fields, t, what, rules)
  if type(t) ~= "table" then return nil, "must be a list of " .. what .. " objects" end
  if not is_list(t) then
    if ONE_OR_MANY[what] then return check_object(fields, t, "", rules) end
    return nil, "must be a list (1..n) of " .. what .. " objects"
  end
  local out = setmetatable({}, getmetatable(t))
  for i = 1, #t do
    local item, reason, path = check_object(fields, t[i], "[" .. i .. "]", rules)
    if not item then return nil, reason, path end
    out[i] = item
  end
  return out
end

-- Object attribute types beyond the params' own (annex 4.4: adresses is an
-- array<adresse>; 4.6.1.1: liste_champs is an array of items): -> true, the
-- value to encode | nil, reason, path | false (not such a type).
local function check_attribute(spec, v)
  local t = spec.type
  if t and t:find("|", 1, true) then
    -- the reason given is that of the alternative of the value's shape
    local first, shaped
    for _, alt in ipairs(parts_of(spec).alternatives) do
      local ok, reason, path = check(alt, v)
      -- a list converts (array<integer>); a scalar stays as given: "603"
      -- may be an id or a text field's content
      if ok ~= nil then return true, type(v) == "table" and ok or v end
      first = first or { reason, path }
      if not shaped and (type(v) == "table") == (alt.type:match("^array") ~= nil) then shaped = { reason, path } end
    end
    local why = shaped or first
    return nil, "must be one of " .. t:gsub("|", ", ") .. " (" .. why[1] .. ")", why[2]
  end
  local of = t and t:match("^array<(.+)>$")
  local list, reason, path
  if of and objects[of] then
    list, reason, path = check_list(objects[of].fields, v, of)
  elseif of then   -- array<integer>: a list of values, in their JSON type
    if type(v) ~= "table" or not is_list(v) then return nil, "must be a list" end
    local item, typed = { type = of }, JSON_TYPED[of]
    list = setmetatable({}, getmetatable(v))
    for i = 1, #v do
      local x, why = v[i], nil
      if typed then x, why = typed(x) end
      if x ~= nil then
        local ok
        ok, why = check(item, x)
        if ok == nil then x = nil end
      end
      if x == nil then return nil, why, "[" .. i .. "]" end
      list[i] = x
    end
  elseif t == "array" and spec.items then
    list, reason, path = check_list(spec.items, v, spec.name)
  else
    return false
  end
  if not list then return nil, reason, path end
  return true, list
end

-- Checks one value against its catalogue entry and returns the value to put
-- in the form (base64/JSON encoded where the spec says so), or nil, reason.
function check(spec, v)
  local t = spec.type
  if t == "scalar" then
    if not is_scalar(v) then return nil, "must be a string or a number" end
  elseif t == "number" then
    if not is_number(v) then return nil, "must be a number" end
  elseif t == "integer" then
    if math_type(v) ~= "integer" and not is_integer(v) then return nil, "must be an integer" end
  elseif t == "string" then
    if type(v) ~= "string" then return nil, "must be a string" end
  elseif t == "boolean" then
    if v == true or v == 1 or v == "1" then v = 1
    elseif v == false or v == 0 or v == "0" then v = 0
    else return nil, "must be a boolean (true/false or 1/0)" end
  elseif t == "date" then
    if type(v) ~= "string" then return nil, "must be a date string" end
    local fmt = spec.format and DATE_FORMATS[spec.format]
    if fmt and not fmt(v) then return nil, "must be a date formatted " .. spec.format end
  elseif t == "base64_json" then
    if type(v) == "table" then
      local object = spec.object and objects[spec.object]
      if object then
        -- the checked copy is encoded: attributes in their JSON types
        local rules = attribute_rules(spec) or nil
        local copy, reason, path
        if spec.object_list then
          copy, reason, path = check_list(object.fields, v, spec.object, rules)
        else
          copy, reason, path = check_object(object.fields, v, "", rules)
        end
        if not copy then return nil, reason, path end
        v = copy
      end
      local text, err = json.encode(v)
      if not text then return nil, "cannot be encoded as JSON: " .. err end
      v = core.b64encode(text)
    elseif type(v) ~= "string" then
      return nil, "must be a table (or its base64 JSON text)"
    end
  elseif t == "json" then
    if type(v) == "table" then
      local object = spec.object and objects[spec.object]
      if object then
        local copy, reason, path = check_object(object.fields, v, "", attribute_rules(spec) or nil)
        if not copy then return nil, reason, path end
        v = copy
      end
      local text, err = json.encode(v)
      if not text then return nil, "cannot be encoded as JSON: " .. err end
      v = text
    elseif type(v) ~= "string" then
      return nil, "must be a table (or its JSON text)"
    end
  elseif t == "bracket_array" then
    if type(v) ~= "table" then return nil, "must be an array" end
    if not is_list(v) then return nil, "must be an array (1..n)" end
    local item = parts_of(spec).item
    for i = 1, #v do
      local ok, reason = check(item, v[i])
      if ok == nil then return nil, reason, "[" .. i .. "]" end
    end
  elseif t == "bracket_map" then
    if type(v) ~= "table" then return nil, "must be a table { [key] = value }" end
    local p = parts_of(spec)
    for k, x in pairs(v) do
      if not (type(k) == "number" or type(k) == "string") then return nil, "must map ids to values" end
      local shown = "[" .. tostring(k) .. "]"
      local ok, reason = check(p.key, k)
      if ok == nil then return nil, "key " .. reason .. " (" .. (spec.key or "key") .. ")", shown end
      ok, reason = check(p.item, x)
      if ok == nil then return nil, reason, shown end
    end
  else
    local ok, reason, path = check_attribute(spec, v)
    if ok == false then
      if not is_scalar(v) then return nil, "must be a string or a number" end
    elseif not ok then
      return nil, reason, path
    else
      v = reason   -- the checked copy (a list of objects, of ids)
    end
  end
  if spec.enum and type(v) ~= "table" and not in_enum(spec.enum, v) then
    return nil, enum_reason(spec.enum)
  end
  if spec.max and type(v) == "string" and t ~= "base64_json" and t ~= "json" then
    local n = utf8_len(v)
    if not n then return nil, "is not valid UTF-8" end
    if n > spec.max then return nil, ("is longer than %d characters"):format(spec.max) end
  end
  return v
end

-- Index of a service's params by name, built once per service. A
-- contact_fields param stands for every field of annex 4.1: each is indexed
-- under its send name (v_nom), and its receive name (name) is an alias, so
-- callers may use either; the swapped rows map as the catalogue records them.
local index_cache = setmetatable({}, { __mode = "k" })
local function indexes(service)
  local cached = index_cache[service]
  if cached then return cached[1], cached[2] end
  local index, aliases = {}, {}
  for _, p in ipairs(service.params or {}) do
    if p.type == "contact_fields" then
      for _, f in ipairs(catalogue.contact_fields) do
        if index[f.send] == nil then index[f.send] = f end
      end
    else
      index[p.name] = p
    end
  end
  -- a param's other spellings (Adresses / adresses of 4.1) are the param,
  -- sent under the name given
  for _, p in ipairs(service.params or {}) do
    for _, a in ipairs(p.aliases or {}) do index[a] = p end
  end
  for _, p in ipairs(service.params or {}) do
    if p.type == "contact_fields" then
      for _, f in ipairs(catalogue.contact_fields) do
        if f.receive and index[f.receive] == nil then aliases[f.receive] = f.send end
      end
    end
  end
  index_cache[service] = { index, aliases }
  return index, aliases
end
function params.by_name(service)
  return (indexes(service))
end

-- Annex 4.7, checked before sending with the vendor's own codes: 523 for a
-- password that breaks the rules, 524 when the confirmation differs.
local RULES = catalogue.password_rules
local PASSWORD_FIELDS = RULES.applies_to or {}
-- Letters of each case: ASCII, and the French letters beyond it in UTF-8:
-- Latin-1 (U+00C0-U+00DE but U+00D7 upper; U+00DF-U+00FF but U+00F7 lower)
-- and Œ œ Ÿ, so "ÉCOLEéé1" has both cases. The sandbox applies the same.
local CASES = {
  upper = { "%u", "\195[\128-\150\152-\158]", "\197[\146\184]" },
  lower = { "%l", "\195[\159-\182\184-\191]", "\197\147" },
}
local function has_case(v, which)
  for _, pattern in ipairs(CASES[which]) do
    if v:find(pattern) then return true end
  end
  return false
end
params.has_case = has_case

local function password_problem(v)
  if (utf8_len(v) or #v) < RULES.min_length then   -- characters, not bytes
    return ("must have at least %d characters"):format(RULES.min_length)
  end
  if RULES.require_uppercase and not has_case(v, "upper") then return "needs an upper-case letter" end
  if RULES.require_lowercase and not has_case(v, "lower") then return "needs a lower-case letter" end
  if RULES.require_digit and not v:find("%d") then return "needs a digit" end
  for _, c in ipairs(RULES.forbidden_chars or {}) do
    if v:find(c, 1, true) then return "must not contain " .. c end
  end
end


-- A date param before the one it must follow (both already checked as dates
-- of their format): -> the reason, or nil.
local function out_of_order(spec, fields)
  local other = spec.after or spec.not_before
  local key = other and fields[other] ~= nil and DATE_KEYS[spec.format]
  if not key then return nil end
  local mine, theirs = key(fields[spec.name]), key(fields[other])
  if spec.after and mine <= theirs then return "must be later than " .. other end
  if mine < theirs then return "must not be before " .. other end
end

-- What prepare needs of a service, worked out once: its indexes and the
-- params with a rule across params (required, needing others, dates in order).
local plan_cache = setmetatable({}, { __mode = "k" })
local function plan_of(service)
  local plan = plan_cache[service]
  if plan then return plan end
  local index, aliases = indexes(service)
  -- in the catalogue's order: the first broken rule is the one reported
  plan = { index = index, aliases = aliases, checked = {}, related = {}, conditional = {} }
  for _, spec in ipairs(service.params or {}) do
    -- the contact_fields placeholder stands for fields checked one by one
    local required = spec.required and spec.type ~= "contact_fields"
    local related = (spec.needs or spec.after or spec.not_before) and true or false
    if required or related then
      plan.checked[#plan.checked + 1] = spec
      plan.related[#plan.checked] = related
    end
    -- required in one mode, with or without other params (after the rules
    -- above, so "date_modif needs filtre" is the error a caller sees)
    if not spec.required and (spec.required_in_mode or spec.required_with_any or spec.required_unless) then
      plan.conditional[#plan.conditional + 1] = spec
    end
  end
  -- Params the catalogue types as maps (liste_maj_code_envoi[id]=v), under
  -- every spelling: form_encode writes them keyed whatever their keys, as
  -- { [1] = 2 } has the shape of an array too. And params that pick a record
  -- in ws mode only (id_contact): in token mode the session's contact is the
  -- one used, so such a param is refused rather than sent along unread.
  plan.maps, plan.ws_only = nil, {}
  for name, spec in pairs(index) do
    if spec.type == "bracket_map" then
      plan.maps = plan.maps or {}
      plan.maps[name] = true
    end
    if service.auth == "ws_or_token" and spec.required_in_mode == "ws" then plan.ws_only[name] = true end
  end
  -- the password fields this service takes (annex 4.7 rules apply to them)
  plan.passwords = {}
  for _, name in ipairs(PASSWORD_FIELDS) do
    if index[name] then plan.passwords[#plan.passwords + 1] = name end
  end
  plan_cache[service] = plan
  return plan
end

-- maps(service) -> the set of the service's map params ({ liste_maj_code_envoi
-- = true }), for form_encode's third argument, or nil when it has none.
function params.maps(service)
  return (plan_cache[service] or plan_of(service)).maps
end

-- prepare(service, given, credential_names, strict, mode)
--   -> fields, own (true when given holds a credential), maps (params.maps)
--    | nil, name, reason [, vendor code]
-- `given` is the caller's table (never modified). Credential parameters are
-- allowed in `given` and are checked by the caller. `mode` is the auth mode
-- the call runs in ("token" or "ws" for a ws_or_token service): params
-- required in one mode only (required_in_mode) are checked against it.
function params.prepare(service, given, credential_names, strict, mode)
  local plan = plan_cache[service] or plan_of(service)
  local index, aliases = plan.index, plan.aliases
  if mode == nil and service.auth == "ws_or_token" then
    mode = given.x_rsi_token and "token" or "ws"   -- as the client chooses
  end
  local fields, own = {}, false
  for name, v in pairs(given) do
    if type(name) ~= "string" then
      return nil, tostring(name), "parameter names must be strings"
    end
    local spec = index[name]
    if not spec and aliases[name] then
      -- a receive name of annex 4.1: sent under its send name
      local send = aliases[name]
      if given[send] ~= nil then return nil, name, "is given twice (also as " .. send .. ")" end
      name, spec = send, index[send]
    elseif spec and spec.name ~= name and given[spec.name] ~= nil then
      -- the two spellings of one param (Adresses, adresses): never both
      return nil, name, "is given twice (also as " .. spec.name .. ")"
    end
    if spec and mode == "token" and plan.ws_only[name] then
      return nil, name, "is not taken with a session token: the session's contact is the one used; to reach "
        .. "another contact, call it on the client (c:" .. (service.name:gsub("^ws_", ""))
        .. "{...}) with the web-service account"
    end
    if spec then
      local value, reason, path = check(spec, v)
      if value == nil then return nil, name .. (path or ""), reason end
      fields[name] = value
    elseif credential_names[name] then
      if not is_scalar(v) then return nil, name, "must be a string or a number" end
      fields[name] = v
      own = true
    elseif strict then
      return nil, name, "is not a parameter of " .. service.name
    elseif not is_scalar(v) and not flat_table(v) then
      -- strict off: a value, or a list / map of values (name[]=, name[k]=)
      return nil, name, "must be a string, a number, a boolean, or a flat list or map of them"
    else
      fields[name] = v
    end
  end
  -- the service's password fields; with strict off, any given
  local passwords = strict and plan.passwords or PASSWORD_FIELDS
  for i = 1, #passwords do   -- v_passe before v_passec
    local name = passwords[i]
    if type(fields[name]) == "string" then
      local problem = password_problem(fields[name])
      if problem then return nil, name, problem, RULES.violation_code end
    end
  end
  if fields.v_passe and fields.v_passec and fields.v_passe ~= fields.v_passec then
    return nil, "v_passec", "differs from v_passe", 524
  end
  -- a default the spec documents ("Par défaut 1") stands in for a missing
  -- param it requires; page links get filtre=1 with their criteria
  local conditional = plan.conditional
  for i = 1, #conditional do
    local spec = conditional[i]
    if spec.default ~= nil and fields[spec.name] == nil and required_because(spec, fields, mode) then
      fields[spec.name] = spec.default
    end
  end
  local checked, related = plan.checked, plan.related
  for i = 1, #checked do
    local spec = checked[i]
    if fields[spec.name] == nil then
      if spec.required and spec.type ~= "contact_fields" then
        if spec.default == nil then return nil, spec.name, "is required" end
        fields[spec.name] = spec.default
      end
    elseif related[i] then
      for _, other in ipairs(spec.needs or NONE) do
        if fields[other] == nil then
          return nil, spec.name, "needs " .. other .. " too"
        end
      end
      local bad = out_of_order(spec, fields)
      if bad then return nil, spec.name, bad end
    end
  end
  for i = 1, #conditional do
    local spec = conditional[i]
    if fields[spec.name] == nil then
      local why = required_because(spec, fields, mode)
      if why then return nil, spec.name, why end
    end
  end
  return fields, own, plan.maps   -- the maps, for the form: no second lookup on the hot path
end

return params
