-- Sales export: the paid carts of a period (ws_cat_histo_achat), each with its
-- detail (ws_det_achat), to CSV: one line per ticket, amounts in euros.
--   BILLETTERIE_URL=... lua5.4 examples/sales_export.lua jj/mm/aaaa jj/mm/aaaa > sales.csv
local billetterie = require "billetterie"

local c = billetterie.from_env()
local params = {}
if arg[1] then params.date_debut, params.date_fin = arg[1], arg[2] end

local function csv(...)
  local out = {}
  for i, v in ipairs{ ... } do out[i] = '"' .. tostring(v):gsub('"', '""') .. '"' end
  return table.concat(out, ";")   -- ';' as French spreadsheets expect
end

local history = assert(c:cat_histo_achat(params))
print(csv("commande", "date", "acheteur", "spectacle", "séance", "prix"))
local lines = 0
for _, cart in ipairs(history.caddy or {}) do
  local detail = assert(c:det_achat{ id_caddy = cart.id })   -- order ids stay strings
  local billets = detail.produits and detail.produits.billets and detail.produits.billets.billet or {}
  for _, b in ipairs(billets) do
    print(csv(cart.id, detail.transaction.datevente, detail.contact.email, b.spectacle, b.dateheure,
      (("%.2f"):format(b.prix_total / 100):gsub("%.", ","))))   -- centimes -> "12,50"
    lines = lines + 1
  end
end
io.stderr:write(("%d cart(s), %d ticket line(s)\n"):format(#(history.caddy or {}), lines))
