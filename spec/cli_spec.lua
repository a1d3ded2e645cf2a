-- The billetterie command: help everywhere, call, run, import.
local shell = require "spec.support.shell"
local sandbox = require "spec.support.sandbox"

-- the C modules of the commands run: ./build, or $BILLETTERIE_BUILD (a helper's own)
local BUILD = os.getenv("BILLETTERIE_BUILD") or "build"
local sb, env
setup(function()
  sb = sandbox.start()
  env = ("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' BILLETTERIE_URL=%s "
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

  -- Failed before (every empty table printed as {}).
  it("call prints an empty list of the answer as [] (the change feed, nothing since the ts)", function()
    local ok, out = billetterie("call ws_liste_fiches_modifiees ts=2099-12-31T00:00:00")
    assert(ok, out)
    for _, name in ipairs{ "adresses", "contacts", "envois", "interets", "liens", "niveaux_relations", "organismes" } do
      assert.matches('"liste_' .. name .. '": []', out, 1, true)
    end
    assert.is_table(require("cjson").decode((out:gsub("exit=%d+%s*$", ""))))
    ok, out = billetterie("call ws_liste_fiches_modifiees ts=2099-12-31T00:00:00 type_export=liste_organisme")
    assert(ok, out)
    assert.matches('"liste_organismes_id": []', out, 1, true)
  end)

  it("pretty prints an empty table as [] for a list field, else as {}", function()
    local cli = require "billetterie.cli"
    local json = require "billetterie.json"
    local out = cli.pretty({
      liste_organismes = {}, ws_cat_contacts_liste = {}, contacts = {}, historique = {},
      organisme = {}, statut = {}, marked = json.array(), items = { {}, { liste_place = {} } },
      outer = { inner = {}, liste_x = {} }, n = 1,
    })
    for _, field in ipairs{ "liste_organismes", "ws_cat_contacts_liste", "contacts", "historique", "marked",
                            "liste_place", "liste_x" } do
      assert.matches('"' .. field .. '": []', out, 1, true)
    end
    for _, field in ipairs{ "organisme", "statut", "inner" } do
      assert.matches('"' .. field .. '": {}', out, 1, true)
    end
    assert.matches('"items": [\n    {},\n    {\n      "liste_place": []\n    }\n  ]', out, 1, true)
    assert.are.equal("{}", cli.pretty({}))
    assert.are.equal("[]", cli.pretty({}, nil, "liste_a"))
    assert.are.equal("[\n  1,\n  2\n]", cli.pretty({ 1, 2 }))
  end)

  it("takes the address from --url and the credentials from a config file", function()
    local config = os.tmpname()
    local f = assert(io.open(config, "w"))
    f:write('return { login = "xrsitest", password = "xrsimdp", client_id = 677 }\n')
    f:close()
    local ok, out = shell(("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' BILLETTERIE_URL= "
      .. "lua5.4 bin/billetterie call ws_idsession --url %s --config %s"):format(sb.url, config))
    os.remove(config)
    assert(ok, out)
    assert.matches('"code": 603', out, 1, true)
  end)

  it("refuses to run without a server address, saying how to give one", function()
    local ok, out = shell("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' BILLETTERIE_URL= "
      .. "lua5.4 bin/billetterie call ws_idsession")
    assert.is_false(ok)
    assert.matches("BILLETTERIE_URL", out, 1, true)
  end)

  -- the same environment without the site's address (BILLETTERIE_URL empty)
  local function no_url_env()
    return env:gsub("BILLETTERIE_URL=%S+", "BILLETTERIE_URL=")
  end

  it("with --url, still reads the api host's account and the other credentials from the environment", function()
    local ok, out = shell(no_url_env() .. ("lua5.4 bin/billetterie call ws_liste_fiches_modifiees "
      .. "ts=2024-01-01T00:00:00 --url %s"):format(sb.url))
    assert(ok, out)
    assert.matches('"next_ts"', out, 1, true)
  end)

  it("reports option mistakes as what they are, and a client number that is not one", function()
    local ok, out = shell(no_url_env() .. "lua5.4 bin/billetterie call ws_idsession --url ftp://example.org/")
    assert.is_false(ok)
    assert.matches("url must be an http:// or https:// address", out, 1, true)
    assert.not_matches("set BILLETTERIE_URL", out, 1, true)
    ok, out = shell(env .. "BILLETTERIE_CLIENT=abc lua5.4 bin/billetterie call ws_idsession")
    assert.is_false(ok)
    assert.matches("BILLETTERIE_CLIENT must be a number", out, 1, true)
    -- a password on the command line shows in ps: refused, not repeated
    ok, out = shell(no_url_env() .. "lua5.4 bin/billetterie call ws_idsession --url http://u:cli-Secret-9@127.0.0.1:9/")
    assert.is_false(ok)
    assert.matches("--url holds a password", out, 1, true)
    assert.not_matches("cli-Secret-9", out, 1, true)
  end)

  it("reads a value from stdin (name=-) or the environment (name=env:VAR), never from argv", function()
    local ok, out = billetterie("call ws_idsession")
    assert(ok, out)
    local token = require("cjson").decode((out:gsub("exit=%d+%s*$", ""))).payload.jeton
    -- a wrong password read from stdin: the vendor's 504 (identifier or password), and never shown
    ok, out = shell("printf 'Wrong-Pass-77\\n' | " .. env .. "lua5.4 bin/billetterie call ws_login x_rsi_token="
      .. token .. " web_ident=nobody@example.fr web_passe=-")
    assert.is_false(ok)
    assert.matches("vendor error 504", out, 1, true)
    assert.not_matches("Wrong-Pass-77", out, 1, true)
    ok, out = shell(env .. "PW=Wrong-Pass-78 lua5.4 bin/billetterie call ws_login x_rsi_token=" .. token
      .. " web_ident=nobody@example.fr web_passe=env:PW")
    assert.is_false(ok)
    assert.matches("vendor error 504", out, 1, true)
    ok, out = billetterie("call ws_login web_passe=env:NOT_SET_ANYWHERE_42")
    assert.is_false(ok)
    assert.matches("NOT_SET_ANYWHERE_42 is not set", out, 1, true)
    ok, out = billetterie("call --help")
    assert.matches("web_passe=-", out, 1, true)
  end)

  it("masks contact passwords a vendor sends back in clear", function()
    local echo = require "spec.support.echo_server"
    local srv = echo.start{ bodies = { modcontact = { body = '{"retour":{"message":{"contact":{"name":"X",'
      .. '"web_passe":"Clear-Pass-99"}},"statut":{"code":0,"traitement":"ok","message":"ok"}}}' } } }
    local ok, out = shell(no_url_env() .. "lua5.4 bin/billetterie call ws_modification_contact id_contact=1 --url "
      .. srv.url .. "modcontact/")
    srv:stop()
    assert(ok, out)
    assert.matches('"web_passe": "***"', out, 1, true)
    assert.not_matches("Clear-Pass-99", out, 1, true)
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

  local function status_of(out) return tonumber(out:match("exit=(%d+)%s*$")) end

  -- a directory with a CSV of n organismes and a map file -> dir
  local function import_dir(prefix, n)
    local dir = os.tmpname()
    os.remove(dir)
    assert(shell("mkdir -p " .. dir))
    local f = assert(io.open(dir .. "/org.csv", "w"))
    f:write("Nom;Nature\n")
    for i = 1, n do f:write(("%s %d;Association\n"):format(prefix, i)) end
    f:close()
    f = assert(io.open(dir .. "/map.lua", "w"))
    f:write('return { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }\n')
    f:close()
    return dir
  end

  it("import refuses a bad --concurrency or --rate with exit 2, before opening anything", function()
    local dir = import_dir("Cli A", 1)
    for _, case in ipairs{ { "--concurrency 0", "--concurrency must be a whole number" },
                           { "--concurrency abc", "--concurrency must be a whole number" },
                           { "--concurrency 2.5", "--concurrency must be a whole number" },
                           { "--rate 0", "--rate must be a number of calls a second > 0" },
                           { "--rate abc", "--rate must be a number of calls a second > 0" } } do
      local ok, out = billetterie(("import %s/org.csv --map %s/map.lua %s"):format(dir, dir, case[1]))
      assert.is_false(ok)
      assert.equal(2, status_of(out), out)
      assert.matches(case[2], out, 1, true)
      assert.not_matches("traceback", out, 1, true)
      assert.is_false(shell("test -e " .. dir .. "/org.csv.journal.db"), "no journal opened")
    end
    shell("rm -rf " .. dir)
  end)

  it("import refuses a report or journal that is the CSV, and a journal that is not one (exit 2)", function()
    local dir = import_dir("Cli B", 1)
    local csv = dir .. "/org.csv"
    local function content()
      local f = assert(io.open(csv, "rb"))
      local text = f:read("*a")
      f:close()
      return text
    end
    local before = content()
    local ok, out = billetterie(("import %s --map %s/map.lua --report %s/./org.csv"):format(csv, dir, dir))
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("is the CSV file itself", out, 1, true)
    ok, out = billetterie(("import %s --map %s/map.lua --journal %s"):format(csv, dir, csv))
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("is the CSV file itself", out, 1, true)
    assert.equal(before, content())
    ok, out = billetterie(("import %s --map %s/map.lua --journal %s/map.lua"):format(csv, dir, dir))
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("not a journal (not a SQLite database)", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
    shell("rm -rf " .. dir)
  end)

  it("import counts only the records of a shortened CSV and says how many journal rows are past its end", function()
    local dir = import_dir("Cli C", 3)
    local ok, out = billetterie(("import %s/org.csv --map %s/map.lua"):format(dir, dir))
    assert(ok, out)
    assert.matches("3 records: 3 created, 0 failed", out, 1, true)
    local f = assert(io.open(dir .. "/org.csv", "w"))
    f:write("Nom;Nature\nCli C 1;Association\n")
    f:close()
    ok, out = billetterie(("import %s/org.csv --map %s/map.lua"):format(dir, dir))
    assert(ok, out)
    assert.matches("1 records: 1 created, 0 failed", out, 1, true)
    assert.matches("2 record(s) of the journal are past the end of this CSV", out, 1, true)
    shell("rm -rf " .. dir)
  end)

  it("import reports a map file's mistake as a message, exit 2", function()
    local dir = import_dir("Cli D", 1)
    local f = assert(io.open(dir .. "/map.lua", "w"))
    f:write('local t = {}\nreturn t.x.y\n')
    f:close()
    local ok, out = billetterie(("import %s/org.csv --map %s/map.lua"):format(dir, dir))
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("map file " .. dir .. "/map.lua failed: ", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
    shell("rm -rf " .. dir)
  end)

  it("loads a --config file with os.getenv, and reports its mistakes as messages", function()
    local config = os.tmpname()
    local function write(text)
      local f = assert(io.open(config, "w"))
      f:write(text)
      f:close()
    end
    write('return { login = "xrsitest", password = os.getenv("MY_WS_PW"), client_id = tonumber("677") }\n')
    local ok, out = shell(no_url_env() .. ("MY_WS_PW=xrsimdp lua5.4 bin/billetterie call ws_idsession --url %s "
      .. "--config %s"):format(sb.url, config))
    assert(ok, out)
    assert.matches('"code": 603', out, 1, true)
    -- no files, no commands: io and os.execute are not there
    write('local f = io.open("/etc/passwd")\nreturn {}\n')
    ok, out = billetterie("call ws_idsession --config " .. config)
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("config file " .. config .. " failed: ", out, 1, true)
    assert.matches("io", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
    write('return { login = "xrsitest", \n')
    ok, out = billetterie("call ws_idsession --config " .. config)
    assert.is_false(ok)
    assert.equal(2, status_of(out), out)
    assert.matches("config file: ", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
    os.remove(config)
  end)

  it("run gives the script arg as lua would: arg[0] the script, then its own arguments", function()
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write([[
      local c = ...
      print("arg0=" .. arg[0], "arg1=" .. tostring(arg[1]), "arg2=" .. tostring(arg[2]), "n=" .. #arg,
        "varargs=" .. select("#", ...), "client=" .. tostring(c.url ~= nil))
    ]])
    f:close()
    local ok, out = billetterie("run " .. script .. " first --second")
    assert(ok, out)
    assert.matches("arg0=" .. script .. "\targ1=first\targ2=--second\tn=2\tvarargs=3\tclient=true", out, 1, true)
    ok, out = shell(no_url_env() .. "lua5.4 bin/billetterie run --url " .. sb.url .. " " .. script .. " x")
    assert(ok, out)
    assert.matches("arg1=x\targ2=nil\tn=1", out, 1, true)
    os.remove(script)
  end)

  it("runs on LuaJIT too, with the C modules built for it", function()
    local jit_env = env:gsub("/5%.4/", "/jit/")
    local ok, out = shell(jit_env .. "luajit bin/billetterie --help")
    assert(ok, out)
    assert.matches("  import ", out, 1, true)
    ok, out = shell(jit_env .. "luajit bin/billetterie call ws_idsession")
    assert(ok, out)
    assert.matches('"code": 603', out, 1, true)
    local dir = import_dir("Cli J", 2)
    ok, out = shell(jit_env .. ("luajit bin/billetterie import %s/org.csv --map %s/map.lua"):format(dir, dir))
    assert(ok, out)
    assert.matches("2 records: 2 created, 0 failed", out, 1, true)
    shell("rm -rf " .. dir)
    local script = os.tmpname() .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write('print("jit run", arg[1], jit ~= nil)\n')
    f:close()
    ok, out = shell(jit_env .. "luajit bin/billetterie run " .. script .. " one")
    os.remove(script)
    assert(ok, out)
    assert.matches("jit run\tone\ttrue", out, 1, true)
    -- the sandbox's server module is built for Lua 5.4 only: said, not a traceback
    ok, out = shell(jit_env .. "luajit bin/billetterie sandbox --port 0 --db /nonexistent/x.db")
    assert.is_false(ok)
    assert.matches("it runs on Lua 5.4", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
  end)
end)
