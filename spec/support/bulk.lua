-- spec/support/bulk.lua: what the bulk.import specs share: the test
-- account, CSV and journal files, the sandbox's organismes by name, child
-- runs of an import (lua5.4 processes), and a real HTTP proxy in front of
-- the sandbox that spoils its answers the way a vendor's front may.
local billetterie = require "billetterie"
local echo = require "spec.support.echo_server"
local shell = require "spec.support.shell"
local util = require "spec.support.util"

local M = {}

M.API_KEY = "b1829f60af03c1e69a13ed44405ec898f912b63a"
M.MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }
-- what an import leaves next to its CSV (journal, report, scripts, markers)
M.SUFFIXES = { "", ".db", ".db-wal", ".db-shm", ".failures.csv", ".lua", ".out", ".marker" }

-- options(url, api_url, extra) -> billetterie.new options of the test account
function M.options(url, api_url, extra)
  local opts = { url = url, login = "xrsitest", password = "xrsimdp", client_id = 677,
                 api_url = api_url, api_login = "WSCE", api_key = M.API_KEY }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return opts
end

function M.client(url, api_url, extra) return billetterie.new(M.options(url, api_url, extra)) end

-- start() -> a sandbox started for a spec, a client of its test account
function M.start()
  local sb = require("spec.support.sandbox").start()
  return sb, sb:client()
end

