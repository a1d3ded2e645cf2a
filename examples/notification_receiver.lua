-- Receives the print-card NOTIFY the ticketing server pushes (2.4.6) and
-- prints who got a card. Run: lua5.4 examples/notification_receiver.lua
-- (PORT=0 picks a free port), then point the back-office at the URL it prints.
-- The push is not authenticated (anyone can post one): in production put it
-- behind a secret path and an IP allow-list, confirm with the vendor before
-- acting on it (c:recap_achat{ id_contact = ..., format = "tableau" }), and
-- key what you do on idcarte so a replayed push does nothing twice.
local httpd = require "billetterie.httpd"
local notifications = require "billetterie.notifications"

local function answer(status, text) return status, { ["Content-Type"] = "text/plain" }, text .. "\n" end

local srv = assert(httpd.new{ port = tonumber(os.getenv("PORT") or "8081"), handler = function(req)
  -- The XML comes as the raw body; a form-encoded post (curl -d's default)
  -- is parsed into req.form by the server and has none.
  if req.body == nil then
    return answer(415, "send the NOTIFY as the raw body, Content-Type: text/xml")
  end
  local card, err = notifications.print_card(req.body)
  if not card then return answer(400, tostring(err)) end
  if type(card.idcarte) ~= "string" or type(card.id_contact) ~= "number" then
    return answer(400, "the NOTIFY has no idcarte or id_contact")
  end
  print(("card %s (%s) printed for contact %d"):format(card.idcarte, tostring(card.type_public), card.id_contact))
  io.stdout:flush()
  return answer(200, "OK")
end })
print(("listening on http://127.0.0.1:%d/"):format(srv:port()))
io.stdout:flush()
srv:run()
