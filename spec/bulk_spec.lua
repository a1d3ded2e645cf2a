-- The bulk import against the real sandbox: resumable, never twice.
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"

local API_KEY = "b1829f60af03c1e69a13ed44405ec898f912b63a"
local sb, c

setup(function()
  sb = sandbox.start()
  c = sb:client()
end)
teardown(function() if sb then sb:stop() end end)

local MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
              ["adresses.1.type_adresse"] = "Type adresse", ["adresses.1.ville"] = "Ville" }

local temp = {}   -- files to remove at the end (CSV, journals, reports)
teardown(function()
  for _, p in ipairs(temp) do
    for _, suffix in ipairs{ "", ".db", ".db-wal", ".db-shm", ".failures.csv", ".lua" } do os.remove(p .. suffix) end
  end
end)

local function write_csv(prefix, n, bad)
  local path = os.tmpname()
  temp[#temp + 1] = path
  local f = assert(io.open(path, "w"))
  f:write("Nom;Nature;Type adresse;Ville\r\n")
  for i = 1, n do
    f:write(('"%s %03d";%s;Siège;"Lyon"\r\n'):format(prefix, i, (bad and bad[i]) and "" or "Association"))
  end
  f:close()
  return path
end

-- How many organismes of the sandbox carry each name.
local function on_server()
  local data = assert(c:liste_fiches_modifiees{ ts = "2000-01-01T00:00:00" })
  local count = {}
  for _, o in ipairs(data.liste_organismes or {}) do count[o.intitule] = (count[o.intitule] or 0) + 1 end
  return count
end

local function journal_sql(path, sql)
  local ok, out = shell(("sqlite3 %s %q"):format(path, sql))
  assert(ok, out)
  return out
end

describe("bulk.import", function()
  it("creates every record once; a second run sends nothing", function()
    local path = write_csv("Compagnie A", 25)
    local journal = path .. ".db"
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 8 })
    assert.same({ total = 25, created = 25, failed = 0, unknown = 0 }, { total = r.total, created = r.created,
      failed = r.failed, unknown = r.unknown })
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.equal(25, r.created)
    local count = on_server()
    for i = 1, 25 do assert.equal(1, count[("Compagnie A %03d"):format(i)]) end
    local ids = journal_sql(journal, "SELECT count(DISTINCT id_organisme) FROM records WHERE state = 'done'")
    assert.equal("25", ids:match("%d+"))
  end)

  it("reports refused records with the vendor's message, and keeps the others", function()
    local path = write_csv("Compagnie B", 5, { [2] = true, [4] = true })
    local report = path .. ".failures.csv"
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = path .. ".db", report = report })
    assert.equal(3, r.created)
    assert.equal(2, r.failed)
    local f = assert(io.open(report))
    local text = f:read("*a")
    f:close()
    -- a record without its nature is refused by the client, never sent (2.6.2.4)
    assert.matches("^ligne;code;message\n2;;parameter organisme.nature is required\n", text)
    assert.matches("\n4;;parameter organisme.nature is required\n", text)
  end)

  it("finds on the server a creation whose answer was lost instead of creating it again", function()
    local path = write_csv("Compagnie C", 6)
    local journal = path .. ".db"
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    -- the crash window: record 3 was created but its answer never recorded
    journal_sql(journal, "UPDATE records SET state = 'sent', id_organisme = NULL WHERE line = 3")
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.equal(6, r.created)
    local count = on_server()
    for i = 1, 6 do assert.equal(1, count[("Compagnie C %03d"):format(i)]) end
    assert.matches("^%d+", journal_sql(journal, "SELECT id_organisme FROM records WHERE line = 3"))
  end)

  it("resends, once the server says so, records whose requests never arrived", function()
    local path = write_csv("Compagnie E", 4)
    local journal = path .. ".db"
    local dead = billetterie.new{ url = "http://127.0.0.1:1/", login = "xrsitest", password = "xrsimdp",
      client_id = 677, api_url = "http://127.0.0.1:1/", api_login = "WSCE", api_key = API_KEY, retries = 0 }
    local r = assert(bulk.import{ client = dead, csv = path, map = MAP, journal = journal })
    assert.equal(0, r.created)
    assert.equal(4, r.unknown)       -- outcome unknown: not failed, not resent blindly
    assert.is_string(r.unresolved)
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.equal(4, r.created)
    local count = on_server()
    for i = 1, 4 do assert.equal(1, count[("Compagnie E %03d"):format(i)]) end
  end)

  it("refuses a CSV that changed under its journal", function()
    local path = write_csv("Compagnie D", 3)
    local journal = path .. ".db"
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    local g = assert(io.open(path, "w"))
    g:write("Nom;Nature;Type adresse;Ville\r\nAutre;Association;Siège;Lyon\r\n")
    g:close()
    local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert.is_nil(r)
    assert.matches("changed since this journal was started", err)
  end)

  it("survives kill -9 at a random point: after a restart each record exists exactly once", function()
    local path = write_csv("Compagnie K", 60)
    local journal = path .. ".db"
    local script = path .. ".lua"
    local f = assert(io.open(script, "w"))
    f:write(([[
      local billetterie = require "billetterie"
      local c = billetterie.new{ url = %q, login = "xrsitest", password = "xrsimdp", client_id = 677,
        api_url = %q, api_login = "WSCE", api_key = %q }
      local r = assert(require("billetterie.bulk").import{ client = c, csv = %q, journal = %q, concurrency = 4,
        rate = tonumber(arg[1]), map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
        ["adresses.1.type_adresse"] = "Type adresse", ["adresses.1.ville"] = "Ville" } })
      print("created", r.created, "unknown", r.unknown)
    ]]):format(sb.url, sb.url, API_KEY, path, journal))
    f:close()
    local env = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' "
    -- 60 records at 40 a second: killed about half way, mid-stream
    local ok, out = shell(env .. "lua5.4 " .. script .. " 40 > /dev/null 2>&1 & pid=$!; sleep 0.8; kill -9 $pid; wait $pid; echo killed")
    assert.matches("killed", out)
    local done_before = tonumber(journal_sql(journal, "SELECT count(*) FROM records WHERE state = 'done'"):match("%d+"))
    assert.is_true(done_before < 60, "the import was killed before the end")
    ok, out = shell(env .. "lua5.4 " .. script)
    assert(ok, out)
    assert.matches("created\t60\tunknown\t0", out, 1, true)
    local count = on_server()
    for i = 1, 60 do assert.equal(1, count[("Compagnie K %03d"):format(i)], "record " .. i) end
  end)
end)
