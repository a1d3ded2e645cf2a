-- bulk.import and the outcomes of a creation that may have been applied:
-- they are never sent again blindly. An unreadable answer to a creation that
-- happened, a creation that commits after the client gave up, a ko saying
-- the request was (partly) done, a request held by the client's pacing
-- before it left, a run taken over while it looked for its unknown records,
-- an importer whose time zone is hours ahead of the server's; the change
-- feed's ts by feed_margin; records settled by hand (bulk.settle) when
-- their lookup keeps failing.
-- A real HTTP proxy (spec/support/bulk.lua, billetterie.httpd in a lua5.4
-- process of its own) stands in front of the real sandbox and spoils its
-- answers the way a vendor's front may; runs that are killed or taken over
-- are real processes.
local bulk = require "billetterie.bulk"
local cjson = require "cjson"
local shell = require "spec.support.shell"
local support = require "spec.support.bulk"
local util = require "spec.support.util"

local MAP, sql = support.MAP, support.sql

local temp = util.temp_files(support.SUFFIXES)
teardown(temp.clean)

local sb, proxy, c, marker
setup(function()
  sb, c = support.start()
  marker = temp.new(".marker")
  proxy = support.start_proxy(sb.url, marker)
end)
teardown(function()
  if proxy then proxy.stop() end
  if sb then sb:stop() end
end)

local function write_csv(prefix, n) return support.write_csv(temp.new(), prefix, n) end
-- { intitule = count }, how many, { intitule = id } of the sandbox's organismes named prefix...
local function on_server(prefix) return support.on_server(c, prefix) end

-- A client through the proxy's mode, the change feed read from the sandbox.
local function through(mode, extra)
  local opts = { timeout = 10 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return support.client(proxy.url .. mode .. "/", sb.url, opts)
end

describe("bulk.import with outcomes that may have been applied", function()
  for _, mode in ipairs{ "notice", "html" } do
    it("finds on the server, never resends, a creation answered with an unreadable body (" .. mode .. ")", function()
      local prefix = "Inconnu " .. mode
      local path, journal = write_csv(prefix, 3)
      local r = assert(bulk.import{ client = through(mode), csv = path, map = MAP, journal = journal })
      -- every answer was a decode error; the creations are found in the change feed
      assert.same({ 3, 0, 0 }, { r.created, r.failed, r.unknown })
      r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
      assert.same({ 3, 0, 3 }, { r.created, r.failed, r.already })
      local count, n = on_server(prefix)
      assert.equal(3, n)
      for i = 1, 3 do assert.equal(1, count[("%s %03d"):format(prefix, i)]) end
    end)
  end

  it("keeps an unreadable answer unknown (not failed) while the change feed cannot be read", function()
    local path, journal = write_csv("Inconnu feed", 2)
    local r = assert(bulk.import{ client = through("notice", { api_url = "http://127.0.0.1:1/", retries = 0 }),
      csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 0, 0, 2 }, { r.created, r.failed, r.unknown })
    assert.matches("could not check the server", r.unresolved, 1, true)
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.unknown })
    local _, n = on_server("Inconnu feed")
    assert.equal(2, n)
  end)

  it("keeps a timed-out creation unknown until settled, so a late commit is found, not duplicated", function()
    local path, journal = write_csv("Tardif", 2)
    -- record 1 times out (the proxy holds it) and commits just after the
    -- end-of-run lookup; record 2 goes through
    local slow = through("late", { api_url = proxy.url .. "late/", timeout = 1 })
    local r = assert(bulk.import{ client = slow, csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 1, 1, 0, 0 }, { r.created, r.unknown, r.pending, r.failed })
    assert.matches("1 record%(s%) sent less than %d+ s ago are not on the server yet", r.unresolved)
    -- the next run finds the late creation instead of sending it again
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.unknown })
    assert.is_nil(r.unresolved)
    local count, n = on_server("Tardif")
    assert.equal(2, n)
    assert.equal(1, count["Tardif 001"])
  end)

  it("keeps a refused request (vendor ko, HTTP 4xx) failed, and sends it again on the next run", function()
    local path, journal = write_csv("Refus", 2)
    local faults = "ws_organisme_creation:status=429,count=1"
    local ok = os.execute(("curl -s -o /dev/null -d %s %s_sandbox/faults"):format(util.q("fault=" .. faults), sb.url))
    assert.is_true(ok == true or ok == 0)
    local r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 1 })
    assert.same({ 1, 1, 0 }, { r.created, r.failed, r.unknown })
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    assert.same({ 2, 0 }, { r.created, r.failed })
    local _, n = on_server("Refus")
    assert.equal(2, n)
  end)
