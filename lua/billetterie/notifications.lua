-- What the ticketing server pushes to the integrator's own URLs:
--   notifications.print_card(body)  -- the card-print NOTIFY (2.4.6)
--   notifications.caddy(body)       -- the ws_det_achat notification (2.4.2.2)
-- `body` is the request's raw body (XML). Each returns a table or nil, err
-- (kind "decode") for a body that is not the expected document. Fields the
-- spec types as integers (ids, centimes) are integers or absent (an empty
-- element is read as absent, anything else is refused); order ids stay
-- strings (leading zeros). A receiving endpoint answers 200 once it has the
-- table.
--
-- A push is NOT authenticated: the spec documents no signature, secret or
-- source address, so anyone who knows or guesses the URL can post a
-- well-formed <caddy> with <paye>OK</paye> or a NOTIFY for any contact.
-- Parsing one proves nothing. Before delivering anything:
--   * confirm with the vendor, with your own credentials: for a caddy,
--     billetterie.pages.confirm_b2b(c, n.id) (ws_det_achat: paid only when
--     the vendor says paye = "OK"; compare the amount and products with
--     what you sold); for a NOTIFY, the contact's purchases
--     (c:recap_achat{ id_contact = n.id_contact, format = "tableau" });
--   * protect the receiving URL: a secret path, an IP allow-list of the
--     vendor's servers, HTTPS;
--   * make handling idempotent: a push may come twice (the vendor's retry,
--     or a replay); key what you do on the order id / card id.
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"
local xml = require "billetterie.xml"

local notifications = {}

local function set_of(list)
  local set = {}
  for _, n in ipairs(list or {}) do set[n] = true end
  return set
end

-- root element expected, and the push's schema in the catalogue
local KINDS = {
  print_card = { root = "NOTIFY", push = catalogue.pushes.notify_impression_carte },
  caddy = { root = "caddy", push = catalogue.pushes["ws_det_achat#notification"] },
}

-- The first integer-typed field of `tree` that xml.integers left as text
-- (not a whole number: "abc", "12.5", 16 digits or more), or nil; an empty
-- one ("", <id_organisme/>) is removed. The value is never echoed: the
-- message names the field only.
local function not_integer(tree, names, depth)
  if type(tree) ~= "table" or depth > 256 then return nil end
  for k, v in pairs(tree) do
    if names[k] and type(v) == "string" then
      if v:find("%S") then return k end
      tree[k] = nil   -- clearing a field during pairs is allowed
    elseif type(v) == "table" then
      if names[k] and #v > 0 and type(v[1]) ~= "table" then   -- a repeated leaf, as xml.integers sees one
        for i = 1, #v do
          if type(v[i]) == "string" then return k end
        end
      else
        local bad = not_integer(v, names, depth + 1)
        if bad then return bad end
      end
    end
  end
end

local function parse(kind, body)
  local k = KINDS[kind]
  local function fail(message)
    return nil, errors.new{ kind = "decode", ws = k.push.name, retryable = false, message = message }
  end
  if type(body) ~= "string" then
    -- billetterie.httpd parses a form-encoded request and keeps no raw body
    return fail("no notification body (got " .. type(body) .. "): pass the raw request body, "
      .. "sent as text/xml or application/xml")
  end
  if not body:find("%S") then return fail("empty notification body") end
  local doc, root = xml.decode(body, { arrays = set_of(k.push.xml_arrays), max_size = 16 * 1024 * 1024 })
  if doc == nil then return fail("malformed XML: " .. tostring(root)) end
  if root ~= k.root then return fail(("expected <%s>, got <%s>"):format(k.root, root)) end
  if type(doc) ~= "table" then return fail(("<%s> is empty"):format(k.root)) end
  local integers = set_of(k.push.xml_integers)
  xml.integers(doc, integers)
  local bad = not_integer(doc, integers, 0)
  if bad then return fail(("<%s> is not an integer"):format(bad)) end
  return doc
end

function notifications.print_card(body) return parse("print_card", body) end
function notifications.caddy(body) return parse("caddy", body) end

return notifications
