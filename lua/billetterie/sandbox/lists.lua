-- billetterie.sandbox.lists: spec 2.5, the lists (and events) of a client
-- and the contacts invited to them. Contacts join a list through
-- ws_ccontact's liste[] (contacts.lua calls add()).
--
-- For seed data and other groups:
--   create(db, client, { id_liste =, titre_court = (or libelle =),
--          type = "Fichier", web = true, liste = true }) -> id_liste
--       id_liste defaults to the client's highest + 1; web = false hides the
--       list from ws_cat_listes and from liste[]; liste = false marks an event.
--   add(db, client, id_liste, id_contact) -> invitation id (idempotent)
--   usable(db, client, id_liste) -> true when the list exists and is on the web

local services = require "billetterie.sandbox.services"
local codec = require "billetterie.sandbox.codec"
local ok, ko = services.ok, services.ko

local M = {}

M.schema = {
  [[CREATE TABLE IF NOT EXISTS listes (
      client      INTEGER NOT NULL,
      id_liste    INTEGER NOT NULL,
      titre_court TEXT NOT NULL,
      type        TEXT NOT NULL,      -- back-office list type, e.g. 'Fichier'
      web         INTEGER NOT NULL,   -- 1: available on the web (2.5.1.4)
      liste       INTEGER NOT NULL,   -- 1: a list, 0: an event
      PRIMARY KEY (client, id_liste)
    )]],
  -- One invitation per (list, contact); its row id is the invitation number.
  [[CREATE TABLE IF NOT EXISTS liste_contacts (
      id         INTEGER PRIMARY KEY AUTOINCREMENT,
      client     INTEGER NOT NULL,
      id_liste   INTEGER NOT NULL,
      id_contact INTEGER NOT NULL,
      UNIQUE (client, id_liste, id_contact)
    )]],
}

function M.create(db, client, l)
  local titre = l.titre_court or l.libelle
  assert(type(titre) == "string" and titre ~= "", "lists.create: titre_court (or libelle) required")
  local id = l.id_liste or db:one("SELECT COALESCE(MAX(id_liste), 0) + 1 AS n FROM listes WHERE client = ?",
    client).n
  assert(math.type(id) == "integer", "lists.create: id_liste must be an integer")
  db:exec("INSERT INTO listes (client, id_liste, titre_court, type, web, liste) VALUES (?, ?, ?, ?, ?, ?)",
    client, id, titre, l.type or "Fichier", l.web ~= false, l.liste ~= false)
  return id
end

function M.usable(db, client, id_liste)
  return db:one("SELECT 1 AS x FROM listes WHERE client = ? AND id_liste = ? AND web = 1", client, id_liste) ~= nil
end

function M.add(db, client, id_liste, id_contact)
  db:exec("INSERT OR IGNORE INTO liste_contacts (client, id_liste, id_contact) VALUES (?, ?, ?)",
    client, id_liste, id_contact)
  return db:one("SELECT id FROM liste_contacts WHERE client = ? AND id_liste = ? AND id_contact = ?",
    client, id_liste, id_contact).id
end

-- retour_traitement (2.5): message is an array, traitement beside statut;
-- the routes' envelope (services.lua RESHAPE) gives refusals of the
-- common checks (credentials, parameters) the same shape.
local function answer(code, list)
  return (code == 2 and ok or ko)(code, codec.array(list or {}))
end

M.routes = {
  -- Only the lists available on the web (2.5.1.4), events included.
  ws_cat_listes = {
    auth = "ws",
    envelope = "retour_traitement",
    run = function(_, env)
      local out = {}
      for _, l in ipairs(env.db:rows("SELECT * FROM listes WHERE client = ? AND web = 1 ORDER BY id_liste",
          env.client)) do
        out[#out + 1] = { id = l.id_liste, titre_court = l.titre_court, type = l.type, web = true,
          liste = l.liste == 1 }
      end
      return answer(2, out)
    end,
  },

  -- The invitations of a web list. A list unknown or not on the web answers
  -- 4. "Seuls les contacts actifs" (2.5.2.4): every fiche contact is active
  -- (ws_suppression_compte ends the web account, not the fiche). A contact
  -- attached to an organisme is invited through that fiche lien (its first
  -- one): clistru_id is the link's id and structure its organisme (2.5.2.3);
  -- otherwise its own fiche lien, with structure {id 0, structure ""}.
  ws_cat_contacts_liste = {
    auth = "ws",
    envelope = "retour_traitement",
    params = { id_liste = "integer!" },
    run = function(p, env)
      local db = env.db
      if not M.usable(db, env.client, p.id_liste) then return answer(4) end
      local contacts = require "billetterie.sandbox.contacts" -- it requires this module
      local organismes = require "billetterie.sandbox.organismes"
      local out = {}
      for _, inv in ipairs(db:rows("SELECT * FROM liste_contacts WHERE client = ? AND id_liste = ? ORDER BY id",
          env.client, p.id_liste)) do
        local c = contacts.get(db, env.client, inv.id_contact)
        if c then
          local link = organismes.first_link(db, env.client, c.id_contact)
          out[#out + 1] = {
            id = inv.id, clistru_id = link and link.id or c.id, mail_envoi = c.mail,
            contact = { id = c.id_contact, genre = c.civilite, nom = c.name, prenom = c.surname },
            structure = { id = link and link.id_organisme or 0, structure = link and link.intitule or "" },
          }
        end
      end
      return answer(2, out)
    end,
  },
}

return M
