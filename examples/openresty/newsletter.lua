-- Newsletter sign-up page for OpenResty (examples/openresty/nginx.conf).
-- GET /newsletter shows the form with a CSRF token (double submit: the
-- same random value in an HttpOnly cookie and in a hidden field); POST
-- checks the token and the fields, creates the contact with the newsletter
-- ticked (ws_idsession then ws_ccontact) or, for a known address (code
-- 518), links to the shop's own newsletter page. Everything shown is
-- HTML-escaped. Calls go through billetterie.transport_ngx: no blocking.
local billetterie = require "billetterie"
local transport_ngx = require "billetterie.transport_ngx"

local M = {}

local NEWSLETTER, TEMPLATE = 1, 11783   -- the venue's code_envoi id and mailing template

local clients = {}   -- one client per vendor URL, per worker
local function client(url)
  local c = clients[url]
  if not c then
    c = billetterie.new{
      url = url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10,
      retries = 0,   -- a retry would sleep with the thread's sleep: blocking in nginx
      transport = transport_ngx.new{ location = "/_billetterie_upstream" },
    }
    clients[url] = c
  end
  return c
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(s)
  return (tostring(s or ""):gsub("[&<>\"']", ESCAPES))
end
M.escape = esc

local function random_token()
  local f = assert(io.open("/dev/urandom", "rb"))
  local bytes = f:read(16)
  f:close()
  return (bytes:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
end

local function page(title, inner)
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  ngx.header["Cache-Control"] = "no-store"
  ngx.say("<!doctype html><html><head><meta charset=\"utf-8\"><title>", esc(title),
    "</title></head><body><h1>", esc(title), "</h1>", inner, "</body></html>")
end

local function form(token, values, problem)
  values = values or {}
  return table.concat{
    problem and ("<p class=\"error\">" .. esc(problem) .. "</p>") or "",
    "<form method=\"post\" action=\"/newsletter\">",
    "<input type=\"hidden\" name=\"csrf\" value=\"", esc(token), "\">",
    "<label>E-mail <input type=\"email\" name=\"mail\" value=\"", esc(values.mail), "\"></label>",
    "<label>First name <input name=\"surname\" value=\"", esc(values.surname), "\"></label>",
    "<label>Last name <input name=\"name\" value=\"", esc(values.name), "\"></label>",
    "<button type=\"submit\">Sign up</button></form>",
  }
end

local function show_form(values, problem, status)
  local token = random_token()
  ngx.header["Set-Cookie"] = "csrf=" .. token .. "; Path=/newsletter; HttpOnly; SameSite=Strict"
  if status then ngx.status = status end
  page("Newsletter", form(token, values, problem))
end

local function field(args, name)
  local v = args[name]
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" then return nil end
  v = v:gsub("^%s+", ""):gsub("%s+$", "")
  return v
end

local function validate(args)
  local v = { mail = field(args, "mail"), name = field(args, "name"), surname = field(args, "surname") }
  if not v.mail or #v.mail > 100 or not v.mail:match("^[^@%s]+@[^@%s]+%.[^@%s]+$") then
    return v, "Please give a valid e-mail address."
  end
  if not v.name or v.name == "" or #v.name > 60 then return v, "Please give your last name." end
  if not v.surname or v.surname == "" or #v.surname > 60 then return v, "Please give your first name." end
  return v
end

local function sign_up()
  ngx.req.read_body()
  local args = ngx.req.get_post_args(20) or {}
  local cookie, sent = ngx.var.cookie_csrf, field(args, "csrf")
  if not cookie or not sent or #cookie < 32 or cookie ~= sent then
    ngx.status = 403
    return page("Newsletter", "<p class=\"error\">The form has expired; please reload the page.</p>")
  end
  local v, problem = validate(args)
  if problem then return show_form(v, problem, 400) end

  local c = client(ngx.var.billetterie_url)
  local s, err = c:session()
  if not s then
    ngx.status = 502
    return page("Newsletter", "<p class=\"error\">The box office is not answering: " .. esc(err.message) .. "</p>")
  end
  local password = ("N%dl-%d"):format(math.random(1e6), ngx.time())   -- the visitor sets theirs later
  local created
  created, err = s:ccontact{
    id_formulaire = 2, mail = v.mail, surname = v.surname, name = v.name,
    v_passe = password, v_passec = password, code_envoi = { NEWSLETTER },
  }
  if created then
    page("Newsletter", ("<p class=\"ok\">Thank you %s %s, %s is signed up (contact %s).</p>"):format(
      esc(v.surname), esc(v.name), esc(v.mail), esc(created.contact and created.contact.id_contact)))
  elseif err.code == 518 then   -- "mail déjà utilisé": already a contact
    local link = c:page("3web_mailing_cherche", { template = TEMPLATE, email = v.mail })
    page("Newsletter", ("<p class=\"known\">%s is already known; <a href=\"%s\">confirm your subscription</a>.</p>"):format(
      esc(v.mail), esc(link)))
  else
    ngx.status = err.kind == "vendor" and 400 or 502
    page("Newsletter", "<p class=\"error\">Sign-up failed: " .. esc(err.message) .. "</p>")
  end
  s:logout()
end

function M.handle()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then return show_form() end
  if method == "POST" then return sign_up() end
  ngx.status = 405
  ngx.header["Allow"] = "GET, POST"
  page("Newsletter", "<p>Method not allowed.</p>")
end

-- /slow: one ws_idsession; the body is its statut code (or the error kind).
function M.slow()
  local _, statut = client(ngx.var.billetterie_url):call("ws_idsession")
  ngx.header["Content-Type"] = "text/plain"
  ngx.header["Cache-Control"] = "no-store"
  if statut.kind then ngx.status = 502; return ngx.say(statut.kind) end
  ngx.say(statut.code)
end

-- /probe?url=...[&location=...]: ws_idsession against any URL, through the
-- default transport picked automatically (no transport option), or through
-- transport_ngx with another internal location: answers "ok CODE" or the
-- error kind and message, for the tests of the transport's error mapping.
function M.probe()
  local url = ngx.var.arg_url and ngx.unescape_uri(ngx.var.arg_url)
  local location = ngx.var.arg_location and ngx.unescape_uri(ngx.var.arg_location)
  local c = billetterie.new{ url = url, login = "xrsitest", password = "xrsimdp", client_id = 677, retries = 0,
                             transport = location and transport_ngx.new{ location = location } or nil }
  local msg, statut = c:call("ws_idsession")
  ngx.header["Content-Type"] = "text/plain"
  ngx.say(msg and "ok" or statut.kind, " ", msg and statut.code or tostring(statut.message))
end

return M
