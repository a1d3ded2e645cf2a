-- Bulk organisme import from CSV that loses nothing and creates nothing twice.
--   local report, err = bulk.import{
--     client = c, csv = "organismes.csv", journal = "organismes.journal.db",
--     map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
--             ["adresses.1.type_adresse"] = "Type", ["adresses.1.ville"] = "Ville" },
--     report = "organismes.failures.csv", concurrency = 8, progress = true })
--   --> { total =, created =, already =, failed =, unknown =, pending =, not_in_csv = [, report =, unresolved =] }
--   | nil, err (a billetterie error, kind invalid_param, param "csv", "journal",
--     "report", "map" or "client": a path that cannot be used, a journal in
--     use by another run or busy (both retryable), a record changed after
--     it was sent, a malformed CSV or one not in UTF-8, a map that sets the
--     marker field or names a column the header lacks, a client without the
--     change feed's credentials)
-- Options besides those above: rate (calls a second), marker_field, settle
-- (seconds, below), feed_margin (seconds, below), take_over (below). Bad
-- options (no client, concurrency 0, rate 0, feed_margin past 0..86400...)
-- are programmer mistakes: they raise, before any file is opened.
--
-- Counts are of this CSV's records: created every record done (this run or
-- an earlier one), already those done before this run, failed those that
-- cannot have been created (refused by the vendor, an HTTP 4xx, an
-- invalid_param, a handling that raised before sending; their text in the
-- report), unknown those sent whose outcome is not known yet, pending those
-- not sent because unknown outcomes could not be checked first (unresolved
-- says why or when to run again). not_in_csv counts the journal's records
-- past the CSV's end (a shortened file): they are left alone.
--
-- Every CSV record has a row in the journal (SQLite). A record is marked
-- "sent" (committed) before its request leaves and "done" with the new
-- id_organisme once the answer is read, so a run killed at any point can be
-- restarted: done records are skipped. A vendor "ko" that still carries the
-- new organisme's id (organisme.id_organisme) is done with that id. Whenever
-- the request may have been applied (a network error or timeout, an HTTP
-- 5xx, an answer that cannot be read, an ok without the new id, a ko saying
-- part of the request was done: partial, 1111) the record stays "sent", and
-- is looked for on the server before it is ever sent again: each organisme
-- carries its record's key in `marker_field` (code_libre_stru by default)
-- and the change feed (api_url, api_login and api_key of the client) lists
-- what was created since. A sent record not found there goes back to
-- pending only `settle` seconds (default the client's timeout +
-- sync_overlap: the server may still be writing it) after its request
-- left; until then it is unknown. When the request left is bounded by when
-- its answer (or failure) came back, so sent_at is stamped again then; a
-- record whose call never came back (a killed run) is given in addition the
-- time the client's own pacing (its rate and max_in_flight, for this run's
-- concurrency: the same options are assumed) may have held it after it
-- was marked.
--
-- The change feed's ts. The lookup asks for what changed since `since`: the
-- earliest sent_at of the unknown records, minus the client's timeout and
-- SKEW (120 s of clock skew between the two machines), minus feed_margin.
-- The server reads ts as a wall clock of its own time zone, which this
-- process cannot know; a ts read too late misses a record (created twice),
-- one too early only lengthens the list. So, m = feed_margin:
--   m >= 12 h (default 12 h): nothing is assumed about the server's zone:
--     ts is UTC's wall clock at since - m, never late for a server zone
--     from UTC-m eastwards (every zone, UTC-12 to UTC+14, by default); the
--     list spans 12 h or more of the server's changes.
--   m < 12 h: the server is assumed to be in this machine's time zone (the
--     usual case: both in metropolitan France), or at most m behind it: ts
--     is this machine's local wall clock at since - m (one hour earlier
--     when that wall clock comes twice, the hour before daylight saving time
--     ends), and the list stays short. Lower it (e.g. 0) only then: with a
--     server whose zone is behind this one's by more than m, records
--     created are missed and sent again.
--
-- A record stuck unknown (a lookup that keeps failing: a list too large to
-- come back before the timeout) can be settled by hand once looked for on
-- the server (the organisme whose marker field is "PREFIX:LINE", the prefix
-- is in the run's unresolved message):
--   bulk.settle{ journal = path, line = N, id_organisme = ID }   -- found: done with that id
--   bulk.settle{ journal = path, line = N, absent = true }      -- not there: pending, sent again
--   --> { line =, state = "done" | "pending", id_organisme = }
--   | nil, err (invalid_param: param "line" a record that is not "sent";
--     "journal" a missing file or not a journal, in use by a live run or
--     busy: both retryable; take_over as in import)
-- CLI: billetterie import --settle LINE=ID|LINE=absent --journal FILE.
--
-- A record may be corrected in the CSV while it is pending or failed: the
-- new content is used (checked again before sending). A record that was
-- sent or done must keep its content (its organisme exists, or may): the
-- run is refused. Records are identified by their rank in the file: keep
-- every line in its place (lines may be added, or removed, at the end).
-- The marker field is the import's: a map may not set it (refused, param
-- "map"), and no one may edit it on the server before the import has
-- resolved its records (a sent record whose marker was changed is not found
-- there, and is sent again).
--
-- One run at a time per journal: the run writes its owner row (pid, host,
-- process start time, heartbeat) in an immediate transaction and another
-- run is refused while that owner lives. An owner on this host is gone when
-- its pid has no process or one started at another time (a killed run's
-- lock is taken over at once). An owner on another host (or where /proc
-- cannot tell) is never taken over by itself, however long silent: a run
-- paused (SIGSTOP, docker pause, a suspended VM) would send its held
-- request on resuming, a duplicate. The refusal names its host, pid, start
-- and last heartbeat (refreshed as it sends records); once that run is
-- known to be dead, pass take_over = true (CLI: --take-over). Each record
-- is marked "sent" only while this run still owns the journal, so a run
-- taken over sends nothing more; what it writes afterwards is guarded by
-- the state (and sent_at) it read, so it never undoes a newer run's work.
local luasql = require "luasql.sqlite3"
local csv = require "billetterie.csv"
local core = require "billetterie.core"
local catalogue = require "billetterie.catalogue"
local errors = require "billetterie.error"
local runner = require "billetterie.runner"
local has_lfs, lfs = pcall(require, "lfs")   -- to tell two names of one file apart; optional

