-- billetterie: drive L@billetterie (Ressources SI) from Lua.
--   local billetterie = require "billetterie"
--   local c = billetterie.new{ url = ..., login = ..., password = ..., client_id = ... }
--   local msg, statut = c:call("ws_idsession")        -- or nil, err
--   c:info_organisme{ id_organisme = 5442 }            -- a method per web service
--   local s = c:session(); s:login(ident, password)    -- token services on the session
local client = require "billetterie.client"
local runner = require "billetterie.runner"
local core = require "billetterie.core"
local xml = require "billetterie.xml"

local billetterie = {
  version = core.version,
  new = client.new,
  run = runner.run,
  spawn = runner.spawn,
  map = runner.map,
  sleep = runner.sleep,
  codes = require "billetterie.codes",
  errors = require "billetterie.error",
  pages = require "billetterie.pages",
  notifications = require "billetterie.notifications",
  -- "18,50" -> 18.5: the explicit conversion of the vendor's comma decimals
  decimal = xml.decimal,
}

return billetterie
