-- billetterie.sandbox.sessions: spec 2.2.1-2.2.3, the session token.
-- A token lives `duration` seconds from its creation (PT48H by default);
-- temps_restant is always computed from the stored creation time.

local services = require "billetterie.sandbox.services"
local ok, ko = services.ok, services.ko

-- seconds -> ISO 8601 duration: 172800 -> "PT48H", 5400 -> "PT1H30M"
local function iso_duration(s)
  local h, m, sec = s // 3600, s % 3600 // 60, s % 60
  local out = "PT" .. (h > 0 and h .. "H" or "") .. (m > 0 and m .. "M" or "")
    .. ((sec > 0 or s == 0) and sec .. "S" or "")
  return out
end

-- No order exists in the sandbox yet: the fresh-session commande object of
-- the ws_idsession example (status is blank there; 0 chosen).
local function no_order()
  return { id = "", temps_restant = 0, status = 0 }
end

local function remaining(session, now)
  if not session or session.ended_at then return 0 end
  return math.max(0, session.created_at + session.duration - now)
end

local routes = {
  ws_idsession = {
    auth = "ws",
    denied_code_setting = "idsession_denied_code",
    run = function(_, env)
      local duration = env.config.session_duration
      local jeton = env.random_hex(16)
      env.db:session_create(jeton, env.client, env.now, duration)
      return ok(603, {
        duree = iso_duration(duration), jeton = jeton, temps_restant = duration,
        id_session = "", commande = no_order(),
      })
    end,
  },

  -- Running: 603 with status 1, or 604 "Session identifiée" with login true
  -- and the contact once ws_login bound one. Unknown, expired or
  -- disconnected: 605 "Session invalide" with status 0 (the reference's
  -- reading; the spec prints statut as {…}).
  ws_status_session = {
    auth = "token",
    run = function(_, env)
      local left = remaining(env.session, env.now)
      local message = {
        commande = no_order(), id_session = "", status = left > 0 and 1 or 0,
        temps_restant = left, login = false,
      }
      if left == 0 then return ko(605, message) end
      local id_contact = env.session.id_contact
      local contact = id_contact
        and require("billetterie.sandbox.contacts").get(env.db, env.session.client, id_contact)
      if contact then
        message.login = true
        message.contact = { id = contact.id, id_contact = id_contact }
        return ok(604, message)
      end
      return ok(603, message)
    end,
  },

  -- Needs the ws account and the token; a token of another client is
  -- treated as unknown.
  ws_deconnexion_session = {
    auth = "ws_and_token",
    run = function(_, env)
      local s = env.session
      if remaining(s, env.now) == 0 or s.client ~= env.client then return ko(605) end
      env.db:session_end(s.jeton, env.now)
      return ok(611, {})
    end,
  },
}

-- The sessions table is a core table (db.lua): every token route reads it.
return { schema = {}, routes = routes }
