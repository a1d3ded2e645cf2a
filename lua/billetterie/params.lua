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

-- Checks one value against its catalogue entry and returns the value to put
-- in the form (base64/JSON encoded where the spec says so), or nil, reason.
local function check(spec, v)
  local t = spec.type
  if t == "integer" then
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
      local text, err = json.encode(v)
      if not text then return nil, "cannot be encoded as JSON: " .. err end
      v = core.b64encode(text)
    elseif type(v) ~= "string" then
      return nil, "must be a table (or its base64 JSON text)"
    end
  elseif t == "json" then
    if type(v) == "table" then
      local text, err = json.encode(v)
      if not text then return nil, "cannot be encoded as JSON: " .. err end
      v = text
    elseif type(v) ~= "string" then
      return nil, "must be a table (or its JSON text)"
    end
  elseif t == "bracket_array" then
    if type(v) ~= "table" then return nil, "must be an array" end
    local n = #v
    for k, x in pairs(v) do
      if type(k) ~= "number" or k < 1 or k > n or k ~= floor(k) then return nil, "must be an array (1..n)" end
      if not is_scalar(x) then return nil, "items must be strings or numbers" end
    end
  elseif t == "bracket_map" then
    if type(v) ~= "table" then return nil, "must be a table { [key] = value }" end
    for k, x in pairs(v) do
      if not (type(k) == "number" or type(k) == "string") or not is_scalar(x) then
        return nil, "must map ids to values"
      end
    end
  elseif not is_scalar(v) then
    return nil, "must be a string or a number"
  end
  if spec.enum and type(v) ~= "table" and not in_enum(spec.enum, v) then
    local shown = {}
    for i = 1, #spec.enum do shown[i] = tostring(spec.enum[i]) end
    return nil, "must be one of " .. table.concat(shown, ", ")
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
local function password_problem(v)
  if (utf8_len(v) or #v) < RULES.min_length then   -- characters, not bytes
    return ("must have at least %d characters"):format(RULES.min_length)
  end
  if RULES.require_uppercase and not v:find("%u") then return "needs an upper-case letter" end
  if RULES.require_lowercase and not v:find("%l") then return "needs a lower-case letter" end
  if RULES.require_digit and not v:find("%d") then return "needs a digit" end
  for _, c in ipairs(RULES.forbidden_chars or {}) do
    if v:find(c, 1, true) then return "must not contain " .. c end
  end
end

local NONE = {}

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
  plan = { index = index, aliases = aliases, checked = {}, related = {} }
  for _, spec in ipairs(service.params or {}) do
    -- the contact_fields placeholder stands for fields checked one by one
    local required = spec.required and spec.type ~= "contact_fields"
    local related = (spec.needs or spec.after or spec.not_before) and true or false
    if required or related then
      plan.checked[#plan.checked + 1] = spec
      plan.related[#plan.checked] = related
    end
  end
  -- the password fields this service takes (annex 4.7 rules apply to them)
  plan.passwords = {}
  for _, name in ipairs(PASSWORD_FIELDS) do
    if index[name] then plan.passwords[#plan.passwords + 1] = name end
  end
  plan_cache[service] = plan
  return plan
end

-- prepare(service, given, credential_names, strict)
--   -> fields, own (true when given holds a credential) | nil, name, reason [, vendor code]
-- `given` is the caller's table (never modified). Credential parameters are
-- allowed in `given` and are checked by the caller.
function params.prepare(service, given, credential_names, strict)
  local plan = plan_cache[service] or plan_of(service)
  local index, aliases = plan.index, plan.aliases
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
    end
    if spec then
      local value, reason = check(spec, v)
      if value == nil then return nil, name, reason end
      fields[name] = value
    elseif credential_names[name] then
      if not is_scalar(v) then return nil, name, "must be a string or a number" end
      fields[name] = v
      own = true
    elseif strict then
      return nil, name, "is not a parameter of " .. service.name
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
  local checked, related = plan.checked, plan.related
  for i = 1, #checked do
    local spec = checked[i]
    if fields[spec.name] == nil then
      if spec.required and spec.type ~= "contact_fields" then return nil, spec.name, "is required" end
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
  return fields, own
end

return params
