-- billetterie.sandbox: a local, stateful emulator of the L@billetterie web
-- services (SQLite file + billetterie.httpd), for examples and tests.
--
--   local sandbox = require "billetterie.sandbox"
--   local sb = assert(sandbox.new{ db = "sandbox.db", port = 0 })
--   print(sb.url); sb:run(); sb:close()
--
-- or sandbox.start(opts), which also calls opts.on_listen(url) and serves
-- until SIGINT/SIGTERM (what `billetterie sandbox` does).
--
-- For tests, the control endpoints of a running sandbox (control.lua) from
-- Lua: sandbox.journal(url_or_db_path [, opts]), sandbox.faults(url, rules
-- [, replace]), sandbox.reset(url).

local httpd = require "billetterie.httpd"
local control = require "billetterie.sandbox.control"
local dbmod = require "billetterie.sandbox.db"
local faults = require "billetterie.sandbox.faults"
local journal = require "billetterie.sandbox.journal"
local services = require "billetterie.sandbox.services"

local M = {}

-- Initial data sets: name -> true (nothing to load) or the module whose
-- load(db, { clients, now }) fills a base (once; it keeps its own marker).
M.seeds = { empty = true, demo = "billetterie.sandbox.seeds.demo" }

local function hex_reader(fh)
  return function(n)
    local bytes = assert(fh:read(n), "short read from /dev/urandom")
    return (bytes:gsub(".", function(c) return ("%02X"):format(c:byte()) end))
  end
end

-- One line per request on stderr (method, path, status, duration, fault);
-- no parameters, so no credential ever reaches the log. The path comes
-- decoded (%0D%0A is a CR LF): control characters are escaped.
local function logged(handle)
  local text = services.log_text
  return function(req)
    local t0 = httpd.time()
    local status, headers, body, delivery = handle(req)
    io.stderr:write(("%s %s %s -> %d (%.1f ms)%s\n"):format(text(headers["X-Request-Id"]), text(req.method),
      text(req.path), status, (httpd.time() - t0) * 1000,
      delivery and " with fault" or ""))
    return status, headers, body, delivery
  end
end

local function ident(name) return '"' .. name:gsub('"', '""') .. '"' end

-- Every row of every table goes (the groups' tables included, whatever
-- they are), AUTOINCREMENT counters restart, then the schema statements run
-- again and the seed is loaded again: the base is as a new one.
local function wipe(db)
  db:tx(function()
    for _, t in ipairs(db:rows("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")) do
      db:exec("DELETE FROM " .. ident(t.name))
    end
    if db:one("SELECT 1 AS x FROM sqlite_master WHERE name = 'sqlite_sequence'") then
      db:exec("DELETE FROM sqlite_sequence")
    end
    for _, list in ipairs(services.schemas()) do
      for _, stmt in ipairs(list) do db:exec(stmt) end
    end
  end)
end

