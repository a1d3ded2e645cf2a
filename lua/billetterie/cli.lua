-- The client side of the `billetterie` command: call, run, import.
-- Credentials come from the environment (BILLETTERIE_URL, _LOGIN, _PASSWORD,
-- _CLIENT, _API_URL, _API_LOGIN, _API_KEY) or a config file (--config FILE or
-- BILLETTERIE_CONFIG: a Lua file returning billetterie.new's options, run
-- with os.getenv and no file or command access: safe_env), never from the
-- command line, where `ps` would show them.
local billetterie = require "billetterie"
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"
local cjson = require "cjson"

local cli = {}

local function die(message, code)
  io.stderr:write(message, "\n")
  os.exit(code or 1)
end

-- --name value / --flag options, then positional arguments. With
-- `stop`, everything from the first positional argument on is positional
-- (a script's own arguments, as lua gives them).
local function parse(args, flags, stop)
  local opts, rest, i = {}, {}, 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w-]+)$")
    if stop and #rest > 0 then
      rest[#rest + 1] = a
    elseif a == "-h" or a == "--help" then
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

-- What a --config or --map file runs with: the basic functions, copies of
-- string, table and math, and os.getenv, os.time, os.date (a password from
-- the environment: password = os.getenv("BILLETTERIE_PASSWORD")); nothing
-- that opens a file, runs a command or loads code.
local BASICS = { "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber", "tostring", "type",
                 "unpack" }
local function safe_env()
  local env = { os = { getenv = os.getenv, time = os.time, date = os.date } }
  for _, name in ipairs(BASICS) do env[name] = _G[name] end
  for _, lib in ipairs{ "string", "table", "math" } do
    env[lib] = {}
    for k, v in pairs(_G[lib]) do env[lib][k] = v end
  end
  return env
end

-- The value a --config or --map file returns; a mistake in it ends the
-- command with its message (exit status 2).
local function load_data(what, path)
  local chunk, err = loadfile(path, "t", safe_env())
  if not chunk then die(("billetterie: %s file: %s"):format(what, err), 2) end
  local ok, value = pcall(chunk)
  if not ok then die(("billetterie: %s file %s failed: %s"):format(what, path, tostring(value)), 2) end
  return value
end

local function client(opts, extra)
  local config = opts.config or os.getenv("BILLETTERIE_CONFIG")
  local base = {}
  if config then
    base = load_data("config", config)
    if type(base) ~= "table" then die("billetterie: " .. config .. " must return a table of options", 2) end
  end
  for k, v in pairs(extra or {}) do base[k] = v end
  -- an address is no secret, a flag is fine; but not one with a password
  -- in it (http://user:pw@host/): ps shows the command line
  if opts.url and opts.url:match("^%a[%w+.-]*://[^/@]-:[^/@]*@") then
    die("billetterie: --url holds a password, which ps shows: give it in BILLETTERIE_URL or --config FILE", 2)
  end
  if opts.url then base.url = opts.url end
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

-- Fields whose empty value prints as []. lua-cjson 2.1.0 (Debian) decodes []
-- and {} alike to an empty table (it has no decode_array_with_array_mt), so
-- an empty table is a list by the name of its field: liste_* or *_liste, or
-- a name the vendor's answers (seed, sandbox) only ever use for lists. Any
-- other empty table, an empty item of a list and an empty payload (its
-- field is ours) print as {}; a table marked with json.array prints as [].
local LIST_FIELDS = {}
for name in ("contacts adresses historique valeur option option_value option_code code_envoi formulaire "
  .. "action_fieldset interet"):gmatch("%S+") do LIST_FIELDS[name] = true end

local function is_list(v, name)
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__jsontype == "array" or type(name) == "string"
    and (LIST_FIELDS[name] or name:find("^liste_") ~= nil or name:find("_liste$") ~= nil)
end

-- JSON with sorted keys and indentation, for people; `name` is the field
-- holding v (see LIST_FIELDS).
local function pretty(v, indent, name)
  indent = indent or ""
  if type(v) ~= "table" then return cjson.encode(v) end
  if next(v) == nil then return is_list(v, name) and "[]" or "{}" end
  local inner = indent .. "  "
  if #v > 0 then
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
    parts[i] = inner .. cjson.encode(k) .. ": " .. pretty(value, inner, k)
  end
  return "{\n" .. table.concat(parts, ",\n") .. "\n" .. indent .. "}"
end
cli.pretty = pretty

local HELP = {
  call = [[
usage: billetterie call WS_NAME [name=value ...] [--raw]
                        [--url URL] [--config FILE]

Calls one web service and prints the payload and the statut as JSON (--raw:
the answer as it came over the wire, unmasked). Values are the Lua values
billetterie.call takes, checked alike: strings; name[]=v repeated for a
list; name[key]=v repeated for a map (liste_maj_code_envoi[145]=1); true or
false for a boolean (as 1/0); for a parameter sent as JSON or base64 JSON
(organisme, adresses, criteres...), a value starting with { or [ is JSON,
decoded into the table the client checks and encodes
(organisme='{"intitule":"Théâtre","nature":"Association"}'; malformed JSON:
exit 2), any other value goes as it is. The account's credentials
(x_rsi_ws_login, x_rsi_ws_mdp, x_rsi_client, x_rsi_login, x_rsi_api_key,
x_rsi_pwd_key) are refused (exit 2); a session token is taken
(x_rsi_token=env:TOKEN: ps shows the command line).
name=- reads the value from stdin (one line) and
name=env:VAR from the environment variable VAR: use them for passwords
(web_passe=-), which `ps` would show on the command line. Contact passwords
in an answer are printed as "***". each=TAG streams an XML answer (the
catalogue: each=SPECTACLE): one JSON document per TAG element, printed as it
comes (not with --raw). Credentials come from the environment or
the config file (the environment fills what the file and --url leave out):
a Lua file returning billetterie.new's options, which may read the
environment (password = os.getenv("MY_PW")) but not files or commands.
Exit status: 0 success, 1 the call failed (the error on stderr), 2 usage.]],
  run = [[
usage: billetterie run [--url URL] [--config FILE] SCRIPT.lua [args ...]

Runs a workflow script inside billetterie.run (its calls may overlap with
billetterie.spawn / billetterie.map). The script receives the configured
client as its first argument (local c = ...), then its own arguments; as
with lua, arg[0] is the script and arg[1], arg[2]... its arguments (every
argument after SCRIPT.lua is the script's). Exit status: 0, 1 if the
script raised an error (its message on stderr), 2 usage.]],
  import = [[
usage: billetterie import FILE.csv --map MAP.lua [--journal FILE]
                          [--report FILE] [--concurrency N] [--rate N]
                          [--feed-margin SECONDS] [--take-over]
                          [--url URL] [--config FILE]
       billetterie import [FILE.csv] [--journal FILE]
                          --settle LINE=ID|LINE=absent [--take-over]

Imports organismes from a CSV file (';' or ','), one ws_organisme_creation
per record, resumable: run it again after any interruption and nothing is
created twice (the journal, FILE.csv.journal.db by default, remembers; one
import at a time per journal). The file must be UTF-8 (a BOM is fine):
from Excel, save as "CSV UTF-8 (délimité par des virgules)", or convert
with iconv -f WINDOWS-1252 -t UTF-8; another encoding is refused before
anything is sent. Rows whose fields are all empty (a spreadsheet's ";;;;"
rows) after the last record are skipped, as blank lines. MAP.lua returns
{ ["organisme.intitule"] = "Column", ... }; a column it names that the
header lacks (spelling, case and spaces must match) is refused before
anything is sent. The change feed
(ws_liste_fiches_modifiees: BILLETTERIE_API_URL, BILLETTERIE_API_LOGIN,
BILLETTERIE_API_KEY) is required: without it the import is refused.
Failures go to the report (FILE.csv.failures.csv, UTF-8 with a BOM for
Excel; columns ligne: the record's number, 1 for the first after the
header, blank lines not counted, the LINE of --settle; code; message;
ligne_fichier: the file line the record starts on): correct those records
in the CSV and run again (a record already sent must keep its content and
its place).
A record whose answer was lost is looked for on the server before anything
is sent again; one not found yet stays "unknown" until a later run. The map
must not set organisme.code_libre_stru (the import's marker), and no one may
edit that field before the import ends.
--concurrency: calls at once (8); --rate: at most N calls a second.
--feed-margin: how far (seconds, 0 to 86400) before a lost answer's time
the change feed is read; 43200 (12 h) by default, safe whatever the
server's time zone but a long list. Below 43200 the server is assumed in
this machine's time zone (or at most that margin behind it) and ts goes in
local time: lower it (e.g. 0) only when both share a zone (both in
metropolitan France); the lookup stays short.
--settle: a record still unknown (its lookup keeps failing, e.g. timing
out on a long list) once looked for on the server by hand, as the organisme
whose code_libre_stru is "PREFIX:LINE" (the prefix is in the message of the
run): LINE=ID marks it created as organisme ID, LINE=absent puts it back
to be sent again by the next run. Refused for a record that is not unknown.
A journal in use by a run of another host is never taken over by itself (a
paused run would send what it held on resuming): once that run is known to
be dead, run again with --take-over. Progress on stderr.
Exit status: 0 every record created (or settled), 1 some failed, unknown or
not sent (or the import could not run: an unreadable or non-UTF-8 CSV, a
journal in use or busy, a sent record changed; or the record cannot be
settled), 2 usage (bad options, a journal or report path that cannot be
used, a map that sets the marker or names a column the CSV lacks, no change
feed credentials).]],
}
cli.HELP = HELP

-- The account's credentials, by the variable that gives each: never
-- taken from the command line (ps shows it), whatever a config's strict
-- says. A session token (x_rsi_token) is no account credential.
local ACCOUNT = {
  x_rsi_ws_login = "BILLETTERIE_LOGIN", x_rsi_ws_mdp = "BILLETTERIE_PASSWORD", x_rsi_client = "BILLETTERIE_CLIENT",
  x_rsi_login = "BILLETTERIE_API_LOGIN", x_rsi_api_key = "BILLETTERIE_API_KEY", x_rsi_pwd_key = "BILLETTERIE_PWD_KEY",
}

-- A parameter's catalogue entry in a service, under any of its spellings
-- (an annex 4.1 receive name stands for its send name), or nil.
local function spec_of(service, name)
  if not service then return nil end
  local index = require("billetterie.params").by_name(service)
  if index[name] then return index[name] end
  for _, f in ipairs(catalogue.contact_fields) do
    if f.receive == name then return index[f.send] end
  end
end

-- What a command-line string becomes for the client, by the catalogue's
-- type: true/false for a boolean (as 1/0), and for a base64_json or json
-- parameter a value starting with { or [ is JSON, decoded into the table a
-- library caller gives, so the client checks and encodes it alike (any
-- other value, already base64 or JSON text, goes as it is).
local JSON_TYPES = { base64_json = true, json = true }
local BOOLEANS = { ["true"] = "1", ["false"] = "0" }
local json_codec = require "billetterie.json"
local function typed(spec, name, v, item)
  local t = spec and (item and spec.item_type or spec.type)
  if t == "boolean" and BOOLEANS[v] then return BOOLEANS[v] end
  if not item and JSON_TYPES[t] and v:match("^%s*[{%[]") then
    local value, err = json_codec.decode(v)
    if type(value) ~= "table" then
      die(("billetterie call: %s is not valid JSON (%s)"):format(name, tostring(err or "not an object or array")), 2)
    end
    -- lua-cjson reads [] and {} alike: an empty list given alone stays a list
    if next(value) == nil and v:match("^%s*%[") then value = json_codec.array(value) end
    return value
  end
  return v
end

-- name=value arguments as the Lua values a library caller gives: name[]=v
-- repeated is a list, name[key]=v a map (a key of digits an integer, as
-- ids are), a JSON value a table (typed above).
local function call_params(ws, rest)
  local service = catalogue.services[ws]
  local params, shape = {}, {}
  for i = 2, #rest do
    local k, v = rest[i]:match("^([^=]+)=(.*)$")
    if not k then die("billetterie call: arguments are name=value, got " .. rest[i], 2) end
    local base, key = k:match("^([^%[%]]+)%[([^%[%]]*)%]$")
    base = base or k
    local env = ACCOUNT[base:lower()]
    if env then
      die(("billetterie call: %s is the account's credential: it comes from the environment (%s) or "
        .. "--config, never from the command line"):format(base, env), 2)
    end
    local spec = spec_of(service, base)
    v = value_of(k, v)
    local form = key == nil and "value" or key == "" and "list" or "map"
    if shape[base] and (shape[base] ~= form or form == "value") then
      die("billetterie call: " .. base .. " is given twice (name=v once, or name[]=v / name[key]=v repeated)", 2)
    end
    shape[base] = form
    if form == "value" then
      params[base] = typed(spec, base, v)
    else
      local t = params[base] or {}
      params[base] = t
      v = typed(spec, k, v, true)
      if form == "list" then
        t[#t + 1] = v
      else
        if key:match("^[1-9]%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?$") and not (spec and spec.key_type == "string") then
          key = tonumber(key)
        end
        if t[key] ~= nil then die("billetterie call: " .. k .. " is given twice", 2) end
        t[key] = v
      end
    end
  end
  return params
end

-- call WS each=TAG: one document per streamed element, printed as it
-- comes; a failure after some were printed still exits 1.
local function call_each(c, name, params)
  -- a tag that is not a string, or a JSON service, raises in the client
  local ok, items, state, init = pcall(c.call, c, name, params)
  if not ok then die("billetterie call: " .. tostring(items):gsub("^[^:]*:%d+: ", ""), 2) end
  for item, err in items, state, init do
    if not item then
      io.stderr:write(tostring(err), "\n")
      return 1
    end
    print(pretty(errors.mask(item, MASKED)))
  end
  return 0
end

function cli.call(args)
  local opts, rest = parse(args, { raw = "flag", config = "value", url = "value" })
  if not opts then die(rest .. "\n" .. HELP.call, 2) end
  if opts.help then print(HELP.call) return 0 end
  local name = rest[1]
  if not name then die(HELP.call, 2) end
  local params = call_params(name, rest)
  if params.each ~= nil and opts.raw then
    die("billetterie call: --raw prints the whole answer, each=TAG its elements: give one of them", 2)
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
  if params.each ~= nil then return call_each(c, name, params) end
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
  local opts, rest = parse(args, { config = "value", url = "value" }, true)
  if not opts then die(rest .. "\n" .. HELP.run, 2) end
  if opts.help then print(HELP.run) return 0 end
  if not rest[1] then die(HELP.run, 2) end
  local chunk, err = loadfile(rest[1])
  if not chunk then die("billetterie run: " .. err, 2) end
  local c = client(opts)
  -- the script's arg, as lua would give it: arg[0] the script, then its arguments
  local script_arg = { [-1] = arg and arg[0], [0] = rest[1] }
  for i = 2, #rest do script_arg[i - 1] = rest[i] end
  local saved = _G.arg
  _G.arg = script_arg
  local unpack = table.unpack or unpack
  local ok, failure = pcall(billetterie.run, chunk, c, unpack(rest, 2))
  _G.arg = saved
  if not ok then
    io.stderr:write("billetterie run: ", tostring(failure), "\n")
    return 1
  end
  return 0
end

-- A --name value that must be a number: whole (>= 1) or positive.
local function number_option(opts, name, whole)
  local v = opts[name]
  if v == nil then return nil end
  local n = tonumber(v)
  if whole then
    n = v:match("^%d+$") and n
    if not n or n < 1 or n > 1e6 then
      die(("billetterie import: --%s must be a whole number from 1 to 1000000, got %s"):format(name, v), 2)
    end
  elseif not n or not (n > 0 and n < math.huge) then
    die(("billetterie import: --%s must be a number of calls a second > 0, got %s"):format(name, v), 2)
  end
  return n
end

-- import --settle LINE=ID|LINE=absent: one unknown record settled by hand.
local function settle(opts, rest)
  for _, name in ipairs{ "map", "report", "concurrency", "rate", "feed-margin" } do
    if opts[name] then die("billetterie import: --settle takes no --" .. name .. "\n" .. HELP.import, 2) end
  end
  if rest[2] or not (opts.journal or rest[1]) then die(HELP.import, 2) end
  -- whole numbers a double holds exactly (bulk.settle raises on others)
  local line, what = opts.settle:match("^(%d%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?%d?)=(%w+)$")
  local id = what and #what <= 15 and what:match("^%d+$") and tonumber(what)
  if not line or tonumber(line) < 1 or not (what == "absent" or (id and id >= 1)) then
    die("billetterie import: --settle is LINE=ID_ORGANISME or LINE=absent, got " .. opts.settle, 2)
  end
  local done, err = require("billetterie.bulk").settle{
    journal = opts.journal or (rest[1] .. ".journal.db"), line = tonumber(line),
    id_organisme = what ~= "absent" and id or nil, absent = what == "absent" or nil,
    take_over = opts["take-over"] or nil,
  }
  if not done then   -- a journal path that cannot be used is a usage mistake
    local usage = err.param == "journal" and not err.retryable
    die("billetterie import: " .. tostring(err.message or err), usage and 2 or 1)
  end
  if done.state == "done" then
    print(("record %d: created, organisme %d"):format(done.line, done.id_organisme))
  else
    print(("record %d: not created, the next run sends it again"):format(done.line))
  end
  return 0
end

function cli.import(args)
  local opts, rest = parse(args, { map = "value", journal = "value", report = "value",
                                   concurrency = "value", rate = "value", config = "value", url = "value",
                                   ["take-over"] = "flag", ["feed-margin"] = "value", settle = "value" })
  if not opts then die(rest .. "\n" .. HELP.import, 2) end
  if opts.help then print(HELP.import) return 0 end
  if opts.settle then return settle(opts, rest) end
  if not rest[1] or not opts.map or rest[2] then die(HELP.import, 2) end
  local concurrency = number_option(opts, "concurrency", true) or 8
  local rate = number_option(opts, "rate", false)
  local margin = opts["feed-margin"]
  local feed_margin = margin and tonumber(margin)
  if margin and not (margin:match("^%d+$") and feed_margin <= 86400) then
    die("billetterie import: --feed-margin must be a number of seconds from 0 to 86400, got " .. margin, 2)
  end
  local map = load_data("map", opts.map)
  if type(map) ~= "table" and type(map) ~= "function" then
    die("billetterie import: " .. opts.map .. " must return a table { [\"organisme.intitule\"] = \"Column\" } "
      .. "or a function", 2)
  end
  local report, ierr = require("billetterie.bulk").import{
    client = client(opts), csv = rest[1], map = map,
    journal = opts.journal, report = opts.report or (rest[1] .. ".failures.csv"),
    concurrency = concurrency, rate = rate, progress = true, take_over = opts["take-over"] or nil,
    feed_margin = feed_margin,
  }
  if not report then
    -- a path or map that cannot be used is a usage mistake; a busy journal
    -- or an edited record is not
    local usage = ierr.kind == "invalid_param" and not ierr.retryable
      and (ierr.param == "journal" or ierr.param == "report" or ierr.param == "map" or ierr.param == "client")
    die("billetterie import: " .. tostring(ierr.message or ierr), usage and 2 or 1)
  end
  print(("%d records: %d created, %d failed (report %s), %d unknown, %d not sent"):format(report.total,
    report.created, report.failed, report.report, report.unknown, report.pending))
  if report.not_in_csv > 0 then
    print(("%d record(s) of the journal are past the end of this CSV: left alone, not counted"):format(
      report.not_in_csv))
  end
  if report.unresolved then io.stderr:write("billetterie import: ", report.unresolved, "\n") end
  return (report.failed > 0 or report.unknown > 0 or report.pending > 0) and 1 or 0
end

return cli
