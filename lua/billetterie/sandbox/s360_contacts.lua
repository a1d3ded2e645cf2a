-- billetterie.sandbox.s360_contacts: ContactInformationPublicService v2_21
-- over the sandbox's SQLite file: individuals and structures with their
-- contact numbers (unique per institution, never changed), addresses,
-- authorizations (opt-ins), criteria, administrative numbers and members.
--
-- Methods take the parameters s360_wire decoded (catalogue names and
-- types) and return the result's business fields; a failure is raised with
-- s360_values.fail, which also undoes the method's writes.
--
-- For the other S-360 groups and the demo seed (call inside a transaction):
--   find(db, instit, number) / by_login(db, instit, login) -> row or nil
--   save_individual(db, instit, params, now) -> row  (saveIndividualContactData's params)
--   save_structure(db, instit, params, now) -> row
--   save_member(db, instit, params, now) -> member row
--   save_admin_numbers(db, instit, params, now)
--   set_password(db, row, password) ; check_password(password)
--   memberships(db, contact_id) -> { {structure_id, role, func} ... }

local codec = require "billetterie.sandbox.codec"
local ref = require "billetterie.sandbox.s360_ref"
local V = require "billetterie.sandbox.s360_values"
local fail = V.fail

local M = {}

M.schema = {
  [[CREATE TABLE IF NOT EXISTS s360_contacts (
      id          INTEGER PRIMARY KEY AUTOINCREMENT, -- contactId
      instit      TEXT NOT NULL,                     -- institution code, upper case
      number      TEXT NOT NULL,                     -- contactNumber, never changed
      type        TEXT NOT NULL,                     -- INDIVIDUAL | STRUCTURE
      data        TEXT NOT NULL,                     -- individualContact / structureContact, JSON
      email       TEXT,                              -- lower case copies, for searches
      lastname    TEXT,                              -- (a structure's name)
      firstname   TEXT,
      login       TEXT,                              -- lower case; unique per institution
      password    TEXT,                              -- never logged nor returned
      created_at  INTEGER NOT NULL,
      modified_at INTEGER NOT NULL,
      UNIQUE (instit, number)
    )]],
  "CREATE UNIQUE INDEX IF NOT EXISTS s360_contacts_login ON s360_contacts (instit, login) WHERE login IS NOT NULL",
  "CREATE INDEX IF NOT EXISTS s360_contacts_email ON s360_contacts (instit, email)",
  "CREATE TABLE IF NOT EXISTS s360_numbers (instit TEXT PRIMARY KEY, last INTEGER NOT NULL)",
  [[CREATE TABLE IF NOT EXISTS s360_addresses (
      id         INTEGER PRIMARY KEY AUTOINCREMENT,  -- contactAddressId
      contact_id INTEGER NOT NULL,
      data       TEXT NOT NULL                        -- ContactAddressData fields, JSON
    )]],
  [[CREATE TABLE IF NOT EXISTS s360_authorizations (
      contact_id INTEGER NOT NULL, code TEXT NOT NULL, allowed INTEGER NOT NULL,
      PRIMARY KEY (contact_id, code))]],
  [[CREATE TABLE IF NOT EXISTS s360_criteria (
      contact_id INTEGER NOT NULL, code TEXT NOT NULL,
      value      TEXT NOT NULL,                       -- JSON { value = } or { values = }
      PRIMARY KEY (contact_id, code))]],
  [[CREATE TABLE IF NOT EXISTS s360_admin_numbers (
      contact_id INTEGER NOT NULL, code TEXT NOT NULL, value TEXT NOT NULL,
      PRIMARY KEY (contact_id, code))]],
  [[CREATE TABLE IF NOT EXISTS s360_members (
      structure_id INTEGER NOT NULL, member_id INTEGER NOT NULL,
      role         TEXT NOT NULL,                     -- MEMBER | RELAY
      func         TEXT,                              -- `function`
      PRIMARY KEY (structure_id, member_id))]],
}

-- Contact numbers start far from the contact ids, so a client that mixes
-- contactId and contactNumber is caught at once.
local FIRST_NUMBER = 10000
M.MIN_PASSWORD = 8

---- rows ----

function M.find(db, instit, number)
  if not number then return nil end
  return db:one("SELECT * FROM s360_contacts WHERE instit = ? AND number = ?", instit, number)
end

function M.by_id(db, id)
  return db:one("SELECT * FROM s360_contacts WHERE id = ?", id)
end

function M.by_login(db, instit, login)
  if not login then return nil end
  return db:one("SELECT * FROM s360_contacts WHERE instit = ? AND login = ?", instit, login:lower())
end

local function need_contact(db, instit, number, kind, what)
  local row = M.find(db, instit, number)
  if not row then fail("notfound", ("%s: no contact %s"):format(what, tostring(number))) end
  if kind and row.type ~= kind then
    fail("invalid", ("%s: contact %s is not of type %s"):format(what, number, kind))
  end
  return row
end
M.need_contact = need_contact

local function lower(s) return s and s:lower() or nil end

-- The search columns follow the data.
local function write_row(db, row, data, now)
  local last = row.type == "STRUCTURE" and data.name or data.lastname
  db:exec([[UPDATE s360_contacts SET data = ?, email = ?, lastname = ?, firstname = ?, modified_at = ?
      WHERE id = ?]], codec.encode(data), lower(data.email), lower(last), lower(data.firstname), now, row.id)
  row.data, row.modified_at = codec.encode(data), now
end

local function create(db, instit, kind, now)
  local last = db:one("SELECT last FROM s360_numbers WHERE instit = ?", instit)
  local n = (last and last.last or FIRST_NUMBER) + 1
  db:exec("INSERT OR REPLACE INTO s360_numbers (instit, last) VALUES (?, ?)", instit, n)
  db:exec([[INSERT INTO s360_contacts (instit, number, type, data, created_at, modified_at)
      VALUES (?, ?, ?, '{}', ?, ?)]], instit, tostring(n), kind, now, now)
  return M.by_id(db, db:last_id())
end

-- Fields present in `block` replace the stored ones; absent ones stay.
local function merge(db, row, block, now)
  local data = codec.decode(row.data) or {}
  for k, v in pairs(block or {}) do data[k] = v end
  write_row(db, row, data, now)
  return data
end

function M.check_password(pw)
  if type(pw) ~= "string" or utf8.len(pw) == nil or utf8.len(pw) < M.MIN_PASSWORD then
    fail("invalid", ("the password needs %d characters at least"):format(M.MIN_PASSWORD))
  end
end

function M.set_password(db, row, pw)
  M.check_password(pw)
  db:exec("UPDATE s360_contacts SET password = ? WHERE id = ?", pw, row.id)
  row.password = pw
end

local function set_login(db, row, login, pw)
  local other = M.by_login(db, row.instit, login)
  if other and other.id ~= row.id then fail("conflict", "this login belongs to another contact") end
  M.check_password(pw)
  db:exec("UPDATE s360_contacts SET login = ?, password = ? WHERE id = ?", login:lower(), pw, row.id)
  row.login, row.password = login:lower(), pw
end

function M.memberships(db, contact_id)
  return db:rows("SELECT * FROM s360_members WHERE member_id = ? ORDER BY structure_id", contact_id)
end

---- associated objects ----

local ADDRESS_KEY = { "street1", "zipCode", "town", "countryCode" }

local function same_place(a, b)
  for _, k in ipairs(ADDRESS_KEY) do
    if (a[k] or ""):lower() ~= (b[k] or ""):lower() then return false end
  end
  return true
end

-- An address with contactAddressId updates that one (it must be the
-- contact's); without, it updates the stored one at the same place
-- (street1, zipCode, town, countryCode) or is added: repeating a save adds
-- nothing. Addresses not sent are kept. One main address at most: a saved
-- main one demotes the others; the first address is main.
local function save_addresses(db, id, list)
  if #list == 0 then return end
  local stored = {}
  for _, r in ipairs(db:rows("SELECT id, data FROM s360_addresses WHERE contact_id = ? ORDER BY id", id)) do
    stored[#stored + 1] = { id = r.id, data = codec.decode(r.data) }
  end
  for _, a in ipairs(list) do
    local target
    local fields = {}
    for k, v in pairs(a) do
      if k ~= "contactAddressId" and k ~= "formattedAddress" then fields[k] = v end
    end
    if a.contactAddressId then
      for _, s in ipairs(stored) do
        if s.id == a.contactAddressId then target = s end
      end
      if not target then fail("notfound", ("addresses: %d is not an address of this contact"):format(a.contactAddressId)) end
    else
      for _, s in ipairs(stored) do
        if same_place(s.data, fields) then target = s end
      end
    end
    if target then
      for k, v in pairs(fields) do target.data[k] = v end
      db:exec("UPDATE s360_addresses SET data = ? WHERE id = ?", codec.encode(target.data), target.id)
    else
      fields.normalizationState = fields.normalizationState or "NOT_NORMALIZED"
      db:exec("INSERT INTO s360_addresses (contact_id, data) VALUES (?, ?)", id, codec.encode(fields))
      target = { id = db:last_id(), data = fields }
      stored[#stored + 1] = target
    end
    if fields.main then
      for _, s in ipairs(stored) do
        if s ~= target and s.data.main then
          s.data.main = false
          db:exec("UPDATE s360_addresses SET data = ? WHERE id = ?", codec.encode(s.data), s.id)
        end
      end
    end
  end
  local has_main = false
  for _, s in ipairs(stored) do has_main = has_main or s.data.main == true end
  if not has_main then
    stored[1].data.main = true
    db:exec("UPDATE s360_addresses SET data = ? WHERE id = ?", codec.encode(stored[1].data), stored[1].id)
  end
end

local function save_authorizations(db, id, list)
  for _, a in ipairs(list) do
    if not ref.by_code.authorization[a.authorizationCode] then
      fail("invalid", "authorizations: unknown authorizationCode " .. a.authorizationCode)
    end
    db:exec("INSERT OR REPLACE INTO s360_authorizations (contact_id, code, allowed) VALUES (?, ?, ?)",
      id, a.authorizationCode, a.allowed)
  end
end

-- A criterion's value checked against its definition (s360_ref.CRITERIA);
-- no value at all removes the criterion from the contact.
local function criterion_value(c)
  local def = ref.by_code.criterion[c.criterionCode]
  local what = "contactCriteria " .. c.criterionCode
  if not def then fail("invalid", "contactCriteria: unknown criterionCode " .. c.criterionCode) end
  local values = c.values and #c.values > 0 and c.values or (c.value and { c.value }) or {}
  if #values == 0 then return nil end
  if def.type == "LIST" then
    local allowed = {}
    for _, v in ipairs(def.values) do allowed[v] = true end
    for _, v in ipairs(values) do
      if not allowed[v] then fail("invalid", ("%s: %s is not one of %s"):format(what, v, table.concat(def.values, ", "))) end
    end
    if #values > 1 and not def.multiple then fail("invalid", what .. ": one value only") end
    return def.multiple and { values = values } or { value = values[1] }
  end
  if #values > 1 then fail("invalid", what .. ": one value only") end
  local v = values[1]
  if def.type == "BOOLEAN" then
    local b = V.bool(v, what)
    return { value = b and "true" or "false" }
  elseif def.type == "DATE" then
    return { value = V.date(v, what) }
  end
  return { value = V.text(v, what, 255) }
end

local function save_criteria(db, id, list)
  for _, c in ipairs(list) do
    local v = criterion_value(c)
    if v then
      db:exec("INSERT OR REPLACE INTO s360_criteria (contact_id, code, value) VALUES (?, ?, ?)",
        id, c.criterionCode, codec.encode(v))
    else
      db:exec("DELETE FROM s360_criteria WHERE contact_id = ? AND code = ?", id, c.criterionCode)
    end
  end
end

---- reading: ContactDataResult ----

local function copy(t)
  local out = {}
  for k, v in pairs(t) do out[k] = v end
  return out
end

local function addresses_of(db, id)
  local out = {}
  for _, r in ipairs(db:rows("SELECT id, data FROM s360_addresses WHERE contact_id = ? ORDER BY id", id)) do
    local a = codec.decode(r.data)
    a.contactAddressId = r.id
    local parts = {}
    for _, k in ipairs { "street1", "street2", "street3", "street4" } do parts[#parts + 1] = a[k] end
    -- zipCode and town are both optional: a nil must not leave a hole
    local place = ((a.zipCode or "") .. " " .. (a.town or "")):match("^%s*(.-)%s*$")
    if place ~= "" then parts[#parts + 1] = place end
    parts[#parts + 1] = a.countryCode
    a.formattedAddress = table.concat(parts, ", ")
    out[#out + 1] = a
  end
  return out
end

local function admin_numbers_of(db, id)
  local out = {}
  for _, r in ipairs(db:rows("SELECT code, value FROM s360_admin_numbers WHERE contact_id = ? ORDER BY code", id)) do
    out[#out + 1] = { code = r.code, value = r.value }
  end
  return out
end

local function connections_of(db, row)
  local out = {}
  local sql = row.type == "STRUCTURE"
    and [[SELECT c.number, m.role FROM s360_members m JOIN s360_contacts c ON c.id = m.member_id
          WHERE m.structure_id = ? ORDER BY c.id]]
    or [[SELECT c.number, m.role FROM s360_members m JOIN s360_contacts c ON c.id = m.structure_id
          WHERE m.member_id = ? ORDER BY c.id]]
  for _, r in ipairs(db:rows(sql, row.id)) do
    out[#out + 1] = { connectedContactNumber = r.number, connectionType = r.role }
  end
  return out
end

local function com_means_of(row, data)
  local out = {}
  for i, m in ipairs { { "EMAIL", "email" }, { "PHONE", "phoneNumber" }, { "MOBILE", "mobilePhoneNumber" } } do
    local v = data[m[2]]
    if v then
      out[#out + 1] = { communicationMeanId = row.id * 10 + i, type = m[1],
        email = m[1] == "EMAIL" and v or nil, phoneNumber = m[1] ~= "EMAIL" and v or nil }
    end
  end
  return out
end

-- details: list of ContactDetail values (GENERAL when empty). The blocks
-- the sandbox has no data for (qualities, indicators, advantages,
-- financial data) come back empty.
function M.result(db, row, details)
  local want = {}
  for _, d in ipairs(details or {}) do want[d] = true end
  if next(want) == nil then want.GENERAL = true end
  local data = codec.decode(row.data) or {}
  local r = { contactNumber = row.number, contactId = row.id }
  local individual = row.type == "INDIVIDUAL"
  if want.GENERAL then
    r.type, r.state, r.hasWarning, r.guest = row.type, "VALID", false, false
    r.creationDate = V.datetime(row.created_at)
    r.login = row.login
    if individual then
      local m = M.memberships(db, row.id)[1]
      r.role = m and m.role or "PUBLIC"
      r["function"] = m and m.func or nil
    else
      r.structureContact = copy(data)
      r.administrativeNumbers = admin_numbers_of(db, row.id)
    end
  end
  if individual and (want.GENERAL or want.INDIVIDUAL_PHOTO) then
    r.individualContact = copy(data)
    if not want.INDIVIDUAL_PHOTO then r.individualContact.photo = nil end
  end
  if want.AUTHORIZATIONS then
    r.authorizations = {}
    for _, a in ipairs(db:rows("SELECT code, allowed FROM s360_authorizations WHERE contact_id = ? ORDER BY code", row.id)) do
      r.authorizations[#r.authorizations + 1] = { authorizationCode = a.code, allowed = a.allowed == 1 }
    end
  end
  if want.CRITERIA then
    r.contactCriteria = {}
    for _, c in ipairs(db:rows("SELECT code, value FROM s360_criteria WHERE contact_id = ? ORDER BY code", row.id)) do
      local v = codec.decode(c.value)
      r.contactCriteria[#r.contactCriteria + 1] = { criterionCode = c.code, value = v.value, values = v.values }
    end
  end
  if want.ADDRESSES then r.addresses = addresses_of(db, row.id) end
  if want.QUALITIES or want.INVALIDATED_QUALITIES then r.contactQualities = {} end
  if want.INDICATORS then r.indicators = {} end
  if want.ADVANTAGES then r.advantages, r.hasAdvantages = {}, false end
  if want.COM_MEANS then r.communicationMeans = com_means_of(row, data) end
  if want.FINANCIAL then r.financialData = { balance = 0, currency = "EUR" } end
  if want.CONNECTIONS then r.contactConnections = connections_of(db, row) end
  return r
end

---- writing ----

local function save_objects(db, row, p)
  save_addresses(db, row.id, p.addresses or {})
  save_authorizations(db, row.id, p.authorizations or {})
  save_criteria(db, row.id, p.contactCriteria or {})
end

-- saveIndividualContactData: contactNumber absent creates (a lastname or an
-- email needed), given updates; createLogin makes the e-mail the login.
-- anonymous: createUser's contacts may have neither (the app completes them).
function M.save_individual(db, instit, p, now, anonymous)
  local block = p.individualContactData or {}
  local row = p.contactNumber and need_contact(db, instit, p.contactNumber, "INDIVIDUAL", "contactNumber")
  if not row then
    if not (block.lastname or block.email or anonymous) then
      fail("invalid", "individualContactData.lastname or individualContactData.email is required to create a contact")
    end
    row = create(db, instit, "INDIVIDUAL", now)
  end
  local data = merge(db, row, block, now)
  save_objects(db, row, p)
  if p.createLogin then
    if not data.email then fail("invalid", "createLogin needs individualContactData.email (the login)") end
    local pw = p.password or row.password
    if not pw then fail("invalid", "createLogin needs a password") end
    set_login(db, row, data.email, pw)
  elseif p.password then
    if not row.login then fail("invalid", "password: the contact has no login (use createLogin)") end
    M.set_password(db, row, p.password)
  end
  return row
end

local function check_structure_type(code)
  if code and not ref.by_code.structure_type[code] then
    fail("invalid", "structureContactData.structureTypeCode: unknown type " .. code)
  end
end

function M.save_structure(db, instit, p, now)
  local block = p.structureContactData or {}
  check_structure_type(block.structureTypeCode)
  local row = p.contactNumber and need_contact(db, instit, p.contactNumber, "STRUCTURE", "contactNumber")
  if not row then
    if not (block.name and block.structureTypeCode) then
      fail("invalid", "structureContactData.name and .structureTypeCode are required to create a structure")
    end
    row = create(db, instit, "STRUCTURE", now)
  end
  merge(db, row, block, now)
  save_objects(db, row, p)
  return row
end

-- Replaces the structure's whole list (an empty list clears it).
function M.save_admin_numbers(db, instit, p, now)
  local row = need_contact(db, instit, p.contactNumber, "STRUCTURE", "contactNumber")
  local seen = {}
  for _, a in ipairs(p.administrativeNumbers or {}) do
    if not ref.by_code.admin_number[a.code] then
      fail("invalid", "administrativeNumbers: unknown code " .. a.code)
    end
    if seen[a.code] then fail("invalid", "administrativeNumbers: " .. a.code .. " given twice") end
    seen[a.code] = true
    V.text(a.value, "administrativeNumbers " .. a.code, 50)
  end
  db:exec("DELETE FROM s360_admin_numbers WHERE contact_id = ?", row.id)
  for _, a in ipairs(p.administrativeNumbers or {}) do
    db:exec("INSERT INTO s360_admin_numbers (contact_id, code, value) VALUES (?, ?, ?)", row.id, a.code, a.value)
  end
  db:exec("UPDATE s360_contacts SET modified_at = ? WHERE id = ?", now, row.id)
end

-- saveStructureMember: an existing individual (memberContactNumber) or a
-- new one (individualContactData), role MEMBER unless RELAY is given.
function M.save_member(db, instit, p, now)
  local s = need_contact(db, instit, p.structureContactNumber, "STRUCTURE", "structureContactNumber")
  local m
  if p.memberContactNumber then
    m = need_contact(db, instit, p.memberContactNumber, "INDIVIDUAL", "memberContactNumber")
    if p.individualContactData then merge(db, m, p.individualContactData, now) end
  else
    m = M.save_individual(db, instit, { individualContactData = p.individualContactData }, now)
  end
  local old = db:one("SELECT * FROM s360_members WHERE structure_id = ? AND member_id = ?", s.id, m.id)
  local func = p["function"]
  if func == nil and old then func = old.func end
  db:exec("INSERT OR REPLACE INTO s360_members (structure_id, member_id, role, func) VALUES (?, ?, ?, ?)",
    s.id, m.id, p.role or (old and old.role) or "MEMBER", func)
  return m
end

---- methods ----

local function like_or_equal(column, value, args)
  local v = value:lower()
  if v:sub(-1) == "*" then
    args[#args + 1] = v:sub(1, -2):gsub("[\\%%_]", "\\%0") .. "%"
    return column .. " LIKE ? ESCAPE '\\'"
  end
  args[#args + 1] = v
  return column .. " = ?"
end

local function reference_list(list)
  local out = {}
  for i, e in ipairs(list) do
    out[i] = { id = e.id, code = e.code, name = { translations = { { locale = "fr", value = e.name } } } }
  end
  return out
end

M.methods = {}

function M.methods.getContactData(p, env)
  local row = need_contact(env.db, env.instit, p.contactNumber, nil, "contactNumber")
  return M.result(env.db, row, p.details)
end

-- Case-blind equality, or a prefix with a trailing `*`; the criteria are
-- ANDed; at least one is needed. fileOwnerContactNumber is accepted and
-- ignored (the sandbox has no files).
function M.methods.searchContactByCriteria(p, env)
  local c = p.searchCriteria
  local where, args = { "instit = ?" }, { env.instit }
  for _, k in ipairs { "email", "lastname", "firstname", "login" } do
    if c[k] then where[#where + 1] = like_or_equal(k, c[k], args) end
  end
  if c.contactNumber then where[#where + 1] = "number = ?"; args[#args + 1] = c.contactNumber end
  if c.zipCode then
    where[#where + 1] = "id IN (SELECT contact_id FROM s360_addresses WHERE json_extract(data, '$.zipCode') = ?)"
    args[#args + 1] = c.zipCode
  end
  if #where == 1 then fail("invalid", "searchCriteria: give at least one criterion") end
  if c.contactTypeScope and c.contactTypeScope ~= "ANY" then
    where[#where + 1] = "type = ?"; args[#args + 1] = c.contactTypeScope
  end
  local max = c.maxResults or 50
  if max < 1 or max > 500 then fail("invalid", "searchCriteria.maxResults: 1 to 500") end
  args[#args + 1] = max
  local out = {}
  for _, row in ipairs(env.db:rows("SELECT * FROM s360_contacts WHERE " .. table.concat(where, " AND ")
      .. " ORDER BY id LIMIT ?", table.unpack(args))) do
    out[#out + 1] = M.result(env.db, row, p.details)
  end
  return { contacts = out }
end

function M.methods.saveIndividualContactData(p, env)
  local row = M.save_individual(env.db, env.instit, p, env.now)
  return { contactNumber = row.number, contactId = row.id }
end

function M.methods.saveStructureContactData(p, env)
  local row = M.save_structure(env.db, env.instit, p, env.now)
  return { contactNumber = row.number, contactId = row.id }
end

function M.methods.saveStructureAdministrativeNumbers(p, env)
  M.save_admin_numbers(env.db, env.instit, p, env.now)
  return {}
end

function M.methods.saveStructureMember(p, env)
  local m = M.save_member(env.db, env.instit, p, env.now)
  return { contactNumber = m.number, contactId = m.id }
end

-- Idempotent (seed: "all those methods are transactionnal and
-- idempotent"): a member already gone is a success, so that a repeat after
-- a lost answer does not report a delete that happened as failed. The two
-- contacts must still exist.
function M.methods.deleteStructureMember(p, env)
  local db = env.db
  local s = need_contact(db, env.instit, p.structureContactNumber, "STRUCTURE", "structureContactNumber")
  local m = need_contact(db, env.instit, p.memberContactNumber, nil, "memberContactNumber")
  db:exec("DELETE FROM s360_members WHERE structure_id = ? AND member_id = ?", s.id, m.id)
  return {}
end

function M.methods.listStructureMembersByCriteria(p, env)
  local c, db = p.memberSearchCriteria, env.db
  local where, args = { "s.instit = ?" }, { env.instit }
  if c.structureContactNumber then
    need_contact(db, env.instit, c.structureContactNumber, "STRUCTURE", "memberSearchCriteria.structureContactNumber")
    where[#where + 1] = "s.number = ?"; args[#args + 1] = c.structureContactNumber
  end
  if c.role then where[#where + 1] = "m.role = ?"; args[#args + 1] = c.role end
  if c.lastname then where[#where + 1] = like_or_equal("c.lastname", c.lastname, args) end
  if c.email then where[#where + 1] = like_or_equal("c.email", c.email, args) end
  if #where == 1 then fail("invalid", "memberSearchCriteria: give at least one criterion") end
  local out = {}
  for _, r in ipairs(db:rows([[SELECT s.number AS snum, c.number AS mnum, c.data, m.role, m.func
      FROM s360_members m JOIN s360_contacts s ON s.id = m.structure_id
      JOIN s360_contacts c ON c.id = m.member_id WHERE ]] .. table.concat(where, " AND ")
      .. " ORDER BY s.id, c.id", table.unpack(args))) do
    local ind = codec.decode(r.data)
    ind.photo = nil
    out[#out + 1] = { structureContactNumber = r.snum, memberContactNumber = r.mnum, role = r.role,
      ["function"] = r.func, individualContact = ind }
  end
  return { members = out }
end

function M.methods.getStructureTypes()
  return { structureTypes = reference_list(ref.STRUCTURE_TYPES) }
end

function M.methods.getAvailableContactCriteria()
  local out = reference_list(ref.CRITERIA)
  for i, e in ipairs(ref.CRITERIA) do out[i].type, out[i].values = e.type, e.values end
  return { contactCriteria = out }
end

function M.methods.getAvailableAutorizations()
  return { authorizations = reference_list(ref.AUTHORIZATIONS) }
end

function M.methods.getAvailableAdmnistrativeNumbers()
  return { administrativeNumbers = reference_list(ref.ADMIN_NUMBERS) }
end

return M
