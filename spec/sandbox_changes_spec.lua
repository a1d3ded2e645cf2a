-- Spec 2.7.3 ws_liste_fiches_modifiees against the real sandbox process,
-- through the project's client on the api host (GET /ws_execute_programme):
-- changes to contacts and organismes seen in both export forms, the ts of
-- the next call, Filtre_client, and the api host's own credentials.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_changes_spec.lua
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local transport = require "billetterie.transport"
local cjson = require("cjson").new()

-- Not the defaults (WSCE and the spec's example key): set with the CLI flags.
local API_LOGIN, API_KEY = "OPSYNC", "0123456789abcdef0123456789abcdef01234567"
local FEED_FROM = "2020-01-07T10:30:00"
local LISTS = { "contacts", "organismes", "adresses", "liens", "envois", "interets", "niveaux_relations" }

local sb, path
local C = {}

local function client(extra)
  local opts = { url = sb.url, api_url = sb.url, api_login = API_LOGIN, api_key = API_KEY,
    login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function feed(params, c)
  local p = { ts = FEED_FROM }
  for k, v in pairs(params or {}) do p[k] = v end
  return (c or client()):call("ws_liste_fiches_modifiees", p)
end

local function ids_of(list, key)
  local set = {}
  for _, o in ipairs(list) do set[o[key]] = (set[o[key]] or 0) + 1 end
  return set
end

local function set_of(list)
  local set = {}
  for _, v in ipairs(list) do set[v] = true end
  return set
end

local function create(organisme, extra)
  local params = { organisme = organisme or { intitule = "Scène Nationale", nature = "Établissement public" } }
  for k, v in pairs(extra or {}) do params[k] = v end
  local msg, st = client():call("ws_organisme_creation", params)
  assert.is_table(msg, tostring(st))
  return msg.organisme.id_organisme
end

-- Waits for the next second of the clock (the journal and ts count seconds).
local function next_second()
  local t = os.time()
  while os.time() == t do os.execute("sleep 0.02") end
end

setup(function()
  path = os.tmpname()
  local dbmod = require "billetterie.sandbox.db"
  local services = require "billetterie.sandbox.services"
  local contacts = require "billetterie.sandbox.contacts"
  local db = assert(dbmod.open(path, services.schemas()))
  db:tx(function()
    for i, name in ipairs { "Aubert", "Blanc" } do
      C[i] = contacts.insert(db, 677, { civilite = "M.", name = name, surname = "Paul",
        mail = name:lower() .. "@example.org" }, os.time())
    end
  end)
  db:close()
  sb = sandbox.start { db = path, args = { "--api-login", API_LOGIN, "--api-key", API_KEY } }
end)
teardown(function()
  if sb then sb:stop() end
  os.remove(path)
end)

describe("ws_liste_fiches_modifiees", function()
  it("lists the records changed since ts in their current state, with what hangs on them", function()
    local id = create(nil, {
      adresses = { { type_adresse = "Siège", ville = "Lyon" } },
      Niveau_de_relations = { { Niveau_relation = "Partenaire", checked = true } },
      contacts = { { id_contact = C[1], action_fonction = "attacher", fonction = "Directrice" } },
    })
    local msg, st = client():call("ws_organisme_modification", {
      organisme = { id_organisme = id, intitule = "Scène Nationale de Lyon", nature = "Établissement public" } })
    assert.is_table(msg, tostring(st))
    msg, st = client():call("ws_modification_contact", { id_contact = C[2], v_nom = "Blanc-Martin" })
    assert.is_table(msg, tostring(st))

    local data, statut = feed()
    assert.is_table(data, tostring(statut))
    assert.same({ code = 2, traitement = "ok", message = "Traitement effectué" },
      { code = statut.code, traitement = statut.traitement, message = statut.message })
    for _, name in ipairs(LISTS) do assert.is_table(data["liste_" .. name], name) end

    local orgs = {}
    for _, o in ipairs(data.liste_organismes) do orgs[o.id_organisme] = o end
    assert.equal("Scène Nationale de Lyon", orgs[id].intitule)   -- the current state
    assert.equal(1, ids_of(data.liste_organismes, "id_organisme")[id]) -- once, though changed twice
    assert.equal("Lyon", orgs[id].adresses[1].ville)
    local contacts = {}
    for _, c in ipairs(data.liste_contacts) do contacts[c.id_contact] = c end
    assert.equal("Blanc-Martin", contacts[C[2]].name)
    assert.is_table(contacts[C[1]])

    local adresse = orgs[id].adresses[1]
    assert.equal(1, ids_of(data.liste_adresses, "id_adresse")[adresse.id_adresse])
    local link
    for _, l in ipairs(data.liste_liens) do if l.id_organisme == id then link = l end end
    assert.same({ id = link.id, id_contact = C[1], id_organisme = id, fonction = "Directrice", service = "",
      telephone = "", portable = "", email = "" }, link)
    local niveau
    for _, n in ipairs(data.liste_niveaux_relations) do if n.Num_Organisme == id then niveau = n end end
    assert.equal("Partenaire", niveau.Niveau_relation)
    assert.equal(0, niveau.Num_contact)
    assert.is_number(niveau.Num_id_unique)
  end)

  it("answers ids only with type_export, in the lists it names", function()
    local id = create()
    local link = assert(client():call("ws_organisme_contacts", { id_organisme = id,
      contacts = { { id_contact = C[2], action_attachement = "attacher" } } }))
    assert.equal(1115, select(2, client():call("ws_organisme_contacts", { id_organisme = id,
      contacts = { { id_contact = C[2], action_fonction = "attacher", fonction = "Régie" } } })).code)
    assert.is_table(link)
    local full = assert(feed())

    local orgs = assert(feed { type_export = "liste_organisme" })
    assert.same({ "liste_organismes_id", "ts_suivant" }, (function()
      local keys = {}
      for k in pairs(orgs) do keys[#keys + 1] = k end
      table.sort(keys)
      return keys
    end)())
    assert.is_true(set_of(orgs.liste_organismes_id)[id])
    assert.equal(#full.liste_organismes, #orgs.liste_organismes_id)

    local contacts = assert(feed { type_export = "liste_contact" })
    assert.is_nil(contacts.liste_organismes_id)
    assert.is_true(set_of(contacts.liste_contacts_id)[C[1]])
    assert.is_true(set_of(contacts.liste_contacts_id)[C[2]])

    local liens = assert(feed { type_export = "liste_lien" })
    local lien_ids = set_of(liens.liste_liens_id)
    for _, l in ipairs(full.liste_liens) do assert.is_true(lien_ids[l.id]) end
    assert.equal(#full.liste_liens, #liens.liste_liens_id)

    local all = assert(feed { type_export = "liste_fiches" })
    for _, name in ipairs(LISTS) do
      local ids = all["liste_" .. name .. "_id"]
      assert.is_table(ids, name)
      for _, v in ipairs(ids) do assert.equal("integer", math.type(v)) end
    end
    assert.same(orgs.liste_organismes_id, all.liste_organismes_id)
  end)

  it("gives the ts of the next call, which misses nothing changed in the same second", function()
    local data = assert(feed())
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", data.ts_suivant)

    local old = create()
    next_second()                     -- `old` is now strictly before the next ts
    local first = assert(feed())
    local ts = first.ts_suivant
    local new = create()              -- in the very second of `ts` (a few ms later)
    local second = assert(feed { ts = ts, type_export = "liste_organisme" })
    local got = set_of(second.liste_organismes_id)
    assert.is_true(got[new])          -- changed at ts: listed
    assert.is_nil(got[old])           -- changed before ts: not listed
    -- nothing after a ts in the future
    local none = assert(feed { ts = "2999-01-01T00:00:00", type_export = "liste_fiches" })
    for _, name in ipairs(LISTS) do assert.same({}, none["liste_" .. name .. "_id"]) end
  end)

  it("filters on criterion champ_35 with Filtre_client", function()
    local function with_35(v)
      return create(nil, { criteres = { id_formulaire = 6869, liste_champs = { { nom = "champ_35", valeur = v } } } })
    end
    local yes, no, unset = with_35(1), with_35(0), create()
    local function listed(filtre)
      local d = assert(feed { type_export = "liste_fiches", Filtre_client = filtre })
      return set_of(d.liste_organismes_id), set_of(d.liste_contacts_id)
    end
    local orgs, contacts = listed(1)
    assert.same({ true }, { orgs[yes], orgs[no], orgs[unset] })
    assert.is_nil(contacts[C[1]])     -- no champ_35: not "vrai"
    orgs, contacts = listed(0)
    assert.is_nil(orgs[yes])
    assert.is_true(orgs[no] and orgs[unset])
    assert.is_true(contacts[C[1]])
    orgs = listed(nil)
    assert.is_true(orgs[yes] and orgs[no] and orgs[unset])
  end)

  it("writes a contact's empty lists as JSON arrays, as ws_info_contact does", function()
    -- C[1] has no adresse, tick option nor relation level: every annex 4.1
    -- list is empty. cjson decodes [] and {} alike, so the raw text is read.
    local function raw_body(call)
      local t = {}
      function t.request(_, req)
        local status, body, ctype, errkind, errmsg, rid = transport.curl:request(req)
        t.body = body
        return status, body, ctype, errkind, errmsg, rid
      end
      assert(call(client { transport = t }))
      return t.body
    end
    assert(client():call("ws_modification_contact", { id_contact = C[1], v_prenom = "Pierre" }))
    local info = raw_body(function(c) return c:call("ws_info_contact", { id_contact = C[1] }) end)
    local body = raw_body(function(c)
      return c:call("ws_liste_fiches_modifiees", { ts = os.date("%Y-%m-%dT%H:%M:%S", os.time() - 5) })
    end)
    local listed = {}
    for _, c in ipairs(cjson.decode(body).data.liste_contacts) do listed[c.id_contact] = true end
    assert.is_true(listed[C[1]])
    for _, list in ipairs { "adresses", "code_envoi", "interet", "Niveau_de_relations" } do
      local key = '"' .. list .. '":'
      assert.truthy(info:find(key .. "[]", 1, true), list .. " in ws_info_contact")
      assert.truthy(body:find(key .. "[]", 1, true), list .. " in the change feed")
      assert.falsy(body:find(key .. "{}", 1, true), list .. " as an object in the change feed")
    end
    assert.falsy(body:find("{}", 1, true)) -- no empty list of an organisme either
  end)

  it("keeps each client's records apart", function()
    local id = create()
    local other = billetterie.new { url = sb.url, api_url = sb.url, api_login = API_LOGIN, api_key = API_KEY,
      client_id = 100 }
    local d = assert(other:call("ws_liste_fiches_modifiees", { ts = FEED_FROM, type_export = "liste_fiches" }))
    assert.is_nil(set_of(d.liste_organismes_id)[id])
    assert.is_nil(set_of(d.liste_contacts_id)[C[1]])
  end)
end)

describe("the api host's credentials and parameters", function()
  -- A transport that keeps the raw answer, and can rewrite the request's
  -- query string (to send what the client itself would refuse).
  local function recording(rewrite)
    local t = {}
    function t.request(_, req)
      if rewrite then req.url = rewrite(req.url) end
      local status, body, ctype, errkind, errmsg, rid = transport.curl:request(req)
      t.body = body
      return status, body, ctype, errkind, errmsg, rid
    end
    return t
  end

  it("refuses a wrong api key, operator login or client with 3, in the statut/data envelope", function()
    for _, opts in ipairs {
      { api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a" },  -- the default key, replaced by --api-key
      { api_login = "WSCE" },
      { client_id = 999 },
    } do
      local rec = recording()
      opts.transport = rec
      local data, err = feed(nil, client(opts))
      assert.is_nil(data)
      assert.equal("vendor", err.kind)
      assert.equal(3, err.code)
      local doc = cjson.decode(rec.body)
      assert.is_nil(doc.retour)
      assert.same({ code = 3, traitement = "ko", message = "Accès web service refusé" }, doc.statut)
      assert.is_table(doc.data)
    end
    -- the web-service account is not a key of the api host
    local _, err = client():call("ws_info_organisme", { id_organisme = 1, x_rsi_api_key = API_KEY })
    assert.equal("invalid_param", err.kind)
  end)

  it("answers 4 for an unknown programme, a bad ts, type_export or Filtre_client", function()
    local _, err = feed { x_rsi_modele = "prog_inconnu" }
    assert.equal(4, err.code)
    for from, to in pairs {
      ["ts=2020%-01%-07T10%%3A30%%3A00"] = "ts=2020-02-31T10%%3A30%%3A00",
      ["type_export=liste_fiches"] = "type_export=liste_tout",
      ["Filtre_client=1"] = "Filtre_client=2",
    } do
      local rec = recording(function(url)
        local out, n = url:gsub(from, to)
        assert(n == 1, "no " .. from .. " in " .. url)
        return out
      end)
      local data, e = feed({ type_export = "liste_fiches", Filtre_client = 1 }, client { transport = rec })
      assert.is_nil(data, from)
      assert.equal(4, e.code)
      assert.is_nil(cjson.decode(rec.body).retour)
    end
  end)
end)
