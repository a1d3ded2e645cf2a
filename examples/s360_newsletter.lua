-- S-360 newsletter sign-up: find the contact by e-mail, create an
-- individual (with a shop login) when there is none, grant the newsletter
-- authorization, then log the contact on and print the remember-me cookie
-- that opens the ticket shop already logged in.
--
--   S360_URL=http://127.0.0.1:PORT/demo S360_INSTITUTION=DEMO S360_OPERATOR=DEMO_B2C \
--   S360_PASSWORD=s360-sandbox-secret [S360_PROTOCOL=rest] \
--     lua5.4 examples/s360_newsletter.lua email [first_name last_name] < password_file
--
-- The contact's password is the first line of stdin, never an argument
-- (the command line is visible to every user in ps). Without S360_URL it
-- talks to the vendor's demo host of S360_INSTITUTION.
local s360 = require "billetterie.s360"

local email = arg[1] or "camille.durand@example.fr"
local first, last = arg[2] or "Camille", arg[3] or "Durand"
local password = io.read("*l")
if not password or password == "" then
  io.stderr:write("give the contact's password on stdin (the first line)\n")
  os.exit(1)
end
local NEWSLETTER = os.getenv("S360_NEWSLETTER") or "NEWS"   -- the institution's authorization code

local institution = os.getenv("S360_INSTITUTION") or "DEMO"
local c = s360.new{
  url = os.getenv("S360_URL"), institution = institution, environment = "demo",
  operator = os.getenv("S360_OPERATOR") or (institution:upper() .. "_B2C"),
  password = assert(os.getenv("S360_PASSWORD"), "set S360_PASSWORD (the operator's secret)"),
  protocol = os.getenv("S360_PROTOCOL") or "soap",
}

local function check(result, err)
  if not result then
    io.stderr:write(tostring(err), "\n")
    os.exit(1)
  end
  return result
end

-- The newsletter must be one of the institution's authorizations (a static
-- list: the client caches it for two hours).
local known = false
for _, a in ipairs(check(c:getAvailableAutorizations()).authorizations) do
  if a.code == NEWSLETTER then known = true end
end
if not known then check(nil, "no authorization " .. NEWSLETTER .. " in this institution") end

-- 1. find the contact by e-mail; 2. create an individual when absent
local found = check(c:searchContactByCriteria{ searchCriteria = { email = email, contactTypeScope = "INDIVIDUAL" } })
local number
if found.contacts[1] then
  number = found.contacts[1].contactNumber
  print(("%s is contact %s"):format(email, number))
else
  number = check(c:saveIndividualContactData{
    individualContactData = { firstname = first, lastname = last, email = email },
    createLogin = true, password = password,
  }).contactNumber
  print(("%s created as contact %s"):format(email, number))
end

-- 3. grant the newsletter authorization (the other opt-ins are left alone)
check(c:saveIndividualContactData{ contactNumber = number,
  authorizations = { { authorizationCode = NEWSLETTER, allowed = true } } })
print(("authorization %s granted"):format(NEWSLETTER))

-- 4. log on with "remember me" at the first point of sales the contact may
-- use, and print the cookie for the ticket shop
local credentials = { login = email, password = password }
local pos = check(c:listAuthorizedPOS{ contactAuthenticationData = credentials }).pointOfSales[1]
if not pos then check(nil, "the contact may use no point of sales") end
credentials.rememberMe, credentials.pointOfSalesId = true, pos.id
local auth = check(c:authenticate{ contactAuthenticationData = credentials })
print("Set-Cookie: " .. check(c:remember_me_cookie(auth, pos)))
