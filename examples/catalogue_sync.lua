-- Season catalogue sync: stream ws_programmation (once a season) into a JSON
-- file, one show at a time; then fetch only what changed since a date.
--   lua5.4 examples/catalogue_sync.lua shows.json [AAAAMMJJ]
-- (account from the BILLETTERIE_* environment: README, "Quick start")
local billetterie = require "billetterie"
local cjson = require "cjson"

local path, since = arg[1] or os.tmpname(), arg[2]
local c = billetterie.from_env()

local shows = {}
local f = io.open(path)
if f and since then shows = cjson.decode(f:read("*a")) end   -- incremental: update the store
if f then f:close() end

local params = { each = "SPECTACLE" }
if since then params.filtre, params.date_modif = 1, since end
local count = 0
for show, err in c:programmation(params) do
  if not show then error(tostring(err)) end
  -- REPRESENTATION is always a list, even of one; a show without any has an
  -- empty <REPRESENTATIONS/>, which decodes to ""
  local reps = type(show.REPRESENTATIONS) == "table" and show.REPRESENTATIONS.REPRESENTATION or {}
  -- IDENT is an integer; the store is a JSON object, whose keys are strings
  shows[tostring(show.IDENT)] = { nom = show.NOM, type = show.TYPE, representations = #reps }
  count = count + 1
end
-- A show missing from a filtered answer is NOT withdrawn (spec 2.1.1): keep it.
f = assert(io.open(path, "w"))
f:write(cjson.encode(shows))
f:close()
print(("%d show(s) %s, store %s"):format(count, since and ("changed since " .. since) or "loaded", path))
