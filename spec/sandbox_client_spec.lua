-- The contract of issue #2, end to end: the project's client against the
-- real sandbox process, over real sockets, with its SQLite file.
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"

local sb

local function client(extra) return sb:client(extra) end

setup(function() sb = sandbox.start() end)
teardown(function() if sb then sb:stop() end end)

describe("sessions against the sandbox", function()
  it("opens, checks and closes a session with the spec's codes", function()
    local c = client()
    local msg, statut = c:call("ws_idsession")
    assert.same({ code = 603, traitement = "ok", message = "Session initialisée" }, statut)
    assert.matches("^%x+$", msg.jeton)
    assert.equal(32, #msg.jeton)
    assert.equal("PT48H", msg.duree)
    assert.equal(172800, msg.temps_restant)

    local status, st2 = c:call("ws_status_session", { x_rsi_token = msg.jeton })
    assert.is_table(status, tostring(st2))
    assert.equal(1, status.status)
    assert.is_true(status.temps_restant <= 172800 and status.temps_restant > 172000)

    local _, closed = c:call("ws_deconnexion_session", { x_rsi_token = msg.jeton })
    assert.equal(611, closed.code)
    -- a closed session is "Session invalide", a vendor ko
    local after, err = c:call("ws_status_session", { x_rsi_token = msg.jeton })
    assert.is_nil(after)
    assert.equal("vendor", err.kind)
    assert.equal(605, err.code)
    assert.not_matches(msg.jeton, tostring(err), 1, true)
  end)

  it("refuses wrong web-service credentials with code 3 and no secret in the error", function()
    local c = client{ password = "not-the-password" }
    for _, call in ipairs{
      { "ws_idsession", {} },
      { "ws_info_organisme", { id_organisme = 1 } },
      { "ws_organisme_creation", { organisme = { intitule = "X", nature = "Association" } } },
    } do
      local msg, err = c:call(call[1], call[2])
      assert.is_nil(msg)
      assert.equal("vendor", err.kind)
      assert.equal(3, err.code)
      assert.equal(call[1], err.ws)
      assert.is_false(err.retryable)
      assert.not_matches("not-the-password", tostring(err), 1, true)
    end
    local _, err = client{ client_id = 999 }:call("ws_idsession")
    assert.equal(3, err.code)
  end)

  it("gives every concurrent session its own token", function()
    local c = client()
    local tokens = billetterie.run(function()
      local tasks, out = {}, {}
      for i = 1, 12 do tasks[i] = billetterie.spawn(function() return c:call("ws_idsession") end) end
      for i = 1, 12 do out[i] = assert(tasks[i]:wait()).jeton end
      return out
    end)
    local seen = {}
    for _, t in ipairs(tokens) do
      assert.is_nil(seen[t])
      seen[t] = true
    end
  end)
end)

describe("organismes against the sandbox", function()
  it("creates one from Lua tables and reads it back", function()
    local c = client()
    local created, statut = c:call("ws_organisme_creation", {
      organisme = { intitule = "Compagnie des Quais", nature = "Association", type = "Compagnie" },
      adresses = { { type_adresse = "Siège", adress1 = "12 rue Mercière", code_postal = "69002", ville = "Lyon" } },
    })
    assert.is_table(created, tostring(statut))
    assert.equal(901, statut.code)
    local id = created.organisme.id_organisme
    assert.equal("number", type(id))
    if math.type then assert.equal("integer", math.type(id)) end

    local read = assert(c:call("ws_info_organisme", { id_organisme = id }))
    assert.equal("Compagnie des Quais", read.organisme.intitule)
    assert.equal("Association", read.organisme.nature)
    assert.equal(id, read.organisme.id_organisme)
    assert.equal("Lyon", read.organisme.adresses[1].ville)
    assert.equal("Siège", read.organisme.adresses[1].type_adresse)
  end)

  it("reports an unknown organisme as vendor error 904", function()
    local msg, err = client():call("ws_info_organisme", { id_organisme = 999999 })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(904, err.code)
    assert.equal("ws_info_organisme", err.ws)
    assert.equal(200, err.http_status)
    assert.is_string(err.message)
    assert.matches("^billetterie: ws_info_organisme: vendor error 904: ", tostring(err))
  end)

  it("lets the sandbox refuse a creation without its mandatory attributes", function()
    -- sent pre-encoded: the client itself refuses the table (organisme.nature is required)
    local encoded = require("billetterie.core").b64encode(require("billetterie.json").encode({ intitule = "Sans nature" }))
    local msg, err = client():call("ws_organisme_creation", { organisme = encoded })
    assert.is_nil(msg)
    assert.equal("vendor", err.kind)
    assert.equal(903, err.code)
  end)
end)
