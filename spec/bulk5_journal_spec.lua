-- bulk.import's journal (real sandbox, real SQLite file): a record written
-- by another run between the moment it was read and the moment it is
-- marked sent is left as that run wrote it, a record whose call never came
-- back waits for the client's pacing too, and a journal that fails for one
-- record does not cost the others their outcome.
local bulk = require "billetterie.bulk"
local luasql = require "luasql.sqlite3"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"

local sb, c
setup(function()
  sb = sandbox.start()
  c = sb:client()
end)
teardown(function() if sb then sb:stop() end end)

local temp = {}
teardown(function()
  for _, p in ipairs(temp) do
    for _, suffix in ipairs{ "", ".db", ".db-wal", ".db-shm" } do os.remove(p .. suffix) end
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
  local count = {}
  for _, o in ipairs(data.liste_organismes or {}) do
    if o.intitule:sub(1, #prefix) == prefix then count[o.intitule] = (count[o.intitule] or 0) + 1 end
  end
  return count
end

local function organisme(rec) return { organisme = { intitule = rec["Nom"], nature = rec["Nature"] } } end

describe("bulk.import's journal", function()
  it("does not mark sent, nor send, a record another run created after this run read it", function()
    local path = write_csv("Garde", 3)
    local journal = path .. ".db"
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
    assert.same({ ["Garde 001"] = 1, ["Garde 002"] = 1, ["Garde 003"] = 1 }, on_server("Garde"))
    assert.equal("done|" .. other_id, sql(journal, "SELECT state, id_organisme FROM records WHERE line = 2"))
  end)

  it("waits, for a record whose call never came back, as long as the client's cap on calls may have held it", function()
    local path = write_csv("Plafond", 1)
    local journal = path .. ".db"
    local refuse = function() error("not yet") end
    local r = assert(bulk.import{ client = c, csv = path, map = refuse, journal = journal })
    assert.equal(1, r.failed)
    -- what a run killed after marking record 1 sent leaves: no outcome, no message
    sql(journal, ("UPDATE records SET state = 'sent', message = NULL, sent_at = %d WHERE line = 1"):format(
      os.time() - 3))
    -- one call at a time for 3 workers: its request may have waited for two
    -- others (5 s each at most) before it left
    local capped = sb:client{ max_in_flight = 1, timeout = 5 }
    local MAP = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }
    r = assert(bulk.import{ client = capped, csv = path, map = MAP, journal = journal, concurrency = 3, settle = 2 })
    assert.same({ 0, 1, 0 }, { r.created, r.unknown, r.pending })
    assert.matches("1 record%(s%) sent less than 12 s ago", r.unresolved)
    -- a client that holds nothing: settled, not on the server, sent again
    r = assert(bulk.import{ client = c, csv = path, map = MAP, journal = journal, concurrency = 3, settle = 2 })
    assert.same({ 1, 0 }, { r.created, r.unknown })
    assert.same({ ["Plafond 001"] = 1 }, on_server("Plafond"))
  end)

  it("records every other record's outcome before returning a journal error", function()
    local path = write_csv("Verrou pris", 3)
    local journal = path .. ".db"
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
    assert.matches("locked", err.message, 1, true)
    -- record 1 was never marked nor sent; record 2 failed with its text;
    -- record 3 was created
    assert.equal("pending", sql(journal, "SELECT state FROM records WHERE line = 1"))
    assert.matches("^failed|.*no organisme for this record$",
      sql(journal, "SELECT state, message FROM records WHERE line = 2"))
    assert.equal("done", sql(journal, "SELECT state FROM records WHERE line = 3"))
    assert.same({ ["Verrou pris 003"] = 1 }, on_server("Verrou pris"))
    assert.equal("0", sql(journal, "SELECT count(*) FROM owner"))
    -- the next run creates record 1 and sends nothing else
    r = assert(bulk.import{ client = c, csv = path, map = { ["organisme.intitule"] = "Nom",
      ["organisme.nature"] = "Nature" }, journal = journal })
    assert.same({ 3, 1, 0 }, { r.created, r.already, r.failed })
    assert.same({ ["Verrou pris 001"] = 1, ["Verrou pris 002"] = 1, ["Verrou pris 003"] = 1 }, on_server("Verrou pris"))
  end)
end)
