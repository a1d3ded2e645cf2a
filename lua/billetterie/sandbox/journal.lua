-- billetterie.sandbox.journal: the request journal, one row per web-service
-- request in the sandbox's SQLite file (table sandbox_requests), so that a
-- test can check what its client really sent (GUIDE: "a request recorder
-- tests can query"), from the file or from GET /_sandbox/requests.
--
-- Secrets never reach it: a parameter named in catalogue.secrets
-- (x_rsi_ws_mdp, x_rsi_token, web_passe, v_passe...) is stored as "***", and
-- the values of those parameters and of the server's own secrets (web-service
-- password, API key, S-360 operator password: sandbox/init.lua) are also
-- blanked wherever else they appear in the request's parameters, names
-- included (`...&xrsimdp` sends the password as a name: it is stored as
-- "***", "***#2"... so that distinct names stay distinct). A secret cut in
-- pieces by an unencoded "&" cannot be recognised: each piece is only a
-- fragment of it, stored as it came.
-- The table keeps the latest `max` rows (it is pruned every PRUNE_EVERY
-- inserts, so it may briefly hold up to PRUNE_EVERY more; reads return at
-- most `max`).

local catalogue = require "billetterie.catalogue"
local codec = require "billetterie.sandbox.codec"
local clean_utf8 = require("billetterie.sandbox.services").clean_utf8

local M = {}

M.MASK = "***"
local PRUNE_EVERY = 64
-- Bytes of parameter names and values a row keeps (a body may hold 8 MB of
-- them, and 10000 rows are kept), counted as stored: UTF-8 cleaned and JSON
-- escaped (a %01 costs 6 bytes). A value cut short ends with TRUNCATED, and
-- the parameters past the budget are left out, their number under the name
-- "(truncated)".
M.MAX_PARAMS = 65536
M.TRUNCATED = "...(truncated)"

M.schema = {
  [[CREATE TABLE IF NOT EXISTS sandbox_requests (
      id          INTEGER PRIMARY KEY,  -- no AUTOINCREMENT: one page less per write
      at          REAL NOT NULL,    -- unix seconds, with milliseconds
      request_id  TEXT NOT NULL,    -- the answer's X-Request-Id
      method      TEXT NOT NULL,
      path        TEXT NOT NULL,
      params      TEXT NOT NULL,    -- JSON object, secrets masked
      status      INTEGER,          -- HTTP status; NULL when the connection was dropped
      code        INTEGER,          -- vendor code of the JSON envelope, when there is one
      duration_ms REAL NOT NULL,    -- time spent answering, without injected latency
      latency_ms  INTEGER NOT NULL DEFAULT 0, -- injected latency
      fault       TEXT              -- the fault rules applied, if any
    )]],
}

local COLUMNS = "id, at, request_id, method, path, params, status, code, duration_ms, latency_ms, fault"

-- Replaces every occurrence of the `secrets` values (4 characters or more,
-- shorter ones would blank ordinary words) in text, in one pass each.
local function scrub(text, secrets)
  for _, s in ipairs(secrets) do
    if text:find(s, 1, true) then text = text:gsub(s:gsub("%W", "%%%0"), M.MASK) end
  end
  return text
end

-- The bytes text takes in the stored JSON (without its quotes).
local function stored_size(text) return #codec.encode(text) - 2 end

