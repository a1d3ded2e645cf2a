-- bulk.import's input checks against the real sandbox: a map naming a
-- column the CSV lacks, a CSV not in UTF-8 and a client without the change
-- feed's credentials are refused before anything is sent; the report says
-- where each failed record is in the file, and opens in French Excel.
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local support = require "spec.support.bulk"
local util = require "spec.support.util"

local sb, c
setup(function() sb, c = support.start() end)
teardown(function() if sb then sb:stop() end end)
local temp = util.temp_files(support.SUFFIXES)
teardown(temp.clean)

local BOM = "\239\187\191"
local HEADER = "Nom;Nature;Code postal;Ville \r\n"   -- "Ville " with its trailing space, as exports have

-- a CSV of the given rows under HEADER -> its path
local function write_csv(rows)
  local path = temp.new()
  util.write(path, HEADER .. table.concat(rows, "\r\n") .. "\r\n")
  return path
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

local function status_of(out) return tonumber(out:match("exit=(%d+)%s*$")) end

-- nothing sent: no organisme of that prefix on the server, no journal made
local function nothing_sent(prefix, path)
  local _, n = support.on_server(c, prefix)
  assert.equal(0, n)
  assert.is_false(exists(path .. ".db"))
end

describe("bulk.import refuses before sending anything", function()
  it("a map table naming a column the header lacks (case, trailing space), listing the header's", function()
    local path = write_csv{ "Entrée A 1;Association;34000;Montpellier", "Entrée A 2;Association;30000;Nîmes" }
    local cases = {
      { column = "Code Postal", near = '"Code Postal" (not "Code postal"?)' },
      { column = "Ville", near = '"Ville" (not "Ville "?)' },
      { column = "Région", near = '"Région"' },
    }
    for _, case in ipairs(cases) do
      local map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
                    ["adresses.1.code_postal"] = case.column }
      local r, err = bulk.import{ client = c, csv = path, journal = path .. ".db", map = map }
      assert.is_nil(r)
      assert.equal("invalid_param", err.kind)
      assert.equal("map", err.param)
      assert.is_false(err.retryable)
      assert.matches(case.near, err.message, 1, true)
      assert.matches('its columns: "Nom", "Nature", "Code postal", "Ville "', err.message, 1, true)
      nothing_sent("Entrée A", path)
    end
    -- the names as the header spells them: imported
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP })
    assert.equal(2, r.created)
  end)

  it("CLI: a map naming a column the CSV lacks exits 2, naming it", function()
    local path = write_csv{ "Entrée B 1;Association;34000;Montpellier" }
    local map = support.script(temp.new(".lua"),
      'return { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature", ["adresses.1.ville"] = "Ville" }')
    local ok, out = support.cli(sb.url, ("import %s --map %s --journal %s.db"):format(path, map, path))
    assert.is_false(ok)
    assert.equal(2, status_of(out))
    assert.matches('"Ville" (not "Ville "?)', out, 1, true)
    nothing_sent("Entrée B", path)
  end)

  it("a CSV that is not UTF-8 (Windows-1252), naming its first bad line, even its ASCII records", function()
    -- records 1 and 3 are ASCII: sent record by record they would go through
    local path = write_csv{ "Entree C 1;Association;34000;Montpellier", "Entr\233e C 2;Association;30000;N\238mes",
                            "Entree C 3;Association;34500;Beziers" }
    local r, err = bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP }
    assert.is_nil(r)
    assert.equal("invalid_param", err.kind)
    assert.equal("csv", err.param)
    assert.matches("line 3 is not UTF-8", err.message, 1, true)
    assert.matches('"CSV UTF-8 (délimité par des virgules)"', err.message, 1, true)
    assert.matches("iconv -f WINDOWS-1252 -t UTF-8", err.message, 1, true)
    nothing_sent("Entree C", path)
    -- converted (the way iconv does), with a BOM: imported
    local text = assert(util.read_file(path)):gsub("\233", "é"):gsub("\238", "î")
    util.write(path, BOM .. text)
    r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP })
    assert.equal(3, r.created)
    assert.equal(1, (support.on_server(c, "Entrée C 2")["Entrée C 2"]))
  end)

  it("a client without the change feed's credentials, naming what is missing, its secret never", function()
    local path = write_csv{ "Entrée D 1;Association;34000;Montpellier" }
    local cases = {
      { opts = { api_key = false }, says = "no api_key option (environment: BILLETTERIE_API_KEY)" },
      { opts = { api_login = false }, says = "no api_login option (environment: BILLETTERIE_API_LOGIN)" },
      { opts = { api_url = false, api_login = false },
        says = "no api_url, api_login option (environment: BILLETTERIE_API_URL, BILLETTERIE_API_LOGIN)" },
    }
    for _, case in ipairs(cases) do
      local opts = support.options(sb.url, sb.url)
      for k in pairs(case.opts) do opts[k] = nil end
      local r, err = bulk.import{ client = billetterie.new(opts), csv = path, journal = path .. ".db",
                                  map = support.MAP }
      assert.is_nil(r)
      assert.equal("invalid_param", err.kind)
      assert.equal("client", err.param)
      assert.is_false(err.retryable)
      assert.matches(case.says, err.message, 1, true)
      assert.matches("BILLETTERIE_API_URL, BILLETTERIE_API_LOGIN, BILLETTERIE_API_KEY", err.message, 1, true)
      assert.not_matches(support.API_KEY, err.message, 1, true)
      assert.not_matches("xrsimdp", err.message, 1, true)
      nothing_sent("Entrée D", path)
    end
  end)

  it("CLI: without BILLETTERIE_API_KEY the import exits 2 at once, saying so", function()
    local path = write_csv{ "Entrée E 1;Association;34000;Montpellier" }
    local map = support.script(temp.new(".lua"),
      'return { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }')
    local ok, out = support.cli(sb.url, ("import %s --map %s --journal %s.db"):format(path, map, path),
      { "BILLETTERIE_API_KEY" })
    assert.is_false(ok)
    assert.equal(2, status_of(out))
    assert.matches("no api_key option (environment: BILLETTERIE_API_KEY)", out, 1, true)
    nothing_sent("Entrée E", path)
  end)
