-- billetterie.sandbox.s360_social: ContactSocialLoginService v1_0: links
-- between contacts and identity-provider users (addLink, createUser and the
-- guessed removeLink), used by authenticate's social mode (s360_auth.lua).
-- A provider user is linked to one contact of an institution at most.
--
--   linked(db, instit, provider, reference) -> contact row or nil

local M = {}

M.schema = {
  [[CREATE TABLE IF NOT EXISTS s360_social (
      instit     TEXT NOT NULL,
      provider   TEXT NOT NULL,
      reference  TEXT NOT NULL,     -- providerUserReference
      contact_id INTEGER NOT NULL,
      PRIMARY KEY (instit, provider, reference)
    )]],
}

local function contacts() return require "billetterie.sandbox.s360_contacts" end
local V = require "billetterie.sandbox.s360_values"
local fail = V.fail

local function link_row(db, instit, provider, reference)
  return db:one("SELECT * FROM s360_social WHERE instit = ? AND provider = ? AND reference = ?",
    instit, provider, reference)
end

function M.linked(db, instit, provider, reference)
  local l = link_row(db, instit, provider, reference)
  return l and contacts().by_id(db, l.contact_id) or nil
end

local function check_provider(p)
  if p.provider == "NONE" then fail("invalid", "provider: NONE cannot be linked") end
end

M.methods = {}

-- Idempotent: linking the same pair again succeeds; a provider user linked
-- to another contact is a conflict.
function M.methods.addLink(p, env)
  check_provider(p)
  local row = contacts().need_contact(env.db, env.instit, p.contactNumber, nil, "contactNumber")
  local l = link_row(env.db, env.instit, p.provider, p.providerUserReference)
  if l and l.contact_id ~= row.id then fail("conflict", "this provider user is linked to another contact") end
  if not l then
    env.db:exec("INSERT INTO s360_social (instit, provider, reference, contact_id) VALUES (?, ?, ?, ?)",
      env.instit, p.provider, p.providerUserReference, row.id)
  end
  return {}
end

-- A new individual from the social profile (no login: it logs on through
-- the provider), linked to the provider user. Title and gender are kept
-- leniently (the vendor's own example sends gender MRS).
local TITLES = { MR = "MR", MRS = "MRS", MISS = "MISS", MALE = "MR", FEMALE = "MRS" }

function M.methods.createUser(p, env)
  check_provider(p)
  if link_row(env.db, env.instit, p.provider, p.providerUserReference) then
    fail("conflict", "this provider user is already linked to a contact")
  end
  local s = p.signUpData
  local phone = s.phoneNumber and ((s.phonePrefix or "") .. s.phoneNumber) or nil
  local block = {
    email = s.email, firstname = s.firstname, lastname = s.lastname, phoneNumber = phone,
    language = s.lang and s.lang:sub(1, 2):lower() or nil,
    title = TITLES[(s.title or s.gender or ""):upper()] or "UNDEFINED",
  }
  local row = contacts().save_individual(env.db, env.instit, { individualContactData = block }, env.now, true)
  env.db:exec("INSERT INTO s360_social (instit, provider, reference, contact_id) VALUES (?, ?, ?, ?)",
    env.instit, p.provider, p.providerUserReference, row.id)
  return {}
end

-- Idempotent like addLink: a link already gone is a success (a repeat
-- after a lost answer); the provider user linked to another contact is
-- that contact's link, not this one's to remove: a conflict.
function M.methods.removeLink(p, env)
  local row = contacts().need_contact(env.db, env.instit, p.contactNumber, nil, "contactNumber")
  local l = link_row(env.db, env.instit, p.provider, p.providerUserReference)
  if not l then return {} end
  if l.contact_id ~= row.id then fail("conflict", "this provider user is linked to another contact") end
  env.db:exec("DELETE FROM s360_social WHERE instit = ? AND provider = ? AND reference = ?",
    env.instit, p.provider, p.providerUserReference)
  return {}
end

return M