-- write_csv(path, prefix, n) -> path, its journal's path (path.db): records
-- "prefix 001".."prefix n", Association
function M.write_csv(path, prefix, n)
  local lines = { "Nom;Nature\n" }
  for i = 1, n do lines[#lines + 1] = ("%s %03d;Association\n"):format(prefix, i) end
  util.write(path, table.concat(lines))
  return path, path .. ".db"
end

-- sql(path, query) -> sqlite3's output, trailing blanks cut (raises on failure)
function M.sql(path, query)
  local ok, out = shell(("sqlite3 %s %q"):format(path, query))
  assert(ok, out)
  return (out:gsub("exit=%d+%s*$", ""):gsub("%s+$", ""))
end

-- on_server(c, prefix) -> { intitule = count }, how many, { intitule = id }
-- of the sandbox's organismes whose name starts with prefix (all without one)
function M.on_server(c, prefix)
  local data = assert(c:liste_fiches_modifiees{ ts = "2000-01-01T00:00:00" })
  local count, n, ids = {}, 0, {}
  for _, o in ipairs(data.liste_organismes or {}) do
    if not prefix or o.intitule:sub(1, #prefix) == prefix then
      count[o.intitule] = (count[o.intitule] or 0) + 1
      n = n + 1
      ids[o.intitule] = o.id_organisme
    end
  end
  return count, n, ids
end

-- import_script(client, import) -> a lua5.4 program that imports with these
-- options (client: M.options; import: bulk.import's without client; a rate
-- may come as arg[1]) and prints "created N unknown N unresolved", then
-- "not killed".
function M.import_script(client, import)
  return ([[
local opts = %s
opts.client = require("billetterie").new(%s)
if arg[1] then opts.rate = tonumber(arg[1]) end
local r, err = require("billetterie.bulk").import(opts)
if not r then print(tostring(err)) os.exit(1) end
print("created", r.created, "unknown", r.unknown, r.unresolved)
print("not killed")
]]):format(echo.serialize(import), echo.serialize(client))
end

-- cli(url, args [, unset]) -> ok, output ending "exit=N": `billetterie
-- ARGS` (a lua5.4 child; its C modules from $BILLETTERIE_BUILD, else build)
-- with the test account for the sandbox at url, but for the variables
-- named in the list unset
function M.cli(url, args, unset)
  local drop = unset and ("unset " .. table.concat(unset, " ") .. "; ") or ""
  return shell(("export BILLETTERIE_URL=%s BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp "
    .. "BILLETTERIE_CLIENT=677 BILLETTERIE_API_URL=%s BILLETTERIE_API_LOGIN=WSCE BILLETTERIE_API_KEY=%s; "
    .. "%s%sbin/billetterie %s"):format(url, url, M.API_KEY, drop, M.LUA54, args))
end

-- script(path, code) -> path, holding code
function M.script(path, code)
  util.write(path, code)
  return path
end

-- "unset LD_PRELOAD; LUA_PATH=... LUA_CPATH=... lua5.4 ": how to run a child
M.LUA54 = "unset LD_PRELOAD; " .. util.lua54_env() .. "lua5.4 "

-- spawn(temp, code) -> a lua5.4 program run in the background: { pid,
-- finish() -> its output once it ended }; temp: a util.temp_files
function M.spawn(temp, code)
  local script, out = M.script(temp.new(".lua"), code), temp.new()
  local pipe = io.popen(("%s%s >%s 2>&1 & echo $!; wait $! 2>/dev/null"):format(M.LUA54, util.q(script), util.q(out)))
  local pid = tonumber(pipe:read("*l"))
  return { pid = pid, finish = function() pipe:close(); return util.read(out) end }
end

-- /MODE/ws_name is forwarded to the sandbox as /ws_name, and then, by MODE:
--   notice   a PHP notice before a creation's JSON (HTTP 200)
--   html     a creation answered with an HTML error page, HTTP 200
--   partial  a creation's answer becomes a ko 1111 that still carries the
--            new organisme (what the vendor answers when part of a request
--            failed)
--   bare     the same ko 1111 without any payload
--   koid     a ko 900 that still carries the new organisme
--   drop     a creation is not forwarded: HTTP 502, an HTML page
--   late     a creation, while none is held, is not forwarded yet: its
--            answer is held 3 s (past the client's timeout) and it is
--            forwarded right after the next other request (a change-feed
--            lookup) has been answered: a write that commits late
--   hold     the same for the creation of an organisme named "... 003"
--            (once a name); the marker file is created when it arrives
--   slow     other requests (the change feed) are answered 3 s late, with
--            what the sandbox said when they arrived; the marker file is
--            created then
local PROXY = [==[
local httpd = require "billetterie.httpd"
local core = require "billetterie.core"
local cjson = require "cjson"
local curl = require("billetterie.transport").curl
local upstream, marker = arg[1], arg[2]
local held, was_held = nil, {}
local function forward(ws, body)
  return curl:request{ url = upstream .. ws, method = "POST", body = body, timeout = 10, connect_timeout = 5,
                       max_size = 1e7, verify = false }
end
local function touch() local f = io.open(marker, "w"); f:write("x"); f:close() end
local KO = { partial = 1111, bare = 1111, koid = 900 }
local function intitule(req)
  for _, kv in ipairs(req.params) do
    if kv[1] == "organisme" then return cjson.decode(core.b64decode(kv[2])).intitule end
  end
end
local srv = assert(httpd.new{ host = "127.0.0.1", port = 0, handler = function(req)
  local mode, ws = req.path:match("^/(%a+)/(ws_[%w_]+)$")
  if not ws then return 404, { ["Content-Type"] = "text/plain" }, "no route" end
  local parts = {}
  for _, kv in ipairs(req.params) do parts[#parts + 1] = core.form_escape(kv[1]) .. "=" .. core.form_escape(kv[2]) end
  local body = table.concat(parts, "&")
  local creation = ws == "ws_organisme_creation"
  if creation and mode == "drop" then
    return 502, { ["Content-Type"] = "text/html" }, "<html><head><title>502 Bad Gateway</title></head></html>"
  end
  if creation and mode == "late" and not held then
    held = body
    return 200, { ["Content-Type"] = "application/json" }, "{}", { delay = 3000 }
  end
  local name = creation and mode == "hold" and intitule(req)
  if name and name:match(" 003$") and not was_held[name] then
    held, was_held[name] = body, true
    touch()
    return 200, { ["Content-Type"] = "application/json" }, "{}", { delay = 3000 }
  end
  local status, answer, ctype = forward(ws, body)
  if creation and KO[mode] then
    local doc = cjson.decode(answer)
    doc.retour.statut = { code = KO[mode], traitement = "ko", message = "Il y a eu un problème dans la requête." }
    if mode == "bare" then doc.retour.message = {} end
    answer = cjson.encode(doc)
  elseif creation and mode == "notice" then
    answer = "<br />\n<b>Notice</b>: Undefined index: ville in /var/www/ws/organisme.php on line 42<br />\n" .. answer
  elseif creation and mode == "html" then
    status, ctype = 200, "text/html"
    answer = "<!DOCTYPE html><html><head><title>Erreur</title></head><body>Erreur du serveur</body></html>"
  elseif not creation and held and (mode == "hold" or mode == "late") then
    forward("ws_organisme_creation", held)   -- commits after this lookup was answered
    held = nil
  elseif not creation and mode == "slow" then
    touch()
    return status, { ["Content-Type"] = ctype or "application/json" }, answer or "", { delay = 3000 }
  end
  return status, { ["Content-Type"] = ctype or "application/json" }, answer or ""
end })
io.stdout:write(("http://127.0.0.1:%d/\n"):format(srv:port()))
io.stdout:flush()
srv:run()
]==]

-- start_proxy(upstream, marker) -> { url, stop } in front of upstream (a
-- sandbox's URL); marker: the file the hold and slow modes create
function M.start_proxy(upstream, marker)
  return echo.start_script(PROXY, { upstream, marker }, "proxy")
end

return M
