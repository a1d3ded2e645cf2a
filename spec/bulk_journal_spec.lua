-- bulk.import's journal (real sandbox, real SQLite file, real processes):
-- one import at a time per journal: a second run is refused while the
-- first lives, a dead run's lock is taken over; a record written by another
-- run between the moment it was read and the moment it is marked sent is
-- left as that run wrote it, a record whose call never came back waits for
-- the client's pacing too, and a journal that fails for one record does not
-- cost the others their outcome. bulk.settle and `import --settle` obey
-- the same lock.
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local luasql = require "luasql.sqlite3"
local shell = require "spec.support.shell"
local support = require "spec.support.bulk"
local util = require "spec.support.util"

local MAP, sql = support.MAP, support.sql
local sb, c

setup(function() sb, c = support.start() end)
teardown(function() if sb then sb:stop() end end)

local temp = util.temp_files(support.SUFFIXES)
teardown(temp.clean)

local function write_csv(prefix, n) return support.write_csv(temp.new(), prefix, n) end
local function on_server(prefix) return support.on_server(c, prefix) end

local HOST = util.read("/proc/sys/kernel/hostname"):match("[^\n]*")

-- The start time of a live process (field 22 of /proc/PID/stat).
local function start_of(pid)
  local after = util.read("/proc/" .. pid .. "/stat"):match("^.*%)%s+(.*)$")
  local fields = {}
  for w in after:gmatch("%S+") do fields[#fields + 1] = w end
  return fields[20]
end

local function set_owner(journal, pid, host, proc_start, beat)
  sql(journal, ("INSERT OR REPLACE INTO owner (id, token, pid, host, proc_start, started, beat) "
    .. "VALUES (1, 'someone-else', %d, '%s', '%s', %d, %d)"):format(pid, host, proc_start, beat, beat))
end

describe("bulk.import's journal lock", function()
  it("refuses a second run while another process imports into the journal; nothing is sent twice", function()
    local path = write_csv("Verrou A", 20)
    local journal, script = path .. ".db", path .. ".lua"
    support.script(script, support.import_script(support.options(sb.url, sb.url),
      { csv = path, journal = journal, concurrency = 2, rate = 10, map = MAP }))
    local p = io.popen(support.LUA54 .. script .. " 2>&1")
    -- wait until the first run is sending (20 records at 10 a second: 2 s)
    for _ = 1, 100 do
      if shell(("test -f %s && sqlite3 %s \"SELECT line FROM records WHERE state = 'done'\" | grep -q ."):format(
          journal, journal)) then
        break
      end
      shell("sleep 0.05")
    end
    local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    local first = p:read("*a")
    p:close()
    assert.is_nil(r, "the second run was refused")
    assert.equal("invalid_param", err.kind)
    assert.equal("journal", err.param)
    assert.is_true(err.retryable)
    assert.matches("in use by another import %(pid %d+ on .+, since %d%d%d%d%-%d%d%-%d%d", err.message)
    assert.matches("created\t20", first, 1, true)
    local count, n = on_server("Verrou A")
    assert.equal(20, n)
    for i = 1, 20 do assert.equal(1, count[("Verrou A %03d"):format(i)]) end
    assert.equal("0", sql(journal, "SELECT count(*) FROM owner"))   -- released at the end
  end)

  it("refuses a second run in the same process while the first is in flight", function()
    local path, journal = write_csv("Verrou B", 6)
    local results = billetterie.run(function()
      local one = billetterie.spawn(function()
        return { bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 1 } }
      end)
      local two = billetterie.spawn(function()
        return { bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 1 } }
      end)
      return { one:wait(), two:wait() }
    end)
    assert.equal(6, results[1][1].created)
    assert.is_nil(results[2][1])
    assert.matches("in use by another import", results[2][2].message, 1, true)
    local _, n = on_server("Verrou B")
    assert.equal(6, n)
  end)

  it("takes over the lock of a run of this host that is gone, and keeps that of a live one", function()
    local path, journal = write_csv("Verrou C", 2)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })   -- creates the journal
    local now = os.time()
    -- a pid with no process on this host (a shell that has ended)
    local _, out = shell("sh -c 'echo $$'")
    local dead = tonumber(out:match("%d+"))
    set_owner(journal, dead, HOST, "12345", now)
    local r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert(r, tostring(err))
    assert.equal("0", sql(journal, "SELECT count(*) FROM owner"))
    -- a live process of this host (the sandbox) with its own start time: alive
    set_owner(journal, sb.pid, HOST, start_of(sb.pid), now - 3600)
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert.is_nil(r)
    assert.matches("in use by another import (pid " .. sb.pid .. " on " .. HOST, err.message, 1, true)
    -- ...even when told to take over: this host can tell it lives
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal, take_over = true }
    assert.is_nil(r)
    assert.matches("in use by another import (pid " .. sb.pid .. " on " .. HOST, err.message, 1, true)
    -- the same pid, but started at another time: a reused pid, the owner is gone
    set_owner(journal, sb.pid, HOST, "1", now)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    -- another host: never taken over by itself, however long silent (a
    -- paused run resumes and sends what it held), only when told it is dead
    for _, silent in ipairs{ 60, 601, 7 * 86400 } do
      set_owner(journal, 1, "elsewhere.example", "1", now - silent)
      r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
      assert.is_nil(r)
      assert.is_true(err.retryable)
      assert.matches("pid 1 on elsewhere.example, since " .. os.date("%Y-%m-%d %H:%M:%S", now - silent),
        err.message, 1, true)
      assert.matches("take_over = true (--take-over)", err.message, 1, true)
      assert.equal("someone-else", sql(journal, "SELECT token FROM owner"))
    end
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal, take_over = true }
    assert(r, tostring(err))
    assert.equal(2, r.created)
    local _, n = on_server("Verrou C")
    assert.equal(2, n)
  end)

  it("CLI: refuses another host's silent run (exit 1) and takes it over with --take-over", function()
    local path, journal = write_csv("Verrou E", 2)
    local map = support.script(temp.new(".lua"), 'return { ["organisme.intitule"] = "Nom", '
      .. '["organisme.nature"] = "Nature" }\n')
    local args = ("import %s --map %s --journal %s"):format(util.q(path), util.q(map), util.q(journal))
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })   -- creates the journal
    set_owner(journal, 4242, "elsewhere.example", "1", os.time() - 86400)
    local ok, out = support.cli(sb.url, args)
    assert.is_false(ok)
    assert.matches("exit=1%s*$", out)
    assert.matches("pid 4242 on elsewhere.example", out, 1, true)
    assert.matches("--take-over", out, 1, true)
    ok, out = support.cli(sb.url, args .. " --take-over")
    assert(ok, out)
    assert.matches("2 records: 2 created", out, 1, true)
    assert.equal("0", sql(journal, "SELECT count(*) FROM owner"))
    local _, n = on_server("Verrou E")
    assert.equal(2, n)
    ok, out = support.cli(sb.url, "import --help")
    assert(ok, out)
    assert.matches("--take-over", out, 1, true)
  end)

  it("sends nothing more once another run took the journal over", function()
    local path, journal = write_csv("Verrou D", 5)
    local taken = false
    -- a transport that hands the journal to another owner after the first creation
    local curl = require("billetterie.transport").curl
    local stealing = { request = function(_, req)
      local status, body, ctype, ek, em, rid, ra = curl:request(req)
      if req.url:find("ws_organisme_creation", 1, true) and not taken then
        taken = true
        set_owner(journal, 1, "elsewhere.example", "1", os.time())
      end
      return status, body, ctype, ek, em, rid, ra
    end }
    local thief = sb:client{ transport = stealing }
    local r = assert(bulk.import{ client = thief, csv = path, map = MAP, journal = journal, concurrency = 1 })
    -- record 1's answer came after the take-over: not written (the newer
    -- run finds it on the server)
    assert.same({ 0, 1, 4 }, { r.created, r.unknown, r.pending })
    assert.equal("sent", sql(journal, "SELECT state FROM records WHERE line = 1"))
    assert.matches("taken over by another run", r.unresolved, 1, true)
    local _, n = on_server("Verrou D")
    assert.equal(1, n)
    assert.equal("someone-else", sql(journal, "SELECT token FROM owner"))   -- not removed by the loser
  end)
