--- billetterie.xml: XML answers and feeds as plain Lua tables.
--
-- The parsing is done in C (billetterie.core, libxml2's streaming reader, no
-- network, no external entities); this module adds the iterator and the
-- comma-decimal helper. Works on Lua 5.4 and LuaJIT 2.1.
--
-- Mapping of an element to a Lua value (decode, reader and each alike):
--   * no attributes and no child elements: its text as a string, never a
--     number: <id>073101758907</id> -> "073101758907", <liste_place/> -> "".
--   * otherwise a table: attributes as string fields
--     (<SPECTACLE IDENT="12"> -> t.IDENT == "12"), child elements as fields
--     named by their local name (namespace prefixes dropped), the text under
--     `_text` when it has non-whitespace characters or a CDATA section
--     (kept verbatim): <PLEIN FRAIS="1,5">18,50</PLEIN> ->
--     { FRAIS = "1,5", _text = "18,50" }.
--   * an attribute and a child element with the same name: the child takes
--     the field, the attribute moves to "@" .. name.
--   * repeated child elements with the same name become a sequence in
--     document order; names in opts.arrays ({ billet = true }) are always a
--     sequence, even for one element (absent: the field stays nil).
--   * comments, processing instructions and references to entities declared
--     in a DTD are dropped (never expanded, never loaded).
--
-- Options (all optional): max_depth (default 256, also libxml2's own limit),
-- max_size (bytes; string input only), arrays (set of element names).
--
-- Numbers are never converted here: the client converts the ids and
-- amounts its catalogue lists per service (xml_integers, see xml.integers);
-- use xml.decimal for the vendor's "18,50".

local core = require "billetterie.core"

local M = {}

--- xml.decode(text [, opts]) -> tree, root_name | nil, message
-- tree is the value of the document element under the mapping above and
-- root_name its local name. Malformed input gives nil and libxml2's message
-- ("line 1: Opening and ending tag mismatch: ..."); only wrong argument types
-- raise.
M.decode = core.xml_decode

--- xml.reader(source, tag [, opts]) -> reader | nil, message
-- source is { file = path } or { string = xml }. reader:next() returns the
-- next element named `tag` (at any depth, the outermost one when they nest)
-- under the same mapping, nil at the end, nil + message on malformed input
-- (then nil), nil + "reader closed" after reader:close(). Memory stays
-- bounded by one element. close is idempotent and is also __gc and __close.
-- Every element completed before a malformation is yielded before the
-- error, in UTF-8 (and the encodings that write markup in ASCII); in UTF-16
-- the error may come first.
M.reader = core.xml_reader

--- for item, err in xml.each(source, tag [, opts]) do ... end
-- Iterates over the elements named `tag`; raises nothing. A for-in loop ends
-- on a nil first value, so an error (unreadable file, malformed XML, bad
-- arguments) is delivered once as `false, message`, then the loop ends:
--   for item, err in xml.each({ file = p }, "SPECTACLE") do
--     if not item then return nil, err end
--     ...
--   end
-- The reader is closed at the end, on error, and (Lua 5.4) on break.
function M.each(source, tag, opts)
  local ok, r, err = pcall(core.xml_reader, source, tag, opts)
  if not ok or not r then
    err = ok and err or r
    local sent = false
    return function()
      if sent then return nil end
      sent = true
      return false, tostring(err)
    end
  end
  local finished = false
  local function step()
    if finished then return nil end
    local okn, item, e = pcall(r.next, r)
    if okn and item ~= nil then return item end
    finished = true
    r:close()
    if not okn then return false, tostring(item) end
    if e then return false, e end
    return nil
  end
  -- 4th value: Lua 5.4 closes the reader when the loop is left by break;
  -- LuaJIT ignores it (the reader is then closed by the GC).
  return step, nil, nil, r
end

--- xml.integers(tree, names) -> tree, converted in place
-- Turns the text of the leaf elements and the attributes named in the set
-- `names` (at any depth: a name is not scoped by its element) into
-- integers where it is one ("7540" -> 7540, "000" -> 0, whitespace around
-- it allowed as in any XML integer); anything else is left as it is. Used
-- for the centimes, ids and quantities the spec types as integers
-- (<SPECTACLE IDENT="2185"> -> 2185); order ids (<id>070401758672</id>)
-- are never in such a set.
local function to_integer(v)
  local digits = type(v) == "string" and v:match("^%s*(%-?%d+)%s*$")
  if digits and #digits < 16 then
    local n = tonumber(digits)
    return math.tointeger and math.tointeger(n) or n
  end
  return v
end

function M.integers(tree, names, depth)
  depth = depth or 0
  if type(tree) ~= "table" or depth > 256 then return tree end
  for k, v in pairs(tree) do
    if type(v) == "table" then
      if names[k] and #v > 0 and type(v[1]) == "string" then  -- a repeated leaf
        for i = 1, #v do v[i] = to_integer(v[i]) end
      else
        M.integers(v, names, depth + 1)
      end
    elseif names[k] then
      tree[k] = to_integer(v)
    end
  end
  return tree
end

-- Thousands separators the vendor may use: space, no-break space (U+00A0),
-- narrow no-break space (U+202F).
local NBSP, NNBSP = "\194\160", "\226\128\175"

--- xml.decimal(s) -> number | nil, message
-- Explicit comma-decimal conversion: "18,50" -> 18.5, "5,5" -> 5.5,
-- "1 234,56" -> 1234.56 (space, U+00A0 or U+202F between groups of three
-- digits), "12" -> 12 (an integer on Lua 5.4), "-3,25" -> -3.25. Surrounding
-- spaces are ignored. Anything else, a dot included, gives
-- nil, "not a decimal: ...".
function M.decimal(s)
  if type(s) ~= "string" then return nil, "not a decimal: " .. tostring(s) end
  local t = s:gsub(NBSP, " "):gsub(NNBSP, " "):match("^%s*(.-)%s*$")
  local sign, int, frac = t:match("^([+-]?)([%d ]+),(%d+)$")
  if not sign then sign, int = t:match("^([+-]?)([%d ]+)$") end
  if sign and int:find(" ", 1, true) then
    -- grouped: 1 to 3 digits, then groups of exactly " ddd"
    local head, rest = int:match("^(%d%d?%d?)(.*)$")
    if not head or rest:gsub(" %d%d%d", "") ~= "" then sign = nil end
    int = int:gsub(" ", "")
  end
  if not sign or not int:find("^%d+$") then return nil, "not a decimal: " .. s end
  local n = tonumber(frac and (int .. "." .. frac) or int)
  if sign == "-" then n = 0 - n end  -- 0 - n: no "-0" on LuaJIT
  return n
end

return M