end)

describe("bulk.import east of its server", function()
  it("finds a creation whose answer was lost whatever the two time zones, instead of creating it again", function()
    -- a sandbox that reads ts as Paris time, an import run from Nouméa (10 h
    -- ahead): a window in the importer's local time would start 10 h late
    local paris = require("spec.support.sandbox").start{ lua = "env TZ=Europe/Paris lua5.4" }
    local front = support.start_proxy(paris.url, marker)
    local ok, err = pcall(function()
      local path, journal = write_csv("Noumea", 2)
      local script = support.script(temp.new(".lua"), support.import_script(
        support.options(front.url .. "html/", paris.url, { timeout = 10 }),
        { csv = path, journal = journal, settle = 0, map = MAP }))
      -- the answers are unreadable: both records are looked for at the end
      -- of the run, settled at once (settle 0): not found means sent again
      local run = "export TZ=Pacific/Noumea; " .. support.LUA54 .. script
      local done, out = shell(run)
      assert(done, out)
      assert.matches("created\t2\tunknown\t0", out, 1, true)
      done, out = shell(run)   -- sends nothing
      assert(done, out)
      assert.matches("created\t2\tunknown\t0", out, 1, true)
      local count, n = support.on_server(paris:client(), "Noumea")
      assert.equal(2, n)
      assert.same({ ["Noumea 001"] = 1, ["Noumea 002"] = 1 }, count)
    end)
    front.stop()
    paris:stop()
    assert(ok, err)
  end)
end)

describe("bulk.import after a ko saying the request was done", function()
  for _, mode in ipairs{ "partial", "koid" } do
    it("marks a record done with the id a ko still carries, and never sends it again (" .. mode .. ")", function()
      local prefix = "Partiel " .. mode
      local path, journal = write_csv(prefix, 3)
      local r = assert(bulk.import{ client = through(mode), csv = path, map = MAP, journal = journal,
                                    concurrency = 2, settle = 3600 })
      assert.same({ 3, 0, 0, 0 }, { r.created, r.failed, r.unknown, r.pending })
      local count, _, ids = on_server(prefix)
      for i = 1, 3 do
        local name = ("%s %03d"):format(prefix, i)
        assert.equal(1, count[name])
        assert.equal(tostring(ids[name]), sql(journal, "SELECT id_organisme FROM records WHERE line = " .. i))
      end
      r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
      assert.same({ 3, 3, 0 }, { r.created, r.already, r.failed })
      count = on_server(prefix)
      for i = 1, 3 do assert.equal(1, count[("%s %03d"):format(prefix, i)]) end
    end)
  end

  it("keeps a partial ko without the new id unknown and finds the creation on the server", function()
    local path, journal = write_csv("Partiel nu", 2)
    local r = assert(bulk.import{ client = through("bare"), csv = path, map = MAP, journal = journal, concurrency = 1 })
    -- not failed: looked for in the change feed at the end of the run, found there
    assert.same({ 2, 0, 0 }, { r.created, r.failed, r.unknown })
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 0 })
    assert.same({ 2, 2 }, { r.created, r.already })
    local count = on_server("Partiel nu")
    assert.same({ ["Partiel nu 001"] = 1, ["Partiel nu 002"] = 1 }, count)
  end)
end)

