-- Newsletter sign-up: create the visitor's contact with the newsletter
-- ticked; if the address is already known (code 518), send them to the
-- shop's own newsletter page for that address instead. Prints the link.
--   lua5.4 examples/newsletter_signup.lua email first_name last_name
-- (account from the BILLETTERIE_* environment: README, "Quick start")
local billetterie = require "billetterie"

local email, first, last = arg[1] or "camille.durand@example.fr", arg[2] or "Camille", arg[3] or "Durand"
local NEWSLETTER, TEMPLATE = 1, 11783   -- the venue's code_envoi id and mailing template

-- A password nobody can guess (the visitor sets their own later): 128 bits
-- from the kernel, never math.random (LuaJIT does not seed it: the same
-- every run) nor the clock. "Nl7-" gives it an upper-case letter, a
-- lower-case letter and a digit, with no "@": annex 4.7's rules, which
-- s:ccontact checks again before sending (code 523 otherwise).
local function temporary_password()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return "Nl7-" .. (bytes:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

local c = billetterie.from_env()
local s = assert(c:session())
local password = temporary_password()
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
