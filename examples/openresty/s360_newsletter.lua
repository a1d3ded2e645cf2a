-- S-360 newsletter opt-in page (examples/openresty/nginx.conf, location
-- /s360/newsletter). GET shows the form (CSRF double submit, as /newsletter);
-- POST finds the contact by e-mail (searchContactByCriteria) and grants the
-- newsletter authorization, creating the individual when there is none
-- (saveIndividualContactData). The S-360 client sends its own headers
-- (SOAP: text/xml and SOAPAction; REST: a bearer JWT) through
-- /_billetterie_upstream: no blocking.
local s360 = require "billetterie.s360"
local web = require "web"

local M = {}
local esc = web.escape

local function env(name, default)
  local v = os.getenv(name)
  return (v and v ~= "") and v or default
end

local NEWSLETTER = env("S360_NEWSLETTER", "NEWS")   -- the institution's authorization code

-- One client per worker. The account comes from the environment (declared
-- with `env` in nginx.conf); unset, the sandbox's DEMO institution through
-- the vendor pool. A real vendor: S360_URL=https://mosa.ws.secutix.com and
-- an `upstream mosa.ws.secutix.com` block for its keep-alive pool.
local client
local function s360_client()
  if not client then
    local institution = env("S360_INSTITUTION", "DEMO")
    client = s360.new{
      url = env("S360_URL", ngx.var.billetterie_url .. institution:lower()),
      institution = institution, operator = env("S360_OPERATOR", institution:upper() .. "_B2C"),
      password = env("S360_PASSWORD", "s360-sandbox-secret"), protocol = env("S360_PROTOCOL", "soap"),
      retries = 0,   -- a page answers now
    }
  end
  return client
end

local function show_form(values, problem, status)
  values = values or {}
  web.page("Newsletter", table.concat{
    problem and ("<p class=\"error\">" .. esc(problem) .. "</p>") or "",
    "<form method=\"post\" action=\"/s360/newsletter\">", web.csrf_issue("/s360/newsletter"),
    "<label>E-mail <input type=\"email\" name=\"mail\" value=\"", esc(values.mail), "\"></label>",
    "<label>First name <input name=\"first\" value=\"", esc(values.first), "\"></label>",
    "<label>Last name <input name=\"last\" value=\"", esc(values.last), "\"></label>",
    "<button type=\"submit\">Sign up</button></form>",
  }, status)
end

local function failed(err)
  web.page("Newsletter", "<p class=\"error\">Sign-up failed: " .. esc(err.message) .. "</p>",
    err.kind == "vendor" and 400 or 502)
end

local function sign_up()
  local args = web.post_args()
  if not args then return end
  local v = { mail = web.field(args, "mail"), first = web.field(args, "first"), last = web.field(args, "last") }
  if not v.mail or #v.mail > 100 or not v.mail:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    return show_form(v, "Please give a valid e-mail address.", 400)
  end
  if #(v.first or "") > 100 or #(v.last or "") > 100 then return show_form(v, "Names are too long.", 400) end
  local c = s360_client()
  local found, err = c:searchContactByCriteria{ searchCriteria = { email = v.mail, contactTypeScope = "INDIVIDUAL" } }
  if not found then return failed(err) end
  local optin = { { authorizationCode = NEWSLETTER, allowed = true } }
  local number = found.contacts[1] and found.contacts[1].contactNumber
  local saved
  if number then
    saved, err = c:saveIndividualContactData{ contactNumber = number, authorizations = optin }
  else
    saved, err = c:saveIndividualContactData{ authorizations = optin, individualContactData = {
      email = v.mail, firstname = v.first ~= "" and v.first or nil, lastname = v.last ~= "" and v.last or nil } }
  end
  if not saved then return failed(err) end
  web.page("Newsletter", ("<p class=\"ok\">%s is signed up (%s contact %s).</p>"):format(
    esc(v.mail), number and "known" or "new", esc(saved.contactNumber or number)))
end

function M.handle()
  return web.dispatch{ GET = show_form, POST = sign_up }
end

return M
