-- Receives the print-card NOTIFY the ticketing server pushes (2.4.6) and
-- prints who got a card. Run: lua5.4 examples/notification_receiver.lua
-- (PORT=0 picks a free port), then point the back-office at the URL it prints.
local httpd = require "billetterie.httpd"
local notifications = require "billetterie.notifications"

local srv = assert(httpd.new{ port = tonumber(os.getenv("PORT") or "8081"), handler = function(req)
  local card, err = notifications.print_card(req.body or "")
  if not card then return 400, { ["Content-Type"] = "text/plain" }, tostring(err) .. "\n" end
  print(("card %s (%s) printed for contact %d"):format(card.idcarte, card.type_public, card.id_contact))
  io.stdout:flush()
  return 200, { ["Content-Type"] = "text/plain" }, "OK\n"
end })
print(("listening on http://127.0.0.1:%d/"):format(srv:port()))
io.stdout:flush()
srv:run()