local bulk = {}

local HEARTBEAT = 30       -- seconds between two refreshes of the owner row
local BUSY_MS = 5000       -- how long SQLite waits for another connection's transaction
local SKEW = 120           -- seconds looked back in the change feed for clock skew
local ANY_ZONE = 12 * 3600 -- how far west of UTC a time zone may be (UTC-12)
local TS_FORMAT = "%Y-%m-%dT%H:%M:%S"

local SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT)]],
  [[CREATE TABLE IF NOT EXISTS records (
      line INTEGER PRIMARY KEY,   -- record number in the CSV (1 = first after the header)
      hash TEXT NOT NULL,         -- the record's content's SHA-256, to notice an edited record
      state TEXT NOT NULL,        -- pending | sent | done | failed
      id_organisme INTEGER,
      code INTEGER, message TEXT, sent_at INTEGER, attempts INTEGER NOT NULL DEFAULT 0
    )]],
  [[CREATE TABLE IF NOT EXISTS owner (   -- the run using the journal, if any
      id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, pid INTEGER, host TEXT,
      proc_start TEXT, started INTEGER NOT NULL, beat INTEGER NOT NULL
    )]],
}

-- LuaSQL gives floats under Lua 5.4; LuaJIT has one number type.
local tointeger = math.tointeger or function(v) return v end

-- nil, an invalid_param error of `ws` (bulk.import or bulk.settle)
local function refusal(ws, param, message, retryable)
  return nil, errors.new{ kind = "invalid_param", ws = ws, param = param, retryable = retryable or false,
                          message = message }
end

local function bad_input(param, message, retryable) return refusal("bulk.import", param, message, retryable) end

---- this process ----

local function read_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*l")
  f:close()
  return s
end

