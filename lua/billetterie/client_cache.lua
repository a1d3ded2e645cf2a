-- Which answers a client serves from its cache (billetterie.new{ cache =
-- store }, a billetterie.cache store), and under which key.
--   c:call("ws_cat_listes")                            -- cached for the store's TTL
--   c:call("ws_cat_listes", nil, { cache = false })    -- always asks the vendor
--   c:call("ws_cat_spectacle", p, { cache_ttl = 60 })  -- this answer kept 60 s
-- Only the services below are cached: catalogue feeds and lists that change
-- a few times a season. Never a failure, never a streamed (each = ...)
-- call, never a call whose fields carry a credential or a secret the caller
-- gave (a session token: its answer is one visitor's; another login or
-- password: its answer is another account's), whatever `strict` says.
-- The key is the service, the site's URL, the client's login and client_id
-- and the call's parameters without any secret (x_rsi_ws_mdp,
-- x_rsi_api_key...: catalogue.secrets): no secret is ever written into a
-- cache key. So clients with the same URL, login and client_id share
-- answers whatever their password: share a store only between clients you
-- configure yourself.
-- A hit returns the stored payload and statut (a copy) with statut.cached = true.
-- On a dict store, concurrent misses of one key make one vendor call (a
-- short lock; the others wait up to 2 s for its answer, then call).
local cache = require "billetterie.cache"
local errors = require "billetterie.error"
local catalogue = require "billetterie.catalogue"

local M = {}

M.SERVICES = {
  ws_cat_listes = true, ws_info_formulaire = true,
  ws_programmation = true, ws_cat_spectacle = true, ws_cat_abonnement = true, ws_cat_article = true,
  ws_det_spectacle = true, ws_det_abonnement = true, ws_det_article = true,
  -- not ws_det_representation: it says whether a performance is still on sale
}

-- The client's FINISH handlers (client.lua: ws_liste_fiches_modifiees sets
-- statut.next_ts from the time of the call) run after _send, and through()
-- returns before them: a service with one must never be cached.
for _, name in ipairs{ "ws_liste_fiches_modifiees" } do
  assert(not M.SERVICES[name], "client_cache: " .. name .. " has a FINISH handler and cannot be cached")
end

-- The field names that keep a call out of the cache: every credential of
-- every auth mode and every secret (catalogue.credentials, .secrets), in
-- lower case. With strict = false the catalogue's check lets any name
-- through, x_rsi_token on a ws-mode service included, and the key leaves
-- secrets out: such a call must be refused here, not trusted to the list
-- of services. Fields hold a credential only when the caller gave one (the
-- client's own go on the wire from a prefix). A name is compared in lower
-- case and without a bracket suffix (x_rsi_token[0] is still refused).
local REFUSED = {}
for _, names in pairs(catalogue.credentials) do
  for _, name in ipairs(names) do REFUSED[name:lower()] = true end
end
for name in pairs(catalogue.secrets) do REFUSED[name:lower()] = true end
M.REFUSED = REFUSED

-- True when this call may be served from / stored into the cache.
function M.applies(service, fields, opts)
  if opts ~= nil then
    if opts.cache == false then return false end
    local ttl = opts.cache_ttl
    if ttl ~= nil and (type(ttl) ~= "number" or ttl <= 0) then
      error("call option cache_ttl must be a positive number of seconds", 3)
    end
  end
  if M.SERVICES[service.name] ~= true then return false end
  for name in pairs(fields) do
    if type(name) == "string" and REFUSED[name:lower():match("^[^%[]*")] then return false end
  end
  return true
end

function M.key(client, service, fields)
  local public = {}
  for k, v in pairs(fields) do
    if not catalogue.secrets[k] then public[k] = v end
  end
  -- The client's own credentials are not in fields (they go on the wire
  -- from an encoded prefix): its login and client number are named here.
  local api = service.host == "api"
  local base = api and client.api_url or client.url
  -- a password in the URL (http://user:pw@host/) stays out of the key: a
  -- shared dict's keys can be listed
  base = base and errors.shown_url(base)
  local who = api and client.api_login or client.login
  return cache.key("billetterie", service.name, base or "", who or "", client.client_id or "", public)
end

local function usable(hit)
  if type(hit) == "table" and hit.p ~= nil and type(hit.s) == "table" then
    hit.s.cached = true
    return hit.p, hit.s
  end
end

-- -> payload, statut (from the store, or from send(client, service, fields,
-- url, body, opts) and then stored when it succeeded)
function M.through(client, service, fields, opts, send, url, body)
  local store = client.cache
  local key = M.key(client, service, fields)
  local payload, statut = usable(store:get(key))
  if payload ~= nil then return payload, statut end
  -- a missing entry: one request fetches, the others wait for its value
  -- (stores with a lock: the dict store; a memory store has none)
  local locked = false
  if store.lock then
    locked = store:lock(key)
    if not locked then
      payload, statut = usable(store:wait(key))
      if payload ~= nil then return payload, statut end
    end
  end
  local ok
  ok, payload, statut = pcall(send, client, service, fields, url, body, opts)
  if not ok then
    if locked then store:unlock(key) end
    error(payload, 0)
  end
  if payload ~= nil then
    -- a value the store cannot keep (too big for the dict, say) is just not cached
    store:set(key, { p = payload, s = statut }, opts and opts.cache_ttl)
  end
  if locked then store:unlock(key) end
  return payload, statut
end

return M
