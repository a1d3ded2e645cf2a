-- billetterie.sandbox.s360_values: reading S-360 parameters the same way
-- whether they came from SOAP (every leaf a string, lists as repeated
-- elements) or from REST (JSON types), and the business failures.
--
-- A method raises a failure with fail(reason, detail); s360.lua turns it
-- into HTTP 200 with a non-`success` statusCode (STATUS below) and the
-- detail as statusDetail. Raised inside a db:tx, it also undoes the writes:
-- a failed save changes nothing.

local codec = require "billetterie.sandbox.codec"
local VALID_DAY = require("billetterie.params").DATE_FORMATS["AAAA-MM-JJ"]

local M = {}

-- reason -> statusCode. The real failure codes are UNKNOWN (reference 1.4);
-- these short lower-case words (8 characters at most, the documented
-- length) are the sandbox's choice, listed in docs/sandbox-s360.md.
M.STATUS = {
  invalid = "invalid",   -- a parameter missing, of the wrong type, or an unknown code
  notfound = "notfound", -- no such contact (or member, link...)
  denied = "denied",     -- authentication refused (password, token, point of sales)
  conflict = "conflict", -- a login or social link already taken
  failed = "failed",     -- anything else
}

local FAILURE = {}
FAILURE.__index = FAILURE

function M.fail(reason, detail)
  assert(M.STATUS[reason], "unknown failure reason")
  error(setmetatable({ reason = reason, detail = detail }, FAILURE), 0)
end

function M.is_failure(e) return getmetatable(e) == FAILURE end

local function is_array(t)
  return type(t) == "table" and (t[1] ~= nil or next(t) == nil)
end

-- A scalar as a string; nil for absent or empty. A table is an error.
function M.str(v, name)
  if v == nil or v == "" or v == codec.null then return nil end
  local t = type(v)
  if t == "string" then return v end
  if t == "number" then return math.tointeger(v) and tostring(math.tointeger(v)) or tostring(v) end
  if t == "boolean" then return tostring(v) end
  M.fail("invalid", name .. ": a single value expected")
end

-- A required string.
function M.need(v, name)
  return M.str(v, name) or M.fail("invalid", name .. " is required")
end

local BOOL = { ["true"] = true, ["1"] = true, ["false"] = false, ["0"] = false }

-- xsd:boolean: true/false/1/0; nil when absent.
function M.bool(v, name)
  if v == nil or v == "" or v == codec.null then return nil end
  if type(v) == "boolean" then return v end
  local b = BOOL[tostring(v):lower()]
  if b == nil then M.fail("invalid", name .. ": true or false expected") end
  return b
end

-- xsd:long; nil when absent.
function M.int(v, name)
  if v == nil or v == "" or v == codec.null then return nil end
  local n = math.type(v) == "integer" and v or (type(v) == "string" and v:match("^%s*%-?%d+%s*$")
    and math.tointeger(tonumber(v)))
  if not n then M.fail("invalid", name .. ": an integer expected") end
  return n
end

-- A list: JSON array, repeated SOAP elements, or one element given once.
function M.list(v)
  if v == nil or v == "" or v == codec.null then return {} end
  if is_array(v) then return v end
  return { v }
end

-- A nested data type: a table of fields (an empty SOAP element is "").
function M.object(v, name)
  if v == nil or v == "" or v == codec.null then return nil end
  if type(v) ~= "table" or (v[1] ~= nil) then M.fail("invalid", name .. ": an object expected") end
  -- REST's {} is SOAP's empty element: absent, so both answer "is required"
  if next(v) == nil then return nil end
  return v
end

-- YYYY-MM-DD (a dateTime's date part is accepted). -> "YYYY-MM-DD" or nil
function M.date(v, name)
  local s = M.str(v, name)
  if not s then return nil end
  local day = s:match("^%d%d%d%d%-%d%d%-%d%d")
  if not (day and VALID_DAY(day)) then M.fail("invalid", name .. ": a date YYYY-MM-DD expected") end
  return day
end

-- Text of at most `max` characters (UTF-8).
function M.text(v, name, max)
  local s = M.str(v, name)
  if not s then return nil end
  local n = utf8.len(s)
  if not n then M.fail("invalid", name .. ": invalid UTF-8") end
  if max and n > max then M.fail("invalid", ("%s: %d characters at most"):format(name, max)) end
  return s
end

-- unix seconds -> xsd:dateTime in UTC
function M.datetime(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

return M
