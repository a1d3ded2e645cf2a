-- Account area: log a visitor in, then hand out links to the shop's pages
-- opened already signed in (x_rsi_token). Such pages must not be cached.
--   lua5.4 examples/account_area.lua email   (password on stdin)
-- (account from the BILLETTERIE_* environment: README, "Quick start")
local billetterie = require "billetterie"

local email = arg[1] or "herve.richon@example.org"
local password = io.read("*l") or ""

local s = assert(billetterie.from_env():session())
local who, err = s:login(email, password)
if not who then
  print("login refused: " .. err.message)
  os.exit(1)
end
print(("Bonjour %s %s"):format(who.contact.surname, who.contact.name))
for _, page in ipairs{ "mes_coordonnees", "historique_commandes", "evenements_a_venir", "basket" } do
  print(page, assert(s:page(page)))
end
