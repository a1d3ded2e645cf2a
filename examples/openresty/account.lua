-- Account area (location /account): a login form; on POST, ws_idsession then
-- ws_login through a billetterie session; the vendor's token is kept
-- server-side (billetterie.ngx_session: a lua_shared_dict entry under a
-- random HttpOnly cookie id), and the signed-in page lists links to the
-- shop's pages opened already logged in (pages.url with x_rsi_token).
-- Every page here is sent with Cache-Control: no-store (spec 3.15.2: pages
-- holding the token must never be cached). POST /account/logout closes the
-- vendor's session (ws_deconnexion_session) and forgets the visitor's.
local billetterie = require "billetterie"
local ngx_session = require "billetterie.ngx_session"
local web = require "web"

local M = {}
local esc = web.escape

local SHOP_PAGES = {
  { "mes_coordonnees", "My details" }, { "historique_commandes", "My orders" },
  { "evenements_a_venir", "My upcoming events" }, { "basket", "My basket" },
}

local sessions
local function store()
  sessions = sessions or ngx_session.new{ dict = ngx.shared.billetterie_sessions, cookie = "billetterie_sid", ttl = 1800 }
  return sessions
end

local function login_form(problem, status, ident)
  ngx_session.no_store()
  web.page("My account", table.concat{
    problem and ("<p class=\"error\">" .. esc(problem) .. "</p>") or "",
    "<form method=\"post\" action=\"/account\">", web.csrf_issue("/account"),
    "<label>E-mail <input type=\"email\" name=\"ident\" value=\"", esc(ident), "\"></label>",
    "<label>Password <input type=\"password\" name=\"password\"></label>",
    "<button type=\"submit\">Sign in</button></form>",
  }, status)
end

local function signed_in(data)
  local items = {}
  for i, p in ipairs(SHOP_PAGES) do
    local link = assert(billetterie.pages.url(web.shop(), p[1], { x_rsi_token = data.token }))
    items[i] = ("<li><a class=\"shop\" href=\"%s\">%s</a></li>"):format(esc(link), esc(p[2]))
  end
  ngx_session.no_store()   -- the links carry the token
  web.page("My account", table.concat{
    "<p class=\"welcome\">Hello ", esc(data.surname), " ", esc(data.name), "</p>",
    "<ul>", table.concat(items), "</ul>",
    "<form method=\"post\" action=\"/account/logout\">", web.csrf_issue("/account"),
    "<button type=\"submit\">Sign out</button></form>",
  })
end

-- The statut codes of a session the vendor no longer knows (codes.lua):
-- 601 not initialised, 602 not identified (signed out), 605 invalid
-- (expired, closed, unknown); the client also answers 605 locally past
-- the session's remaining time.
local SESSION_GONE = { [601] = true, [602] = true, [605] = true }

local function show()
  local data = store():get()
  if not data then return login_form() end
  -- the vendor's session may have ended on its side (timeout, logout elsewhere)
  local alive, err = web.client():call("ws_status_session", { x_rsi_token = data.token })
  if not alive then
    ngx.log(ngx.WARN, "account: the stored session failed: ", tostring(err))
    -- only the vendor saying the session is gone signs the visitor out; a
    -- timeout, a network error or another vendor failure keeps it
    if err.kind == "vendor" and SESSION_GONE[err.code] then
      store():destroy()
      return login_form("Your session has ended; please sign in again.")
    end
    return web.page("My account", "<p class=\"error\">The box office is not answering; please try again.</p>", 502)
  end
  signed_in(data)
end

local function login()
  local args = web.post_args()
  if not args then return end
  local ident, password = web.field(args, "ident"), args.password
  if type(password) ~= "string" then password = nil end
  if not ident or ident == "" or #ident > 100 or not password or password == "" or #password > 100 then
    return login_form("Please give your e-mail address and your password.", 400, ident)
  end
  local s, err = web.client():session()
  if not s then return login_form("The box office is not answering; please try again.", 502, ident) end
  local who
  who, err = s:login(ident, password)
  if not who then
    s:logout()
    if err.kind ~= "vendor" and err.kind ~= "invalid_param" then
      return login_form("The box office is not answering; please try again.", 502, ident)
    end
    return login_form("Unknown e-mail address or wrong password.", 401, ident)
  end
  local previous = store():get()   -- signing in again: close the old vendor session
  if previous and previous.token ~= s.token then
    web.client():call("ws_deconnexion_session", { x_rsi_token = previous.token })
  end
  local contact = who.contact or {}
  local ok
  ok, err = store():start({ token = s.token, name = contact.name, surname = contact.surname,
                            id_contact = contact.id_contact }, s:remaining())
  if not ok then
    ngx.log(ngx.ERR, "account: ", err)
    s:logout()   -- nobody will hold this vendor session: close it now
    return login_form("Sign-in is not available right now.", 503, ident)
  end
  web.redirect("/account")
end

local function logout()
  local args = web.post_args()
  if not args then return end
  local data = store():get()
  if data then
    web.client():call("ws_deconnexion_session", { x_rsi_token = data.token })
  end
  store():destroy()
  web.redirect("/account")
end

function M.handle()
  return web.dispatch{ GET = show, POST = login }
end

function M.logout()
  if ngx.req.get_method() ~= "POST" then return web.method_not_allowed("POST") end
  logout()
end

return M