describe("bulk.import with the client's own pacing", function()
  it("counts settle from when a held request's answer came back, not from when it was marked", function()
    local path, journal = write_csv("Cadence", 3)
    os.remove(marker)
    -- one call every 2 s: record 3 is marked at once but leaves after 4 s,
    -- times out 1 s later, and commits just after the end-of-run lookup
    local paced = through("hold", { api_url = proxy.url .. "hold/", timeout = 1, rate = 0.5 })
    local r = assert(bulk.import{ client = paced, csv = path, map = MAP, journal = journal, concurrency = 3,
                                  settle = 2 })
    assert.same({ 2, 1, 0 }, { r.created, r.unknown, r.pending })
    assert.matches("1 record%(s%) sent less than 2 s ago are not on the server yet", r.unresolved)
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 2 })
    assert.same({ 3, 0, 0 }, { r.created, r.unknown, r.pending })
    assert.same({ ["Cadence 001"] = 1, ["Cadence 002"] = 1, ["Cadence 003"] = 1 }, (on_server("Cadence")))
  end)

  it("gives a record of a killed run the time the client's pacing may have held it", function()
    local path, journal = write_csv("Cadence tuee", 3)
    os.remove(marker)
    -- the same pacing; the run is killed while record 3 (marked at the
    -- start, sent 4 s later) is on its way: the server commits it late
    local run = support.spawn(temp, support.import_script(
      support.options(proxy.url .. "hold/", sb.url, { timeout = 10, rate = 0.5 }),
      { csv = path, journal = journal, concurrency = 3, settle = 2, map = MAP }))
    util.wait_for(marker)
    os.execute("kill -9 " .. run.pid)
    assert.not_matches("not killed", run.finish())
    assert.equal("sent", sql(journal, "SELECT state FROM records WHERE line = 3"))
    -- run again at once with the same options: record 3 may have left up to
    -- 3 x 2 s after it was marked; not on the server yet, it is not resent
    local paced = through("hold", { rate = 0.5 })
    local r = assert(bulk.import{ client = paced, csv = path, map = MAP, journal = journal, concurrency = 3,
                                  settle = 2 })
    assert.same({ 2, 1, 0 }, { r.created, r.unknown, r.pending })
    assert.matches("1 record%(s%) sent less than 8 s ago are not on the server yet", r.unresolved)
    -- the next run (its lookup lets the late write commit) finds it there
    paced = through("hold", { api_url = proxy.url .. "hold/", rate = 0.5 })
    r = assert(bulk.import{ client = paced, csv = path, map = MAP, journal = journal, concurrency = 3, settle = 2 })
    assert.same({ 3, 0 }, { r.created, r.unknown })
    assert.same({ ["Cadence tuee 001"] = 1, ["Cadence tuee 002"] = 1, ["Cadence tuee 003"] = 1 },
      (on_server("Cadence tuee")))
  end)
end)

describe("bulk.import taken over while it looks for its unknown records", function()
  it("does not put back to pending a record the newer run created meanwhile", function()
    local path, journal = write_csv("Reprise", 1)
    -- record 1's request is lost on its way (HTTP 502): sent, outcome unknown
    local r = assert(bulk.import{ client = through("drop"), csv = path, map = MAP, journal = journal,
                                  settle = 3600 })
    assert.same({ 0, 1 }, { r.created, r.unknown })
    os.remove(marker)
    -- run A (another process) settles it at once but reads the change feed slowly...
    local a = support.spawn(temp, support.import_script(
      support.options(sb.url, proxy.url .. "slow/", { timeout = 10 }),
      { csv = path, journal = journal, settle = 0, map = MAP }))
    util.wait_for(marker)
    -- ...and meanwhile looks dead (silent on another host: its lock is taken
    -- over as told); run B finds record 1 settled, not on the server, and
    -- creates it
    sql(journal, ("UPDATE owner SET host = 'elsewhere.example', beat = %d"):format(os.time() - 601))
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 0, take_over = true })
    assert.same({ 1, 0 }, { r.created, r.already })
    local out = a.finish()
    assert.matches("taken over by another run", out, 1, true)
    assert.equal("done", sql(journal, "SELECT state FROM records WHERE line = 1"))
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, settle = 0 })
    assert.same({ 1, 1 }, { r.created, r.already })
    assert.same({ ["Reprise 001"] = 1 }, (on_server("Reprise")))
  end)
end)

