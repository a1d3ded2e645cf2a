-- The bench scripts run as written (their figures are not checked here:
-- speed is measured by bench/run.sh, never asserted by a test).
local sh = require "spec.support.shell"
local sandbox = require "spec.support.sandbox"

local ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' "

describe("bench/call_bench.lua", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() if sb then sb:stop() end end)

  local function field(out, name)
    return tonumber(out:match(name .. "=([%d.]+)"))
  end

  for _, mode in ipairs { "", " floor" } do
    for _, conc in ipairs { 1, 4 } do
      it(("runs c:call%s with %d in flight and prints its figures"):format(mode == "" and "" or " (floor)", conc), function()
        local ok, out = sh(("%s lua5.4 bench/call_bench.lua %s 40 %d ws_idsession%s"):format(ENV, sb.url, conc, mode))
        assert(ok, out)
        assert.equal(40, field(out, "requests"))
        assert.equal(conc, field(out, "concurrency"))
        assert.equal(0, field(out, "failures"))
        assert.is_true(field(out, "rps") > 0)
        assert.is_true(field(out, "cpu_us_per_req") > 0)
      end)
    end
  end

  it("fails (exit 1, the first error on stderr) when the server refuses the calls", function()
    -- the sandbox answers ws_info_organisme 904 for an organisme it does not have
    local ok, out = sh(("%s lua5.4 bench/call_bench.lua %s 5 1 ws_info_organisme"):format(ENV, sb.url))
    assert.is_false(ok)
    assert.matches("first call failed", out, 1, true)
    ok, out = sh(("%s lua5.4 bench/call_bench.lua %s 5 1 ws_idsession fast"):format(ENV, sb.url))
    assert.is_false(ok)
    assert.matches("usage", out, 1, true)
  end)
end)

describe("bench/client_cost.lua", function()
  it("prints the three costs", function()
    local ok, out = sh(ENV .. "lua5.4 bench/client_cost.lua 2000")
    assert(ok, out)
    for _, name in ipairs { "call", "prepare", "decode" } do
      assert.is_true(tonumber(out:match(name .. "=([%d.]+)")) > 0, name)
    end
  end)
end)
