-- Generated methods, sessions and the generated API reference.
local billetterie = require "billetterie"
local sandbox = require "spec.support.sandbox"

local sb
setup(function() sb = sandbox.start() end)
teardown(function() if sb then sb:stop() end end)

local function client(extra) return sb:client(extra) end

describe("generated methods", function()
  it("gives the client a method per service that needs no token", function()
    local c = client()
    local msg, err = c:info_organisme{ id_organisme = 424242 }
    assert.is_nil(msg)
    assert.equal(904, err.code)
    assert.is_function(c.programmation)
    assert.is_function(c.organisme_contacts)
    -- a token service: on the session only; its name on a client says so when called
    assert.not_function(c.ccontact)
    assert.has_error(function() c:status_session() end,
      "status_session needs a session: local s = c:session(); s:login(...); s:status_session{}")
    assert.has_error(function() c:historique_contact{} end,
      "historique_contact needs a session: local s = c:session(); s:login(...); s:historique_contact{}")
    local _, bad = c:info_organisme{}
    assert.equal("invalid_param", bad.kind)
  end)
end)

describe("sessions", function()
  it("opens, reports and closes a session, then refuses the dead token locally", function()
    local c = client()
    local s = assert(c:session())
    assert.equal(32, #s.token)
    assert.not_matches(s.token, tostring(s), 1, true)
    local st = assert(s:status())
    assert.equal(1, st.status)
    local _, statut = assert(s:logout())
    assert.equal(611, statut.code)
    local msg, err = s:status()
    assert.is_nil(msg)
    -- the vendor's kind and code for a dead session, marked local (nothing sent)
    assert.are.same({ "vendor", 605, false, true }, { err.kind, err.code, err.retryable, err.is_local })
    assert.matches("closed", err.message)
  end)

  it("is closed locally after a failed logout, and the logout can be retried until it succeeds", function()
    local c = client{ retries = 0 }
    local s = assert(c:session())
    local function faults(rules)
      local p = assert(io.popen("curl -s -X POST -H 'Content-Type: application/json' -d '"
        .. require("cjson").encode{ faults = rules } .. "' '" .. sb.url .. "_sandbox/faults'"))
      local out = p:read("*a")
      p:close()
      return out
    end
    assert.matches("ws_deconnexion_session", faults{ "ws_deconnexion_session:status=503,count=1" }, 1, true)
    local msg, err = s:logout()
    assert.is_nil(msg)
    assert.are.same({ "http", 503 }, { err.kind, err.http_status })
    -- closed on this side whatever the answer: no other call sends the token
    assert.is_true(s.closed)
    assert.is_nil(s.logged_out)
    assert.equal(0, s:remaining())
    assert.matches("closed", tostring(s), 1, true)
    local st, dead = s:status()
    assert.is_nil(st)
    assert.are.same({ "vendor", 605, true }, { dead.kind, dead.code, dead.is_local })
    -- the vendor still holds the session: a retry sends the logout again
    local _, alive = c:call("ws_status_session", { x_rsi_token = s.token })
    assert.equal(603, alive.code)
    local _, statut = assert(s:logout())
    assert.equal(611, statut.code)
    assert.is_true(s.logged_out)
    -- the vendor closed it: its token is refused there too
    local none, gone = c:call("ws_status_session", { x_rsi_token = s.token })
    assert.is_nil(none)
    assert.are.same({ "vendor", 605 }, { gone.kind, gone.code })
    -- and once it succeeded, a further logout fails locally (nothing sent)
    local again, local_err = s:logout()
    assert.is_nil(again)
    assert.equal(605, local_err.code)
    faults{}
  end)

  it("knows when it expires, from temps_restant and the client's clock", function()
    local now = 1000000
    local c = client{ clock = function() return now end }
    local s = assert(c:session())
    assert.equal(172800, s:remaining())
    now = now + 172800
    local msg, err = s:info_contact{}
    assert.is_nil(msg)
    assert.are.same({ "vendor", 605, true }, { err.kind, err.code, err.is_local })
    assert.matches("expired", err.message)
  end)

  it("passes its token to the token services", function()
    local s = assert(client():session())
    local msg, statut = s:status_session()
    assert.is_table(msg, tostring(statut))
    assert.equal(603, statut.code)
    assert.has_error(function() s:login(nil, "x") end)
  end)

  it("creates an account, logs in with it and sees the contact in the status", function()
    local s = assert(client():session())
    local created, st = s:ccontact{ id_formulaire = 2, name = "Martin", surname = "Léa",
      mail = "lea.martin@example.fr", v_passe = "Secret123", v_passec = "Secret123" }
    assert.is_table(created, tostring(st))
    local s2 = assert(client():session())
    local who, err = s2:login("lea.martin@example.fr", "Secret123")
    assert.is_table(who, tostring(err))
    local status = assert(s2:status())
    assert.is_true(status.login)
    assert.equal(who.contact.id_contact, status.contact.id_contact)
    local info = assert(s2:info_contact{ id_formulaire = 2 })
    assert.equal("Martin", info.contact.name)
    local _, bad = s2:login("lea.martin@example.fr", "Wrong1234")
    assert.equal("vendor", bad.kind)
    assert.not_matches("Wrong1234", tostring(bad), 1, true)
  end)

  it("links shop pages opened with its token", function()
    local s = assert(client():session())
    local url = assert(s:page("basket", { lng = 1 }))
    assert.equal(sb.url .. "basket?lng=1&x_rsi_token=" .. s.token, url)
  end)
end)

describe("docs/api.md", function()
  it("is current with the catalogue (make docs)", function()
    local p = io.popen("LUA_CPATH='./build/5.4/?.so;;' lua5.4 tools/gen_api_docs.lua --check 2>&1; echo \"exit=$?\"")
    local out = p:read("*a")
    p:close()
    assert.matches("exit=0", out, 1, true)
  end)
end)

describe("billetterie.from_env", function()
  it("configures a client from the environment, never from arguments", function()
    local env = { BILLETTERIE_URL = "http://x.fr", BILLETTERIE_LOGIN = "l", BILLETTERIE_PASSWORD = "secret-pw",
                  BILLETTERIE_CLIENT = "677" }
    local c = billetterie.from_env({ timeout = 3 }, function(k) return env[k] end)
    assert.equal("http://x.fr/", c.url)
    assert.equal(677, c.client_id)
    assert.equal(3, c.timeout)
    assert.not_matches("secret-pw", tostring(c), 1, true)
    assert.has_error(function() billetterie.from_env(nil, function() return nil end) end)
  end)
end)
