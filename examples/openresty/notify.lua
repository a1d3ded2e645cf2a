-- Print-card notification receiver (location /notify/print-card): the
-- ticketing server POSTs a <NOTIFY> document (spec 2.4.6) when a card is
-- printed. The body is parsed with billetterie.notifications, checked, the
-- card recorded in the lua_shared_dict billetterie_notifications (ids and
-- card type only: no names, nothing secret) and logged; the answer is 200
-- "OK" (the spec asks for nothing more), 400 for a body that is not a NOTIFY.
local notifications = require "billetterie.notifications"
local json = require "billetterie.json"

local M = {}

local function answer(status, text)
  ngx.status = status
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  ngx.say(text)
end

local function body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  if data then return data end
  local path = ngx.req.get_body_file()   -- larger than client_body_buffer_size
  if not path then return "" end
  local f = io.open(path, "rb")
  if not f then return "" end
  data = f:read("*a")
  f:close()
  return data
end

function M.handle()
  if ngx.req.get_method() ~= "POST" then
    ngx.header["Allow"] = "POST"
    return answer(405, "POST a NOTIFY document here")
  end
  local card, err = notifications.print_card(body())
  if not card then
    ngx.log(ngx.WARN, "print-card NOTIFY refused: ", err.message)
    return answer(400, "not a print-card NOTIFY: " .. err.message)
  end
  if type(card.idcarte) ~= "string" or card.idcarte == "" or type(card.id_contact) ~= "number" then
    ngx.log(ngx.WARN, "print-card NOTIFY refused: no idcarte or id_contact")
    return answer(400, "the NOTIFY has no idcarte or id_contact")
  end
  local record = json.encode{ idcarte = card.idcarte, type_public = card.type_public,
    id_contact = card.id_contact, id_clistru = card.id_clistru, id_organisme = card.id_organisme,
    received_at = ngx.time() }
  local dict = ngx.shared.billetterie_notifications
  if dict then
    local ok, why = dict:set("card:" .. card.idcarte, record, 7 * 86400)
    if not ok then
      ngx.log(ngx.ERR, "print-card NOTIFY not stored: ", why)
      return answer(503, "cannot store the notification now")
    end
  end
  ngx.log(ngx.NOTICE, "print-card NOTIFY: card ", card.idcarte, " (", tostring(card.type_public),
    ") for contact ", card.id_contact)
  answer(200, "OK")
end

return M
