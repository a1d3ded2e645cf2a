-- examples/bulk_import.lua tells what is left to do and why.
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"
local support = require "spec.support.bulk"
local util = require "spec.support.util"

local sb
setup(function() sb = sandbox.start() end)
teardown(function() if sb then sb:stop() end end)
local temp = util.temp_files{ "", ".journal.db", ".journal.db-wal", ".journal.db-shm", ".failures.csv" }
teardown(temp.clean)

local function env(url, api_url)
  return util.lua54_env() .. ("BILLETTERIE_URL=%s BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp "
    .. "BILLETTERIE_CLIENT=677 BILLETTERIE_API_URL=%s BILLETTERIE_API_LOGIN=WSCE BILLETTERIE_API_KEY=%s "):format(
    url, api_url, support.API_KEY)
end

describe("examples/bulk_import.lua", function()
  it("prints the unknown and not-sent counts, and why nothing was sent", function()
    local copy = temp.new()
    assert(shell("cp examples/data/organismes.csv " .. copy))
    local dead = "http://127.0.0.1:1/"
    -- the vendor unreachable: every record sent, outcome unknown
    local ok, out = shell(env(dead, dead) .. "lua5.4 examples/bulk_import.lua " .. copy)
    assert.is_false(ok)
    assert.matches("3 records: 0 created, 0 failed (see " .. copy .. ".failures.csv), 3 unknown, 0 not sent", out, 1,
      true)
    assert.matches("not finished: could not check the server", out, 1, true)
    -- a record added; the vendor back, its change feed not: nothing is sent
    -- (the unknown ones must be checked first), and the user is told why
    local f = assert(io.open(copy, "a"))
    f:write('"Amicale du Pic";Association;Siège;Ganges;34190;1 rue Haute;Partenaire\n')
    f:close()
    ok, out = shell(env(sb.url, dead) .. "lua5.4 examples/bulk_import.lua " .. copy)
    assert.is_false(ok)
    assert.matches("4 records: 0 created, 0 failed (see " .. copy .. ".failures.csv), 3 unknown, 1 not sent", out,
      1, true)
    assert.matches("progress: 0/0 done", out, 1, true)
    assert.matches("not finished: could not check the server", out, 1, true)
    -- a journal that is not one: a message, no traceback
    ok, out = shell(env(sb.url, sb.url) .. "JOURNAL=" .. copy .. " lua5.4 examples/bulk_import.lua " .. copy)
    assert.is_false(ok)
    assert.matches("is the CSV file itself", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
  end)
end)
