-- spec/s360_example_spec.lua: examples/s360_newsletter.lua run as a real
-- process against the real sandbox, over SOAP and REST.
local sandbox = require "spec.support.sandbox"
local cookie = require "billetterie.s360.cookie"

local function sh(cmd)
  local f = io.popen(cmd .. " 2>&1; echo \"exit:$?\"")
  local out = f:read("*a")
  f:close()
  local code = tonumber(out:match("exit:(%d+)%s*$"))
  return code == 0, out:gsub("exit:%d+%s*$", "")
end

-- The interpreter running this spec, so both builds run the example.
local LUA = rawget(_G, "jit") and "luajit" or "lua5.4"

describe("examples/s360_newsletter.lua", function()
  local sb
  setup(function() sb = sandbox.start() end)
  teardown(function() if sb then sb:stop() end end)

  for _, protocol in ipairs { "soap", "rest" } do
    it("signs a new address up, then finds it again, over " .. protocol, function()
      local env = ("S360_URL=%smosa S360_INSTITUTION=MOSA S360_OPERATOR=MOSA_B2C "
        .. "S360_PASSWORD=s360-sandbox-secret S360_PROTOCOL=%s "):format(sb.url, protocol)
      local email = protocol .. ".news@example.org"
      -- the contact's password on stdin, never on the command line (ps shows it)
      local ok, out = sh("echo Pass-word-1 | " .. env .. LUA .. " examples/s360_newsletter.lua " .. email .. " Anne Neuve")
      assert.is_true(ok, out)
      assert.truthy(out:find(email .. " created as contact ", 1, true), out)
      assert.truthy(out:find("authorization NEWS granted", 1, true), out)
      local header = out:match("Set%-Cookie: ([^\n]+)")
      local c = assert(cookie.parse(assert(header, out)))
      assert.equal("stx_rememberMe_MOSA_B2C", c.name)
      assert.equal("MOSA_B2C", c.virtualOperator)
      assert.is_true(c.attributes.HttpOnly)
      assert.is_true(c.attributes.Secure)

      ok, out = sh("echo Pass-word-1 | " .. env .. LUA .. " examples/s360_newsletter.lua " .. email)
      assert.is_true(ok, out)
      assert.truthy(out:find(email .. " is contact ", 1, true), out)
      assert.truthy(out:find("Set-Cookie: stx_rememberMe_MOSA_B2C=", 1, true), out)

      ok, out = sh("echo wrong-pass-9 | " .. env .. LUA .. " examples/s360_newsletter.lua " .. email)
      assert.is_false(ok)
      assert.truthy(out:find("vendor error", 1, true), out)

      ok, out = sh(env .. LUA .. " examples/s360_newsletter.lua " .. email .. " </dev/null")
      assert.is_false(ok)
      assert.truthy(out:find("password on stdin", 1, true), out)
    end)
  end
end)