end)

local function organisme(rec) return { organisme = { intitule = rec["Nom"], nature = rec["Nature"] } } end

describe("bulk.import's journal records", function()
  it("does not mark sent, nor send, a record another run created after this run read it", function()
    local path, journal = write_csv("Garde", 3)
    local other_id
    -- Record 2 is pending when the run reads its records; before it is
    -- marked sent, an older run (taken over while its own request for
    -- record 2 was in flight) gets its answer: created, and writes it done.
    local map = function(rec)
      if rec["Nom"] == "Garde 002" then
        local key = sql(journal, "SELECT v FROM meta WHERE k = 'prefix'") .. ":2"
        local msg = assert(c:organisme_creation{ organisme = { intitule = rec["Nom"], nature = rec["Nature"],
                                                               code_libre_stru = key } })
        other_id = msg.organisme.id_organisme
        sql(journal, ("UPDATE records SET state = 'done', id_organisme = %d WHERE line = 2"):format(other_id))
      end
      return organisme(rec)
    end
    local r = assert(bulk.import{ client = c, csv = path, map = map, journal = journal, concurrency = 1 })
    assert.same({ 3, 0, 0 }, { r.created, r.failed, r.unknown })
    assert.same({ ["Garde 001"] = 1, ["Garde 002"] = 1, ["Garde 003"] = 1 }, (on_server("Garde")))
    assert.equal("done|" .. other_id, sql(journal, "SELECT state, id_organisme FROM records WHERE line = 2"))
  end)

  it("waits, for a record whose call never came back, as long as the client's cap on calls may have held it", function()
    local path, journal = write_csv("Plafond", 1)
    local refuse = function() error("not yet") end
    local r = assert(bulk.import{ client = c, csv = path, map = refuse, journal = journal })
    assert.equal(1, r.failed)
    -- what a run killed after marking record 1 sent leaves: no outcome, no message
    sql(journal, ("UPDATE records SET state = 'sent', message = NULL, sent_at = %d WHERE line = 1"):format(
      os.time() - 3))
    -- one call at a time for 3 workers: its request may have waited for two
    -- others (5 s each at most) before it left
    local capped = sb:client{ max_in_flight = 1, timeout = 5 }
    r = assert(bulk.import{ client = capped, csv = path, map = MAP, journal = journal, concurrency = 3, settle = 2 })
    assert.same({ 0, 1, 0 }, { r.created, r.unknown, r.pending })
    assert.matches("1 record%(s%) sent less than 12 s ago", r.unresolved)
    -- a client that holds nothing: settled, not on the server, sent again
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 3, settle = 2 })
    assert.same({ 1, 0 }, { r.created, r.unknown })
    assert.same({ ["Plafond 001"] = 1 }, (on_server("Plafond")))
  end)

  it("records every other record's outcome before returning a journal error", function()
    local path, journal = write_csv("Verrou pris", 3)
    local env, other
    local map = function(rec)
      if rec["Nom"] == "Verrou pris 001" then
        -- another connection holds the journal's write lock past the busy
        -- timeout: marking record 1 sent fails
        env = luasql.sqlite3()
        other = assert(env:connect(journal))
        assert(other:execute("BEGIN IMMEDIATE"))
      elseif rec["Nom"] == "Verrou pris 002" then
        assert(other:execute("ROLLBACK"))
        other:close()
        env:close()
        error("no organisme for this record")
      end
      return organisme(rec)
    end
    local ok, r, err = pcall(bulk.import, { client = c, csv = path, map = map, journal = journal, concurrency = 1 })
    assert.is_true(ok, tostring(r))
    assert.is_nil(r)
    assert.equal("journal", err.param)
    assert.matches("busy (database is locked), run again", err.message, 1, true)
    assert.is_true(err.retryable, "a journal busy for a moment passes")
    -- record 1 was never marked nor sent; record 2 failed with its text;
    -- record 3 was created
    assert.equal("pending", sql(journal, "SELECT state FROM records WHERE line = 1"))
    assert.matches("^failed|.*no organisme for this record$",
      sql(journal, "SELECT state, message FROM records WHERE line = 2"))
    assert.equal("done", sql(journal, "SELECT state FROM records WHERE line = 3"))
    assert.same({ ["Verrou pris 003"] = 1 }, (on_server("Verrou pris")))
    assert.equal("0", sql(journal, "SELECT count(*) FROM owner"))
    -- the next run creates record 1 and sends nothing else
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 3, 1, 0 }, { r.created, r.already, r.failed })
    assert.same({ ["Verrou pris 001"] = 1, ["Verrou pris 002"] = 1, ["Verrou pris 003"] = 1 }, (on_server("Verrou pris")))
  end)

  it("never overwrites a newer run's id with the late answer of a run taken over", function()
    local path, journal = write_csv("Tardif", 1)
    local curl = require("billetterie.transport").curl
    -- while record 1's request is on its way, a newer run takes the journal
    -- over and settles the record (done, its own id)
    local late = { request = function(_, req)
      if req.url:find("ws_organisme_creation", 1, true) then
        sql(journal, "UPDATE records SET state = 'done', id_organisme = 999999, sent_at = sent_at + 1 "
          .. "WHERE line = 1")
        set_owner(journal, 1, "elsewhere.example", "1", os.time())
      end
      return curl:request(req)
    end }
    bulk.import{ client = sb:client{ transport = late }, csv = path, map = MAP, journal = journal }
    assert.equal("done|999999", sql(journal, "SELECT state, id_organisme FROM records WHERE line = 1"))
    assert.equal("someone-else", sql(journal, "SELECT token FROM owner"))
  end)

  it("CLI: a journal busy past the busy timeout exits 1 (run again), not 2 (usage)", function()
    local path, journal = write_csv("Occupe", 1)
    local map = support.script(temp.new(".lua"), 'return { ["organisme.intitule"] = "Nom", '
      .. '["organisme.nature"] = "Nature" }\n')
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })   -- creates the journal
    local env = luasql.sqlite3()
    local other = assert(env:connect(journal))
    assert(other:execute("BEGIN IMMEDIATE"))   -- held past the run's 5 s busy timeout
    local ok, out = support.cli(sb.url, ("import %s --map %s --journal %s"):format(util.q(path), util.q(map),
      util.q(journal)))
    assert(other:execute("ROLLBACK"))
    other:close()
    env:close()
    assert.is_false(ok)
    assert.matches("exit=1%s*$", out)
    assert.matches("busy (database is locked), run again", out, 1, true)
  end)
