-- Sales export: the paid carts of a period (ws_cat_histo_achat), each with its
-- detail (ws_det_achat), to CSV: one line per ticket, whether bought alone or
-- with a card (subscription, membership), and one per card; amounts in euros.
--   lua5.4 examples/sales_export.lua jj/mm/aaaa jj/mm/aaaa > sales.csv
-- (account from the BILLETTERIE_* environment: README, "Quick start")
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
local function euros(centimes) return (("%.2f"):format(centimes / 100):gsub("%.", ",")) end   -- "12,50"

print(csv("commande", "date", "acheteur", "produit", "spectacle", "séance", "prix"))
local tickets, cards = 0, 0
for _, cart in ipairs(history.caddy or {}) do
  local detail = assert(c:det_achat{ id_caddy = cart.id })   -- order ids stay strings
  local produits = detail.produits or {}
  local function line(what, b)
    print(csv(cart.id, detail.transaction.datevente, detail.contact.email, what, b.spectacle or "",
      b.dateheure or "", euros(b.prix_total)))
  end
  -- tickets bought alone (produits.billets), then each card with the tickets it holds
  for _, b in ipairs(produits.billets and produits.billets.billet or {}) do
    line("billet", b)
    tickets = tickets + 1
  end
  for _, card in ipairs(produits.cartes and produits.cartes.carte or {}) do
    line("carte " .. card.libelle, card)   -- the card's own price, tickets apart
    cards = cards + 1
    for _, b in ipairs(card.billets and card.billets.billet or {}) do
      line("billet (" .. card.libelle .. ")", b)
      tickets = tickets + 1
    end
  end
end
io.stderr:write(("%d cart(s), %d ticket(s), %d card(s)\n"):format(#(history.caddy or {}), tickets, cards))
