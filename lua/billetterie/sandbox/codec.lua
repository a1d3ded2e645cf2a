-- billetterie.sandbox.codec: JSON and base64 as the sandbox needs them.
--
-- JSON goes through a private lua-cjson instance. Debian's lua-cjson 2.1.0
-- under Lua 5.4 decodes every number as a float and has no empty-array
-- value, so decode() restores integers and encode() turns M.empty_array into
-- `[]`. Base64 decoding is lenient on purpose: the vendor's own examples wrap
-- the text over several lines and encode pretty-printed JSON (spec 2.6.2).

local cjson = require "cjson"
local core = require "billetterie.core"

local M = {}

local json = cjson.new()
json.decode_max_depth(64)

-- A placeholder string that cannot come from user data (it holds a byte
-- cjson always escapes, and a per-process random part).
local EMPTY = ("\1bt-empty-array-%x%x"):format(math.random(0, 0x7fffffff), os.time())
local EMPTY_JSON = json.encode(EMPTY)
M.empty_array = EMPTY
M.null = json.null -- what a JSON null decodes to

-- `list` itself, or the empty-array marker when it has no element.
function M.array(list)
  return (list and #list > 0) and list or EMPTY
end

local restore_integers = core.restore_integers  -- 603.0 -> 603, in C
function M.encode(value)
  local text = json.encode(value)
  if text:find(EMPTY_JSON, 1, true) then
    text = text:gsub(EMPTY_JSON:gsub("%p", "%%%0"), "[]")
  end
  return text
end

-- -> value, or nil, err
function M.decode(text)
  local ok, v = pcall(json.decode, text)
  if not ok then return nil, "invalid JSON" end
  if v == json.null then return nil, "JSON null" end
  return restore_integers(v)
end

-- Standard or URL-safe alphabet, whitespace ignored, padding optional: the
-- core's C decoder (the client's own). -> bytes, or nil, err
M.b64decode = core.b64decode

-- A parameter documented as "base64 of minified JSON" (organisme, adresses,
-- Niveau_de_relations, contacts). Plain JSON is accepted too (2.6.3 says
-- "format json" for the same object). want: "object" or "array".
-- -> value, or nil, err
function M.decode_param(text, want)
  local json_text = text
  if not text:find("^%s*[%[{]") then
    local err
    json_text, err = M.b64decode(text)
    if not json_text then return nil, err end
  end
  local v, err = M.decode(json_text)
  if v == nil then return nil, err end
  -- cjson gives {} for both `{}` and `[]`: an empty table passes as either.
  if type(v) ~= "table" or (next(v) ~= nil and (want == "array") ~= (#v > 0)) then
    return nil, "JSON " .. want .. " expected"
  end
  return v
end

return M
