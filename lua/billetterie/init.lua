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

-- billetterie.from_env([extra options]): a client configured from the
-- environment, so scripts never carry credentials: BILLETTERIE_URL,
-- BILLETTERIE_LOGIN, BILLETTERIE_PASSWORD, BILLETTERIE_CLIENT, and for the
-- change feed BILLETTERIE_API_URL, BILLETTERIE_API_LOGIN, BILLETTERIE_API_KEY,
-- and BILLETTERIE_PWD_KEY (x_rsi_pwd_key of ws_modification_pwd).
local ENV = {
  url = "BILLETTERIE_URL", login = "BILLETTERIE_LOGIN", password = "BILLETTERIE_PASSWORD",
  client_id = "BILLETTERIE_CLIENT", api_url = "BILLETTERIE_API_URL", api_login = "BILLETTERIE_API_LOGIN",
  api_key = "BILLETTERIE_API_KEY", pwd_key = "BILLETTERIE_PWD_KEY",
}
function billetterie.from_env(extra, getenv)
  getenv = getenv or os.getenv
  local opts = {}
  for option, var in pairs(ENV) do
    local v = getenv(var)
    if v and v ~= "" then opts[option] = option == "client_id" and tonumber(v) or v end
  end
  for k, v in pairs(extra or {}) do opts[k] = v end
  if not opts.url then error("billetterie.from_env: set BILLETTERIE_URL", 2) end
  return client.new(opts)
end

return billetterie
