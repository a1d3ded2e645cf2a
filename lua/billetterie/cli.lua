-- The client side of the `billetterie` command: call, run, import.
-- Credentials come from the environment (BILLETTERIE_URL, _LOGIN, _PASSWORD,
-- _CLIENT, _API_URL, _API_LOGIN, _API_KEY) or a config file (--config FILE or
-- BILLETTERIE_CONFIG: a Lua file returning billetterie.new's options), never
-- from the command line, where `ps` would show them.
local billetterie = require "billetterie"
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"
local cjson = require "cjson"

local cli = {}

local function die(message, code)
  io.stderr:write(message, "\n")
  os.exit(code or 1)
end

-- --name value / --flag options, then positional arguments.
local function parse(args, flags)
  local opts, rest, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w-]+)$")
    if a == "-h" or a == "--help" then
      opts.help = true
    elseif name and flags[name] == "flag" then
      opts[name] = true
    elseif name and flags[name] then
      i = i + 1
      if args[i] == nil then return nil, "--" .. name .. " needs a value" end
      opts[name] = args[i]
    elseif name then
      return nil, "unknown option --" .. name
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end

local function client(opts, extra)
  local config = opts.config or os.getenv("BILLETTERIE_CONFIG")
  local base = {}
  if config then
    local chunk, err = loadfile(config, "t", {})
    if not chunk then die("billetterie: " .. err) end
    base = chunk()
    if type(base) ~= "table" then die("billetterie: " .. config .. " must return a table of options") end
  end
  for k, v in pairs(extra or {}) do base[k] = v end
  if opts.url then base.url = opts.url end   -- an address is no secret: a flag is fine
  local url = os.getenv("BILLETTERIE_URL")
  if base.url == nil and (url == nil or url == "") then
    die("billetterie: set BILLETTERIE_URL (and the credentials) or give --url URL or --config FILE", 2)
  end
  local id = os.getenv("BILLETTERIE_CLIENT")
  if base.client_id == nil and id and id ~= "" and not tonumber(id) then
    die("billetterie: BILLETTERIE_CLIENT must be a number (the client number), got " .. id, 2)
  end
  -- the environment fills what the config file and --url leave out
  -- (BILLETTERIE_LOGIN, _PASSWORD, _CLIENT, _API_URL, _API_LOGIN, _API_KEY, _PWD_KEY)
  local ok, c = pcall(billetterie.from_env, base)
  if not ok then die("billetterie: " .. tostring(c):gsub("^[^:]*:%d+: ", ""), 2) end
  return c
end

