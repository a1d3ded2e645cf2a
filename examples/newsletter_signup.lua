-- Newsletter sign-up: create the visitor's contact with the newsletter
-- ticked; if the address is already known (code 518), send them to the
-- shop's own newsletter page for that address instead. Prints the link.
--   lua5.4 examples/newsletter_signup.lua email first_name last_name
-- (account from the BILLETTERIE_* environment: README, "Quick start")
local billetterie = require "billetterie"

local email, first, last = arg[1] or "camille.durand@example.fr", arg[2] or "Camille", arg[3] or "Durand"
local NEWSLETTER, TEMPLATE = 1, 11783   -- the venue's code_envoi id and mailing template

local c = billetterie.from_env()
local s = assert(c:session())
local password = ("N%dl-%d"):format(math.random(1e6), os.time())   -- the visitor sets theirs later
local created, err = s:ccontact{
  id_formulaire = 2, mail = email, surname = first, name = last,
  v_passe = password, v_passec = password, code_envoi = { NEWSLETTER },
}
if created then
  print(("%s signed up (contact %d)"):format(email, created.contact.id_contact))
elseif err.code == 518 then                      -- "mail déjà utilisé": already a contact
  print(("%s is already known; confirm on %s"):format(email,
    assert(c:page("3web_mailing_cherche", { template = TEMPLATE, email = email }))))
else
  error(tostring(err))
end
s:logout()
