-- What the ticketing server pushes to the integrator's own URLs:
--   notifications.print_card(body)  -- the card-print NOTIFY (2.4.6)
--   notifications.caddy(body)       -- the ws_det_achat notification (2.4.2.2)
-- Each returns a table (integers where the spec types them so, order ids
-- as strings) or nil, err (kind "decode") for a body that is not the
-- expected document. A receiving endpoint answers 200 once it has the table.
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

local function parse(kind, body)
  local k = KINDS[kind]
  local function fail(message)
    return nil, errors.new{ kind = "decode", ws = k.push.name, retryable = false, message = message }
  end
  if type(body) ~= "string" or not body:find("%S") then return fail("empty notification body") end
  local doc, root = xml.decode(body, { arrays = set_of(k.push.xml_arrays), max_size = 16 * 1024 * 1024 })
  if doc == nil then return fail("malformed XML: " .. tostring(root)) end
  if root ~= k.root then return fail(("expected <%s>, got <%s>"):format(k.root, root)) end
  if type(doc) ~= "table" then return fail(("<%s> is empty"):format(k.root)) end
  return xml.integers(doc, set_of(k.push.xml_integers))
end

function notifications.print_card(body) return parse("print_card", body) end
function notifications.caddy(body) return parse("caddy", body) end

return notifications