-- opts: db (path, required), host ("127.0.0.1"), port (0 = any free one),
-- seed ("empty"), login, password, clients ({677, 100}), session_duration
-- (seconds, 172800), idsession_denied_code (3, or 610), api_login and
-- api_key (the api host's operator code and key), max_body (bytes),
-- log (boolean), signals (boolean), clock (function -> unix seconds),
-- routes (extra routes, e.g. for tests), faults (fault rules, see
-- faults.lua), journal_max (rows of request journal kept, 10000; 0 = off),
-- s360 (the S-360 emulation's settings, see sandbox/s360.lua).
-- held: what open() acquired, for M.new to release when it fails.
local function open(opts, held)
  if type(opts.db) ~= "string" or opts.db == "" then return nil, "db: a file path is required" end
  if opts.seed and not M.seeds[opts.seed] then return nil, "unknown seed: " .. tostring(opts.seed) end
  local urandom, err = io.open("/dev/urandom", "rb")
  if not urandom then return nil, err end
  held.urandom = urandom
  local random_hex = hex_reader(urandom)
  local rules
  rules, err = faults.new(opts.faults)
  if not rules then return nil, err end
  local schemas = services.schemas()
  schemas[#schemas + 1] = journal.schema
  local db
  db, err = dbmod.open(opts.db, schemas)
  if not db then return nil, err end
  held.db = db
  -- WAL: a commit appends to the log without an fsync (synchronous NORMAL);
  -- the log is synced at checkpoints. A killed process loses nothing that
  -- was committed (the OS has it); only a power cut may lose the last few.
  -- Writes went from ~500 to ~18,000 a second (bench/RESULTS.md).
  local ok, e = pcall(function()
    db:exec("PRAGMA journal_mode = WAL")
    db:exec("PRAGMA synchronous = NORMAL")
  end)
  if not ok then return nil, ("cannot use %s: %s"):format(opts.db, dbmod.message(e)) end

  -- request ids: a random prefix per run + httpd's request counter
  local prefix = "sbx-" .. random_hex(4):lower() .. "-"
  local svc = services.new {
    db = db, random_hex = random_hex, request_id_prefix = prefix, clock = opts.clock,
    login = opts.login, password = opts.password, clients = opts.clients,
    session_duration = opts.session_duration, routes = opts.routes,
    idsession_denied_code = opts.idsession_denied_code,
    api_login = opts.api_login, api_key = opts.api_key, s360 = opts.s360,
  }
  local seed = opts.seed and M.seeds[opts.seed]
  local function load_seed()
    if type(seed) == "string" then
      require(seed).load(db, { clients = svc.config.clients, now = svc.config.clock(),
        s360_institutions = (opts.s360 or {}).institutions })
    end
  end
  ok, e = pcall(load_seed)
  if not ok then return nil, "seed " .. opts.seed .. ": " .. dbmod.message(e) end

  local ctx = { svc = svc, db = db, faults = rules,
    journal = journal.new(db, opts.journal_max, { svc.config.password, svc.config.api_key,
      require("billetterie.sandbox.s360").password(svc.config) }) }
  function ctx.reset()
    wipe(db)
    load_seed()
    rules:reset()
  end
  local handler = control.handler(ctx)
  local host = opts.host or "127.0.0.1"
  local srv
  srv, err = httpd.new {
    host = host, port = opts.port or 0, max_body = opts.max_body, signals = opts.signals,
    request_id_prefix = prefix, handler = opts.log and logged(handler) or handler,
  }
  if not srv then return nil, err end

  local port = srv:port()
  local sb = {
    server = srv, db = db, port = port, host = host, faults = rules, journal = ctx.journal,
    url = ("http://%s:%d/"):format(host:find(":", 1, true) and "[" .. host .. "]" or host, port),
  }
  ctx.url = sb.url
  -- where links the sandbox builds point when a request has no Host
  -- (HTTP/1.0): its own listening address, a wildcard one as loopback
  local own = ({ ["0.0.0.0"] = "127.0.0.1", ["::"] = "::1" })[host] or host
  svc.config.own_authority = ("%s:%d"):format(own:find(":", 1, true) and "[" .. own .. "]" or own, port)
  function sb.run() return srv:run() end
  function sb.step(_, ms) return srv:step(ms) end
  function sb.close()
    srv:close()
    db:close()
    if io.type(urandom) == "file" then urandom:close() end
  end
  return sb
end

-- -> sandbox { url, port, server, db, run, step, close }, or nil, err.
-- Whatever open() acquired is released when it fails, and when it raises (a
-- wrong option: httpd.new's argument errors), which is raised again.
function M.new(opts)
  local held = {}
  local ok, sb, err = pcall(open, opts or {}, held)
  if ok and sb then return sb end
  if held.db then held.db:close() end
  if io.type(held.urandom) == "file" then held.urandom:close() end
  if not ok then error(sb, 0) end
  return nil, err
end

-- Serves until SIGINT/SIGTERM (or server:stop()). -> true, reason | nil, err
function M.start(opts)
  local sb, err = M.new(opts)
  if not sb then return nil, err end
  if opts.on_listen then opts.on_listen(sb.url, sb) end
  local ok, why = sb.run()
  sb.close()
  return ok, why
end

---- the control endpoints, from a test ----

local function control_request(url, method, path, body)
  local transport = require "billetterie.transport"
  local json = require "billetterie.json"
  local base = url:sub(-1) == "/" and url or url .. "/"
  local status, text, _, errkind, errmsg = transport.curl:request {
    url = base .. path, method = method, body = body, timeout = 10, connect_timeout = 5,
    headers = body and { "Content-Type: application/json" } or nil,
  }
  if errkind then return nil, errkind .. ": " .. tostring(errmsg) end
  local v = json.decode(text or "")
  if status ~= 200 then
    return nil, ("HTTP %d: %s"):format(status, type(v) == "table" and v.error and v.error.message or text)
  end
  return v
end

-- The request journal, oldest first: from a sandbox's URL (GET
-- /_sandbox/requests) or straight from its SQLite file. opts: limit, since
-- (a journal id), path (a web service). -> rows, or nil, err
function M.journal(source, opts)
  opts = opts or {}
  if not source:find("^https?://") then return journal.read_file(source, opts) end
  local q = {}
  for _, k in ipairs { "limit", "since", "path" } do
    if opts[k] then q[#q + 1] = k .. "=" .. require("billetterie.core").form_escape(tostring(opts[k])) end
  end
  local v, err = control_request(source, "GET", "_sandbox/requests" .. (#q > 0 and "?" .. table.concat(q, "&") or ""))
  if not v then return nil, err end
  return v.requests
end

-- Adds fault rules (strings or tables, see faults.lua) to a running
-- sandbox; replace = true drops the current ones first ({} clears them).
-- -> the active rules, or nil, err
function M.faults(url, rules, replace)
  local json = require "billetterie.json"
  local v, err = control_request(url, "POST", "_sandbox/faults" .. (replace and "?replace=1" or ""),
    json.encode { faults = rules }) -- an empty list encodes as {}: accepted
  if not v then return nil, err end
  return v.faults
end

-- Back to the state of a fresh start. -> true, or nil, err
function M.reset(url)
  local v, err = control_request(url, "POST", "_sandbox/reset", "{}")
  return v and true or nil, err
end

return M
