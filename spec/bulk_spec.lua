-- The bulk import against the real sandbox: resumable, never twice.
local bulk = require "billetterie.bulk"
local shell = require "spec.support.shell"
local support = require "spec.support.bulk"
local util = require "spec.support.util"

local journal_sql = support.sql
local sb, c

setup(function() sb, c = support.start() end)
teardown(function() if sb then sb:stop() end end)

local MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
              ["adresses.1.type_adresse"] = "Type adresse", ["adresses.1.ville"] = "Ville" }

local temp = util.temp_files(support.SUFFIXES)   -- CSV, journals, reports
teardown(temp.clean)

-- CRLF, quoted fields, the address columns; records in bad have no nature
local function write_csv(prefix, n, bad)
  local lines = { "Nom;Nature;Type adresse;Ville\r\n" }
  for i = 1, n do
    lines[#lines + 1] = ('"%s %03d";%s;Siège;"Lyon"\r\n'):format(prefix, i, (bad and bad[i]) and "" or "Association")
  end
  local path = temp.new()
  util.write(path, table.concat(lines))
  return path, path .. ".db"
end

-- How many organismes of the sandbox carry each name.
local function on_server() return (support.on_server(c)) end

describe("bulk.import", function()
  it("creates every record once; a second run sends nothing", function()
    local path, journal = write_csv("Compagnie A", 25)
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
    local text = assert(util.read_file(report))
    -- a record without its nature is refused by the client, never sent (2.6.2.4)
    assert.matches("^\239\187\191ligne;code;message;ligne_fichier\n2;;parameter organisme.nature is required;3\n",
      text)
    assert.matches("\n4;;parameter organisme.nature is required;5\n", text)
  end)

  it("finds on the server a creation whose answer was lost instead of creating it again", function()
    local path, journal = write_csv("Compagnie C", 6)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    -- the crash window: record 3 was created but its answer never recorded
    journal_sql(journal, "UPDATE records SET state = 'sent', id_organisme = NULL WHERE line = 3")
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.equal(6, r.created)
    local count = on_server()
    for i = 1, 6 do assert.equal(1, count[("Compagnie C %03d"):format(i)]) end
    assert.matches("^%d+", journal_sql(journal, "SELECT id_organisme FROM records WHERE line = 3"))
  end)

  it("resends a record whose request never arrived only once `settle` seconds have passed", function()
    local path, journal = write_csv("Compagnie E", 4)
    local dead = support.client("http://127.0.0.1:1/", "http://127.0.0.1:1/", { retries = 0 })
    local r = assert(bulk.import{ client = dead, csv = path, map = MAP, journal = journal })
    assert.equal(0, r.created)
    assert.equal(4, r.unknown)       -- outcome unknown: not failed, not resent blindly
    assert.matches("could not check the server", r.unresolved, 1, true)
    -- the server is reachable again, but the records were sent a moment ago:
    -- a write may still be committing, so they stay unknown (default settle)
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 0, 4, 0 }, { r.created, r.unknown, r.pending })
    assert.matches("4 record%(s%) sent less than %d+ s ago are not on the server yet", r.unresolved)
    assert.is_nil(on_server()["Compagnie E 001"])
    -- once settled (settle = 0 here), not found means never arrived: sent again
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 0 })
    assert.equal(4, r.created)
    assert.is_nil(r.unresolved)
    local count = on_server()
    for i = 1, 4 do assert.equal(1, count[("Compagnie E %03d"):format(i)]) end
  end)

  it("refuses a record changed after it was created, without advising a new journal", function()
    local path, journal = write_csv("Compagnie D", 3)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    util.write(path, "Nom;Nature;Type adresse;Ville\r\nAutre;Association;Siège;Lyon\r\n")
    local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert.is_nil(r)
    assert.equal("csv", err.param)
    assert.matches("record 1 of the CSV changed after it was sent %(created as organisme %d+%)", err.message)
    assert.matches("put it back as it was", err.message, 1, true)
    assert.not_matches("new journal", err.message, 1, true)
    assert.is_nil(on_server()["Autre"])
    assert.equal("done", journal_sql(journal, "SELECT state FROM records WHERE line = 1"):match("%a+"))
  end)

  it("takes a corrected record that had failed, and creates only it", function()
    local path = write_csv("Compagnie F", 3, { [2] = true })   -- record 2 has no nature: refused
    local journal = path .. ".db"
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 1 }, { r.created, r.failed })
    util.write(path, (util.read(path):gsub('"Compagnie F 002";;', '"Compagnie F 002 corrigée";Association;')))
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 3, 0, 0, 2 }, { r.created, r.failed, r.unknown, r.already })
    local count = on_server()
    assert.equal(1, count["Compagnie F 001"])
    assert.equal(1, count["Compagnie F 002 corrigée"])
    assert.is_nil(count["Compagnie F 002"])
    assert.equal(1, count["Compagnie F 003"])
  end)

  it("takes a corrected record that was not sent yet (pending)", function()
    local path, journal = write_csv("Compagnie G", 2)
    -- a first run that could send nothing: record 1 unknown (sent, server
    -- unreachable), record 2 never tried
    local dead = support.client("http://127.0.0.1:1/", "http://127.0.0.1:1/", { retries = 0 })
    assert(bulk.import{ client = dead, csv = path, map = MAP, journal = journal, concurrency = 1 })
    journal_sql(journal, "UPDATE records SET state = 'pending', sent_at = NULL WHERE line = 2")
    local text = util.read(path):gsub("Compagnie G 002", "Compagnie G 002 bis")
    util.write(path, text)
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 0 })
    assert.equal(2, r.created)
    assert.equal(1, on_server()["Compagnie G 002 bis"])
    -- a record still "sent" (outcome unknown) must keep its content
    journal_sql(journal, "UPDATE records SET state = 'sent' WHERE line = 1")
    util.write(path, (text:gsub("Compagnie G 001", "Compagnie G 001 ter")))
    local none, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert.is_nil(none)
    assert.matches("record 1 of the CSV changed after it was sent (sent, outcome not known yet)", err.message, 1, true)
  end)

  it("counts only the records of a shortened CSV, and says how many journal rows are past its end", function()
    local path, journal = write_csv("Compagnie H", 3)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    util.write(path, 'Nom;Nature;Type adresse;Ville\r\n"Compagnie H 001";Association;Siège;"Lyon"\r\n')
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ total = 1, created = 1, already = 1, failed = 0, unknown = 0, pending = 0, not_in_csv = 2 },
      { total = r.total, created = r.created, already = r.already, failed = r.failed, unknown = r.unknown,
        pending = r.pending, not_in_csv = r.not_in_csv })
  end)

  it("refuses a report or journal path that is the CSV, under any name, and leaves the CSV as it was", function()
    local path = write_csv("Compagnie I", 2)
    local before = util.read(path)
    local dir, base = path:match("^(.*)/([^/]+)$")
    for _, same in ipairs{ path, dir .. "/./" .. base, dir .. "//" .. base } do
      local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = path .. ".db", report = same }
      assert.is_nil(r)
      assert.equal("report", err.param)
      assert.matches("is the CSV file itself", err.message, 1, true)
      r, err = bulk.import{ client = c, csv = path, map = MAP, journal = same }
      assert.is_nil(r)
      assert.equal("journal", err.param)
    end
    local link = path .. ".lua"   -- removed by the teardown
    assert(shell("ln -sf " .. path .. " " .. link))
    local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = path .. ".db", report = link }
    assert.is_nil(r)
    assert.equal("report", err.param)
    assert.equal(before, util.read(path))
    assert.is_nil(on_server()["Compagnie I 001"])
  end)

  it("returns an error value for a journal that is not one, and changes nothing in it", function()
    local path = write_csv("Compagnie J", 1)
    local text_file = path .. ".db"
    util.write(text_file, "not a database, just some text\n")
    local ok, r, err = pcall(bulk.import, { client = c, csv = path, map = MAP, journal = text_file })
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("invalid_param", err.kind)
    assert.equal("journal", err.param)
    assert.matches("not a journal (not a SQLite database)", err.message, 1, true)
    assert.equal("not a database, just some text\n", util.read(text_file))
    -- a SQLite database of something else is not written to either
    os.remove(text_file)
    journal_sql(text_file, "CREATE TABLE clients (id INTEGER)")
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = text_file }
    assert.is_nil(r)
    assert.matches("a SQLite database of something else", err.message, 1, true)
    assert.equal("clients", journal_sql(text_file, "SELECT group_concat(name) FROM sqlite_master"):match("%S+"))
    assert.is_nil(on_server()["Compagnie J 001"])
  end)

  it("raises for bad options before any file is opened", function()
    local path = write_csv("Compagnie L", 1)
    for _, bad in ipairs{ { concurrency = 0 }, { concurrency = 1.5 }, { rate = 0 }, { rate = -1 }, { settle = -1 } } do
      local opts = { client = c, csv = path, map = MAP, journal = path .. ".db" }
      for k, v in pairs(bad) do opts[k] = v end
      local ok, msg = pcall(bulk.import, opts)
      assert.is_false(ok)
      assert.matches("bulk.import: ", msg, 1, true)
      assert.is_nil(io.open(path .. ".db"), "the journal was not created")
    end
  end)

  it("refuses a map that sets the marker field, before any file is opened or anything sent", function()
    local path = write_csv("Compagnie N", 2)
    for _, case in ipairs{ { "organisme.code_libre_stru" }, { "organisme.code_libre_org", "code_libre_org" } } do
      local map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature", [case[1]] = "Ville" }
      local r, err = bulk.import{ client = c, csv = path, map = map, journal = path .. ".db", marker_field = case[2] }
      assert.is_nil(r)
      assert.same({ "invalid_param", "map", false }, { err.kind, err.param, err.retryable })
      assert.matches(case[1], err.message, 1, true)
      assert.is_nil(io.open(path .. ".db"), "the journal was not created")
    end
    -- a map function: each record that sets it fails, unsent, with why
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = function(rec)
      local o = { intitule = rec["Nom"], nature = rec["Nature"] }
      if rec["Nom"] == "Compagnie N 002" then o.code_libre_stru = "mine" end
      return { organisme = o }
    end })
    assert.same({ 1, 1 }, { r.created, r.failed })
    assert.matches("^failed|.*organisme.code_libre_stru, the import's marker",
      journal_sql(path .. ".db", "SELECT state, message FROM records WHERE line = 2"))
    assert.equal("0", journal_sql(path .. ".db", "SELECT attempts FROM records WHERE line = 2"))
    assert.is_nil(on_server()["Compagnie N 002"])
  end)

  it("returns a journal that fails mid-run as an error value, with its lock released", function()
    local path, journal = write_csv("Compagnie M", 2)
    local broken = false
    local map = function(rec)   -- the journal is damaged by someone else while the run goes on
      if not broken then
        broken = true
        journal_sql(journal, "DROP TABLE records")
      end
      return { organisme = { intitule = rec["Nom"], nature = rec["Nature"] } }
    end
    local ok, r, err = pcall(bulk.import, { client = c, csv = path, map = map, journal = journal, concurrency = 1 })
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("journal", err.param)
    assert.matches("no such table: records", err.message, 1, true)
    assert.equal("0", journal_sql(journal, "SELECT count(*) FROM owner"):match("%d+"))
    assert.is_nil(on_server()["Compagnie M 001"])
  end)

  it("survives kill -9 at a random point: after a restart each record exists exactly once", function()
    local path, journal = write_csv("Compagnie K", 60)
    -- the rate comes as arg[1]
    local script = support.script(path .. ".lua", support.import_script(support.options(sb.url, sb.url),
      { csv = path, journal = journal, concurrency = 4, settle = 1, map = MAP }))
    -- 60 records at 40 a second: killed about half way, mid-stream
    local ok, out = shell("(" .. support.LUA54 .. script
      .. " 40 > /dev/null 2>&1 & pid=$!; sleep 0.8; kill -9 $pid; wait $pid; echo killed)")
    assert.matches("killed", out)
    local done_before = tonumber(journal_sql(journal, "SELECT count(*) FROM records WHERE state = 'done'"):match("%d+"))
    assert.is_true(done_before < 60, "the import was killed before the end")
    -- the killed run's lock is taken over at once (its pid is gone); its
    -- records in flight are checked once settled (settle = 1 s)
    assert.equal("1", journal_sql(journal, "SELECT count(*) FROM owner"):match("%d+"))
    shell("sleep 1.1")
    ok, out = shell(support.LUA54 .. script)
    assert(ok, out)
    assert.matches("created\t60\tunknown\t0", out, 1, true)
    local count = on_server()
    for i = 1, 60 do assert.equal(1, count[("Compagnie K %03d"):format(i)], "record " .. i) end
    assert.equal("0", journal_sql(journal, "SELECT count(*) FROM owner"):match("%d+"))
  end)
end)