end)

describe("bulk.import's report", function()
  it("gives each failed record's number and file line, with a BOM; trailing rows of empty fields are not records", function()
    -- record 2 spans file lines 4-5 (a quoted line break) after a blank
    -- line; record 3 (line 6) and 4 (line 7) have no nature; then Excel's
    -- rows of empty fields, not records
    local path = temp.new()
    util.write(path, HEADER .. "Entrée F 1;Association;34000;Montpellier\r\n\r\n"
      .. '"Entrée F 2\r\n(annexe)";Association;30000;Nîmes\r\n'
      .. "Entrée F 3;;34500;Béziers\r\nEntrée F 4;;34000;Montpellier\r\n;;;\r\n;;;\r\n")
    local report = path .. ".failures.csv"
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP, report = report })
    assert.same({ 4, 2, 2 }, { r.total, r.created, r.failed })
    local text = assert(util.read_file(report))
    assert.equal(BOM .. "ligne;code;message;ligne_fichier\n"
      .. "3;;parameter organisme.nature is required;6\n"
      .. "4;;parameter organisme.nature is required;7\n", text)
    -- the journal keeps its key, the record number
    assert.equal("1|done\n2|done\n3|failed\n4|failed", support.sql(path .. ".db",
      "SELECT line, state FROM records ORDER BY line"))
  end)

  it("keeps a row of empty fields between records a record: emptying a failed one creates nothing twice", function()
    -- record 2 fails (no nature); the user empties its row to skip it: were
    -- that row no record, record 3 would take rank 2 (failed: may be
    -- corrected) and be sent again
    local path = write_csv{ "Entrée H 1;Association;;", "Entrée H 2;;;", "Entrée H 3;Association;;" }
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP })
    assert.same({ 2, 1 }, { r.created, r.failed })
    util.write(path, HEADER .. "Entrée H 1;Association;;\r\n;;;\r\nEntrée H 3;Association;;\r\n;;;\r\n")
    r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP })
    assert.same({ 3, 2, 1 }, { r.total, r.created, r.failed })
    local count = support.on_server(c, "Entrée H")
    assert.same({ ["Entrée H 1"] = 1, ["Entrée H 3"] = 1 }, count)
  end)

  it("keeps no CSV value in the journal, only a digest; a journal of an earlier version is taken", function()
    local path = write_csv{ "Entrée J 1;Association;34000;Secret-Ville-77", "Entrée J 2;Association;30000;Nîmes" }
    local journal = path .. ".db"
    assert.equal(2, assert(bulk.import{ client = c, csv = path, journal = journal, map = support.MAP }).created)
    local bytes = assert(util.read_file(journal)) .. (util.read_file(journal .. "-wal") or "")
    assert.is_nil(bytes:find("Secret-Ville-77", 1, true))
    assert.matches("^%x+$", support.sql(journal, "SELECT hash FROM records WHERE line = 1"))
    -- the clear copy an earlier version kept: recognised, replaced by the digest, nothing sent again
    support.sql(journal, "UPDATE records SET hash = 'Nom=Entrée J 1' || char(31) || 'Nature=Association' || "
      .. "char(31) || 'Code postal=34000' || char(31) || 'Ville =Secret-Ville-77' WHERE line = 1")
    local r = assert(bulk.import{ client = c, csv = path, journal = journal, map = support.MAP })
    assert.same({ 2, 2 }, { r.created, r.already })
    assert.matches("^%x+$", support.sql(journal, "SELECT hash FROM records WHERE line = 1"))
    assert.same({ ["Entrée J 1"] = 1, ["Entrée J 2"] = 1 }, (support.on_server(c, "Entrée J")))
  end)

  it("makes its journal (and SQLite's -wal) and report readable by their owner only", function()
    local path = write_csv{ "Entrée K 1;;34000;Montpellier" }   -- no nature: a failure, so a report
    local report = path .. ".failures.csv"
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP,
                                  report = report })
    assert.equal(1, r.failed)
    for _, f in ipairs{ path .. ".db", report } do
      local p = io.popen("stat -c %a " .. util.q(f))
      assert.equal("600", (p:read("*a"):gsub("%s+$", "")), f)
      p:close()
    end
    local p = io.popen("stat -c %a " .. util.q(path .. ".db-wal") .. " 2>/dev/null")
    local wal = p:read("*a"):gsub("%s+$", "")
    p:close()
    if wal ~= "" then assert.equal("600", wal) end
  end)

  it("imports an empty file as 0 records, whatever the map", function()
    local path = temp.new()
    util.write(path, "")
    local r = assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP })
    assert.same({ 0, 0, 0 }, { r.total, r.created, r.failed })
  end)

  it("names the file line of a sent record that was changed", function()
    local path = temp.new()
    util.write(path, HEADER .. "Entrée G 1;Association;;\r\n\r\nEntrée G 2;Association;;\r\n")
    assert.equal(2, assert(bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP }).created)
    util.write(path, HEADER .. "Entrée G 1;Association;;\r\n\r\nEntrée G 2 bis;Association;;\r\n")
    local r, err = bulk.import{ client = c, csv = path, journal = path .. ".db", map = support.MAP }
    assert.is_nil(r)
    assert.matches("record 2 of the CSV changed after it was sent", err.message, 1, true)
    assert.matches("put it back as it was (line 4 of the file)", err.message, 1, true)
  end)

  it("CLI: --help says the CSV must be UTF-8, the change feed is needed, and what the report's columns are", function()
    local ok, out = support.cli(sb.url, "import --help")
    assert(ok, out)
    for _, says in ipairs{ "must be UTF-8 (a BOM is fine)", "CSV UTF-8 (délimité par des virgules)",
                           "BILLETTERIE_API_KEY", "ligne: the record's number", "ligne_fichier: the file line",
                           "with a BOM" } do
      assert.matches(says, (out:gsub("\n", " ")), 1, true)
    end
  end)
end)