end)

describe("bulk.settle's journal lock", function()
  -- a journal whose only record was sent to a server that never answered,
  -- its change feed unreachable: unknown, and no run can resolve it
  local function stuck(prefix)
    local path, journal = write_csv(prefix, 1)
    local dead = support.client("http://127.0.0.1:1/", "http://127.0.0.1:1/", { retries = 0, timeout = 2 })
    local r = assert(bulk.import{ client = dead, csv = path, map = MAP, journal = journal })
    assert.same({ 0, 1 }, { r.created, r.unknown })
    assert.matches("could not check the server", r.unresolved, 1, true)
    return path, journal
  end

  it("refuses while a live run owns the journal, and another host's run until told it is dead", function()
    local _, journal = stuck("Regle verrou")
    local now = os.time()
    -- a live process of this host (the sandbox): refused, even with take_over
    set_owner(journal, sb.pid, HOST, start_of(sb.pid), now)
    for _, take in ipairs{ false, true } do
      local r, err = bulk.settle{ journal = journal, line = 1, absent = true, take_over = take }
      assert.is_nil(r)
      assert.same({ "invalid_param", "journal", true }, { err.kind, err.param, err.retryable })
      assert.matches("in use by another import (pid " .. sb.pid .. " on " .. HOST, err.message, 1, true)
      assert.equal("sent", sql(journal, "SELECT state FROM records WHERE line = 1"))
    end
    -- another host's silent run: only once told it is dead
    set_owner(journal, 1, "elsewhere.example", "1", now - 86400)
    local r, err = bulk.settle{ journal = journal, line = 1, absent = true }
    assert.is_nil(r)
    assert.matches("take_over = true (--take-over)", err.message, 1, true)
    assert.equal("sent", sql(journal, "SELECT state FROM records WHERE line = 1"))
    r, err = bulk.settle{ journal = journal, line = 1, absent = true, take_over = true }
    assert(r, tostring(err))
    assert.same({ line = 1, state = "pending" }, r)
    assert.equal("pending|0", sql(journal, "SELECT state, (SELECT count(*) FROM owner) FROM records WHERE line = 1"))
  end)

  it("CLI: --settle LINE=ID|LINE=absent, exit 1 when refused, 2 for a usage mistake", function()
    local path, journal = stuck("Regle CLI")
    local function cli(args) return support.cli(sb.url, "import " .. args) end
    local j = util.q(journal)
    set_owner(journal, 1, "elsewhere.example", "1", os.time())
    local ok, out = cli("--journal " .. j .. " --settle 1=absent")
    assert.is_false(ok)
    assert.matches("exit=1%s*$", out)
    assert.matches("--take-over", out, 1, true)
    ok, out = cli("--journal " .. j .. " --settle 1=absent --take-over")
    assert(ok, out)
    assert.matches("record 1: not created, the next run sends it again", out, 1, true)
    -- pending now: nothing to settle
    ok, out = cli("--journal " .. j .. " --settle 1=4242")
    assert.is_false(ok)
    assert.matches("exit=1%s*$", out)
    assert.matches("record 1 was not sent yet: nothing to settle", out, 1, true)
    assert.equal("pending", sql(journal, "SELECT state FROM records WHERE line = 1"))
    for _, bad in ipairs{ "1=x", "0=absent", "1=0", "1", "a=absent", "1=99999999999999999999",
                          "99999999999999999999=absent" } do
      ok, out = cli("--journal " .. j .. " --settle " .. bad)
      assert.is_false(ok)
      assert.matches("exit=2%s*$", out)
    end
    ok, out = cli("--journal " .. j .. " --settle 1=absent --map x.lua")
    assert.matches("--settle takes no --map", out, 1, true)
    assert.matches("exit=2%s*$", out)
    local missing = temp.new(".db")
    ok, out = cli("--journal " .. util.q(missing) .. " --settle 1=absent")
    assert.is_false(ok)
    assert.matches("no such file.*exit=2%s*$", out)
    assert.is_nil(util.read_file(missing))   -- not made
    ok, out = cli(util.q(path) .. " --settle 1=absent")   -- by default, the journal named after the CSV
    assert.matches("journal " .. path .. ".journal.db: no such file", out, 1, true)
    assert.matches("exit=2%s*$", out)
    ok, out = cli("--help")
    assert(ok, out)
    assert.matches("--settle LINE=ID|LINE=absent", out, 1, true)
    assert.matches("--feed-margin", out, 1, true)
  end)
end)
