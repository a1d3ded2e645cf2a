-- `billetterie call`'s parameters become the Lua values a library caller
-- gives (maps, lists, JSON objects, booleans), checked and encoded by the
-- client alike; the account's credentials are never call parameters (the
-- command: always; the library: unless strict = false). Against a real
-- sandbox, what went on the wire read back from its request journal.
local shell = require "spec.support.shell"
local sandbox = require "spec.support.sandbox"
local cjson = require "cjson"
local core = require "billetterie.core"

local BUILD = os.getenv("BILLETTERIE_BUILD") or "build"
local sb, env
setup(function()
  sb = sandbox.start{ args = { "--seed", "demo" } }
  env = ("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' BILLETTERIE_URL=%s "
    .. "BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp BILLETTERIE_CLIENT=677 "):format(sb.url)
end)
teardown(function() if sb then sb:stop() end end)

-- -> exit status, output (stdout and stderr)
local function call(args)
  local _, out = shell(env .. "lua5.4 bin/billetterie call " .. args)
  return tonumber(out:match("exit=(%d+)%s*$")), out
end

-- The params of the last request the sandbox received on `path`, and how
-- many it received there.
local function last_sent(path)
  local p = io.popen("curl -s '" .. sb.url .. "_sandbox/requests?path=/" .. path .. "'")
  local rows = cjson.decode(p:read("*a")).requests
  p:close()
  local last
  for _, r in ipairs(rows) do
    if not last or r.id > last.id then last = r end
  end
  return last and last.params, #rows
end

describe("billetterie call parameters", function()
  -- Failed before: "liste_maj_code_envoi[1] is not a parameter of ws_modification_contact".
  it("builds a map from name[key]=v, checked as a library caller's table", function()
    local status, out = call("ws_modification_contact id_contact=1 maj_code_envoi=1 'liste_maj_code_envoi[1]=2'")
    assert.equal(0, status, out)
    assert.equal("2", last_sent("ws_modification_contact")["liste_maj_code_envoi[1]"])
    -- the map's values are checked (enumeration 1, 2, 3): nothing sent
    local _, before = last_sent("ws_modification_contact")
    status, out = call("ws_modification_contact id_contact=1 maj_code_envoi=1 'liste_maj_code_envoi[1]=9'")
    assert.equal(1, status, out)
    assert.matches("invalid_param", out, 1, true)
    assert.matches("liste_maj_code_envoi[1]", out, 1, true)
    assert.equal(before, select(2, last_sent("ws_modification_contact")))
    -- one spelling per parameter, one value per key
    status, out = call("ws_modification_contact id_contact=1 maj_code_envoi=1 liste_maj_code_envoi=1 "
      .. "'liste_maj_code_envoi[1]=2'")
    assert.equal(2, status, out)
    assert.matches("liste_maj_code_envoi is given twice", out, 1, true)
    status, out = call("ws_modification_contact id_contact=1 'liste_maj_code_envoi[1]=2' 'liste_maj_code_envoi[1]=3'")
    assert.equal(2, status, out)
    assert.matches("given twice", out, 1, true)
  end)

  -- Failed before: the JSON went out raw, unchecked and not base64.
  it("decodes a JSON value of a base64_json parameter, so it is checked and sent as base64", function()
    local status, out = call([[ws_organisme_creation organisme='{"intitule":"Théâtre CLI","nature":"Association"}']])
    assert.equal(0, status, out)
    local sent = last_sent("ws_organisme_creation")
    local organisme = assert(cjson.decode(core.b64decode(sent.organisme)))
    assert.same({ intitule = "Théâtre CLI", nature = "Association" }, organisme)
    -- checked as a table: nature is required, nothing sent
    local _, before = last_sent("ws_organisme_creation")
    status, out = call([[ws_organisme_creation organisme='{"intitule":"Sans nature"}']])
    assert.equal(1, status, out)
    assert.matches("organisme.nature is required", out, 1, true)
    -- malformed JSON: a usage mistake naming the parameter
    status, out = call([[ws_organisme_creation organisme='{"intitule":"Théâtre CLI"']])
    assert.equal(2, status, out)
    assert.matches("organisme is not valid JSON", out, 1, true)
    assert.equal(before, select(2, last_sent("ws_organisme_creation")))
    -- text already base64 goes as it is
    local b64 = core.b64encode('{"intitule":"Déjà encodé","nature":"Association"}')
    status, out = call("ws_organisme_creation organisme=" .. b64)
    assert.equal(0, status, out)
    assert.equal(b64, last_sent("ws_organisme_creation").organisme)
  end)

  -- Failed before: "must be a boolean (true/false or 1/0)" for true.
  it("takes true and false for a boolean, as 1 and 0", function()
    local status, out = call("ws_modification_contact id_contact=1 demande_desinscription_tout=true")
    assert.equal(0, status, out)
    assert.equal("1", last_sent("ws_modification_contact").demande_desinscription_tout)
    status, out = call("ws_modification_contact id_contact=1 demande_desinscription_tout=false")
    assert.equal(0, status, out)
    assert.equal("0", last_sent("ws_modification_contact").demande_desinscription_tout)
    status, out = call("ws_modification_contact id_contact=1 demande_desinscription_tout=oui")
    assert.equal(1, status, out)
    assert.matches("must be a boolean", out, 1, true)
  end)

  -- Failed before: x_rsi_ws_mdp=foo was sent.
  it("refuses the account's credentials (exit 2, nothing sent) but takes a session token", function()
    local _, before = last_sent("ws_info_organisme")
    for _, arg in ipairs{ "x_rsi_ws_mdp=foo", "x_rsi_ws_login=other", "x_rsi_client=100", "X_RSI_CLIENT=100",
                          "x_rsi_pwd_key=k", "x_rsi_api_key=k", "x_rsi_login=l", "x_rsi_client[]=1" } do
      local status, out = call("ws_info_organisme id_organisme=1 " .. arg)
      assert.equal(2, status, arg .. ": " .. out)
      assert.matches("account's credential", out, 1, true)
      assert.matches("never from the command line", out, 1, true)
    end
    assert.equal(before, select(2, last_sent("ws_info_organisme")))
    local status, out = call("ws_idsession")
    assert.equal(0, status, out)
    local token = cjson.decode((out:gsub("exit=%d+%s*$", ""))).payload.jeton
    status, out = call("ws_info_contact x_rsi_token=" .. token)
    assert.are_not.equal(2, status, out)
    assert.equal("***", last_sent("ws_info_contact").x_rsi_token)   -- sent (the journal masks it)
  end)

  it("says so in --help", function()
    local status, out = call("--help")
    assert.equal(0, status, out)
    for _, text in ipairs{ "name[key]=v", "true or", "starting with { or [", "x_rsi_ws_mdp" } do
      assert.matches(text, out, 1, true)
    end
  end)
end)

