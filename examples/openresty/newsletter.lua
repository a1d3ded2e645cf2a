-- Newsletter sign-up page (examples/openresty/nginx.conf, location /newsletter).
-- GET shows the form with a CSRF token (double submit: the same random value
-- in an HttpOnly cookie and in a hidden field); POST checks the token and the
-- fields, creates the contact with the newsletter ticked (ws_idsession then
-- ws_ccontact) or, for a known address (code 518), links to the shop's own
-- newsletter page. Everything shown is HTML-escaped. Calls go through
-- billetterie.transport_ngx: no blocking.
local billetterie = require "billetterie"
local ngx_session = require "billetterie.ngx_session"
local web = require "web"

local M = {}
local esc = web.escape
M.escape = esc

local NEWSLETTER, TEMPLATE = 1, 11783   -- the venue's code_envoi id and mailing template

local function form(values, problem)
  values = values or {}
  return table.concat{
    problem and ("<p class=\"error\">" .. esc(problem) .. "</p>") or "",
    "<form method=\"post\" action=\"/newsletter\">",
    web.csrf_issue("/newsletter"),
    "<label>E-mail <input type=\"email\" name=\"mail\" value=\"", esc(values.mail), "\"></label>",
    "<label>First name <input name=\"surname\" value=\"", esc(values.surname), "\"></label>",
    "<label>Last name <input name=\"name\" value=\"", esc(values.name), "\"></label>",
    "<button type=\"submit\">Sign up</button></form>",
  }
end

local function show_form(values, problem, status)
  web.page("Newsletter", form(values, problem), status)
end

local function validate(args)
  local v = { mail = web.field(args, "mail"), name = web.field(args, "name"), surname = web.field(args, "surname") }
  if not v.mail or #v.mail > 100 or not v.mail:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    return v, "Please give a valid e-mail address."
  end
  if not v.name or v.name == "" or #v.name > 60 then return v, "Please give your last name." end
  if not v.surname or v.surname == "" or #v.surname > 60 then return v, "Please give your first name." end
  return v
end

-- A password nobody can guess for the new contact (the visitor sets their
-- own later): 128 bits from the kernel (ngx_session.random_id, never
-- math.random, which nginx does not seed) with an upper-case letter, a
-- lower-case letter and a digit added, no "@": annex 4.7's rules
-- (catalogue.password_rules).
function M.temporary_password()
  return "Nl7-" .. ngx_session.random_id()
end

local function sign_up()
  local args = web.post_args()
  if not args then return end
  local v, problem = validate(args)
  if problem then return show_form(v, problem, 400) end

  local c = web.client()
  local s, err = c:session()
  if not s then
    return web.page("Newsletter", "<p class=\"error\">The box office is not answering: " .. esc(err.message) .. "</p>", 502)
  end
  local password = M.temporary_password()   -- the visitor sets theirs later
  local created
  created, err = s:ccontact{
    id_formulaire = 2, mail = v.mail, surname = v.surname, name = v.name,
    v_passe = password, v_passec = password, code_envoi = { NEWSLETTER },
  }
  if created then
    web.page("Newsletter", ("<p class=\"ok\">Thank you %s %s, %s is signed up (contact %s).</p>"):format(
      esc(v.surname), esc(v.name), esc(v.mail), esc(created.contact and created.contact.id_contact)))
  elseif err.code == 518 then   -- "mail déjà utilisé": already a contact
    local link = billetterie.pages.url(web.shop(), "3web_mailing_cherche", { template = TEMPLATE, email = v.mail })
    web.page("Newsletter", ("<p class=\"known\">%s is already known; <a href=\"%s\">confirm your subscription</a>.</p>"):format(
      esc(v.mail), esc(link)))
  else
    web.page("Newsletter", "<p class=\"error\">Sign-up failed: " .. esc(err.message) .. "</p>",
      err.kind == "vendor" and 400 or 502)
  end
  s:logout()
end

function M.handle()
  return web.dispatch{ GET = show_form, POST = sign_up }
end

-- /slow: one ws_idsession; the body is its statut code (or the error kind).
function M.slow()
  local _, statut = web.client():call("ws_idsession")
  ngx.header["Content-Type"] = "text/plain"
  ngx.header["Cache-Control"] = "no-store"
  if statut.kind then ngx.status = 502; return ngx.say(statut.kind) end
  ngx.say(statut.code)
end

return M