-- The start time of process `pid` (clock ticks since boot, /proc/PID/stat
-- field 22) | nil when there is no such live process.
local function proc_start(pid)
  local stat = read_line("/proc/" .. tostring(pid) .. "/stat")
  if not stat then return nil end
  local after = stat:match("^.*%)%s+(.*)$")   -- the command name may hold spaces and parentheses
  if not after then return nil end
  local fields = {}
  for w in after:gmatch("%S+") do fields[#fields + 1] = w end
  if fields[1] == "Z" or fields[1] == "X" then return nil end   -- dead, not reaped yet
  return fields[20]   -- field 22: state is field 3
end

-- { pid, host, proc_start } of this process; pid nil without /proc.
local function this_process()
  local me = {}
  local stat = read_line("/proc/self/stat")
  me.pid = stat and tonumber(stat:match("^(%d+)"))
  if me.pid then me.proc_start = proc_start(me.pid) end
  me.host = read_line("/proc/sys/kernel/hostname") or os.getenv("HOSTNAME") or "?"
  return me
end

-- n random bytes as hex, from /dev/urandom (math.random may be seeded
-- alike in every process: LuaJIT's is), else from the time and the clock.
local function random_hex(n)
  local f = io.open("/dev/urandom", "rb")
  local bytes = f and f:read(n)
  if f then f:close() end
  if bytes and #bytes == n then
    return (bytes:gsub(".", function(ch) return ("%02x"):format(ch:byte()) end))
  end
  local x = (os.time() * 1000003 + math.floor(os.clock() * 1e6)) % 2^32
  return (("%08x"):format(x):rep(n)):sub(1, 2 * n)
end

---- paths ----

local function absolute(path)
  if path:sub(1, 1) ~= "/" then
    local cwd = has_lfs and lfs.currentdir() or os.getenv("PWD") or "."
    path = cwd .. "/" .. path
  end
  local parts = {}
  for part in path:gmatch("[^/]+") do
    if part == ".." then parts[#parts] = nil elseif part ~= "." then parts[#parts + 1] = part end
  end
  return "/" .. table.concat(parts, "/")
end

-- Whether two paths name one file: the same device and inode when both
-- exist (links, ./x and x), else the same absolute path.
local function same_file(a, b)
  if has_lfs then
    local x, y = lfs.attributes(a), lfs.attributes(b)
    if x and y then return x.dev == y.dev and x.ino == y.ino end
  end
  return absolute(a) == absolute(b)
end

---- the journal ----

local Journal = {}
Journal.__index = Journal

local function quote(conn, v)
  if v == nil then return "NULL" end
  if type(v) == "number" then return ("%d"):format(v) end
  return "'" .. conn:escape(tostring(v)) .. "'"
end

-- Raises "journal: ..." (turned into an error value by bulk.import).
function Journal:exec(sql, ...)
  local args, i = { ... }, 0
  sql = sql:gsub("%?", function() i = i + 1; return quote(self.conn, args[i]) end)
  local res, err = self.conn:execute(sql)
  if not res then error("journal: " .. tostring(err):gsub("^LuaSQL: ", ""), 0) end
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

function Journal:close()
  if self.conn then self.conn:close(); self.env:close() end
  self.conn = nil
end

-- -> journal | nil, message
local function open_journal(path)
  local env = luasql.sqlite3()
  local conn, err = env:connect(path)
  if not conn then env:close(); return nil, "cannot open it: " .. tostring(err) end
  local j = setmetatable({ env = env, conn = conn }, Journal)
  local ok, why = pcall(function()
    j:exec("PRAGMA busy_timeout = " .. BUSY_MS)   -- another run's short transactions are waited for
    local tables = {}
    for _, r in ipairs(j:exec("SELECT name FROM sqlite_master WHERE type = 'table'")) do tables[r.name] = true end
    if next(tables) and not tables.records then return "a SQLite database of something else" end
    -- WAL with synchronous NORMAL: every commit survives a kill -9 of this
    -- process (only a power cut may lose the last ones), without an fsync each.
    j:exec("PRAGMA journal_mode = WAL")
    j:exec("PRAGMA synchronous = NORMAL")
    for _, stmt in ipairs(SCHEMA) do j:exec(stmt) end
  end)
  if ok and why then ok, why = false, why end
  if not ok then
    j:close()
    why = tostring(why):gsub("^journal: ", "")
    if why:find("not a database", 1, true) then why = "not a journal (not a SQLite database)" end
    return nil, why
  end
  return j
end

-- Whether the owner row `o` is left by a run that is over: "gone", "alive"
-- (a live process of this host), or "unknown" (another host, or no /proc:
-- a silent run may be paused, not dead; see the header).
local function owner_state(o, me)
  if me.pid and o.pid and o.host == me.host then
    local start = proc_start(o.pid)
    return (start == nil or start ~= o.proc_start) and "gone" or "alive"
  end
  return "unknown"
end

-- Makes this run the journal's owner; take_over: the owner is known to be
-- dead (never a live process of this host). -> true | nil, message
function Journal:lock(me, take_over)
  local now = os.time()
  self:exec("BEGIN IMMEDIATE")
  local o = self:exec("SELECT * FROM owner WHERE id = 1")[1]
  local state = o and owner_state(o, me)
  if o and state ~= "gone" and not (state == "unknown" and take_over) then
    self:exec("ROLLBACK")
    local fmt = "%Y-%m-%d %H:%M:%S"
    local msg = ("in use by another import (pid %s on %s, since %s, last seen %s)"):format(
      tostring(o.pid), tostring(o.host), os.date(fmt, o.started), os.date(fmt, o.beat))
    if state == "alive" then return nil, msg .. ": wait for it to end" end
    return nil, msg .. ": wait for it to end, or once it is known dead (not paused), run again with "
      .. "take_over = true (--take-over)"
  end
  self.token = ("%s:%d:%s"):format(me.host, me.pid or 0, random_hex(4))
  self:exec("INSERT OR REPLACE INTO owner (id, token, pid, host, proc_start, started, beat) "
    .. "VALUES (1, ?, ?, ?, ?, ?, ?)", self.token, me.pid, me.host, me.proc_start, now, now)
  self:exec("COMMIT")
  self.beat = now
  return true
end

function Journal:unlock()
  if self.token then self:exec("DELETE FROM owner WHERE token = ?", self.token) end
  self.token = nil
end

function Journal:owns()
  return self:exec("SELECT 1 AS yes FROM owner WHERE token = ?", self.token)[1] ~= nil
end

-- Marks a record sent if it is still pending or failed (another run may
-- have written it since it was read) and this run still owns the journal;
-- its code and message (a previous attempt's) are cleared: a sent record
-- without a message is one whose call never came back.
-- -> sent_at | nil, "lost" (taken over) | nil, "changed"
function Journal:claim(line)
  local now = os.time()
  if now - self.beat >= HEARTBEAT then
    self:exec("UPDATE owner SET beat = ? WHERE token = ?", now, self.token)
    self.beat = now
  end
  local n = self:exec("UPDATE records SET state = 'sent', sent_at = ?, code = NULL, message = NULL, "
    .. "attempts = attempts + 1 WHERE line = ? AND state IN ('pending', 'failed') "
    .. "AND EXISTS (SELECT 1 FROM owner WHERE token = ?)", now, line, self.token)
  if n > 0 then return now end
  return nil, self:owns() and "changed" or "lost"
end

---- records ----

local HEX = {}   -- byte -> two hex digits
for b = 0, 255 do HEX[string.char(b)] = ("%02x"):format(b) end

-- The content of a record, in a stable order, to notice an edited one:
-- its SHA-256 (hex) is kept in the journal, never the values themselves
-- (personal data, columns the map never sends). -> digest, content (the
-- clear form journals of earlier versions hold)
local function fingerprint(rec, header)
  local parts = {}
  for i, name in ipairs(header) do parts[i] = name .. "=" .. (rec[name] or "") end
  local text = table.concat(parts, "\31")
  return (core.hmac_sha256("billetterie.bulk record", text):gsub(".", HEX)), text
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

-- Whether a failed call may still have created the organisme: only a
-- vendor "ko" (unless it says part of the request was done), an HTTP 4xx
-- and a refused parameter say it did not.
local function maybe_applied(e)
  if e.partial then return true end
  if e.kind == "vendor" or e.kind == "invalid_param" then return false end
  if e.kind == "http" and e.http_status and e.http_status >= 400 and e.http_status < 500 then return false end
  return true
end

-- The new organisme's id in an answer's payload (a success's, or what a ko
-- still carried: then the organisme was created anyway) | nil.
local function new_id(payload)
  local o = type(payload) == "table" and payload.organisme
  local id = type(o) == "table" and o.id_organisme
  if type(id) == "number" and id > 0 then return id end
  if type(id) == "string" and id:match("^%d+$") and tonumber(id) > 0 then return tonumber(id) end
  return nil
end

-- The change feed's ts for organismes created from `since` on, `margin`
-- (feed_margin) earlier, by the rule of the header: a start too late misses
-- records (then created twice), one too early costs only a longer list.
local function feed_ts(since, margin)
  -- whole seconds, earlier when cut (a timeout or margin of 2.5 s): os.date
  -- refuses fractions on Lua 5.4
  local start = math.floor(since - margin)
  if margin >= ANY_ZONE then return os.date("!" .. TS_FORMAT, start) end
  -- the hour before daylight saving time ends comes twice on the wall
  -- clock: the server may read it as the later one, so start an hour early
  if os.date("*t", start).isdst ~= os.date("*t", start + 3600).isdst then start = start - 3600 end
  return os.date(TS_FORMAT, start)
end
bulk._feed_ts = feed_ts   -- for the specs

-- Looks for organismes created since `since` (feed_margin `margin`) whose
-- marker is one of `keys` ({ key = line }). -> { line = id_organisme } | nil, err
local function find_on_server(c, marker_field, keys, since, margin)
  local data, statut = c:liste_fiches_modifiees{ ts = feed_ts(since, margin) }
  if not data then return nil, statut end
  local found = {}
  local list = data.liste_organismes
  for _, o in ipairs(type(list) == "table" and list or {}) do
    local line = type(o) == "table" and keys[o[marker_field]]
    if line then found[line] = o.id_organisme end
  end
  return found
end

-- Registers the CSV's records; an edited record is taken if it was not
-- sent yet (lines: the file line of each, for the message). -> true | nil, message
local function register(journal, records, header, lines)
  local known = {}
  for _, r in ipairs(journal:exec("SELECT line, hash, state, id_organisme FROM records")) do known[r.line] = r end
  local refused = {}
  journal:exec("BEGIN IMMEDIATE")
  for line, rec in ipairs(records) do
    local hash, text = fingerprint(rec, header)
    local k = known[line]
    if k and k.hash == text then   -- an earlier version's clear copy: the digest replaces it
      journal:exec("UPDATE records SET hash = ? WHERE line = ?", hash, line)
    elseif not k then
      journal:exec("INSERT INTO records (line, hash, state) VALUES (?, ?, 'pending')", line, hash)
    elseif k.hash ~= hash then
      if k.state == "pending" or k.state == "failed" then
        journal:exec("UPDATE records SET hash = ?, state = 'pending', code = NULL, message = NULL WHERE line = ?",
          hash, line)
      else
        refused[#refused + 1] = k
      end
    end
  end
  if #refused > 0 then
    journal:exec("ROLLBACK")
    local first = refused[1]
    local what = first.state == "done" and ("created as organisme %s"):format(tostring(first.id_organisme))
      or "sent, outcome not known yet"
    return nil, ("record %d%s of the CSV changed after it was sent (%s): put it back as it was (line %d of the "
      .. "file) and run again; only records that failed or were not sent may be corrected "
      .. "(ws_organisme_modification changes a created one)"):format(first.line,
      #refused > 1 and (" (and %d more)"):format(#refused - 1) or "", what, lines[first.line])
  end
  journal:exec("COMMIT")
  return true
end

local function check_options(opts)
  if type(opts) ~= "table" then error("bulk.import needs a table of options", 3) end
  if type(opts.client) ~= "table" then error("bulk.import needs a client", 3) end
  if type(opts.csv) ~= "string" then error("bulk.import needs csv, the CSV file's path", 3) end
  if type(opts.map) ~= "table" and type(opts.map) ~= "function" then
    error("bulk.import needs map, a table { [\"organisme.intitule\"] = \"Column\" } or a function", 3)
  end
  for _, k in ipairs{ "journal", "report", "marker_field" } do
    if opts[k] ~= nil and type(opts[k]) ~= "string" then error("bulk.import: " .. k .. " must be a string", 3) end
  end
  if opts.take_over ~= nil and type(opts.take_over) ~= "boolean" then
    error("bulk.import: take_over must be a boolean", 3)
  end
  local n = opts.concurrency
  if n ~= nil and not (type(n) == "number" and n >= 1 and n <= 1e6 and n == math.floor(n)) then
    error("bulk.import: concurrency must be a whole number from 1 to 1000000", 3)
  end
  local rate = opts.rate
  if rate ~= nil and not (type(rate) == "number" and rate > 0 and rate < math.huge) then
    error("bulk.import: rate must be a number of calls a second > 0", 3)
  end
  for _, k in ipairs{ "settle", "feed_margin" } do
    local v = opts[k]
    if v ~= nil and not (type(v) == "number" and v >= 0 and v <= 86400) then
      error("bulk.import: " .. k .. " must be a number of seconds from 0 to 86400", 3)
    end
  end
end

-- How long after it was marked "sent" a request may still leave, held by
-- the client's own pacing: a turn of its rate limit for each of this run's
-- workers, and a wait for a slot (held up to the timeout each) when it
-- caps the calls in flight below them (c.rate, c.max_in_flight).
local function pacing_slack(c, concurrency)
  local slack = 0
  local rate, in_flight = c.rate, c.max_in_flight
  if type(rate) == "number" and rate > 0 then
    slack = slack + concurrency / rate
  end
  if type(in_flight) == "number" and in_flight >= 1 and in_flight < concurrency then
    slack = slack + math.floor((concurrency - 1) / in_flight) * (c.timeout or 30)
  end
  return slack
end

-- What to do about unknown records the change feed cannot be read for
-- (an answer too large to come back in time keeps failing): check each on
-- the server by its marker, then settle it (bulk.settle).
local function by_hand(sent, prefix, marker_field)
  local lines = {}
  for i = 1, math.min(#sent, 5) do lines[i] = tostring(sent[i].line) end
  if #sent > 5 then lines[#lines + 1] = ("%d more"):format(#sent - 5) end
  return ("run again later, or look on the server for each unknown record (%s: the organisme whose %s is "
    .. "\"%s:LINE\") and settle it (bulk.settle; billetterie import --settle LINE=ID_ORGANISME or LINE=absent)")
    :format(table.concat(lines, ", "), marker_field, prefix)
end

-- A record's state -> the count it is in (any other: failed).
local COUNTED = { done = "created", sent = "unknown", pending = "pending" }

-- The run itself, on a locked journal. -> counts | nil, err (raises "journal: ...")
local function run(journal, records, header, lines, opts)
  local c = opts.client
  local marker_field = opts.marker_field or "code_libre_stru"
  local timeout = c.timeout or 30
  local settle = opts.settle or (timeout + (c.sync_overlap or 60))
  local margin = opts.feed_margin or ANY_ZONE
  local concurrency = opts.concurrency or 8
  local slack = pacing_slack(c, concurrency)

  local ok, why = register(journal, records, header, lines)
  if not ok then return bad_input("csv", why) end

  -- the marker prefix is this journal's own: keys of two imports never meet
  local prefix = (journal:exec("SELECT v FROM meta WHERE k = 'prefix'")[1] or {}).v
  if not prefix then
    prefix = "imp" .. random_hex(3)
    journal:exec("INSERT INTO meta (k, v) VALUES ('prefix', ?)", prefix)
  end
  local function key(line) return prefix .. ":" .. line end

  local lost   -- set when another run took the journal over: nothing more is sent
  local function taken_over()
    lost = lost or errors.new{ kind = "invalid_param", ws = "bulk.import", param = "journal", retryable = true,
                               message = "the journal was taken over by another run: nothing more is sent" }
    return lost
  end

  -- Records whose outcome is unknown: looked for on the server; one not
  -- found goes back to pending once settled (see the header). What was read
  -- is written back only if this run still owns the journal and the record
  -- is still as read. -> nil | a message saying why or until when some stay
  -- unknown, and whether they could not be checked at all
  local function resolve_unknown()
    local sent = journal:exec("SELECT line, sent_at, message FROM records WHERE state = 'sent' ORDER BY line")
    if #sent == 0 then return nil end
    local keys, since = {}, math.huge
    for _, r in ipairs(sent) do
      keys[key(r.line)] = r.line
      -- a sent_at stamped when the answer came: the request left up to `timeout` before
      since = math.min(since, (r.sent_at or os.time()) - timeout - SKEW)
    end
    local found, ferr = find_on_server(c, marker_field, keys, since, margin)
    if not found then
      return ("could not check the server: %s; %s"):format(tostring(ferr), by_hand(sent, prefix, marker_field)), true
    end
    local now, waiting, until_t, window = os.time(), 0, 0, settle
    journal:exec("BEGIN IMMEDIATE")
    if not journal:owns() then
      journal:exec("ROLLBACK")
      return taken_over().message, true
    end
    for _, r in ipairs(sent) do
      local wait = settle + (r.message == nil and slack or 0)   -- a call that never came back: maybe held
      if found[r.line] then
        journal:exec("UPDATE records SET state = 'done', id_organisme = ?, code = NULL, message = NULL "
          .. "WHERE line = ?", found[r.line], r.line)
      elseif now >= (r.sent_at or 0) + wait then   -- never arrived: may be sent again
        journal:exec("UPDATE records SET state = 'pending' WHERE line = ? AND state = 'sent' AND sent_at IS ?",
          r.line, r.sent_at)
      else
        waiting, until_t = waiting + 1, math.max(until_t, math.ceil((r.sent_at or 0) + wait))
        window = math.max(window, wait)
      end
    end
    journal:exec("COMMIT")
    if waiting > 0 then
      return ("%d record(s) sent less than %d s ago are not on the server yet (the server may still be "
        .. "writing them): run again after %s to check them"):format(waiting, math.ceil(window),
        os.date("%H:%M:%S", until_t))
    end
    return nil
  end
  local unresolved, blind = resolve_unknown()

  local total = #records
  local todo = {}
  if not blind then   -- unknown outcomes unchecked: never risk a duplicate
    for _, r in ipairs(journal:exec("SELECT line FROM records WHERE state IN ('pending', 'failed') AND line <= ? "
        .. "ORDER BY line", total)) do
      todo[#todo + 1] = r.line
    end
  end
  local already = journal:exec("SELECT count(*) AS n FROM records WHERE state = 'done' AND line <= ?", total)[1].n

  local _, raised = runner.map(todo, function(line)
    if lost then return nil, lost end
    local params = mapped(opts.map, records[line])
    params.organisme = params.organisme or {}
    if params.organisme[marker_field] ~= nil then   -- a map function's (a table is refused up front)
      error(("the map sets organisme.%s, the import's marker: map it to another field"):format(marker_field), 0)
    end
    params.organisme[marker_field] = key(line)
    local stamp, claim_err = journal:claim(line)
    if not stamp then
      if claim_err == "lost" then return nil, taken_over() end
      return nil, errors.new{ kind = "invalid_param", ws = "bulk.import", param = "journal", retryable = true,
        message = ("record %d was written by another run meanwhile: left as it is"):format(line) }
    end
    local msg, e = c:organisme_creation(params)
    if msg then e = nil end   -- e is the statut of an ok
    local created = new_id(msg or e.payload)
    if created then   -- a ko carrying the new id (partly done) keeps its code and message
      -- as the writes below, only over this run's own claim: a run taken
      -- over never overwrites what a newer one wrote
      journal:exec("UPDATE records SET state = 'done', id_organisme = ?, code = ?, message = ? WHERE line = ? "
        .. "AND state = 'sent' AND sent_at = ? AND EXISTS (SELECT 1 FROM owner WHERE token = ?)",
        created, e and e.code, e and e.message, line, stamp, journal.token)
      return true
    end
    if msg then   -- an ok without the new id
      e = errors.new{ kind = "decode", ws = "ws_organisme_creation", message = "the answer has no id_organisme" }
    end
    -- Written only if no newer run claimed the record since (state and
    -- sent_at as claimed).
    if maybe_applied(e) then
      -- outcome unknown: stays "sent", looked for on the server before any
      -- resend; the request left before now, which settle counts from
      journal:exec("UPDATE records SET sent_at = ?, message = ? WHERE line = ? AND state = 'sent' AND sent_at = ?",
        os.time(), tostring(e), line, stamp)
      return nil, e
    end
    journal:exec("UPDATE records SET state = 'failed', code = ?, message = ? WHERE line = ? AND state = 'sent' "
      .. "AND sent_at = ?", e.code, e.message, line, stamp)
    return nil, e
  end, { concurrency = concurrency, rate = opts.rate, progress = opts.progress })
  -- A record whose handling raised (a map function, the journal): failed
  -- with the error's text, unless it was sent (then its outcome is unknown,
  -- and its request left before now). Every record is written that can be
  -- before a journal error is raised.
  local journal_err
  for i = 1, #todo do
    local e = raised[i]
    if e ~= nil and not errors.is(e) then
      local text = tostring(e)
      if text:match("^journal: ") then
        journal_err = journal_err or text
      else
        local wrote, werr = pcall(journal.exec, journal, "UPDATE records SET "
          .. "state = CASE state WHEN 'sent' THEN 'sent' ELSE 'failed' END, "
          .. "sent_at = CASE state WHEN 'sent' THEN ? ELSE sent_at END, message = ? "
          .. "WHERE line = ? AND EXISTS (SELECT 1 FROM owner WHERE token = ?)", os.time(), text, todo[i],
          journal.token)
        if not wrote then journal_err = journal_err or tostring(werr) end
      end
    end
  end
  if journal_err then error(journal_err, 0) end
  if not blind then unresolved = resolve_unknown() end
  if lost then unresolved = lost.message end

  -- counted by SQLite: a row per record read back here would double the
  -- memory a large import peaks at
  local counts = { total = total, created = 0, already = already, failed = 0, unknown = 0, pending = 0,
                   not_in_csv = 0 }
  for _, r in ipairs(journal:exec("SELECT line > ? AS past, state, count(*) AS n FROM records "
      .. "GROUP BY past, state", total)) do
    local k = r.past == 1 and "not_in_csv" or COUNTED[r.state] or "failed"
    counts[k] = counts[k] + r.n
  end
  local failures = journal:exec("SELECT line, code, message, state FROM records WHERE line <= ? "
    .. "AND state NOT IN ('done', 'sent', 'pending') ORDER BY line", total)
  counts.unresolved = unresolved
  return counts, failures
end

-- A journal error (text "journal: ..."): one SQLite could not get the lock
-- for (another connection's transaction past BUSY_MS) passes: retryable.
local function journal_error(ws, path, text)
  text = tostring(text):gsub("^journal: ", "")
  if text:find("locked", 1, true) or text:find("busy", 1, true) then
    return refusal(ws, "journal", ("journal %s busy (%s), run again"):format(path, text), true)
  end
  return refusal(ws, "journal", "journal " .. path .. ": " .. text)
end

-- fn(journal) on the journal at `path`, opened and owned by this run
-- (take_over: see the header), its lock given back after.
-- -> fn's two results | nil, err of `ws` (raises fn's non-journal errors)
local function owning(ws, path, take_over, fn)
  local journal, jerr = open_journal(path)
  if not journal then return journal_error(ws, path, jerr) end
  local locked, ok, a, b = pcall(journal.lock, journal, this_process(), take_over)
  if locked and ok then
    ok, a, b = pcall(fn, journal)
    if not ok then pcall(journal.exec, journal, "ROLLBACK") end   -- a transaction the error left open
    pcall(journal.unlock, journal)   -- a journal that cannot be written any more keeps a lock of a gone run
  elseif locked then   -- refused: someone else's (what to do first: the path last, messages are cut)
    ok, a, b = true, refusal(ws, "journal", "journal " .. a .. " (" .. path .. ")", true)
  else
    pcall(journal.exec, journal, "ROLLBACK")
    ok, a = false, ok
  end
  journal:close()
  if not ok then
    if tostring(a):match("^journal: ") then return journal_error(ws, path, a) end
    error(a, 0)   -- a programmer's mistake (a map function's own error is kept per record)
  end
  return a, b
end

-- The CSV's records, its text not kept past this call (as large as the
-- file, it would stay alive through the whole run). Refused unless it is
-- UTF-8 throughout: a Latin-1 export would fail only its records with an
-- accent, and send the others. -> records, header, lines | nil, message
local function read_csv(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, "cannot read the CSV file: " .. tostring(err) end
  local text = f:read("*a")
  f:close()
  local bad = csv.utf8_error(text)
  if bad then
    return nil, ("%s: line %d is not UTF-8 (an export in Latin-1 or Windows-1252?): save the file as "
      .. "\"CSV UTF-8\" (Excel: \"CSV UTF-8 (d\195\169limit\195\169 par des virgules)\"), or convert it "
      .. "with iconv -f WINDOWS-1252 -t UTF-8; nothing was sent"):format(path, bad)
  end
  local records, header, lines = csv.records(text)
  if not records then return nil, path .. ": " .. tostring(header) end
  return records, header, lines
end

-- The columns a map table names that the header does not have (a case or
-- space typo would leave that field out of every record, and the records
-- sent cannot be corrected). A map function is the caller's own.
-- -> nil | message
local function missing_columns(map, header, path)
  if type(map) ~= "table" or #header == 0 then return nil end   -- an empty file: no record to map
  local has, near = {}, {}
  local function loose(name) return (name:lower():gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")) end
  for _, name in ipairs(header) do has[name], near[loose(name)] = true, name end
  local missing, seen = {}, {}
  for _, column in pairs(map) do
    if type(column) == "string" and not has[column] and not seen[column] then
      seen[column] = true
      local like = near[loose(column)]
      missing[#missing + 1] = ("%q%s"):format(column, like and (" (not %q?)"):format(like) or "")
    end
  end
  if #missing == 0 then return nil end
  table.sort(missing)
  local columns = {}
  for i, name in ipairs(header) do columns[i] = ("%q"):format(name) end
  return ("the map names column(s) %s that the header of %s does not have (its columns: %s): correct the "
    .. "map (the names must match exactly, case and spaces included); nothing was sent"):format(
    table.concat(missing, ", "), path, table.concat(columns, ", "))
end

-- What the change feed (looking up records whose answer was lost) needs of
-- the client, and where the CLI and billetterie.from_env take it from.
local FEED_NEEDS = {
  { option = "api_url", env = "BILLETTERIE_API_URL", param = "api_url" },
  { option = "api_login", env = "BILLETTERIE_API_LOGIN", param = "x_rsi_login" },
  { option = "client_id", env = "BILLETTERIE_CLIENT", param = "x_rsi_client" },
  { option = "api_key", env = "BILLETTERIE_API_KEY", param = "x_rsi_api_key" },
}

-- Whether the client can call ws_liste_fiches_modifiees, checked without
-- sending anything: without it a lost answer could never be looked up, and
-- the import would stop for good at the first one. -> nil | message
local function feed_unusable(c)
  local missing, named = {}, {}
  for _, need in ipairs(FEED_NEEDS) do   -- the public options; api_key is the client's secret
    if need.option ~= "api_key" and c[need.option] == nil then
      missing[#missing + 1], named[need.param] = need, true
    end
  end
  local fields, err = c:_prepare(catalogue.services.ws_liste_fiches_modifiees, { ts = "2000-01-01T00:00:00" })
  if not fields and not named[err.param] then
    local need
    for _, n in ipairs(FEED_NEEDS) do if n.param == err.param then need = n end end
    if not need then
      return "its change feed (ws_liste_fiches_modifiees) cannot be called: " .. tostring(err.message)
    end
    missing[#missing + 1] = need
  end
  if #missing == 0 then return nil end
  local options, vars = {}, {}
  for i, need in ipairs(missing) do options[i], vars[i] = need.option, need.env end
  return ("the client has no %s option (environment: %s): the import needs the change feed "
    .. "(ws_liste_fiches_modifiees, with api_url, api_login and api_key: BILLETTERIE_API_URL, "
    .. "BILLETTERIE_API_LOGIN, BILLETTERIE_API_KEY) to look up a record whose answer was lost; nothing was "
    .. "sent"):format(table.concat(options, ", "), table.concat(vars, ", "))
end

function bulk.import(opts)
  check_options(opts)
  local marker = "organisme." .. (opts.marker_field or "code_libre_stru")
  if type(opts.map) == "table" and opts.map[marker] ~= nil then
    return bad_input("map", ("the map sets %s, the import's marker (each record's key, to find it on the "
      .. "server): map it to another field"):format(marker))
  end
  local unusable = feed_unusable(opts.client)
  if unusable then return bad_input("client", unusable) end
  local records, header, lines = read_csv(opts.csv)
  if not records then return bad_input("csv", header) end
  local missing = missing_columns(opts.map, header, opts.csv)
  if missing then return bad_input("map", missing) end

  local journal_path = opts.journal or (opts.csv .. ".journal.db")
  if same_file(journal_path, opts.csv) then
    return bad_input("journal", "the journal " .. journal_path .. " is the CSV file itself: give another path")
  end
  if opts.report and (same_file(opts.report, opts.csv) or same_file(opts.report, journal_path)) then
    return bad_input("report", ("the report %s is the %s itself: give another path"):format(opts.report,
      same_file(opts.report, opts.csv) and "CSV file" or "journal"))
  end

  -- a new journal is its owner's only (0600); one that cannot be made
  -- fails again, with SQLite's own message, just below
  core.private_file(journal_path)
  local counts, failures = owning("bulk.import", journal_path, opts.take_over, function(journal)
    return run(journal, records, header, lines, opts)
  end)
  if not counts then return nil, failures end

  if opts.report then
    core.private_file(opts.report)   -- a new report is its owner's only (0600)
    local out, oerr = io.open(opts.report, "w")
    if not out then return bad_input("report", "cannot write the report: " .. tostring(oerr)) end
    -- with a BOM, as Excel's own "CSV UTF-8": without one, French Excel
    -- reads it as Windows-1252 and garbles the accents
    -- ligne is the record's number, as it always was (the journal's key, the
    -- LINE of --settle); the file line it starts on comes last, so readers
    -- of the earlier three columns are not misled
    out:write("\239\187\191ligne;code;message;ligne_fichier\n")
    for _, r in ipairs(failures) do
      out:write(("%d;%s;%s;%s\n"):format(r.line, csv.field(r.code), csv.field(r.message or r.state),
        csv.field(lines[r.line])))
    end
    out:close()
    counts.report = opts.report
  end
  return counts
end

---- settling an unknown record by hand ----

local function whole(v, min) return type(v) == "number" and v >= min and v <= 2^53 and v == math.floor(v) end

local function check_settle(opts)
  if type(opts) ~= "table" then error("bulk.settle needs a table of options", 3) end
  if type(opts.journal) ~= "string" then error("bulk.settle needs journal, the journal's path", 3) end
  if not whole(opts.line, 1) then error("bulk.settle needs line, a record's number (1 or more)", 3) end
  if (opts.id_organisme == nil) == (opts.absent == nil) then
    error("bulk.settle needs either id_organisme (the organisme found on the server) or absent = true", 3)
  end
  if opts.id_organisme ~= nil and not whole(opts.id_organisme, 1) then
    error("bulk.settle: id_organisme must be a whole number (1 or more)", 3)
  end
  if opts.absent ~= nil and opts.absent ~= true then error("bulk.settle: absent must be true", 3) end
  if opts.take_over ~= nil and type(opts.take_over) ~= "boolean" then
    error("bulk.settle: take_over must be a boolean", 3)
  end
end

-- Why a record that is not "sent" is not settled.
local NOT_UNKNOWN = {
  done = "was created (organisme %s): nothing to settle",
  pending = "was not sent yet: nothing to settle, the next run sends it",
  failed = "was refused (not created): nothing to settle; correct it in the CSV and run again",
}

-- On the locked journal. -> { line, state, id_organisme } | nil, err
local function settle_record(journal, opts)
  local line = opts.line
  local r = journal:exec("SELECT state, id_organisme FROM records WHERE line = ?", line)[1]
  if not r or r.state ~= "sent" then
    local why = r and NOT_UNKNOWN[r.state] or "is not in this journal"
    return refusal("bulk.settle", "line", ("record %d %s"):format(line, why:format(tostring(r and r.id_organisme))))
  end
  -- as every write of an import: only while this run owns the journal
  local n
  if opts.absent then
    n = journal:exec("UPDATE records SET state = 'pending', code = NULL, message = NULL WHERE line = ? "
      .. "AND state = 'sent' AND EXISTS (SELECT 1 FROM owner WHERE token = ?)", line, journal.token)
  else
    n = journal:exec("UPDATE records SET state = 'done', id_organisme = ?, code = NULL, message = NULL "
      .. "WHERE line = ? AND state = 'sent' AND EXISTS (SELECT 1 FROM owner WHERE token = ?)",
      opts.id_organisme, line, journal.token)
  end
  if n == 0 then
    return refusal("bulk.settle", "journal", ("record %d was written by another run meanwhile: run again"):format(
      line), true)
  end
  return { line = line, state = opts.absent and "pending" or "done", id_organisme = opts.id_organisme }
end

function bulk.settle(opts)
  check_settle(opts)
  local path = opts.journal
  -- an existing journal only: opening a missing or empty file would make one
  local f = io.open(path, "rb")
  local size = f and f:seek("end")
  if f then f:close() end
  if not f then return refusal("bulk.settle", "journal", "journal " .. path .. ": no such file") end
  if size == 0 then return refusal("bulk.settle", "journal", "journal " .. path .. ": an empty file, not a journal") end
  return owning("bulk.settle", path, opts.take_over, function(journal) return settle_record(journal, opts) end)
end

return bulk