describe("bulk.settle, for records whose lookup keeps failing", function()
  it("marks a record found on the server done with its id, puts an absent one back: each exists once", function()
    local prefix = "Regle main"
    local path, journal = write_csv(prefix, 1)
    -- record 1 is created, its answer unreadable, the change feed unreachable:
    -- stuck unknown, whatever the number of runs
    local blind = { api_url = "http://127.0.0.1:1/", retries = 0 }
    local r = assert(bulk.import{ client = through("html", blind), csv = path, map = MAP, journal = journal })
    assert.same({ 0, 1 }, { r.created, r.unknown })
    -- the message says what to look for on the server, and how to settle it
    local key = r.unresolved:match('unknown record %(1: the organisme whose code_libre_stru is "(imp%x+):LINE"%)')
    assert(key, r.unresolved)
    assert.matches("--settle LINE=ID_ORGANISME or LINE=absent", r.unresolved, 1, true)
    local id
    for _, o in ipairs(assert(c:liste_fiches_modifiees{ ts = "2000-01-01T00:00:00" }).liste_organismes) do
      if o.code_libre_stru == key .. ":1" then id = o.id_organisme end
    end
    assert.is_number(id)
    assert.same({ line = 1, state = "done", id_organisme = id },
      assert(bulk.settle{ journal = journal, line = 1, id_organisme = id }))
    -- done now: refused, left as it is
    local again, err = bulk.settle{ journal = journal, line = 1, absent = true }
    assert.is_nil(again)
    assert.same({ "invalid_param", "line", false, "bulk.settle" }, { err.kind, err.param, err.retryable, err.ws })
    assert.matches("record 1 was created (organisme " .. id .. "): nothing to settle", err.message, 1, true)
    assert.equal("done|" .. id, sql(journal, "SELECT state, id_organisme FROM records WHERE line = 1"))
    -- record 2, added, is lost on its way (HTTP 502) with the feed still unreachable
    support.write_csv(path, prefix, 2)
    r = assert(bulk.import{ client = through("drop", blind), csv = path, map = MAP, journal = journal })
    assert.same({ 1, 1, 1 }, { r.created, r.already, r.unknown })
    again, err = bulk.settle{ journal = journal, line = 3, id_organisme = id }
    assert.is_nil(again)
    assert.matches("record 3 is not in this journal", err.message, 1, true)
    assert.same({ [prefix .. " 001"] = 1 }, (on_server(prefix)))   -- the operator checks: not there
    assert.same({ line = 2, state = "pending" }, assert(bulk.settle{ journal = journal, line = 2, absent = true }))
    -- no unknown record left: the next run looks nothing up (its feed is
    -- still unreachable) and sends record 2 once
    r = assert(bulk.import{ client = support.client(sb.url, "http://127.0.0.1:1/", { retries = 0 }), csv = path,
                            map = MAP, journal = journal })
    assert.same({ 2, 1, 0, 0 }, { r.created, r.already, r.unknown, r.pending })
    assert.same({ [prefix .. " 001"] = 1, [prefix .. " 002"] = 1 }, (on_server(prefix)))
  end)

  it("raises for bad options, before the journal is opened", function()
    local missing = temp.new(".db")
    for _, opts in ipairs{
      { line = 1, absent = true },
      { journal = missing, absent = true },
      { journal = missing, line = 0, absent = true },
      { journal = missing, line = 1.5, absent = true },
      { journal = missing, line = 1 },
      { journal = missing, line = 1, absent = true, id_organisme = 3 },
      { journal = missing, line = 1, absent = false },
      { journal = missing, line = 1, id_organisme = -3 },
      { journal = missing, line = 1, id_organisme = "3" },
      { journal = missing, line = 1, absent = true, take_over = "yes" },
    } do
      assert.has_error(function() bulk.settle(opts) end)
    end
    local r, err = bulk.settle{ journal = missing, line = 1, absent = true }
    assert.is_nil(r)
    assert.same({ "invalid_param", "journal", false }, { err.kind, err.param, err.retryable })
    assert.is_nil(util.read_file(missing))   -- not made
  end)
end)

