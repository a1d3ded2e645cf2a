-- billetterie.sandbox: a local, stateful emulator of the L@billetterie web
-- services (SQLite file + billetterie.httpd), for examples and tests.
--
--   local sandbox = require "billetterie.sandbox"
--   local sb = assert(sandbox.new{ db = "sandbox.db", port = 0 })
--   print(sb.url); sb:run(); sb:close()
--
-- or sandbox.start(opts), which also calls opts.on_listen(url) and serves
-- until SIGINT/SIGTERM (what `billetterie sandbox` does).

local httpd = require "billetterie.httpd"
local dbmod = require "billetterie.sandbox.db"
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

-- One line per request on stderr (method, path, status, duration); no
-- parameters, so no credential ever reaches the log.
local function logged(handle)
  return function(req)
    local t0 = os.clock()
    local status, headers, body = handle(req)
    io.stderr:write(("%s %s %s -> %d (%.1f ms)\n"):format(headers["X-Request-Id"], req.method,
      req.path, status, (os.clock() - t0) * 1000))
    return status, headers, body
  end
end

-- opts: db (path, required), host ("127.0.0.1"), port (0 = any free one),
-- seed ("empty"), login, password, clients ({677, 100}), session_duration
-- (seconds, 172800), idsession_denied_code (3, or 610), api_login and
-- api_key (the api host's operator code and key), max_body (bytes),
-- log (boolean), signals (boolean), clock (function -> unix seconds),
-- routes (extra routes, e.g. for tests).
-- -> sandbox { url, port, server, db, run, step, close }, or nil, err
function M.new(opts)
  opts = opts or {}
  if type(opts.db) ~= "string" or opts.db == "" then return nil, "db: a file path is required" end
  if opts.seed and not M.seeds[opts.seed] then return nil, "unknown seed: " .. tostring(opts.seed) end
  local urandom, err = io.open("/dev/urandom", "rb")
  if not urandom then return nil, err end
  local random_hex = hex_reader(urandom)
  local db
  db, err = dbmod.open(opts.db, services.schemas())
  if not db then urandom:close(); return nil, err end

  -- request ids: a random prefix per run + httpd's request counter
  local prefix = "sbx-" .. random_hex(4):lower() .. "-"
  local svc = services.new {
    db = db, random_hex = random_hex, request_id_prefix = prefix, clock = opts.clock,
    login = opts.login, password = opts.password, clients = opts.clients,
    session_duration = opts.session_duration, routes = opts.routes,
    idsession_denied_code = opts.idsession_denied_code,
    api_login = opts.api_login, api_key = opts.api_key,
  }
  local seed = opts.seed and M.seeds[opts.seed]
  if type(seed) == "string" then
    local ok, e = pcall(function()
      require(seed).load(db, { clients = svc.config.clients, now = svc.config.clock() })
    end)
    if not ok then db:close(); urandom:close(); return nil, "seed " .. opts.seed .. ": " .. tostring(e) end
  end
  local host = opts.host or "127.0.0.1"
  local srv
  srv, err = httpd.new {
    host = host, port = opts.port or 0, max_body = opts.max_body, signals = opts.signals,
    request_id_prefix = prefix, handler = opts.log and logged(svc.handle) or svc.handle,
  }
  if not srv then db:close(); urandom:close(); return nil, err end

  local port = srv:port()
  local sb = {
    server = srv, db = db, port = port, host = host,
    url = ("http://%s:%d/"):format(host:find(":", 1, true) and "[" .. host .. "]" or host, port),
  }
  function sb.run() return srv:run() end
  function sb.step(_, ms) return srv:step(ms) end
  function sb.close()
    srv:close()
    db:close()
    if io.type(urandom) == "file" then urandom:close() end
  end
  return sb
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

return M
