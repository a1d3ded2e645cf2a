-- Links to the public pages of the online shop (chapter 3) and the B2B
-- return URL (3.15.4).
--   pages.url(base, "spectacle", { id_spectacle = 577, lng = 1 })
--   c:page("catalogue_spectacle", { filtre = 1, categ = "chanson" })
--   s:page("basket")                       -- with the session's x_rsi_token
--   pages.b2b_return("http://site.fr/?idcaddy=040708408135&cycle=fin")
--   pages.confirm_b2b(c, ret)              -- what the vendor says of that cart
-- Parameters are checked like a web service's (types, formats, enumerations,
-- "needs", date windows in order); the query keeps the spec's parameter
-- order, values percent-encoded (x_rsi_provenance, given as the origin
-- http://127.0.0.1, whole: http%3A%2F%2F127.0.0.1). A filter criterion (the page's
-- filter_criteria) sent without filtre adds filtre=1, the only value the spec
-- allows, so the link is never silently unfiltered; filtre=0 is refused.
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"
local params = require "billetterie.params"

local pages = {}

-- Each page as a service-like table: its own params, then the global ones
-- (lng, x_rsi_token, x_rsi_option, ...).
local PAGES = {}
for name, page in pairs(catalogue.pages) do
  local list = {}
  for _, p in ipairs(page.params or {}) do list[#list + 1] = p end
  for _, p in ipairs(catalogue.page_global_params) do list[#list + 1] = p end
  PAGES[name] = { name = name, path = page.path, params = list }
end

local function invalid(page, name, reason)
  return nil, errors.new{ kind = "invalid_param", ws = page, param = name, retryable = false,
                          message = ("parameter %s %s"):format(name, reason) }
end

local function text(v)
  if type(v) == "number" and v == math.floor(v) then return ("%d"):format(v) end
  return tostring(v)
end

-- RFC 3986 percent-encoding, as the spec's links write it: a space is %20
-- (3.5 famille=Bon%20cadeaux, 3.3 code_regroup=Super%20r), unreserved
-- characters (letters, digits, - . _ ~) and "/", which a query may hold
-- (3.2 date_debut=04/09/2015), stay as they are.
local function escape(s)
  return (s:gsub("[^%w%-%._~/]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- Params the catalogue marks query_encoding = "component" are encoded whole,
-- "/" and ":" too: x_rsi_provenance=http%3A%2F%2F127.0.0.1 (2.7.1.3). An
-- origin holds no "%": a value with %XX was encoded by the caller, so it is
-- decoded once first and never comes out encoded twice.
local function escape_component(s)
  if s:find("%%%x%x") then s = s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end) end
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

-- url(base, name, given) -> absolute URL | nil, err
function pages.url(base, name, given)
  if type(base) ~= "string" or not base:match("^https?://") then
    error("pages.url needs the site's base URL", 2)
  end
  -- a link goes to visitors' browsers: never with the userinfo
  -- (http://user:password@host/) a client's URL may hold for its calls
  base = base:gsub("^(https?://)[^/@]*@", "%1", 1)
  local page = PAGES[name]
  if not page then
    return nil, errors.new{ kind = "invalid_param", ws = name, retryable = false, message = "unknown page " .. tostring(name) }
  end
  given = given or {}
  -- The spec warns that an empty token breaks the page (3.15.2).
  if given.x_rsi_token ~= nil and given.x_rsi_token == "" then
    return invalid(name, "x_rsi_token", "must not be empty (leave it out instead)")
  end
  local fields, bad, reason = params.prepare(page, given, {}, true)
  if not fields then return invalid(name, bad, reason) end
  local query = {}
  for _, p in ipairs(page.params) do
    local v = fields[p.name]
    if v ~= nil then
      local encode = p.query_encoding == "component" and escape_component or escape
      query[#query + 1] = p.name .. "=" .. encode(text(v))
    end
  end
  local url = (base:sub(-1) == "/" and base or base .. "/") .. page.path
  if #query > 0 then url = url .. "?" .. table.concat(query, "&") end
  return url
end

-- The names of every page, sorted.
function pages.names()
  local out = {}
  for name in pairs(PAGES) do out[#out + 1] = name end
  table.sort(out)
  return out
end

-- b2b_return(url_or_query) -> { idcaddy = "040708408135", cycle = "fin", paid = true }
-- | nil, err. idcaddy stays a string (leading zeros); cycle is "fin" when the
-- buyer says they completed the payment, "" otherwise.
-- The return URL comes from the visitor's browser, unsigned: anyone can
-- type ?idcaddy=...&cycle=fin. `paid` only says where to send the visitor
-- (a thank-you page); never deliver on it: confirm with
-- pages.confirm_b2b(c, ret) first, and make delivery idempotent (the same
-- URL can be opened again).
function pages.b2b_return(url)
  if type(url) ~= "string" then error("b2b_return needs the URL or its query string", 2) end
  local query = url:match("%?([^#]*)") or url
  local out = {}
  for pair in query:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    out[unescape(k)] = unescape(v)
  end
  if not out.idcaddy or not out.idcaddy:match("^%d+$") then
    return nil, errors.new{ kind = "decode", ws = "b2b_return", retryable = false,
                            message = "the return URL has no valid idcaddy" }
  end
  local cycle = out.cycle or ""
  if cycle ~= "fin" and cycle ~= "" then
    return nil, errors.new{ kind = "decode", ws = "b2b_return", retryable = false,
                            message = "unexpected cycle value: " .. cycle }
  end
  return { idcaddy = out.idcaddy, cycle = cycle, paid = cycle == "fin" }
end

-- confirm_b2b(c, ret) -> { idcaddy =, paid =, caddy = } | nil, err
-- Asks the vendor, with the client `c`'s own credentials (ws_det_achat),
-- about the cart of `ret`: b2b_return's table, a caddy notification's
-- table (its id), or the cart id as a string. paid is true only when the
-- vendor's <transaction> says paye = "OK"; caddy is the whole cart, to
-- compare its amount (transaction.montant, centimes) and products with what
-- you sold. An unknown cart is the vendor's error (code 702). Deliver on
-- this, never on the browser's cycle=fin nor on a push alone.
function pages.confirm_b2b(c, ret)
  if type(c) ~= "table" or type(c.call) ~= "function" then
    error("pages.confirm_b2b needs a client (billetterie.new) and the return", 2)
  end
  local id = ret
  if type(ret) == "table" then id = ret.idcaddy or ret.id end
  if type(id) ~= "string" or not id:match("^%d+$") then
    return nil, errors.new{ kind = "invalid_param", ws = "ws_det_achat", param = "id_caddy", retryable = false,
                            message = "parameter id_caddy must be the cart id, a string of digits" }
  end
  local caddy, err = c:call("ws_det_achat", { id_caddy = id })
  if not caddy then return nil, err end
  if type(caddy) ~= "table" or caddy.id ~= id then
    return nil, errors.new{ kind = "decode", ws = "ws_det_achat", retryable = false,
                            message = "the answer is not the cart " .. id }
  end
  local transaction = type(caddy.transaction) == "table" and caddy.transaction or {}
  return { idcaddy = id, paid = transaction.paye == "OK", caddy = caddy }
end

return pages
