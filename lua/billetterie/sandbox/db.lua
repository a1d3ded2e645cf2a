-- billetterie.sandbox.db: the sandbox's state in one SQLite file (LuaSQL).
--
-- Every value reaches SQL through quote() (conn:escape for strings, integers
-- checked), never spliced in raw; every write runs in one transaction.
-- Records whose shape belongs to the vendor (organisme, adresse) are kept as
-- JSON text, so the schema does not mirror the 30 attributes of annex 4.4.

local luasql = require "luasql.sqlite3"
local codec = require "billetterie.sandbox.codec"

-- Tables every group uses. Each group module (sessions, organismes, ...)
-- brings its own tables as `schema`; every statement is CREATE ... IF NOT
-- EXISTS and runs at each open, so a file made by an older sandbox gains the
-- tables of newer groups and keeps its data.
local CORE_SCHEMA = {
  [[CREATE TABLE IF NOT EXISTS sessions (
      jeton      TEXT PRIMARY KEY,
      client     INTEGER NOT NULL,
      created_at INTEGER NOT NULL,  -- unix seconds
      duration   INTEGER NOT NULL,  -- seconds, fixed when the token is made
      ended_at   INTEGER,           -- set by ws_deconnexion_session
      id_contact INTEGER            -- set by ws_login
    )]],
  -- Annex 4.3 addresses of organismes (id_contact 0) and contacts
  -- (id_organisme 0), upserted on type_adresse.
  [[CREATE TABLE IF NOT EXISTS adresses (
      id_adresse   INTEGER PRIMARY KEY AUTOINCREMENT,
      id_organisme INTEGER NOT NULL DEFAULT 0,
      id_contact   INTEGER NOT NULL DEFAULT 0,
      type_adresse TEXT NOT NULL,
      data         TEXT NOT NULL,   -- annex 4.3 attributes, JSON
      UNIQUE (id_organisme, id_contact, type_adresse)
    )]],
  -- The change journal behind ws_liste_fiches_modifiees (2.7.3): every write
  -- to a contact or an organisme appends one row, in the same transaction.
  [[CREATE TABLE IF NOT EXISTS changes (
      seq       INTEGER PRIMARY KEY AUTOINCREMENT,
      client    INTEGER NOT NULL,
      kind      TEXT NOT NULL,      -- 'contact' | 'organisme'
      record_id INTEGER NOT NULL,
      action    TEXT NOT NULL,      -- 'create' | 'update' ('delete' in files of older versions)
      at        INTEGER NOT NULL    -- unix seconds
    )]],
}

local DB = {}
DB.__index = DB

local function quote(conn, v)
  if v == nil then return "NULL" end
  local t = math.type(v) or type(v)
  if t == "integer" then return tostring(v) end
  if t == "boolean" then return v and "1" or "0" end
  if t == "string" then
    -- escape() stops at a NUL: the text stored would be another one
    if v:find("\0", 1, true) then error("db: a text value holds a NUL byte", 3) end
    return "'" .. conn:escape(v) .. "'"
  end
  error("db: cannot store a " .. t .. " value", 3)
end

-- sql("... WHERE a = ? AND b = ?", x, y): each `?` becomes a quoted value.
function DB:sql(template, ...)
  local args, i = table.pack(...), 0
  return (template:gsub("%?", function()
    i = i + 1
    return quote(self.conn, args[i])
  end))
end

local function execute(self, template, ...)
  local res, err = self.conn:execute(self:sql(template, ...))
  if not res then error("db: " .. tostring(err), 3) end
  return res
end

-- A statement whose rows, if any, are not wanted (a PRAGMA may return one).
function DB:exec(template, ...)
  local res = execute(self, template, ...)
  if type(res) ~= "number" then res:close() end
end

