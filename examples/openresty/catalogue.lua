-- Catalogue page (location /catalogue): the season's shows from
-- ws_cat_spectacle, served from the lua_shared_dict cache (billetterie_cache,
-- shared by the workers, 300 s) so a page view does not reach the vendor
-- each time (the vendor asks for its catalogue feeds to be called rarely).
-- The page holds no token: browsers and proxies may keep it a minute.
-- X-Catalogue-Cache says whether the feed came from the cache (hit) or not.
local billetterie = require "billetterie"
local web = require "web"

local M = {}
local esc = web.escape

local function list(v)   -- one XML element is a table, several an array
  if v == nil then return {} end
  if v[1] == nil then return { v } end
  return v
end

function M.handle()
  local method = ngx.req.get_method()
  if method ~= "GET" and method ~= "HEAD" then return web.method_not_allowed("GET") end
  local doc, statut = web.client():call("ws_cat_spectacle")
  if not doc then
    ngx.log(ngx.WARN, "catalogue: ", tostring(statut))
    return web.page("What's on", "<p class=\"error\">The programme is not available right now.</p>", 502)
  end
  ngx.header["X-Catalogue-Cache"] = statut.cached and "hit" or "miss"
  local out = { "<ul class=\"shows\">" }
  for _, show in ipairs(list(doc.SPECTACLES and doc.SPECTACLES.SPECTACLE)) do
    local dates = {}
    for _, rep in ipairs(list(show.REPRESENTATIONS and show.REPRESENTATIONS.REPRESENTATION)) do
      dates[#dates + 1] = esc(rep.REP_DATE) .. " " .. esc((tostring(rep.REP_HEURE or "")):sub(1, 5))
    end
    local link = billetterie.pages.url(web.shop(), "spectacle", { id_spectacle = tonumber(show.IDENT) })
    out[#out + 1] = ("<li class=\"show\"><a href=\"%s\">%s</a> <span class=\"type\">%s</span> <span class=\"dates\">%s</span></li>")
      :format(esc(link or "#"), esc(show.NOM), esc(show.TYPE), table.concat(dates, ", "))
  end
  out[#out + 1] = "</ul>"
  web.page("What's on", table.concat(out), nil, "public, max-age=60")
end

return M
