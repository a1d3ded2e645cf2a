-- The base64-JSON objects of annex 4.3-4.6 and 2.6.4.2 (organisme,
-- adresses, Niveau_de_relations, contacts) and criteres' plain JSON, over
-- the wire: attributes go in the JSON type of their annex row ("Réél" a
-- number, "Entier long" an integer, "Booléen" true/false), converted where
-- the text reads one way only, refused otherwise, never sent as strings the
-- vendor drops while answering ok. Per-service attribute rules:
-- ws_organisme_modification needs organisme.id_organisme (2.6.3.3),
-- ws_organisme_creation refuses what the vendor fills (2.6.2.5). What was
-- sent is read back from the real sandbox's request journal, and what it
-- stored from its answers. Last, the sandbox's ws_historique_contact
-- refusals, all in the seed's flat retour.
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"
local counting = require("spec.support.counting").new()
local core = require "billetterie.core"
local cjson = require "cjson"

local sb
setup(function() sb = sandbox.start { args = { "--seed", "demo" } } end)
teardown(function() if sb then sb:stop() end end)

local function client() return sb:client { transport = counting, retries = 0 } end

-- The latest request to `ws` as the sandbox received it (its journal, read
-- through curl: this spec also runs under LuaJIT).
local function last_sent(ws)
  local p = assert(io.popen(("curl -s '%s_sandbox/requests?limit=1&path=%s'"):format(sb.url, ws)))
  local rows = cjson.decode(p:read("*a")).requests
  p:close()
  return assert(rows[#rows], "nothing reached " .. ws).params
end

-- The JSON text of a base64 param of the latest request to `ws`.
local function sent_json(ws, name)
  return core.b64decode(assert(last_sent(ws)[name], name .. " was not sent"))
end

-- A local invalid_param error naming `param`, nothing sent.
local function refused(call, param, reason) return counting:refused(call, param, reason) end

local LYCEE = { id_organisme = 1, intitule = "Lycée Alphonse Daudet", nature = "Etablissement scolaire" }
local function organisme(extra)
  local o = {}
  for k, v in pairs(LYCEE) do o[k] = v end
  for k, v in pairs(extra or {}) do o[k] = v end
  return o
end

local function modify(params)
  return client():call("ws_organisme_modification", params, { idempotent = true })
end

describe("a Réél attribute (4.4 champ_libre6..8)", function()
  it("goes as a JSON number, from a number or its dot-decimal text, and is stored", function()
    for _, case in ipairs { { "12.5", "12.5", 12.5 }, { 7.25, "7.25", 7.25 }, { "-3", "-3", -3 }, { 0, "0", 0 } } do
      local given = organisme { champ_libre6 = case[1] }
      local msg = assert(modify { organisme = given })
      assert.matches('"champ_libre6":' .. case[2]:gsub("%p", "%%%0") .. "[,}]", sent_json("ws_organisme_modification", "organisme"))
      assert.equal(case[3], msg.organisme.champ_libre6)
      assert.equal(case[1], given.champ_libre6)   -- the caller's table is left as it was
    end
  end)

  it("refuses a decimal comma, pointing to billetterie.decimal, which converts it", function()
    refused(function() return modify { organisme = organisme { champ_libre7 = "12,5" } } end,
      "organisme.champ_libre7", "billetterie.decimal")
    local msg = assert(modify { organisme = organisme { champ_libre7 = billetterie.decimal("12,5") } })
    assert.equal(12.5, msg.organisme.champ_libre7)
    assert.matches('"champ_libre7":12.5', sent_json("ws_organisme_modification", "organisme"), 1, true)
  end)

  it("refuses what is not a number: empty, exponent, words, a boolean, NaN, infinity", function()
    for _, v in ipairs { "", "1e3", "abc", " 12", "12.", true, 0 / 0, 1 / 0 } do
      refused(function() return modify { organisme = organisme { champ_libre8 = v } } end,
        "organisme.champ_libre8", "must be a")
    end
  end)
end)

describe("a Booléen attribute (4.3 prioritaire, 4.5.1 checked)", function()
  it("goes as JSON true/false from true/false, 1/0, \"1\"/\"0\", \"true\"/\"false\"", function()
    for _, case in ipairs { { 1, "true" }, { "1", "true" }, { "true", "true" }, { true, "true" },
                            { 0, "false" }, { "0", "false" }, { "false", "false" }, { false, "false" } } do
      assert(modify { organisme = organisme(), adresses = { { type_adresse = "Principale", prioritaire = case[1] } } })
      local sent = sent_json("ws_organisme_modification", "adresses")
      assert.matches('"prioritaire":' .. case[2] .. "[,}]", sent)
      assert.is_true(cjson.decode(sent)[1].prioritaire == (case[2] == "true"))
    end
    assert(modify { organisme = organisme(), Niveau_de_relations = { { Niveau_relation = "Relais", checked = "1" } } })
    assert.matches('"checked":true', sent_json("ws_organisme_modification", "Niveau_de_relations"), 1, true)
  end)

  it("is stored by the sandbox when given as 1 (it dropped the number before)", function()
    assert(modify { organisme = organisme(), adresses = { { type_adresse = "Secondaire", ville = "Nîmes", prioritaire = 1 } } })
    local info = assert(client():call("ws_info_organisme", { id_organisme = 1 }))
    local found
    for _, a in ipairs(info.organisme and info.organisme.adresses or info.adresses or {}) do
      if a.type_adresse == "Secondaire" then found = a end
    end
    assert(found, "no Secondaire address")
    assert.is_true(found.prioritaire)
  end)

  it("refuses anything else, naming the path", function()
    for _, v in ipairs { "oui", "yes", 2, "", "TRUE" } do
      refused(function() return modify { organisme = organisme(), adresses = { { type_adresse = "P", prioritaire = v } } } end,
        "adresses[1].prioritaire", "must be a boolean")
    end
  end)
end)

describe("an Entier long attribute", function()
  it("goes as a JSON integer from digits (2.6.4.2 id_contact, 4.3 id_organisme, 4.6 id_formulaire)", function()
    assert(client():call("ws_organisme_contacts",
      { id_organisme = 1, contacts = { { id_contact = "2", action_attachement = "attacher" } } }))
    assert.matches('"id_contact":2[,}]', sent_json("ws_organisme_contacts", "contacts"))
    assert(modify { organisme = organisme { id_organisme = "1" },
                    adresses = { { type_adresse = "Principale", id_organisme = "1" } } })
    assert.matches('"id_organisme":1[,}]', sent_json("ws_organisme_modification", "organisme"))
    assert.matches('"id_organisme":1[,}]', sent_json("ws_organisme_modification", "adresses"))
  end)

  it("converts the criteria's ids and lists of ids, and leaves a text valeur as given", function()
    local given = { id_formulaire = "6869", liste_champs = { { nom = "champ_2", valeur = { "608", 607 } },
                                                              { nom = "champ_3", valeur = "603" } } }
    modify { organisme = organisme(), criteres = given }   -- the sandbox may not know the form
    local sent = last_sent("ws_organisme_modification").criteres
    assert.matches('"id_formulaire":6869[,}]', sent)
    assert.matches('"valeur":[608,607]', sent, 1, true)
    assert.matches('"valeur":"603"', sent, 1, true)      -- an id or a text field's content: as given
    assert.equal("608", given.liste_champs[1].valeur[1])
  end)

  it("refuses what is not a whole number a double holds", function()
    for _, v in ipairs { "2.0", "x2", 2.5, "99999999999999999999", "" } do
      refused(function() return client():call("ws_organisme_contacts",
        { id_organisme = 1, contacts = { { id_contact = v, action_attachement = "attacher" } } }) end,
        "contacts[1].id_contact", v == "" and "must not be empty" or "integer")
    end
  end)
end)

describe("attribute rules of one service (catalogue required_attributes / refused_attributes)", function()
  it("are catalogue data on the services' organisme param", function()
    local S = require("billetterie.catalogue").services
    local function organisme_param(ws)
      for _, p in ipairs(S[ws].params) do if p.name == "organisme" then return p end end
    end
    assert.same({ "id_organisme" }, organisme_param("ws_organisme_modification").required_attributes)
    assert.same({ "id_organisme", "date_creation", "fiche_supprimee" },
      organisme_param("ws_organisme_creation").refused_attributes)
  end)

  it("ws_organisme_modification needs organisme.id_organisme (2.6.3.3), before sending", function()
    local o = organisme()
    o.id_organisme = nil
    refused(function() return modify { organisme = o } end, "organisme.id_organisme", "is required")
    refused(function() return modify { organisme = organisme { id_organisme = "" } } end, "organisme.id_organisme")
    -- what the vendor never updates may still come back in a record sent back
    assert(modify { organisme = organisme { date_creation = "2020-01-01", fiche_supprimee = false } })
  end)

  it("ws_organisme_creation refuses id_organisme, date_creation, fiche_supprimee (returned filled, 2.6.2.5)", function()
    local new = { intitule = "Compagnie du Midi", nature = "Association" }
    for name, v in pairs { id_organisme = 12, date_creation = "2020-01-01", fiche_supprimee = false } do
      local o = { [name] = v }
      for k, x in pairs(new) do o[k] = x end
      refused(function() return client():call("ws_organisme_creation", { organisme = o }) end,
        "organisme." .. name, "leave it out")
    end
    local msg = assert(client():call("ws_organisme_creation", { organisme = new }))
    assert.is_true(msg.organisme.id_organisme > 1)
  end)
end)

-- Not an object, but the same review: the sandbox's ws_historique_contact
-- answers every refusal in the seed's flat retour (2.4.5.4, l.2884-2888:
-- historique, traitement, message; code added), never retour.statut.
describe("the sandbox's ws_historique_contact refusals", function()
  local function post(ws, body)
    local p = assert(io.popen(("curl -s -d '%s' '%s%s'"):format(body, sb.url, ws)))
    local text = p:read("*a")
    p:close()
    return cjson.decode(text).retour
  end

  it("all come flat: not logged in, a criterion without filtre=1, a bad filtre, a bad or missing token", function()
    local token = post("ws_idsession", "x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677").message.jeton
    for _, case in ipairs { { "x_rsi_token=" .. token, 602 }, { "x_rsi_token=" .. token .. "&filtre=0", 602 },
                            { "x_rsi_token=" .. token .. "&categorie=ABO", 4 },
                            { "x_rsi_token=" .. token .. "&filtre=0&categorie=ABO", 4 },
                            { "x_rsi_token=" .. token .. "&filtre=2", 4 }, { "x_rsi_token=short", 4 }, { "", 4 } } do
      local r = post("ws_historique_contact", case[1])
      assert.is_nil(r.statut, case[1])
      assert.same({ case[2], "ko", {} }, { r.code, r.traitement, r.historique }, case[1])
      assert.equal(require("billetterie.codes")[case[2]].message, r.message)
    end
    -- and the client reads them as the vendor's errors
    local _, err = client():call("ws_historique_contact", { x_rsi_token = token })
    assert.same({ "vendor", 602 }, { err.kind, err.code })
  end)
end)