-- -> list of rows (tables keyed by column name)
function DB:rows(template, ...)
  local cur = execute(self, template, ...)
  if type(cur) == "number" then return {} end
  local out = {}
  while true do
    local row = cur:fetch({}, "a")
    if not row then break end
    -- LuaSQL gives INTEGER columns as floats; TEXT stays text ("070401758672")
    for k, v in pairs(row) do
      if type(v) == "number" then row[k] = math.tointeger(v) or v end
    end
    out[#out + 1] = row
  end
  cur:close()
  return out
end

function DB:one(template, ...)
  return self:rows(template, ...)[1]
end

-- Runs fn(self, ...) in one transaction: committed if it returns, rolled
-- back (and the error re-raised) if it raises. Inside another transaction
-- (the sandbox runs each request in one, with its journal row) it is a
-- savepoint: a failure undoes its own writes only, and the outer
-- transaction commits the rest.
function DB:tx(fn, ...)
  local depth = self.depth or 0
  local sp = "tx" .. depth
  self:exec(depth == 0 and "BEGIN IMMEDIATE" or "SAVEPOINT " .. sp)
  self.depth = depth + 1
  local res = table.pack(pcall(fn, self, ...))
  if res[1] then
    local ok, err = pcall(self.exec, self, depth == 0 and "COMMIT" or "RELEASE " .. sp)
    if not ok then res = { false, err } end -- e.g. a full disk: undo, and say so
  end
  self.depth = depth
  if res[1] then return table.unpack(res, 2, res.n) end
  if depth == 0 then
    self.conn:execute("ROLLBACK")
  else
    self.conn:execute("ROLLBACK TO " .. sp)
    self.conn:execute("RELEASE " .. sp)
  end
  error(res[2], 0)
end

function DB:close()
  if self.conn then self.conn:close(); self.conn = nil end
  if self.env then self.env:close(); self.env = nil end
end

---- sessions ----

function DB:session_create(jeton, client, now, duration)
  self:tx(function()
    self:exec("INSERT INTO sessions (jeton, client, created_at, duration) VALUES (?, ?, ?, ?)",
      jeton, client, now, duration)
  end)
end

function DB:session_get(jeton)
  return self:one("SELECT * FROM sessions WHERE jeton = ?", jeton)
end

function DB:session_end(jeton, now)
  self:tx(function()
    self:exec("UPDATE sessions SET ended_at = ? WHERE jeton = ?", now, jeton)
  end)
end

---- shared records ----

-- Appends to the change journal; call inside the write's transaction.
function DB:journal(client, kind, record_id, action, now)
  self:exec("INSERT INTO changes (client, kind, record_id, action, at) VALUES (?, ?, ?, ?, ?)",
    client, kind, record_id, action, now)
end

-- The next Num_id_unique (annex 4.5: "Identifiant de la fiche niveau de
-- relation", one id space) for a relation level of a contact
-- (contact_niveaux) or of an organisme (organisme_niveaux): past every id
-- either table holds or ever held (sqlite_sequence keeps the highest), so
-- an id is never reused. Call inside the write's transaction.
function DB:niveau_id()
  return self:one([[SELECT MAX(n) + 1 AS n FROM (
      SELECT COALESCE(MAX(id_unique), 0) AS n FROM contact_niveaux
      UNION ALL SELECT COALESCE(MAX(id), 0) FROM organisme_niveaux
      UNION ALL SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence
        WHERE name IN ('contact_niveaux', 'organisme_niveaux'))]]).n
end

-- The next fiche lien id (2.7.3.3 liste_liens `id`, "Identifiant de la
-- fiche lien"): one id space for a contact's own fiche lien (contacts.id_lien,
-- its `id` / id_clistru) and the links that attach it to an organisme
-- (organisme_contacts.id), so an integrator can key on it. Past every id
-- either table holds or ever held; starts at 50001, far from the contact
-- ids, so a client that confuses id / id_clistru with id_contact is caught
-- at once. Call inside the write's transaction.
function DB:lien_id()
  return self:one([[SELECT MAX(n) + 1 AS n FROM (
      SELECT 50000 AS n
      UNION ALL SELECT COALESCE(MAX(id_lien), 0) FROM contacts
      UNION ALL SELECT COALESCE(MAX(id), 0) FROM organisme_contacts
      UNION ALL SELECT COALESCE(MAX(seq), 0) FROM sqlite_sequence WHERE name = 'organisme_contacts')]]).n
end

-- The id of the row just inserted.
function DB:last_id()
  return math.tointeger(self.conn:getlastautoid())
end

-- Upsert on (owner, type_adresse), annex 4.3: attributes absent from `fields`
-- are left as stored. Call inside a transaction. -> id_adresse
function DB:adresse_upsert(id_organisme, id_contact, fields, defaults)
  local row = self:one([[SELECT id_adresse, data FROM adresses
      WHERE id_organisme = ? AND id_contact = ? AND type_adresse = ?]],
    id_organisme, id_contact, fields.type_adresse)
  local data = row and codec.decode(row.data) or defaults
  for k, v in pairs(fields) do data[k] = v end
  if row then
    self:exec("UPDATE adresses SET data = ? WHERE id_adresse = ?", codec.encode(data), row.id_adresse)
    return row.id_adresse
  end
  self:exec([[INSERT INTO adresses (id_organisme, id_contact, type_adresse, data)
      VALUES (?, ?, ?, ?)]], id_organisme, id_contact, fields.type_adresse, codec.encode(data))
  return self:last_id()
end

-- The addresses of an organisme or a contact, with their ids filled in.
function DB:adresses_of(id_organisme, id_contact)
  local out = {}
  for _, a in ipairs(self:rows([[SELECT id_adresse, data FROM adresses
      WHERE id_organisme = ? AND id_contact = ? ORDER BY id_adresse]], id_organisme, id_contact)) do
    local data = codec.decode(a.data)
    data.id_adresse, data.id_organisme, data.id_contact = a.id_adresse, id_organisme, id_contact
    out[#out + 1] = data
  end
  return out
end

local M = {}

-- An error as a user reads it: without the "/path/file.lua:109: " of the
-- raise, nor this module's or LuaSQL's prefixes.
function M.message(e)
  return (tostring(e):gsub("^[^\n]-%.lua:%d+: ", ""):gsub("^db: ", ""):gsub("LuaSQL: ", ""))
end

-- Opens (and on first use creates) the database, with the core tables and
-- the `schemas` (lists of statements) of the groups. With existing = true
-- (a reader's open) the file must already be there and nothing is created:
-- no schema statement runs. -> db, or nil, err
function M.open(path, schemas, existing)
  if existing then
    local f, why = io.open(path, "rb")
    if not f then -- io.open's message already starts with the path
      if why:sub(1, #path + 2) == path .. ": " then why = why:sub(#path + 3) end
      return nil, ("cannot open %s: %s"):format(path, why)
    end
    f:close()
  end
  local env = luasql.sqlite3()
  local conn, err = env:connect(path)
  if not conn then env:close(); return nil, ("cannot open %s: %s"):format(path, M.message(err)) end
  local db = setmetatable({ env = env, conn = conn, path = path }, DB)
  local ok, e = pcall(function()
    db:exec("PRAGMA busy_timeout = 5000")
    if existing then -- reads the header: "file is not a database" shows here
      db:one("SELECT count(*) AS n FROM sqlite_master")
      return
    end
    db:tx(function()
      for _, stmt in ipairs(CORE_SCHEMA) do db:exec(stmt) end
      for _, list in ipairs(schemas or {}) do
        for _, stmt in ipairs(list) do db:exec(stmt) end
      end
    end)
  end)
  if not ok then db:close(); return nil, ("cannot open %s: %s"):format(path, M.message(e)) end
  return db
end

return M
