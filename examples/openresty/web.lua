-- What the example pages share: the vendor's client (one per worker, on
-- nginx's non-blocking transport, answers of catalogue services cached in a
-- lua_shared_dict), HTML escaping, pages, cookies and the CSRF check.
local billetterie = require "billetterie"
local cache = require "billetterie.cache"
local ngx_session = require "billetterie.ngx_session"

local M = {}

-- The web-service account comes from the environment (declared with `env`
-- in nginx.conf), the sandbox's test account when unset.
local function env(name, default)
  local v = os.getenv(name)
  return (v and v ~= "") and v or default
end

local clients = {}
-- The client of the vendor named by $billetterie_url. No transport option:
-- in a request handler the default transport is billetterie.transport_ngx
-- (a subrequest to /_billetterie_upstream), so nothing blocks the worker.
function M.client()
  local url = ngx.var.billetterie_url
  local c = clients[url]
  if not c then
    local dict = ngx.shared.billetterie_cache
    c = billetterie.new{
      url = url,
      login = env("BILLETTERIE_LOGIN", "xrsitest"),
      password = env("BILLETTERIE_PASSWORD", "xrsimdp"),
      client_id = tonumber(env("BILLETTERIE_CLIENT", "677")),
      retries = 0,   -- a page answers now; a visitor reloads if the vendor hiccups
      cache = dict and cache.new{ dict = dict, ttl = 300 } or nil,
    }
    clients[url] = c
  end
  return c
end

-- The shop's public URL, for the links visitors follow ($billetterie_shop).
function M.shop()
  return ngx.var.billetterie_shop
end

local ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
function M.escape(s)
  return (tostring(s == nil and "" or s):gsub("[&<>\"']", ESCAPES))
end
local esc = M.escape

-- Adds a Set-Cookie header (keeps those already set for other names).
M.add_cookie = ngx_session.add_cookie

-- Sends an HTML page. cache_control: "no-store" unless said otherwise.
function M.page(title, inner, status, cache_control)
  if status then ngx.status = status end
  ngx.header["Content-Type"] = "text/html; charset=utf-8"
  ngx.header["Cache-Control"] = cache_control or "no-store"
  ngx.say("<!doctype html><html><head><meta charset=\"utf-8\"><title>", esc(title),
    "</title></head><body><h1>", esc(title), "</h1>", inner, "</body></html>")
end

-- The trimmed value of a form field, or nil.
function M.field(args, name)
  local v = args[name]
  if type(v) == "table" then v = v[1] end
  if type(v) ~= "string" then return nil end
  return (v:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- CSRF, double submit: a random value in an HttpOnly cookie scoped to the
-- form's path and in a hidden field; a POST must bring both, equal.
function M.csrf_issue(path)
  local token = ngx_session.random_id()
  M.add_cookie("csrf=" .. token .. "; Path=" .. path .. "; HttpOnly; SameSite=Strict"
    .. (ngx_session.https() and "; Secure" or ""))
  return "<input type=\"hidden\" name=\"csrf\" value=\"" .. token .. "\">"
end

function M.csrf_ok(args)
  local cookie, sent = ngx.var.cookie_csrf, M.field(args, "csrf")
  return cookie ~= nil and sent ~= nil and #cookie >= 32 and cookie == sent
end

-- Reads a form POST: -> args (nil with a 403 page sent when the CSRF check fails)
function M.post_args()
  ngx.req.read_body()
  local args = ngx.req.get_post_args(20) or {}
  if not M.csrf_ok(args) then
    M.page("Session expired", "<p class=\"error\">The form has expired; please reload the page.</p>", 403)
    return nil
  end
  return args
end

function M.redirect(path)
  ngx.header["Cache-Control"] = "no-store"
  return ngx.redirect(path, ngx.HTTP_SEE_OTHER)
end

function M.method_not_allowed(allow)
  ngx.header["Allow"] = allow
  M.page("Method not allowed", "<p>Method not allowed.</p>", 405)
end

-- Runs the handler of this request's method (HEAD as GET): web.dispatch{ GET
-- = show, POST = submit }; another method gets 405 with the Allow list.
function M.dispatch(handlers)
  local method = ngx.req.get_method()
  local handler = handlers[method == "HEAD" and "GET" or method]
  if handler then return handler() end
  local allow = {}
  for name in pairs(handlers) do allow[#allow + 1] = name end
  table.sort(allow)
  M.method_not_allowed(table.concat(allow, ", "))
end

return M
