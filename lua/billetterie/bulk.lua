-- Bulk organisme import from CSV that loses nothing and creates nothing twice.
--   local report = assert(bulk.import{
--     client = c, csv = "organismes.csv", journal = "organismes.journal.db",
--     map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
--             ["adresses.1.type_adresse"] = "Type", ["adresses.1.ville"] = "Ville" },
--     report = "organismes.failures.csv", concurrency = 8, progress = true })
--   --> { total =, created =, already =, failed =, unknown =, pending = [, report =, unresolved =] }
--   | nil, err (a billetterie error: invalid_param for a CSV, journal or
--     report path that cannot be used or a CSV that changed or is malformed)
-- created counts every record done (this run or an earlier one), already
-- those done before this run; failed the records the vendor refused or whose
-- handling raised (their text in the report); unknown those sent whose
-- outcome could not be checked on the server; pending those not sent because
-- unknown outcomes could not be checked first (unresolved says why).
-- Every CSV record has a row in the journal (SQLite). A record is marked
-- "sent" (committed) before its request leaves and "done" with the new
-- id_organisme once the answer is read, so a run killed at any point can be
-- restarted: done records are skipped, and a "sent" record whose answer was
-- lost is looked for on the server before anything is sent again. To find
-- it, each organisme carries its record's key in `marker_field`
-- (code_libre_stru by default) and the change feed (api_url, api_login and
-- api_key of the client) lists what was created since it was sent.
local luasql = require "luasql.sqlite3"
local csv = require "billetterie.csv"
local errors = require "billetterie.error"
local runner = require "billetterie.runner"

local bulk = {}

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)]],
  [[CREATE TABLE IF NOT EXISTS records (
      line INTEGER PRIMARY KEY,   -- record number in the CSV (1 = first after the header)
      hash TEXT NOT NULL,         -- the record's content: a changed file is refused
      state TEXT NOT NULL,        -- pending | sent | done | failed
      id_organisme INTEGER,
      code INTEGER, message TEXT, sent_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0
    )]],
}

-- LuaSQL gives floats under Lua 5.4; LuaJIT has one number type.
local tointeger = math.tointeger or function(v) return v end

local function bad_input(param, message)
  return nil, errors.new{ kind = "invalid_param", ws = "bulk.import", param = param, retryable = false,
                          message = message }
end

local Journal = {}
Journal.__index = Journal

local function quote(conn, v)
  if v == nil then return "NULL" end
  if type(v) == "number" then return ("%d"):format(v) end
  return "'" .. conn:escape(tostring(v)) .. "'"
end