-- Failed before: the caller's x_rsi_client went out, switching the account.
describe("c:call with the account's credentials as parameters", function()
  local ACCOUNT = { x_rsi_ws_login = "login", x_rsi_ws_mdp = "password", x_rsi_client = "client_id" }
  it("is refused by a strict client, naming the option that holds each, nothing sent", function()
    local c = sb:client{ retries = 0 }
    local _, before = last_sent("ws_info_organisme")
    for param, option in pairs(ACCOUNT) do
      local msg, err = c:call("ws_info_organisme", { id_organisme = 1, [param] = "100" })
      assert.is_nil(msg)
      assert.equal("invalid_param", err.kind)
      assert.equal(param, err.param)
      assert.matches("client's " .. option .. " option", err.message, 1, true)
      assert.is_false(err.retryable)
      assert.is_nil(tostring(err):find("xrsimdp", 1, true))
    end
    local _, err = c:call("ws_liste_fiches_modifiees", { ts = "2024-01-01T00:00:00", x_rsi_api_key = "k" })
    assert.equal("x_rsi_api_key", err.param)
    assert.matches("api_key option", err.message, 1, true)
    _, err = c:call("ws_liste_fiches_modifiees", { ts = "2024-01-01T00:00:00", x_rsi_login = "l" })
    assert.matches("api_login option", err.message, 1, true)
    _, err = c:call("ws_modification_pwd", { x_rsi_pwd_key = "k", w_identifiant = "a@example.fr",
                                             v_passe = "Nouveau-2024" })
    assert.equal("x_rsi_pwd_key", err.param)
    assert.equal(before, select(2, last_sent("ws_info_organisme")))
  end)

  it("is sent as given by a client made with strict = false; a session token always is", function()
    local loose = sb:client{ retries = 0, strict = false }
    loose:call("ws_info_organisme", { id_organisme = 1, x_rsi_client = 100 })   -- client 100's answer
    assert.equal("100", last_sent("ws_info_organisme").x_rsi_client)
    local c = sb:client{ retries = 0 }
    local s = assert(c:session())
    c:call("ws_info_contact", { x_rsi_token = s.token })   -- no contact logged in: the vendor's answer
    assert.equal("***", last_sent("ws_info_contact").x_rsi_token)   -- sent (the journal masks it)
  end)
end)
