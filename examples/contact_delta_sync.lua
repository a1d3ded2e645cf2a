-- Nightly delta sync: ask the change feed what changed since the last run
-- and remember where the next run starts (statut.next_ts), in a state file.
--   lua5.4 examples/contact_delta_sync.lua state.txt
-- (account from the BILLETTERIE_* environment, BILLETTERIE_API_* included: README, "Quick start")
local billetterie = require "billetterie"

local state = arg[1] or os.tmpname()
local f = io.open(state)
local since = f and f:read("*l") or "2000-01-01T00:00:00"
if f then f:close() end

local c = billetterie.from_env()
local data, statut = c:liste_fiches_modifiees{ ts = since }
if not data then error(tostring(statut)) end
for _, contact in ipairs(data.liste_contacts or {}) do
  print(("contact %d: %s %s <%s>"):format(contact.id_contact, contact.surname or "", contact.name or "", contact.mail or ""))
end
for _, o in ipairs(data.liste_organismes or {}) do
  print(("organisme %d: %s"):format(o.id_organisme, o.intitule))
end
f = assert(io.open(state, "w"))
f:write(statut.next_ts, "\n")   -- a record may come twice, never be missed
f:close()