function Journal:exec(sql, ...)
  local args, i = { ... }, 0
  sql = sql:gsub("%?", function() i = i + 1; return quote(self.conn, args[i]) end)
  local res, err = self.conn:execute(sql)
  if not res then error("journal: " .. tostring(err), 2) end
  if type(res) ~= "number" then
    local rows = {}
    while true do
      local row = res:fetch({}, "a")
      if not row then break end
      for k, v in pairs(row) do if type(v) == "number" then row[k] = tointeger(v) or v end end
      rows[#rows + 1] = row
    end
    res:close()
    return rows
  end
  return res
end

local function open_journal(path)
  local env = luasql.sqlite3()
  local conn, err = env:connect(path)
  if not conn then env:close(); return nil, tostring(err) end
  local j = setmetatable({ env = env, conn = conn }, Journal)
  -- WAL with synchronous NORMAL: every commit survives a kill -9 of this
  -- process (only a power cut may lose the last ones), without an fsync each.
  j:exec("PRAGMA journal_mode = WAL")
  j:exec("PRAGMA synchronous = NORMAL")
  for _, stmt in ipairs(SCHEMA) do j:exec(stmt) end
  return j
end

function Journal:close()
  self.conn:close()
  self.env:close()
end

-- The content of a record, in a stable order, to notice a changed file.
local function fingerprint(rec, header)
  local parts = {}
  for i, name in ipairs(header) do parts[i] = name .. "=" .. (rec[name] or "") end
  return table.concat(parts, "\31")
end

-- Applies a mapping { ["a.b.1.c"] = "Column" } (or a function) to a record;
-- a value that is not a string is a constant ({ ["x.checked"] = true }).
local function mapped(map, rec)
  if type(map) == "function" then return map(rec) end
  local out = {}
  for path, column in pairs(map) do
    local value = column
    if type(column) == "string" then value = rec[column] end
    if value ~= nil and value ~= "" then
      local t, keys = out, {}
      for k in path:gmatch("[^.]+") do keys[#keys + 1] = tonumber(k) or k end
      for i = 1, #keys - 1 do
        t[keys[i]] = t[keys[i]] or {}
        t = t[keys[i]]
      end
      t[keys[#keys]] = value
    end
  end
  return out
end

-- Looks for organismes created since `since` whose marker is one of `keys`
-- ({ key = line }). -> { line = id_organisme } | nil, err
local function find_on_server(c, marker_field, keys, since)
  local data, statut = c:liste_fiches_modifiees{ ts = os.date("%Y-%m-%dT%H:%M:%S", since), type_export = nil }
  if not data then return nil, statut end
  local found = {}
  local list = data.liste_organismes
  for _, o in ipairs(type(list) == "table" and list or {}) do
    local line = keys[o[marker_field]]
    if line and type(o) == "table" then found[line] = o.id_organisme end
  end
  return found
end

function bulk.import(opts)
  local c = assert(opts.client, "bulk.import needs a client")
  local marker_field = opts.marker_field or "code_libre_stru"
  local f, err = io.open(opts.csv, "rb")
  if not f then return bad_input("csv", "cannot read the CSV file: " .. tostring(err)) end
  local text = f:read("*a")
  f:close()
  local records, header = csv.records(text)
  if not records then return bad_input("csv", opts.csv .. ": " .. tostring(header)) end

  local journal_path = opts.journal or (opts.csv .. ".journal.db")
  local journal, jerr = open_journal(journal_path)
  if not journal then return bad_input("journal", "cannot open the journal " .. journal_path .. ": " .. jerr) end
  -- the marker prefix is this journal's own: keys of two imports never meet
  local prefix = (journal:exec("SELECT v FROM meta WHERE k = 'prefix'")[1] or {}).v
  if not prefix then
    math.randomseed(os.time() + math.floor(os.clock() * 1e6))
    prefix = ("imp%06x"):format(math.random(0, 0xffffff))
    journal:exec("INSERT INTO meta (k, v) VALUES ('prefix', ?)", prefix)
  end
  local function key(line) return prefix .. ":" .. line end

  -- every record has its row; a changed file is refused (its lines moved)
  local known = {}
  for _, r in ipairs(journal:exec("SELECT line, hash, state FROM records")) do known[r.line] = r end
  journal:exec("BEGIN")
  for line, rec in ipairs(records) do
    local hash = fingerprint(rec, header)
    if not known[line] then
      journal:exec("INSERT INTO records (line, hash, state) VALUES (?, ?, 'pending')", line, hash)
    elseif known[line].hash ~= hash then
      journal:exec("ROLLBACK")
      journal:close()
      return bad_input("csv", ("%s changed since this journal was started (record %d); use a new journal")
        :format(opts.csv, line))
    end
  end
  journal:exec("COMMIT")

  -- Records whose answer was lost: look for them before sending again.
  local function resolve_unknown()
    local sent = journal:exec("SELECT line, sent_at FROM records WHERE state = 'sent'")
    if #sent == 0 then return 0 end
    local keys, since = {}, math.huge
    for _, r in ipairs(sent) do
      keys[key(r.line)] = r.line
      since = math.min(since, (r.sent_at or os.time()) - 120)   -- clock skew margin
    end
    local found, ferr = find_on_server(c, marker_field, keys, since)
    if not found then return nil, ferr end
    journal:exec("BEGIN")
    for _, r in ipairs(sent) do
      if found[r.line] then
        journal:exec("UPDATE records SET state = 'done', id_organisme = ? WHERE line = ?", found[r.line], r.line)
      else   -- never arrived: send it again
        journal:exec("UPDATE records SET state = 'pending' WHERE line = ?", r.line)
      end
    end
    journal:exec("COMMIT")
    return #sent
  end
  local _, rerr = resolve_unknown()
  local unresolved = rerr and tostring(rerr) or nil

  local todo = {}
  for _, r in ipairs(journal:exec("SELECT line FROM records WHERE state IN ('pending', 'failed') ORDER BY line")) do
    local rec = records[r.line]
    if rec then todo[#todo + 1] = r.line end
  end
  if unresolved then todo = {} end   -- unknown outcomes first: never risk a duplicate
  local already = #journal:exec("SELECT line FROM records WHERE state = 'done'")

  local _, raised = runner.map(todo, function(line)
    local params = mapped(opts.map, records[line])
    params.organisme = params.organisme or {}
    params.organisme[marker_field] = key(line)
    journal:exec("UPDATE records SET state = 'sent', sent_at = ?, attempts = attempts + 1 WHERE line = ?",
      os.time(), line)
    local msg, e = c:organisme_creation(params)
    local created = type(msg) == "table" and type(msg.organisme) == "table" and msg.organisme.id_organisme
    if created then
      journal:exec("UPDATE records SET state = 'done', id_organisme = ?, code = NULL, message = NULL WHERE line = ?",
        created, line)
      return true
    end
    if msg then   -- an ok without the new id: stays "sent", looked for on the server
      return nil, errors.new{ kind = "decode", ws = "ws_organisme_creation",
                              message = "the answer has no id_organisme" }
    end
    if e.kind == "network" or e.kind == "timeout" or (e.kind == "http" and e.http_status and e.http_status >= 500) then
      return nil, e   -- outcome unknown: stays "sent", checked on the server before any resend
    end
    journal:exec("UPDATE records SET state = 'failed', code = ?, message = ? WHERE line = ?",
      e.code, e.message, line)
    return nil, e
  end, { concurrency = opts.concurrency or 8, rate = opts.rate, progress = opts.progress })
  -- A record whose handling raised (a map function, the journal): failed
  -- with the error's text, unless it was sent (then its outcome is unknown).
  for i, e in pairs(raised) do
    if not errors.is(e) then
      journal:exec("UPDATE records SET state = CASE state WHEN 'sent' THEN 'sent' ELSE 'failed' END, "
        .. "message = ? WHERE line = ?", tostring(e), todo[i])
    end
  end
  if not unresolved then
    local _, e2 = resolve_unknown()
    unresolved = e2 and tostring(e2) or nil
  end

  local counts = { total = #records, created = 0, already = already, failed = 0, unknown = 0, pending = 0 }
  local failures = {}
  for _, r in ipairs(journal:exec("SELECT * FROM records ORDER BY line")) do
    if r.state == "done" then counts.created = counts.created + 1
    elseif r.state == "sent" then counts.unknown = counts.unknown + 1
    elseif r.state == "pending" then counts.pending = counts.pending + 1
    else
      counts.failed = counts.failed + 1
      failures[#failures + 1] = r
    end
  end
  journal:close()
  if opts.report then
    local out, oerr = io.open(opts.report, "w")
    if not out then return bad_input("report", "cannot write the report: " .. tostring(oerr)) end
    out:write("ligne;code;message\n")
    for _, r in ipairs(failures) do
      out:write(("%d;%s;%s\n"):format(r.line, csv.field(r.code), csv.field(r.message or r.state)))
    end
    out:close()
    counts.report = opts.report
  end
  counts.unresolved = unresolved
  return counts
end

return bulk