-- text, cleaned to UTF-8, cut so that it takes at most budget stored bytes
-- (then marked TRUNCATED). -> the text, its stored size
local function fit(text, budget)
  local clean, size
  if #text <= budget then -- else it cannot fit: no byte is stored in less than one
    clean = clean_utf8(text)
    size = stored_size(clean)
    if size <= budget then return clean, size end
  end
  local n = math.min(#text, budget)
  repeat -- each round cuts in proportion to the overshoot: a few rounds
    clean = clean_utf8(text:sub(1, n))
    size = stored_size(clean)
    if size > budget then n = math.min(n - 1, math.floor(n * budget / size)) end
  until size <= budget
  return clean .. M.TRUNCATED, size
end

-- req.params ({ {name, value}, ... } in arrival order) -> JSON object text;
-- a repeated name (liste[]=1&liste[]=2) gives an array.
function M.mask_params(params, known_secrets)
  local secrets = {}
  for _, s in ipairs(known_secrets or {}) do
    if #s >= 4 then secrets[#secrets + 1] = s end
  end
  for _, kv in ipairs(params) do
    if catalogue.secrets[kv[1]] and #kv[2] >= 4 then secrets[#secrets + 1] = kv[2] end
  end
  -- alias: real name holding a secret -> its stored name; taken: those
  local out, budget, left_out, alias, taken = {}, M.MAX_PARAMS, 0, {}, {}
  for _, kv in ipairs(params) do
    local name, value = kv[1], kv[2]
    if alias[name] then
      name = alias[name]
    elseif #secrets > 0 and not catalogue.secrets[name] then
      -- one stored name per distinct real name: a masked one, or a real one
      -- that is spelt as a masked one, gets the first free "#n"
      local scrubbed = scrub(name, secrets)
      if scrubbed ~= name or taken[name] then
        local n, unique = 1, scrubbed
        while out[unique] ~= nil or taken[unique] do
          n = n + 1
          unique = scrubbed .. "#" .. n
        end
        alias[name], taken[unique] = unique, true
        name = unique
      end
    end
    local size = stored_size(clean_utf8(name))
    budget = budget - size
    if budget < 0 then
      left_out = left_out + 1
    else
      if catalogue.secrets[name] then
        value = M.MASK
      elseif #secrets > 0 then
        value = scrub(value, secrets)
      end
      -- shown as JSON labelled UTF-8: a cut or a binary value stays valid text
      name, value, size = clean_utf8(name), fit(value, budget)
      budget = budget - size
      local prev = out[name]
      if prev == nil then
        out[name] = value
      elseif type(prev) == "table" then
        prev[#prev + 1] = value
      else
        out[name] = { prev, value }
      end
    end
  end
  if left_out > 0 then out["(truncated)"] = left_out end
  return codec.encode(out)
end

local Journal = {}
Journal.__index = Journal

-- db: an open billetterie.sandbox.db holding M.schema; max: rows kept
-- (0 = no journal); secrets: values to blank besides the secret parameters
-- (the web-service password).
function M.new(db, max, secrets)
  return setmetatable({ db = db, max = max or 10000, secrets = secrets or {}, inserts = 0 }, Journal)
end

function Journal:enabled() return self.max > 0 end

local INSERT = [[INSERT INTO sandbox_requests
    (at, request_id, method, path, params, status, code, duration_ms, latency_ms, fault)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]]

local function insert(self, e)
  local db = self.db
  db:exec(INSERT, ("%.3f"):format(e.at), e.request_id, e.method, clean_utf8(e.path),
    M.mask_params(e.params, self.secrets), e.status, math.type(e.code) == "integer" and e.code or nil,
    ("%.3f"):format(e.duration_ms), e.latency_ms or 0, e.fault)
  self.inserts = self.inserts + 1
  if self.inserts % math.min(PRUNE_EVERY, self.max) == 0 then
    db:exec("DELETE FROM sandbox_requests WHERE id <= ?", db:last_id() - self.max)
  end
end

-- e: { at, request_id, method, path, params (req.params), status, code,
-- duration_ms, latency_ms, fault }. Inside the request's transaction (the
-- usual case) the row joins it; a failed statement changes nothing, so no
-- savepoint is needed.
function Journal:record(e)
  if self.max <= 0 then return end
  if (self.db.depth or 0) > 0 then return insert(self, e) end
  self.db:tx(function() insert(self, e) end)
end

local function decode_row(row)
  row.params = codec.decode(row.params) or {}
  return row
end

-- opts: since (id: only later rows), path ("/ws_name" or "ws_name"),
-- limit (the latest `limit` rows, at most max). -> rows, oldest first
function Journal:list(opts)
  opts = opts or {}
  local limit = math.max(0, math.min(math.tointeger(opts.limit) or self.max, self.max))
  local path = opts.path and (opts.path:sub(1, 1) == "/" and opts.path or "/" .. opts.path)
  local rows = self.db:rows(([[SELECT %s FROM sandbox_requests WHERE id > ? %s
      ORDER BY id DESC LIMIT ?]]):format(COLUMNS, path and "AND path = ?" or ""),
    math.tointeger(opts.since) or 0, path or limit, path and limit or nil)
  local out = {}
  for i = #rows, 1, -1 do out[#out + 1] = decode_row(rows[i]) end
  return out
end

function Journal:clear()
  local db = self.db
  db:tx(function() db:exec("DELETE FROM sandbox_requests") end)
end

-- Reads the journal of a sandbox's SQLite file directly (another process may
-- be serving it). -> rows (as Journal:list), or nil, err
function M.read_file(path, opts)
  local dbmod = require "billetterie.sandbox.db"
  local db, err = dbmod.open(path, nil, true) -- a typo must not create a base
  if not db then return nil, err end
  local ok, rows = pcall(function()
    if not db:one("SELECT 1 AS x FROM sqlite_master WHERE type = 'table' AND name = 'sandbox_requests'") then
      return nil
    end
    return M.new(db, math.maxinteger):list(opts)
  end)
  db:close()
  if not ok then return nil, ("%s: %s"):format(path, dbmod.message(rows)) end
  if not rows then return nil, path .. ": not a sandbox base (no request journal)" end
  return rows
end

return M
