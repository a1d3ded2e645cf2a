-- billetterie: drive L@billetterie (Ressources SI) from Lua.
--   local billetterie = require "billetterie"
--   local c = billetterie.new{ url = ..., login = ..., password = ..., client_id = ... }
--   local msg, statut = c:call("ws_idsession")        -- or nil, err
local client = require "billetterie.client"
local runner = require "billetterie.runner"
local core = require "billetterie.core"

local billetterie = {
  version = core.version,
  new = client.new,
  run = runner.run,
  spawn = runner.spawn,
  codes = require "billetterie.codes",
  errors = require "billetterie.error",
}

return billetterie
