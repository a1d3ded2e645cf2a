-- billetterie.sandbox.s360_auth: ContactAuthenticationPublicService v2_21:
-- authenticate (login + password, remember-me pair, social login,
-- operator), recoverPassword (the new password goes to the sandbox's
-- outbox: GET /_sandbox/s360/outbox), changePassword, listAuthorizedPOS.
--
-- Remember-me pairs (identification + uniqueToken) live remember_days (30)
-- and are rotated: a pair used once is spent, the answer carries the next.

local contacts = require "billetterie.sandbox.s360_contacts"
local ref = require "billetterie.sandbox.s360_ref"
local social = require "billetterie.sandbox.s360_social"
local V = require "billetterie.sandbox.s360_values"
local fail = V.fail

local M = {}

M.schema = {
  [[CREATE TABLE IF NOT EXISTS s360_remember (
      identification TEXT PRIMARY KEY,
      instit         TEXT NOT NULL,
      contact_id     INTEGER NOT NULL,
      token          TEXT NOT NULL,   -- uniqueToken; never logged
      expires_at     INTEGER NOT NULL,
      spent          INTEGER NOT NULL DEFAULT 0
    )]],
  [[CREATE TABLE IF NOT EXISTS s360_outbox (
      id        INTEGER PRIMARY KEY AUTOINCREMENT,
      instit    TEXT NOT NULL,
      at        INTEGER NOT NULL,
      recipient TEXT NOT NULL,
      subject   TEXT NOT NULL,
      body      TEXT NOT NULL
    )]],
}

local DENIED = "authentication failed"   -- one message whatever was wrong: no account probing

local function new_pair(env, row)
  local id, token = env.random_hex(16):lower(), env.random_hex(32):lower()
  env.db:exec([[INSERT INTO s360_remember (identification, instit, contact_id, token, expires_at)
      VALUES (?, ?, ?, ?, ?)]], id, env.instit, row.id, token, env.now + env.config.remember_days * 86400)
  return id, token
end

local function revoke_pairs(db, contact_id)
  db:exec("UPDATE s360_remember SET spent = 1 WHERE contact_id = ?", contact_id)
end

-- The contact a ContactAuthenticationData designates, or a failure.
-- rotate: token mode spends the pair presented (authenticate does, listAuthorizedPOS does not).
local function identify(d, env, rotate)
  local db = env.db
  if d.identification or d.uniqueToken then
    local pair = db:one("SELECT * FROM s360_remember WHERE identification = ? AND instit = ?",
      (d.identification or ""):lower(), env.instit)
    if not pair or pair.spent == 1 or pair.expires_at < env.now or pair.token ~= (d.uniqueToken or ""):lower() then
      fail("denied", "remember-me pair unknown, spent or expired")
    end
    if rotate then db:exec("UPDATE s360_remember SET spent = 1 WHERE identification = ?", pair.identification) end
    return contacts.by_id(db, pair.contact_id), "token"
  end
  if d.socialLogin or d.providerUserReference then
    if not (d.identityProvider and d.providerUserReference) then
      fail("invalid", "socialLogin needs identityProvider and providerUserReference")
    end
    local row = social.linked(db, env.instit, d.identityProvider, d.providerUserReference)
    if not row then fail("notfound", "no contact is linked to this " .. d.identityProvider .. " user") end
    return row, "social"
  end
  if not (d.login and d.password) then
    fail("invalid", "login and password, identification and uniqueToken, or socialLogin are required")
  end
  local row = contacts.by_login(db, env.instit, d.login)
  if not row or row.password ~= d.password then fail("denied", DENIED) end
  if d.contactNumber and d.contactNumber ~= row.number then fail("denied", DENIED) end
  return row, "password"
end

-- Point of sales and structure checks of authenticate.
local function check_scope(d, env, row)
  local scope = d.contactTypeScope
  if scope and scope ~= "ANY" and scope ~= row.type then
    fail("denied", "the contact is not of type " .. scope)
  end
  local pos = d.pointOfSalesId and ref.pos_by_id[d.pointOfSalesId]
  if d.pointOfSalesId and not pos then fail("invalid", "pointOfSalesId: unknown point of sales " .. d.pointOfSalesId) end
  if pos and pos.b2b and row.type ~= "STRUCTURE" and #contacts.memberships(env.db, row.id) == 0 then
    fail("denied", "the contact may not log on to point of sales " .. pos.id)
  end
  if d.structureContactNumber then
    local s = contacts.find(env.db, env.instit, d.structureContactNumber)
    if not s or not env.db:one("SELECT 1 AS x FROM s360_members WHERE structure_id = ? AND member_id = ?", s.id, row.id) then
      fail("denied", "the contact is not a member of structure " .. d.structureContactNumber)
    end
  end
end

M.methods = {}

function M.methods.authenticate(p, env)
  local d = p.contactAuthenticationData
  if d.operatorLogin then
    -- an operator (2_21): the virtual operator's own credentials
    if (d.login or ""):upper() ~= env.operator or d.password ~= env.config.password then fail("denied", DENIED) end
    return {}
  end
  local row, mode = identify(d, env, true)
  check_scope(d, env, row)
  local out = { contactNumber = row.number }
  if mode == "token" or d.rememberMe then
    out.identification, out.uniqueToken = new_pair(env, row)
  end
  return out
end

-- A new random password for the contact whose login or e-mail this is;
-- S-360 e-mails it, the sandbox writes the mail to its outbox.
function M.methods.recoverPassword(p, env)
  local db = env.db
  if p.pointOfSalesId and not ref.pos_by_id[p.pointOfSalesId] then
    fail("invalid", "pointOfSalesId: unknown point of sales " .. p.pointOfSalesId)
  end
  local row = contacts.by_login(db, env.instit, p.email)
    or db:one("SELECT * FROM s360_contacts WHERE instit = ? AND email = ? AND login IS NOT NULL ORDER BY id",
      env.instit, p.email:lower())
  if not row then fail("notfound", "no account with this e-mail address") end
  local pw = env.random_hex(6):lower()
  contacts.set_password(db, row, pw)
  revoke_pairs(db, row.id)
  db:exec("INSERT INTO s360_outbox (instit, at, recipient, subject, body) VALUES (?, ?, ?, ?, ?)",
    env.instit, env.now, p.email, "Votre nouveau mot de passe",
    ("Contact %s: your new password is %s"):format(row.number, pw))
  return {}
end

-- A change also spends the contact's remember-me pairs.
function M.methods.changePassword(p, env)
  local row = contacts.need_contact(env.db, env.instit, p.contactNumber, nil, "contactNumber")
  if not row.password or row.password ~= p.currentPassword then fail("denied", "currentPassword does not match") end
  contacts.set_password(env.db, row, p.newPassword)
  revoke_pairs(env.db, row.id)
  return {}
end

function M.methods.listAuthorizedPOS(p, env)
  local row = identify(p.contactAuthenticationData, env, false)
  local member = row.type == "STRUCTURE" or #contacts.memberships(env.db, row.id) > 0
  local out = {}
  for _, pos in ipairs(ref.POINTS_OF_SALES) do
    if member or not pos.b2b then
      out[#out + 1] = { id = pos.id, code = pos.code, name = pos.name, saleChannelCode = pos.saleChannelCode }
    end
  end
  return { pointOfSales = out }
end

return M
