-- billetterie.sandbox.s360_wire: S-360 parameters in, results out, driven by
-- the method catalogue (billetterie.s360.catalogue), for both protocols.
--
--   decode_params(method, raw) -> typed parameters; raw is the JSON body
--       (REST) or the operation element made plain by plain() (SOAP).
--       Types, lists, enumerations, lengths and required fields are checked
--       (a failure is s360_values' `invalid`); unknown fields are ignored.
--   to_json(type, value) / to_elements(type, value) -> the result as a JSON
--       table / as child elements (core.xml_encode form), fields in the
--       catalogue's order. A field the type does not have is a programmer
--       mistake (error), so the methods cannot drift from the catalogue.

local cat = require "billetterie.s360.catalogue"
local codec = require "billetterie.sandbox.codec"
local V = require "billetterie.sandbox.s360_values"

local M = {}

local ENUM = {}
for name, list in pairs(cat.enums) do
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  ENUM[name] = set
end
-- Enumerations where S-360 keeps an unknown value as a default instead of
-- refusing it (titles: "unknown values are stored as UNDEFINED").
local LENIENT = { Title = "UNDEFINED" }

local FIELDS = {}
for tname, t in pairs(cat.types) do
  FIELDS[tname] = {}
  for _, f in ipairs(t.fields) do FIELDS[tname][f.name] = f end
end

---- in ----

local decode_field

local function decode_type(tname, raw, path)
  local t = cat.types[tname] or error("s360 catalogue: no type " .. tname)
  local obj = V.object(raw, path)
  if not obj then return nil end
  local out = {}
  for _, f in ipairs(t.fields) do out[f.name] = decode_field(f, obj[f.name], path .. "." .. f.name) end
  return out
end

-- A map: a JSON object, or SOAP <entry><key/><value/></entry> repeated.
local function decode_map(raw, path)
  local obj = V.object(raw, path)
  if not obj then return nil end
  local out = {}
  if obj.entry ~= nil then
    for _, e in ipairs(V.list(obj.entry)) do
      local k = V.need(type(e) == "table" and e.key, path .. ".entry.key")
      out[k] = V.str(e.value, path .. ".entry.value") or ""
    end
    return out
  end
  for k, v in pairs(obj) do out[tostring(k)] = V.str(v, path .. "." .. tostring(k)) or "" end
  return out
end

local function decode_one(f, v, path)
  local ty = f.type
  if ty == "string" then return V.text(v, path, f.max)
  elseif ty == "long" then return V.int(v, path)
  elseif ty == "int" then
    -- xs:int: 32 bits (requestId); the vendor's Java refuses more
    local n = V.int(v, path)
    if n and (n < -2147483648 or n > 2147483647) then V.fail("invalid", path .. ": out of the int range") end
    return n
  elseif ty == "boolean" then return V.bool(v, path)
  elseif ty == "date" then return V.date(v, path)
  elseif ty == "double" then
    local s = V.str(v, path)
    local n = s and tonumber(s)
    if s and not n then V.fail("invalid", path .. ": a number expected") end
    return n
  elseif ty == "enum" then
    local s = V.str(v, path)
    if s and not ENUM[f.enum][s] then
      if LENIENT[f.enum] then return LENIENT[f.enum] end
      V.fail("invalid", ("%s: %s is not one of %s"):format(path, s, table.concat(cat.enums[f.enum], ", ")))
    end
    return s
  elseif ty == "map" then return decode_map(v, path)
  end
  return decode_type(ty, v, path)
end

function decode_field(f, v, path)
  if f.list then
    local out = {}
    for _, item in ipairs(V.list(v)) do
      local x = decode_one(f, item, path)
      if x ~= nil then out[#out + 1] = x end
    end
    if f.required and #out == 0 then V.fail("invalid", path .. " is required") end
    return out
  end
  local x = decode_one(f, v, path)
  if x == nil and f.required then V.fail("invalid", path .. " is required") end
  return x
end

function M.decode_params(method, raw)
  local m = cat.methods[method]
  local p = {}
  for _, list in ipairs { cat.common_params, m.params } do
    for _, f in ipairs(list) do p[f.name] = decode_field(f, raw[f.name], f.name) end
  end
  return p
end

-- An element (core.xml_decode elements form) as plain values: its text when
-- it has no child element, else a table of its children by local name, a
-- repeated name giving a sequence (the client's schema.plain). Namespaces of
-- parameters are not checked (they are unqualified on the wire).
M.plain = require("billetterie.s360.schema").plain

---- out ----

local function check_fields(tname, obj)
  local known = FIELDS[tname] or error("s360 catalogue: no type " .. tname)
  for k in pairs(obj) do
    if not known[k] then error(("s360: %s has no field %s"):format(tname, tostring(k)), 3) end
  end
  return cat.types[tname].fields
end

local function each(f, v)
  if f.list then return v end
  return { v }
end

function M.to_json(tname, obj)
  local out = {}
  for _, f in ipairs(check_fields(tname, obj)) do
    local v = obj[f.name]
    if v ~= nil then
      local items = {}
      for i, x in ipairs(each(f, v)) do
        if FIELDS[f.type] then x = M.to_json(f.type, x) end
        items[i] = x
      end
      if f.list then out[f.name] = codec.array(items) else out[f.name] = items[1] end
    end
  end
  return out
end

local function text_of(x)
  if type(x) == "boolean" then return x and "true" or "false" end
  if type(x) == "number" then
    return math.tointeger(x) and tostring(math.tointeger(x)) or ("%.17g"):format(x)
  end
  return tostring(x)
end

function M.to_elements(tname, obj, out)
  out = out or {}
  for _, f in ipairs(check_fields(tname, obj)) do
    local v = obj[f.name]
    if v ~= nil then
      for _, x in ipairs(each(f, v)) do
        local el = { name = f.name }
        if FIELDS[f.type] then
          M.to_elements(f.type, x, el)
        elseif f.type == "map" then
          local keys = {}
          for k in pairs(x) do keys[#keys + 1] = k end
          table.sort(keys)
          for _, k in ipairs(keys) do
            el[#el + 1] = { name = "entry", { name = "key", k }, { name = "value", text_of(x[k]) } }
          end
        else
          el[1] = text_of(x)
        end
        out[#out + 1] = el
      end
    end
  end
  return out
end

return M