-- Contact passwords a vendor may send back in clear (web_passe in
-- ws_modification_contact's answer) are masked when printed; the session
-- token is not (it is what the next call takes as x_rsi_token).
local SHOWN = { jeton = true, x_rsi_token = true }
local MASKED = {}
for name in pairs(catalogue.secrets) do if not SHOWN[name] then MASKED[name] = true end end

-- A value given as "-" is read from stdin (one line), "env:NAME" from the
-- environment variable NAME: passwords never need to be on the command line.
local stdin_used = false
local function value_of(name, v)
  if v == "-" then
    if stdin_used then die("billetterie call: only one value can be read from stdin", 2) end
    stdin_used = true
    local line = io.stdin:read("*l")
    if line == nil then die("billetterie call: no value on stdin for " .. name, 2) end
    return (line:gsub("\r$", ""))
  end
  local var = v:match("^env:([%w_]+)$")
  if var then
    local value = os.getenv(var)
    if value == nil then die("billetterie call: " .. name .. "=env:" .. var .. " but " .. var .. " is not set", 2) end
    return value
  end
  return v
end

-- JSON with sorted keys and indentation, for people.
local function pretty(v, indent)
  indent = indent or ""
  if type(v) ~= "table" then return cjson.encode(v) end
  local inner = indent .. "  "
  if #v > 0 or next(v) == nil then
    if next(v) == nil then return "{}" end
    local parts = {}
    for i = 1, #v do parts[i] = inner .. pretty(v[i], inner) end
    return "[\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    local value = v[k]
    if value == nil then value = v[tonumber(k)] end
    parts[i] = inner .. cjson.encode(k) .. ": " .. pretty(value, inner)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end
cli.pretty = pretty

local HELP = {
  call = [[
usage: billetterie call WS_NAME [name=value ...] [--raw] [--url URL] [--config FILE]

Calls one web service and prints the payload and the statut as JSON (--raw:
the answer as it came over the wire, unmasked). Values are strings; name[]=v
repeats for lists. name=- reads the value from stdin (one line) and
name=env:VAR from the environment variable VAR: use them for passwords
(web_passe=-), which `ps` would show on the command line. Contact passwords
in an answer are printed as "***". Credentials come from the environment or
the config file (the environment fills what the file and --url leave out).
Exit status: 0 success, 1 the call failed (the error on stderr), 2 usage.]],
  run = [[
usage: billetterie run SCRIPT.lua [args ...] [--url URL] [--config FILE]

Runs a workflow script inside billetterie.run (its calls may overlap with
billetterie.spawn / billetterie.map). The script receives the configured
client as its first argument (local c = ...), then the other arguments.]],
  import = [[
usage: billetterie import FILE.csv --map MAP.lua [--journal FILE] [--report FILE]
                          [--concurrency N] [--rate N] [--url URL] [--config FILE]

Imports organismes from a CSV file (';' or ','), one ws_organisme_creation
per record, resumable: run it again after any interruption and nothing is
created twice (the journal, FILE.csv.journal.db by default, remembers).
MAP.lua returns { ["organisme.intitule"] = "Column", ... }. Failures go to
the report (FILE.csv.failures.csv). Progress on stderr.]],
}
cli.HELP = HELP

function cli.call(args)
  local opts, rest = parse(args, { raw = "flag", config = "value", url = "value" })
  if not opts then die(rest .. "\n" .. HELP.call, 2) end
  if opts.help then print(HELP.call) return 0 end
  local name = rest[1]
  if not name then die(HELP.call, 2) end
  local params = {}
  for i = 2, #rest do
    local k, v = rest[i]:match("^([^=]+)=(.*)$")
    if not k then die("billetterie call: arguments are name=value, got " .. rest[i], 2) end
    v = value_of(k, v)
    local list = k:match("^(.-)%[%]$")
    if list then
      params[list] = params[list] or {}
      table.insert(params[list], v)
    else
      params[k] = v
    end
  end
  local raw
  local extra = {}
  if opts.raw then   -- keep what the transport returned, as it came
    local curl = require("billetterie.transport").curl
    extra.transport = { request = function(_, req)
      local status, body, ctype, errkind, errmsg, rid = curl:request(req)
      raw = body
      return status, body, ctype, errkind, errmsg, rid
    end }
  end
  local c = client(opts, extra)
  local msg, statut = c:call(name, params, nil)
  if msg == nil then
    io.stderr:write(tostring(statut), "\n")
    return 1
  end
  if opts.raw then
    io.write(raw or "", raw and raw:sub(-1) ~= "\n" and "\n" or "")
  else
    print(pretty({ payload = errors.mask(msg, MASKED), statut = statut }))
  end
  return 0
end

function cli.run(args)
  local opts, rest = parse(args, { config = "value", url = "value" })
  if not opts then die(rest .. "\n" .. HELP.run, 2) end
  if opts.help then print(HELP.run) return 0 end
  if not rest[1] then die(HELP.run, 2) end
  local chunk, err = loadfile(rest[1])
  if not chunk then die("billetterie run: " .. err, 2) end
  local c = client(opts)
  local unpack = table.unpack or unpack
  local ok, failure = pcall(billetterie.run, chunk, c, unpack(rest, 2))
  if not ok then
    io.stderr:write("billetterie run: ", tostring(failure), "\n")
    return 1
  end
  return 0
end

function cli.import(args)
  local opts, rest = parse(args, { map = "value", journal = "value", report = "value",
                                   concurrency = "value", rate = "value", config = "value", url = "value" })
  if not opts then die(rest .. "\n" .. HELP.import, 2) end
  if opts.help then print(HELP.import) return 0 end
  if not rest[1] or not opts.map then die(HELP.import, 2) end
  local chunk, err = loadfile(opts.map, "t", {})
  if not chunk then die("billetterie import: " .. err, 2) end
  local map = chunk()
  local report, ierr = require("billetterie.bulk").import{
    client = client(opts), csv = rest[1], map = map,
    journal = opts.journal, report = opts.report or (rest[1] .. ".failures.csv"),
    concurrency = tonumber(opts.concurrency) or 8, rate = tonumber(opts.rate), progress = true,
  }
  if not report then die("billetterie import: " .. tostring(ierr)) end
  print(("%d records: %d created, %d failed (report %s), %d unknown, %d not sent"):format(report.total,
    report.created, report.failed, report.report, report.unknown, report.pending or 0))
  if report.unresolved then io.stderr:write("could not check the server: ", report.unresolved, "\n") end
  return (report.failed > 0 or report.unknown > 0 or (report.pending or 0) > 0) and 1 or 0
end

return cli
