-- The S-360 catalogue's types applied to values: checks a call's
-- parameters before anything is sent, writes them as SOAP child elements
-- (element form of core.xml_encode) or leaves them JSON-ready, and reads
-- results back from either wire into plain Lua tables of the same shape
-- (ids and longs as integers, booleans as booleans, lists as sequences).
local catalogue = require "billetterie.s360.catalogue"
local params = require "billetterie.params"

local schema = {}

local floor = math.floor
local tointeger = math.tointeger or function(n) return n end

-- fields_of[typeName][fieldName] = field spec, built once.
local fields_of = {}
for tname, t in pairs(catalogue.types) do
  local map = {}
  for _, f in ipairs(t.fields) do map[f.name] = f end
  fields_of[tname] = map
end
schema.fields_of = fields_of

local enum_sets = {}
for name, values in pairs(catalogue.enums) do
  local set = {}
  for _, v in ipairs(values) do set[v] = true end
  enum_sets[name] = set
end

-- The parameters of a method: common ones (requestId) first, then its own.
local params_of = {}
for mname, m in pairs(catalogue.methods) do
  local list, map = {}, {}
  for _, p in ipairs(catalogue.common_params) do list[#list + 1] = p end
  for _, p in ipairs(m.params) do list[#list + 1] = p end
  for _, p in ipairs(list) do map[p.name] = p end
  params_of[mname] = { list = list, map = map }
end
schema.params_of = params_of

-- UTF-8 well-formedness. Returns the number of characters, or nil.
-- params.utf8_len only counts under LuaJIT (it has no utf8 library), and
-- parameters sent to S-360 must be valid UTF-8 on both VMs.
local function utf8_len(s)
  local n, i, len = 0, 1, #s
  while i <= len do
    local c = s:byte(i)
    local extra
    if c < 0x80 then extra = 0
    elseif c >= 0xC2 and c <= 0xDF then extra = 1
    elseif c >= 0xE0 and c <= 0xEF then extra = 2
    elseif c >= 0xF0 and c <= 0xF4 then extra = 3
    else return nil end
    for j = i + 1, i + extra do
      local d = s:byte(j)
      if not d or d < 0x80 or d > 0xBF then return nil end
    end
    i, n = i + extra + 1, n + 1
  end
  return n
end
schema.utf8_len = utf8_len

local function is_integer(v)
  return type(v) == "number" and v == floor(v) and v > -2 ^ 53 and v < 2 ^ 53
end

local function int_text(v)
  return ("%d"):format(v)
end

-- ISO-8601 date, or dateTime with optional fraction and zone; the date
-- and time checks are params.lua's.
local DATE, DATE_TIME = params.DATE_FORMATS["AAAA-MM-JJ"], params.DATE_FORMATS["AAAA-MM-DDTHH:MM:SS"]
local function valid_date(s)
  local day, rest = s:match("^(%d%d%d%d%-%d%d%-%d%d)(.*)$")
  if not day or not DATE(day) then return false end
  if rest == "" then return true end
  local hms, zone = rest:match("^(T%d%d:%d%d:%d%d)%.?%d*(.*)$")
  if not hms or not DATE_TIME(day .. hms) then return false end
  return zone == "" or zone == "Z" or zone:match("^[+-]%d%d:?%d%d$") ~= nil
end

local check_fields

-- Checks one value against a field spec; -> normalized value | nil, reason
local function check_value(spec, v, path, strict)
  local t = spec.type
  if fields_of[t] then
    if type(v) ~= "table" then return nil, "must be a table (" .. t .. ")" end
    return check_fields(catalogue.types[t].fields, fields_of[t], v, path, strict)
  end
  if t == "string" then
    if is_integer(v) then v = int_text(v) end   -- contactNumber = 4711 is "4711" on the wire
    if type(v) ~= "string" then return nil, "must be a string" end
    local n = utf8_len(v)
    if not n then return nil, "is not valid UTF-8" end
    if v:find("[%z\1-\8\11\12\14-\31]") then return nil, "holds a control character" end
    if spec.max and n > spec.max then return nil, ("is longer than %d characters"):format(spec.max) end
    return v
  elseif t == "long" or t == "int" then
    if type(v) == "string" and v:match("^%-?%d+$") then v = tonumber(v) end
    if not is_integer(v) then return nil, "must be an integer" end
    if t == "int" and (v < -2 ^ 31 or v >= 2 ^ 31) then return nil, "is out of the int range" end
    return tointeger(v)
  elseif t == "boolean" then
    if type(v) ~= "boolean" then return nil, "must be true or false" end
    return v
  elseif t == "double" then
    if type(v) ~= "number" or v ~= v or v == math.huge or v == -math.huge then
      return nil, "must be a finite number"
    end
    return v
  elseif t == "date" then
    if type(v) ~= "string" or not valid_date(v) then
      return nil, "must be an ISO-8601 date (YYYY-MM-DD or YYYY-MM-DDThh:mm:ss)"
    end
    return v
  elseif t == "enum" then
    if type(v) ~= "string" or not enum_sets[spec.enum][v] then
      return nil, "must be one of " .. table.concat(catalogue.enums[spec.enum], ", ")
    end
    return v
  elseif t == "map" then
    if type(v) ~= "table" then return nil, "must be a table of strings" end
    local copy = {}
    for k, x in pairs(v) do
      if type(k) ~= "string" or type(x) ~= "string" or not utf8_len(k) or not utf8_len(x) then
        return nil, "must map strings to strings"
      end
      copy[k] = x
    end
    return copy
  end
  error("s360 catalogue: unknown type " .. tostring(t))
end

local function is_sequence(v)
  if type(v) ~= "table" then return false end
  local n = #v
  for k in pairs(v) do
    if not is_integer(k) or k < 1 or k > n then return false end
  end
  return true
end

local function check_field(spec, v, path, strict)
  if not spec.list then return check_value(spec, v, path, strict) end
  if not is_sequence(v) then return nil, "must be a list (a Lua sequence)" end
  local out = {}
  for i = 1, #v do
    local x, why, where = check_value(spec, v[i], path .. "[" .. i .. "]", strict)
    if x == nil then return nil, why, where or (path .. "[" .. i .. "]") end
    out[i] = x
  end
  return out
end

-- Checks a table against a field list. -> copy | nil, reason, path
-- A field the catalogue does not know, let through when not strict (a
-- newer version's field): scalars, sequences of them, or tables of them.
local function unknown_value(v, depth)
  local t = type(v)
  if t == "string" then return utf8_len(v) ~= nil and not v:find("[%z\1-\8\11\12\14-\31]") end
  if t == "boolean" or (t == "number" and v == v and v ~= math.huge and v ~= -math.huge) then return true end
  if t ~= "table" or depth > 16 then return false end
  for k, x in pairs(v) do
    if type(k) ~= "string" and not is_integer(k) then return false end
    if not unknown_value(x, depth + 1) then return false end
  end
  return true
end

function check_fields(list, map, given, path, strict)
  local out = {}
  for k, v in pairs(given) do
    if type(k) ~= "string" or not map[k] then
      local where = path and (path .. "." .. tostring(k)) or tostring(k)
      if strict or type(k) ~= "string" then return nil, "is not a known field", where end
      if not unknown_value(v, 0) then return nil, "is not a plain value (unknown field)", where end
      out[k] = v
    end
  end
  for _, spec in ipairs(list) do
    local where = path and (path .. "." .. spec.name) or spec.name
    local v = given[spec.name]
    if v == nil then
      if spec.required then return nil, "is required", where end
    else
      local x, why, deeper = check_field(spec, v, where, strict)
      if x == nil then return nil, why, deeper or where end
      out[spec.name] = x
    end
  end
  return out
end

-- schema.check(method, params, strict) -> normalized params | nil, reason, path
function schema.check(method, given, strict)
  local p = params_of[method]
  return check_fields(p.list, p.map, given, nil, strict)
end

-- ---- SOAP: values -> child elements ----

local function scalar_text(spec, v)
  local t = type(v)
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if spec.type == "double" or not is_integer(v) then return ("%.17g"):format(v) end
    return int_text(v)
  end
  return v
end

local to_elements

local function element(spec, v)
  local e = { name = spec.name }
  if fields_of[spec.type] then
    to_elements(catalogue.types[spec.type].fields, v, e, fields_of[spec.type])
  elseif spec.type == "map" then
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do
      e[#e + 1] = { name = "entry", { name = "key", k }, { name = "value", v[k] } }
    end
  else
    e[1] = scalar_text(spec, v)
  end
  return e
end

-- An unknown field (strict = false): text, repeated for a sequence, nested
-- for a table with string keys (sorted).
local function generic_element(name, v, into)
  if type(v) ~= "table" then
    into[#into + 1] = { name = name, scalar_text({}, v) }
  elseif v[1] ~= nil then
    for i = 1, #v do generic_element(name, v[i], into) end
  else
    local e, keys = { name = name }, {}
    for k in pairs(v) do keys[#keys + 1] = k end
    table.sort(keys)
    for _, k in ipairs(keys) do generic_element(k, v[k], e) end
    into[#into + 1] = e
  end
end

-- Appends to `into` one element per value (lists repeated), in field order,
-- then the fields the catalogue does not know (strict = false), by name.
function to_elements(list, values, into, map)
  for _, spec in ipairs(list) do
    local v = values[spec.name]
    if v ~= nil then
      if spec.list then
        for i = 1, #v do into[#into + 1] = element(spec, v[i]) end
      else
        into[#into + 1] = element(spec, v)
      end
    end
  end
  local extra
  for k in pairs(values) do
    if not map[k] then extra = extra or {}; extra[#extra + 1] = k end
  end
  if extra then
    table.sort(extra)
    for _, k in ipairs(extra) do generic_element(k, values[k], into) end
  end
  return into
end

function schema.to_elements(method, values, into)
  local p = params_of[method]
  return to_elements(p.list, values, into or {}, p.map)
end

-- ---- reading elements (core.xml_decode{ elements = true } form) ----
-- The one set of helpers the client and the sandbox read elements with.

-- The text of an element (its string children joined); nil for no element.
local function text_of(e)
  if not e then return nil end
  local parts = {}
  for i = 1, #e do
    if type(e[i]) == "string" then parts[#parts + 1] = e[i] end
  end
  return table.concat(parts)
end
schema.text = text_of

-- The child elements of e named `name` (any name when nil) in namespace
-- `ns` (any namespace when nil).
function schema.children(e, name, ns)
  local out = {}
  for i = 1, #e do
    local c = e[i]
    if type(c) == "table" and (name == nil or c.name == name) and (ns == nil or c.ns == ns) then
      out[#out + 1] = c
    end
  end
  return out
end

-- The first such child element, or nil.
function schema.child(e, name, ns)
  for i = 1, #e do
    local c = e[i]
    if type(c) == "table" and (name == nil or c.name == name) and (ns == nil or c.ns == ns) then return c end
  end
end

local function has_children(e)
  for i = 1, #e do
    if type(e[i]) == "table" then return true end
  end
  return false
end

-- An element as plain values, without a schema: its text when it has no
-- child element, else a table of its children by local name, a repeated
-- name giving a sequence.
local function plain(e)
  if not has_children(e) then return text_of(e) end
  local t, many = {}, {}
  for i = 1, #e do
    local c = e[i]
    if type(c) == "table" then
      local v, cur = plain(c), t[c.name]
      if cur == nil then t[c.name] = v
      elseif many[c.name] then cur[#cur + 1] = v
      else t[c.name] = { cur, v }; many[c.name] = true end
    end
  end
  return t
end
schema.plain = plain

-- ---- results: element form or JSON -> Lua ----

-- A long or int of an answer: an integer when it is exact on both VMs
-- (|n| < 2^53); beyond, SOAP's decimal text is kept as it came (a string,
-- never a rounded number), and a JSON number, already rounded by the JSON
-- decoder, is a decode error (INEXACT, caught by schema.from_json).
local INEXACT = {}
local function coerce(spec_type, v)
  if spec_type == "long" or spec_type == "int" then
    if type(v) == "string" then
      local digits = v:match("^%s*(%-?%d+)%s*$")
      if not digits then return v end
      local n = tonumber(digits)
      if n > -2 ^ 53 and n < 2 ^ 53 then return tointeger(n) end
      return digits
    end
    if type(v) == "number" and v == floor(v) and not is_integer(v) then
      error(setmetatable({ message = ("a JSON number beyond 2^53 (%.17g) cannot be read exactly"):format(v) },
        INEXACT), 0)
    end
    return v
  elseif spec_type == "double" then
    return type(v) == "string" and tonumber(v) or v
  elseif spec_type == "boolean" then
    if v == "true" or v == "1" then return true end
    if v == "false" or v == "0" then return false end
    return v
  elseif spec_type == "string" or spec_type == "date" or spec_type == "enum" then
    if type(v) == "number" then return is_integer(v) and int_text(v) or tostring(v) end
    return v
  end
  return v
end

local from_element

local function generic(e)
  if not has_children(e) then return text_of(e) end
  return from_element(nil, e)
end

local function is_nil(e)
  local a = e.attrs
  return a and a["nil"] == "true"
end

local function read_element(spec, e)
  if is_nil(e) then return nil end
  local t = spec.type
  if fields_of[t] then return from_element(t, e) end
  if t == "map" then
    local m = {}
    for i = 1, #e do
      local entry = e[i]
      if type(entry) == "table" and entry.name == "entry" then
        local k, v
        for j = 1, #entry do
          local c = entry[j]
          if type(c) == "table" and c.name == "key" then k = text_of(c) end
          if type(c) == "table" and c.name == "value" then v = text_of(c) end
        end
        if k then m[k] = v end
      end
    end
    return m
  end
  return coerce(t, text_of(e))
end

-- An element (element form) read as type `tname` (nil: no schema, every
-- child kept by name, repeated names as sequences).
function from_element(tname, e)
  local map = tname and fields_of[tname] or {}
  local out, repeated = {}, {}
  for i = 1, #e do
    local c = e[i]
    if type(c) == "table" then
      local spec = map[c.name]
      if spec then
        local v = read_element(spec, c)
        if spec.list then
          local l = out[c.name] or {}
          l[#l + 1] = v
          out[c.name] = l
        elseif v ~= nil then
          out[c.name] = v
        end
      elseif not is_nil(c) then
        local v, old = generic(c), out[c.name]
        if old == nil then
          out[c.name] = v
        elseif repeated[c.name] then
          old[#old + 1] = v
        else
          out[c.name], repeated[c.name] = { old, v }, true
        end
      end
    end
  end
  return out
end
schema.from_element = from_element

local from_json

local function json_value(spec, v, null)
  if v == null then return nil end
  local t = spec.type
  if fields_of[t] then
    return type(v) == "table" and from_json(t, v, null) or v
  end
  if t == "map" then
    if type(v) ~= "table" then return v end
    local m = {}
    for k, x in pairs(v) do if x ~= null then m[k] = x end end
    return m
  end
  return coerce(t, v)
end

local function strip_null(v, null, depth)
  if v == null then return nil end
  if type(v) ~= "table" or depth > 64 then return v end
  local out = {}
  for k, x in pairs(v) do out[k] = strip_null(x, null, depth + 1) end
  return out
end

-- A decoded JSON object read as type `tname`; null (cjson.null) dropped.
local function read_json(tname, obj, null)
  local map = fields_of[tname] or {}
  local out = {}
  for k, v in pairs(obj) do
    local spec = map[k]
    if spec and spec.list then
      if v ~= null then
        if type(v) ~= "table" or (v[1] == nil and next(v) ~= nil) then v = { v } end   -- a lone object
        local l = {}
        for i = 1, #v do l[#l + 1] = json_value(spec, v[i], null) end
        out[k] = l
      end
    elseif spec then
      out[k] = json_value(spec, v, null)
    else
      out[k] = strip_null(v, null, 0)
    end
  end
  return out
end
from_json = read_json

-- schema.from_json(tname, obj, null) -> result | nil, error fields (decode)
function schema.from_json(tname, obj, null)
  local ok, out = pcall(read_json, tname, obj, null)
  if ok then return out end
  if getmetatable(out) ~= INEXACT then error(out, 0) end
  return nil, { kind = "decode", message = out.message }
end

return schema
