-- billetterie.sandbox.db: the sandbox's state in one SQLite file (LuaSQL).
--
-- Every value reaches SQL through quote() (conn:escape for strings, integers
-- checked), never spliced in raw; every write runs in one transaction.
-- Records whose shape belongs to the vendor (organisme, adresse) are kept as
-- JSON text, so the schema does not mirror the 30 attributes of annex 4.4.

local luasql = require "luasql.sqlite3"
local codec = require "billetterie.sandbox.codec"

local SCHEMA_VERSION = 1
local SCHEMA = {
  [[CREATE TABLE sessions (
      jeton      TEXT PRIMARY KEY,
      client     INTEGER NOT NULL,
      created_at INTEGER NOT NULL,  -- unix seconds
      duration   INTEGER NOT NULL,  -- seconds, fixed when the token is made
      ended_at   INTEGER            -- set by ws_deconnexion_session
    )]],
  [[CREATE TABLE organismes (
      id_organisme INTEGER PRIMARY KEY AUTOINCREMENT,
      client       INTEGER NOT NULL,
      data         TEXT NOT NULL,   -- annex 4.4 attributes, JSON
      niveaux      TEXT,            -- Niveau_de_relations as given, JSON
      contacts     TEXT,            -- contacts as given, JSON
      criteres     TEXT,            -- criteres as given, JSON
      created_at   INTEGER NOT NULL
    )]],
  [[CREATE TABLE adresses (
      id_adresse   INTEGER PRIMARY KEY AUTOINCREMENT,
      id_organisme INTEGER NOT NULL DEFAULT 0,
      id_contact   INTEGER NOT NULL DEFAULT 0,
      type_adresse TEXT NOT NULL,   -- the upsert key (annex 4.3)
      data         TEXT NOT NULL,   -- annex 4.3 attributes, JSON
      UNIQUE (id_organisme, id_contact, type_adresse)
    )]],
}

local DB = {}
DB.__index = DB

local function quote(conn, v)
  if v == nil then return "NULL" end
  local t = math.type(v) or type(v)
  if t == "integer" then return tostring(v) end
  if t == "boolean" then return v and "1" or "0" end
  if t == "string" then return "'" .. conn:escape(v) .. "'" end
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
    for k, v in pairs(row) do row[k] = math.tointeger(v) or v end
    out[#out + 1] = row
  end
  cur:close()
  return out
end

function DB:one(template, ...)
  return self:rows(template, ...)[1]
end

-- Runs fn(self, ...) in one transaction: committed if it returns, rolled
-- back (and the error re-raised) if it raises.
function DB:tx(fn, ...)
  self:exec("BEGIN IMMEDIATE")
  local res = table.pack(pcall(fn, self, ...))
  if res[1] then
    self:exec("COMMIT")
    return table.unpack(res, 2, res.n)
  end
  self.conn:execute("ROLLBACK")
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

---- organismes and their adresses ----

local function encode_opt(v)
  if v == nil then return nil end
  return codec.encode(v)
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
  return math.tointeger(self.conn:getlastautoid())
end

-- org: annex 4.4 attributes; adresses: list of adresse field tables;
-- extras: { niveaux =, contacts =, criteres = } kept as given. -> id_organisme
function DB:organisme_create(client, org, adresses, extras, now, adresse_defaults)
  return self:tx(function()
    self:exec([[INSERT INTO organismes (client, data, niveaux, contacts, criteres, created_at)
        VALUES (?, ?, ?, ?, ?, ?)]], client, codec.encode(org),
      encode_opt(extras.niveaux), encode_opt(extras.contacts), encode_opt(extras.criteres), now)
    local id = math.tointeger(self.conn:getlastautoid())
    for _, a in ipairs(adresses) do
      self:adresse_upsert(id, 0, a, adresse_defaults())
    end
    return id
  end)
end

-- -> { id_organisme, data, criteres, contacts, niveaux, adresses = {...} } or nil
function DB:organisme_get(client, id)
  local row = self:one("SELECT * FROM organismes WHERE client = ? AND id_organisme = ?", client, id)
  if not row then return nil end
  local rec = { id_organisme = row.id_organisme, data = codec.decode(row.data), adresses = {} }
  for _, k in ipairs { "niveaux", "contacts", "criteres" } do
    rec[k] = row[k] and codec.decode(row[k]) or nil
  end
  for _, a in ipairs(self:rows([[SELECT id_adresse, data FROM adresses
      WHERE id_organisme = ? AND id_contact = 0 ORDER BY id_adresse]], id)) do
    local data = codec.decode(a.data)
    data.id_adresse, data.id_organisme, data.id_contact = a.id_adresse, id, 0
    rec.adresses[#rec.adresses + 1] = data
  end
  return rec
end

local M = {}

-- Opens (and on first use creates) the database. -> db, or nil, err
function M.open(path)
  local env = luasql.sqlite3()
  local conn, err = env:connect(path)
  if not conn then env:close(); return nil, ("cannot open %s: %s"):format(path, err) end
  local db = setmetatable({ env = env, conn = conn, path = path }, DB)
  local ok, e = pcall(function()
    db:exec("PRAGMA busy_timeout = 5000")
    local version = db:one("PRAGMA user_version").user_version
    if version == 0 then
      db:tx(function()
        for _, stmt in ipairs(SCHEMA) do db:exec(stmt) end
        db:exec("PRAGMA user_version = " .. SCHEMA_VERSION)
      end)
    elseif version > SCHEMA_VERSION then
      error(("%s was made by a newer sandbox (schema %d)"):format(path, version), 0)
    end
  end)
  if not ok then db:close(); return nil, tostring(e) end
  return db
end

return M
