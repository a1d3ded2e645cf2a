-- billetterie.sandbox.dashboard: the read-only HTML page at `/`, for a person
-- looking at what the sandbox holds: contacts, organismes, sessions, carts,
-- whatever other table the groups made, the active fault rules and the
-- latest requests.
--
-- The tables belong to the group modules and change with them, so nothing
-- here names a column: every table found in the file is shown, the ones a
-- reader looks for first. A TEXT cell holding a JSON object (the vendor's
-- records are stored that way) is summarised as its non-empty fields. Every
-- value is HTML-escaped; secrets (catalogue.secrets names, and any column or
-- field whose name says password or token) are never shown in full.

local catalogue = require "billetterie.catalogue"
local codec = require "billetterie.sandbox.codec"

local M = {}

local ROWS = 20          -- latest rows shown per table
local REQUESTS = 50      -- latest journal rows shown
local CELL = 300         -- longest cell text, in bytes

-- Tables shown first, in this order, even when empty (patterns on the table
-- name; caddies are the carts); the others follow alphabetically, and the
-- empty ones among them are only named.
local FIRST = { "^contacts$", "^organismes$", "^sessions$", "^caddies$", "panier" }
local HIDDEN = {
  sandbox_requests = true, -- shown as "Latest requests"
  s360_outbox = true,      -- the mails hold new passwords (GET /_sandbox/s360/outbox)
}

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }
local function esc(v) return (tostring(v):gsub("[&<>\"']", ESC)) end

local function secret_name(name)
  name = tostring(name):lower()
  return catalogue.secrets[name] or name:find("passe") or name:find("password") or name:find("mdp")
    or name:find("pwd") or name:find("token") or name:find("jeton") or name:find("secret")
    or name:find("key$")
end

-- A token shows its first 4 characters (enough to tell two sessions
-- apart); any other secret shows nothing.
local function masked(name, v)
  v = tostring(v)
  name = tostring(name):lower()
  local token = name:find("token") or name:find("jeton")
  return token and #v > 8 and v:sub(1, 4) .. "…" or "***"
end

-- Cuts at CELL bytes without splitting a UTF-8 character.
local function cut(s)
  if #s <= CELL then return s end
  local i = CELL
  while i > 1 and (s:byte(i + 1) or 0) & 0xC0 == 0x80 do i = i - 1 end
  return s:sub(1, i) .. "…"
end

local function scalar(v)
  local t = type(v)
  return t == "string" or t == "number" or t == "boolean"
end

