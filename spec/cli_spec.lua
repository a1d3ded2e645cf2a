-- The billetterie command: help everywhere, call, run, import.
local shell = require "spec.support.shell"
local sandbox = require "spec.support.sandbox"

local sb, env
setup(function()
  sb = sandbox.start()
  env = ("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' BILLETTERIE_URL=%s "
    .. "BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp BILLETTERIE_CLIENT=677 "
    .. "BILLETTERIE_API_URL=%s BILLETTERIE_API_LOGIN=WSCE BILLETTERIE_API_KEY=b1829f60af03c1e69a13ed44405ec898f912b63a ")
    :format(sb.url, sb.url)
end)
teardown(function() if sb then sb:stop() end end)

local function billetterie(args)
  return shell(env .. "lua5.4 bin/billetterie " .. args)
end

describe("billetterie command", function()
  it("has --help on the command and on every sub-command", function()
    local ok, out = billetterie("--help")
    assert(ok, out)
    for _, name in ipairs{ "sandbox", "call", "run", "import" } do
      assert.matches("  " .. name .. " ", out, 1, true)
      local ok2, help = billetterie(name .. " --help")
      assert(ok2, help)
      assert.matches("usage: billetterie " .. name, help, 1, true)
    end
    local bad, msg = billetterie("nope")
    assert.is_false(bad)
    assert.matches("unknown command", msg, 1, true)
  end)

  it("call prints the payload and the statut as JSON, or the error with exit 1", function()
    local ok, out = billetterie("call ws_idsession")
    assert(ok, out)
    local result = require("cjson").decode((out:gsub("exit=%d+%s*$", "")))
    assert.equal(603, result.statut.code)
    assert.equal(32, #result.payload.jeton)
    ok, out = billetterie("call ws_info_organisme id_organisme=999999")
    assert.is_false(ok)
    assert.matches("vendor error 904", out, 1, true)
    assert.not_matches("xrsimdp", out, 1, true)
    ok, out = billetterie("call ws_info_organisme id_organisme=12a")
    assert.is_false(ok)
    assert.matches("invalid_param", out, 1, true)
    ok, out = billetterie("call ws_idsession --raw")
    assert(ok, out)
    assert.matches('^{"retour":', out)
  end)

  it("takes the address from --url and the credentials from a config file", function()
    local config = os.tmpname()
    local f = assert(io.open(config, "w"))
    f:write('return { login = "xrsitest", password = "xrsimdp", client_id = 677 }\n')
    f:close()
    local ok, out = shell(("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' BILLETTERIE_URL= "
      .. "lua5.4 bin/billetterie call ws_idsession --url %s --config %s"):format(sb.url, config))
    os.remove(config)
    assert(ok, out)
    assert.matches('"code": 603', out, 1, true)
  end)

  it("refuses to run without a server address, saying how to give one", function()
    local ok, out = shell("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' BILLETTERIE_URL= "
      .. "lua5.4 bin/billetterie call ws_idsession")
    assert.is_false(ok)
    assert.matches("BILLETTERIE_URL", out, 1, true)
  end)

  it("run gives a workflow script the configured client, inside billetterie.run", function()
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local c, label = ...
      local billetterie = require "billetterie"
      local results = billetterie.map({ 1, 2, 3 }, function() return assert(c:call("ws_idsession")).jeton end)
      print(label, #results, results[1] ~= results[2])
    ]])
    f:close()
    local ok, out = billetterie("run " .. script .. " tokens")
    os.remove(script)
    assert(ok, out)
    assert.matches("tokens\t3\ttrue", out, 1, true)
  end)

  it("import reads a CSV with a map file and resumes without duplicates", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(shell("mkdir -p " .. dir .. " && cp examples/data/organismes.csv " .. dir .. "/"))
    local f = assert(io.open(dir .. "/map.lua", "w"))
    f:write('return { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }\n')
    f:close()
    local ok, out = billetterie(("import %s/organismes.csv --map %s/map.lua"):format(dir, dir))
    assert(ok, out)
    assert.matches("3 records: 3 created, 0 failed", out, 1, true)
    ok, out = billetterie(("import %s/organismes.csv --map %s/map.lua"):format(dir, dir))
    assert(ok, out)
    assert.matches("3 records: 3 created", out, 1, true)
    shell("rm -rf " .. dir)
  end)
end)
