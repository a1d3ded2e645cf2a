-- One import at a time per journal: a second run is refused while the first
-- lives, a dead run's lock is taken over (real sandbox, real processes).
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"

local API_KEY = "b1829f60af03c1e69a13ed44405ec898f912b63a"
local BUILD = os.getenv("BILLETTERIE_BUILD") or "build"
local MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }
local sb, c

setup(function()
  sb = sandbox.start()
  c = sb:client()
end)
teardown(function() if sb then sb:stop() end end)

local temp = {}
teardown(function()
  for _, p in ipairs(temp) do
    for _, suffix in ipairs{ "", ".db", ".db-wal", ".db-shm", ".lua", ".out" } do os.remove(p .. suffix) end
  end
end)

local function write_csv(prefix, n)
  local path = os.tmpname()
  temp[#temp + 1] = path
  local f = assert(io.open(path, "w"))
  f:write("Nom;Nature\n")
  for i = 1, n do f:write(("%s %03d;Association\n"):format(prefix, i)) end
  f:close()
  return path
end

local function sql(path, query)
  local ok, out = shell(("sqlite3 %s %q"):format(path, query))
  assert(ok, out)
  return (out:gsub("exit=%d+%s*$", ""):gsub("%s+$", ""))
end

local function on_server(prefix)
  local data = assert(c:liste_fiches_modifiees{ ts = "2000-01-01T00:00:00" })
  local count, n = {}, 0
  for _, o in ipairs(data.liste_organismes or {}) do
    if o.intitule:sub(1, #prefix) == prefix then
      count[o.intitule] = (count[o.intitule] or 0) + 1
      n = n + 1
    end
  end
  return count, n
end

local function read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local HOST = read("/proc/sys/kernel/hostname"):match("[^\n]*")

-- The start time of a live process (field 22 of /proc/PID/stat).
local function start_of(pid)
  local after = read("/proc/" .. pid .. "/stat"):match("^.*%)%s+(.*)$")
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
    local f = assert(io.open(script, "w"))
    f:write(([[
      local c = require("billetterie").new{ url = %q, login = "xrsitest", password = "xrsimdp", client_id = 677,
        api_url = %q, api_login = "WSCE", api_key = %q }
      local r = assert(require("billetterie.bulk").import{ client = c, csv = %q, journal = %q, concurrency = 2,
        rate = 10, map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" } })
      print("created", r.created)
    ]]):format(sb.url, sb.url, API_KEY, path, journal))
    f:close()
    local env = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' "
    local p = io.popen(env .. "lua5.4 " .. script .. " 2>&1")
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
    local path = write_csv("Verrou B", 6)
    local journal = path .. ".db"
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

  it("takes over the lock of a run that is gone, and keeps that of a live one", function()
    local path = write_csv("Verrou C", 2)
    local journal = path .. ".db"
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
    -- the same pid, but started at another time: a reused pid, the owner is gone
    set_owner(journal, sb.pid, HOST, "1", now)
    assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal })
    -- another host: alive while it writes to the journal, gone after 10 minutes of silence
    set_owner(journal, 1, "elsewhere.example", "1", now - 60)
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert.is_nil(r)
    assert.matches("on elsewhere.example", err.message, 1, true)
    set_owner(journal, 1, "elsewhere.example", "1", now - 601)
    r, err = bulk.import{ client = c, csv = path, map = MAP, journal = journal }
    assert(r, tostring(err))
    assert.equal(2, r.created)
    local _, n = on_server("Verrou C")
    assert.equal(2, n)
  end)

  it("sends nothing more once another run took the journal over", function()
    local path = write_csv("Verrou D", 5)
    local journal = path .. ".db"
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
    assert.equal(1, r.created)
    assert.equal(4, r.pending)
    assert.matches("taken over by another run", r.unresolved, 1, true)
    local _, n = on_server("Verrou D")
    assert.equal(1, n)
    assert.equal("someone-else", sql(journal, "SELECT token FROM owner"))   -- not removed by the loser
  end)
end)