-- A JSON object's non-empty scalar fields, "name: value · ...".
local function summary(obj)
  local keys = {}
  for k, v in pairs(obj) do
    if type(k) == "string" and scalar(v) and v ~= "" and v ~= false then keys[#keys + 1] = k end
  end
  table.sort(keys)
  local parts = {}
  for _, k in ipairs(keys) do
    parts[#parts + 1] = k .. ": " .. (secret_name(k) and masked(k, obj[k]) or tostring(obj[k]))
  end
  return table.concat(parts, " · ")
end

local function cell(column, v)
  if v == nil then return "" end
  if secret_name(column) then return masked(column, v) end
  if math.type(v) == "integer" and v > 0 and (column:find("_at$") or column == "at") then
    return os.date("!%Y-%m-%d %H:%M:%S", v) -- unix seconds, shown in UTC
  end
  if type(v) == "string" and v:find("^%s*{") then
    local obj = codec.decode(v)
    if type(obj) == "table" then return cut(summary(obj)) end
  end
  return cut(tostring(v))
end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end

local function rank_of(name)
  for i, p in ipairs(FIRST) do
    if name:lower():find(p) then return i end
  end
  return #FIRST + 1
end

local function table_order(names)
  local rank = {}
  for _, n in ipairs(names) do rank[n] = rank_of(n) end
  table.sort(names, function(a, b)
    if rank[a] ~= rank[b] then return rank[a] < rank[b] end
    return a < b
  end)
  return names
end

local function html_table(out, columns, rows, render)
  out[#out + 1] = "<table><thead><tr>"
  for _, c in ipairs(columns) do out[#out + 1] = "<th>" .. esc(c) .. "</th>" end
  out[#out + 1] = "</tr></thead><tbody>"
  for _, row in ipairs(rows) do
    out[#out + 1] = "<tr>"
    for _, c in ipairs(columns) do out[#out + 1] = "<td>" .. esc(render(c, row[c])) .. "</td>" end
    out[#out + 1] = "</tr>"
  end
  out[#out + 1] = "</tbody></table>"
end

-- -> false when the table is empty and not one of FIRST (nothing written)
local function section_table(out, db, name)
  local count = db:one("SELECT count(*) AS n FROM " .. ident(name)).n
  if count == 0 and rank_of(name) > #FIRST then return false end
  local columns = {}
  for _, c in ipairs(db:rows("PRAGMA table_info(" .. ident(name) .. ")")) do columns[#columns + 1] = c.name end
  out[#out + 1] = ('<section id="table-%s"><h2>%s <small>%d row%s</small></h2>'):format(
    esc(name), esc(name), count, count == 1 and "" or "s")
  if count > 0 then
    local rows = db:rows("SELECT * FROM " .. ident(name) .. " ORDER BY rowid DESC LIMIT " .. ROWS)
    html_table(out, columns, rows, cell)
    if count > ROWS then out[#out + 1] = ("<p>latest %d shown</p>"):format(ROWS) end
  end
  out[#out + 1] = "</section>"
  return true
end

local STYLE = [[
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.6em; } small { color: #777; font-weight: normal; }
table { border-collapse: collapse; margin: .4em 0; } th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td { max-width: 40em; overflow-wrap: anywhere; } nav a { margin-right: 1em; }
]]

-- db: the sandbox's billetterie.sandbox.db; faults: its rule set (or nil);
-- journal: its billetterie.sandbox.journal (or nil); info: { url, now }.
-- -> the page's HTML
function M.render(db, faults, journal, info)
  local names = {}
  for _, t in ipairs(db:rows([[SELECT name FROM sqlite_master
      WHERE type = 'table' AND name NOT LIKE 'sqlite_%']])) do
    if not HIDDEN[t.name] then names[#names + 1] = t.name end
  end
  table_order(names)

  local out = { '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">',
    "<title>billetterie sandbox</title><style>", STYLE, "</style></head><body>",
    "<h1>billetterie sandbox</h1>",
    ("<p>%s · %s · read-only view of the SQLite file</p><nav>"):format(esc(info.url or ""),
      esc(os.date("!%Y-%m-%d %H:%M:%S UTC", info.now or os.time()))) }
  local body, empty = {}, {}
  for _, n in ipairs(names) do
    if section_table(body, db, n) then
      out[#out + 1] = ('<a href="#table-%s">%s</a>'):format(esc(n), esc(n))
    else
      empty[#empty + 1] = esc(n)
    end
  end
  out[#out + 1] = '<a href="#faults">faults</a><a href="#requests">requests</a></nav>'
  table.move(body, 1, #body, #out + 1, out)
  if #empty > 0 then out[#out + 1] = "<p>Empty tables: " .. table.concat(empty, ", ") .. "</p>" end

  out[#out + 1] = '<section id="faults"><h2>Fault rules</h2>'
  local rules = faults and faults:list() or {}
  if type(rules) ~= "table" or #rules == 0 then
    out[#out + 1] = "<p>none</p>"
  else
    html_table(out, { "id", "rule", "fired" }, rules, function(_, v) return v or "" end)
  end
  out[#out + 1] = '</section><section id="requests"><h2>Latest requests</h2>'
  if journal and journal:enabled() then
    local rows = journal:list { limit = REQUESTS }
    local shown = {}
    for i = #rows, 1, -1 do -- newest first
      local r = rows[i]
      r.at = os.date("!%H:%M:%S", math.floor(r.at)) .. ("%.3f"):format(r.at % 1):sub(2)
      r.params = codec.encode(r.params)
      shown[#shown + 1] = r
    end
    html_table(out, { "id", "at", "method", "path", "status", "code", "duration_ms", "latency_ms",
      "fault", "params", "request_id" }, shown, function(_, v) return v == nil and "" or cut(tostring(v)) end)
  else
    out[#out + 1] = "<p>the request journal is off (--journal-max 0)</p>"
  end
  out[#out + 1] = "</section></body></html>\n"
  return table.concat(out)
end

return M
