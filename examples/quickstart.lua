-- Quick start: open a session, create an organisme, read it back, and see
-- what a refusal looks like. `make demo` runs it against a fresh sandbox;
-- against your own server: BILLETTERIE_URL=http://... lua5.4 examples/quickstart.lua
-- (credentials from BILLETTERIE_LOGIN / BILLETTERIE_PASSWORD / BILLETTERIE_CLIENT;
-- the defaults are the vendor's documented test account).
local billetterie = require "billetterie"

local c = billetterie.new{
  url = os.getenv("BILLETTERIE_URL") or "http://127.0.0.1:8080/",
  login = os.getenv("BILLETTERIE_LOGIN") or "xrsitest",
  password = os.getenv("BILLETTERIE_PASSWORD") or "xrsimdp",
  client_id = tonumber(os.getenv("BILLETTERIE_CLIENT") or "677"),
  timeout = 10,
}

local function check(value, err)
  if value == nil then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return value, err
end

-- 1. A session token (never print it: it is a credential).
local session, statut = check(c:call("ws_idsession"))
print(("ws_idsession: %d %s, valid for %s"):format(statut.code, statut.message, session.duree))
local status = check(c:call("ws_status_session", { x_rsi_token = session.jeton }))
print(("ws_status_session: status %s, %d s left"):format(tostring(status.status), status.temps_restant))

-- 2. Create an organisme: Lua tables go as the base64 JSON the spec asks for.
local created, created_statut = check(c:call("ws_organisme_creation", {
  organisme = { intitule = "Théâtre du Pont", nature = "Association", type = "Compagnie" },
  adresses = { { type_adresse = "Principale", adress1 = "3 quai du Rhône", code_postal = "69002", ville = "Lyon" } },
}))
local id = created.organisme.id_organisme
print(("ws_organisme_creation: %d %s, id_organisme %d"):format(created_statut.code, created_statut.message, id))

-- 3. Read it back: the id goes back on the wire exactly as it came.
local read = check(c:call("ws_info_organisme", { id_organisme = id }))
print(("ws_info_organisme: %s (%s), %d address(es)"):format(read.organisme.intitule, read.organisme.nature,
  #(read.organisme.adresses or {})))

-- 4. Expected failures are values, not exceptions.
local missing, err = c:call("ws_info_organisme", { id_organisme = 999999 })
assert(missing == nil)
print(("unknown organisme: kind=%s code=%s retryable=%s"):format(err.kind, tostring(err.code), tostring(err.retryable)))
local _, bad = c:call("ws_info_organisme", { id_organisme = "12a" })
print("checked before sending: " .. tostring(bad))

-- 5. Close the session.
local _, closed = check(c:call("ws_deconnexion_session", { x_rsi_token = session.jeton }))
print(("ws_deconnexion_session: %d %s"):format(closed.code, closed.message))