describe("bulk.import's feed_margin", function()
  -- `date` (coreutils) for the wall clock of unix time t in zone tz
  local function wall(tz, t)
    local ok, out = shell(("TZ=%s date -d @%d +%%Y-%%m-%%dT%%H:%%M:%%S"):format(tz, t))
    assert(ok, out)
    return out:match("^(%S+)")
  end

  it("sends ts as UTC 12 h early by default, as the local wall clock with 0: both find the record", function()
    -- a sandbox and an import both in Nouméa (UTC+11, no daylight saving
    -- time): local and UTC wall clocks are 11 h apart
    local zone = "Pacific/Noumea"
    local noumea = require("spec.support.sandbox").start{ lua = "env TZ=" .. zone .. " lua5.4" }
    local front = support.start_proxy(noumea.url, marker)
    local ok, err = pcall(function()
      for _, case in ipairs{ { margin = nil, tz = "UTC", shift = 12 * 3600 }, { margin = 0, tz = zone, shift = 0 },
                             { margin = 3600, tz = zone, shift = 3600 } } do
        local prefix = "Marge " .. tostring(case.margin)
        local path, journal = write_csv(prefix, 1)
        -- the creation's answer is unreadable: looked for at the end of the run
        local script = support.script(temp.new(".lua"), support.import_script(
          support.options(front.url .. "html/", noumea.url, { timeout = 10 }),
          { csv = path, journal = journal, settle = 0, map = MAP, feed_margin = case.margin }))
        local done, out = shell("export TZ=" .. zone .. "; " .. support.LUA54 .. script)
        assert(done, out)
        assert.matches("created\t1\tunknown\t0", out, 1, true)
        -- the last change-feed request in the sandbox's request journal
        local params = cjson.decode(sql(noumea.db, "SELECT params FROM sandbox_requests "
          .. "WHERE path = '/ws_execute_programme' ORDER BY id DESC LIMIT 1"))
        local sent_at = tonumber(sql(journal, "SELECT sent_at FROM records WHERE line = 1"))
        -- the record's sent time, less the timeout (10 s), SKEW (120 s) and the margin
        assert.equal(wall(case.tz, sent_at - 10 - 120 - case.shift), params.ts)
        assert.same({ [prefix .. " 001"] = 1 }, (support.on_server(noumea:client(), prefix)))
      end
    end)
    front.stop()
    noumea:stop()
    assert(ok, err)
  end)

  it("starts an hour earlier where the local wall clock comes twice (daylight saving time ends)", function()
    -- 2026-10-25 00:30 UTC is 02:30 CEST in Paris, and 02:30 comes again
    -- (CET) an hour later: a server may read it as that one
    local t = os.time{ year = 2026, month = 10, day = 25, hour = 0, min = 30, sec = 0, isdst = false }
    t = t + (os.time(os.date("*t", t)) - os.time(os.date("!*t", t)))   -- t was local: make it UTC
    assert.equal("2026-10-25T00:30:00", wall("UTC", t))
    local code = ("local f = require('billetterie.bulk')._feed_ts; print(f(%d, 0), f(%d, 0), f(%d, 43200))")
      :format(t, t + 7200, t)
    local done, out = shell("export TZ=Europe/Paris; " .. support.LUA54 .. "-e " .. util.q(code))
    assert(done, out)
    assert.same({ wall("Europe/Paris", t - 3600), wall("Europe/Paris", t + 7200), wall("UTC", t - 43200) },
      { out:match("^(%S+)\t(%S+)\t(%S+)") })
    assert.same({ "2026-10-25T01:30:00", "2026-10-25T03:30:00", "2026-10-24T12:30:00" },
      { out:match("^(%S+)\t(%S+)\t(%S+)") })
  end)

  it("takes fractions of a second (a margin or a client timeout of 2.5 s) on every runtime", function()
    assert.equal(bulk._feed_ts(1700000000, 43200), bulk._feed_ts(1700000000.5, 43200.5))
    assert.equal(bulk._feed_ts(1699999998, 0), bulk._feed_ts(1700000000.5, 2.5))
    assert.equal(bulk._feed_ts(1699999997, 0), bulk._feed_ts(1700000000.5, 2.6))   -- cut to the earlier second
  end)

  it("raises for a margin past 0..86400, and the CLI exits 2", function()
    local path, journal = write_csv("Marge fausse", 1)
    for _, bad in ipairs{ -1, 86401, "0", math.huge } do
      assert.has_error(function()
        bulk.import{ client = c, csv = path, map = MAP, journal = journal, feed_margin = bad }
      end, "bulk.import: feed_margin must be a number of seconds from 0 to 86400")
    end
    assert.is_nil(util.read_file(journal))
    local map = support.script(temp.new(".lua"), 'return { ["organisme.intitule"] = "Nom", '
      .. '["organisme.nature"] = "Nature" }\n')
    for _, bad in ipairs{ "-1", "86401", "x", "1e3", "0.5" } do
      local ok, out = support.cli(sb.url, ("import %s --map %s --journal %s --feed-margin %s"):format(
        util.q(path), util.q(map), util.q(journal), bad))
      assert.is_false(ok)
      assert.matches("--feed-margin must be a number of seconds from 0 to 86400, got " .. bad, out, 1, true)
      assert.matches("exit=2%s*$", out)
    end
    local ok, out = support.cli(sb.url, ("import %s --map %s --journal %s --feed-margin 0"):format(
      util.q(path), util.q(map), util.q(journal)))
    assert(ok, out)
    assert.matches("1 records: 1 created", out, 1, true)
  end)
end)
