-- JSON through lua-cjson (never re-implemented), with the two fixes an SDK
-- needs on Debian's lua-cjson 2.1.0: numbers keep their integer-ness under
-- Lua 5.4 (603, not 603.0), and a private instance so our settings never
-- change the application's own cjson.
local cjson = require "cjson"
local core = require "billetterie.core"

local json = {}

local codec = cjson.new()
codec.encode_sparse_array(true, 1, 1)  -- a sparse "array" is an error, not a silent object
local decode_raw, encode_raw = codec.decode, codec.encode

json.null = cjson.null

-- Marks a table to be encoded as a JSON array even when empty: cjson encodes
-- every empty table as {} and the vendor expects [] for lists.
local array_mt = { __jsontype = "array" }
local EMPTY_ARRAY = "__billetterie_empty_array_5f0c2a__"
function json.array(t)
  return setmetatable(t or {}, array_mt)
end

-- decode(text) -> value | nil, message: cjson's decode under a pcall, then
-- restore_integers, in one C function (core.json_decoder).
json.decode = core.json_decoder(decode_raw)

-- lua-cjson 2.1.0 writes numbers with 14 significant digits at most: an id
-- of 15 or more digits would go out changed (1.2345678901234e+14). Whole
-- numbers up to 2^53 (every integer a double holds exactly) are written by
-- us instead ("%d"), through a placeholder string cjson encodes as is.
local MAX_EXACT = 2 ^ 53
local INT_MARK = "__billetterie_int_5f0c2a_"

local function exact(n)
  return n ~= n or n == math.huge or n == -math.huge or tonumber(("%.14g"):format(n)) == n
end

local function whole(n)
  return n == math.floor(n) and n >= -MAX_EXACT and n <= MAX_EXACT
end

-- One walk: whether v holds an empty table marked as an array, whether it
-- holds a whole number cjson would shorten, and the first number that
-- cannot be written exactly at all.
local function inspect(v, depth)
  local t = type(v)
  if t == "number" then
    if exact(v) then return false, false end
    if whole(v) then return false, true end
    return false, false, v
  end
  if t ~= "table" or depth > 100 then return false, false end
  if next(v) == nil then return getmetatable(v) == array_mt, false end
  local empty, big = false, false
  for _, x in pairs(v) do
    local e, b, bad = inspect(x, depth + 1)
    if bad then return false, false, bad end
    empty, big = empty or e, big or b
  end
  return empty, big
end

-- encode(value) -> minified JSON text | nil, message.
function json.encode(value)
  local empty, big, bad = inspect(value, 0)
  if bad then
    return nil, ("the number %.17g has more than 14 significant digits and is not a whole number up to 2^53, "
      .. "which JSON here cannot carry exactly: round it"):format(bad)
  end
  local ok, text = pcall(encode_raw, value)
  if not ok then
    return nil, (tostring(text):gsub("^.-: ", ""))
  end
  if empty or big then
    -- cjson wrote {} for lists marked with json.array and shortened the big
    -- whole numbers; rewrite those only.
    ok, text = pcall(encode_raw, json._mark_empty(value))
    if not ok then return nil, text end
    text = text:gsub('"' .. EMPTY_ARRAY .. '"', "[]"):gsub('"' .. INT_MARK .. '(%-?%d+)"', "%1")
  end
  return text
end

-- Replaces empty tables marked as arrays with a sentinel string, and whole
-- numbers cjson would shorten with a placeholder holding their digits
-- (copying only the path to them) so cjson can encode the rest unchanged.
function json._mark_empty(v)
  if type(v) == "number" then
    if not exact(v) and whole(v) then return INT_MARK .. ("%d"):format(v) end
    return v
  end
  if type(v) ~= "table" then return v end
  if next(v) == nil and getmetatable(v) == array_mt then return EMPTY_ARRAY end
  local copy = {}
  for k, x in pairs(v) do copy[k] = json._mark_empty(x) end
  return setmetatable(copy, getmetatable(v) == array_mt and array_mt or nil)
end

return json
