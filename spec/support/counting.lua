-- spec/support/counting.lua: the real libcurl transport, counting the
-- requests that leave the machine (a check that fails locally sends none).
--   local counting = require("spec.support.counting").new()
--   billetterie.new{ ..., transport = counting }; counting.n
local transport = require "billetterie.transport"
local assert = require "luassert"   -- the module runs outside the spec's environment

local M = {}

function M.new()
  local counting = { n = 0 }
  function counting:request(req)
    self.n = self.n + 1
    return transport.curl:request(req)
  end
  -- counting:refused(call, param [, reason]) -> err: asserts call() is a
  -- local invalid_param naming `param` (and saying `reason`), nothing sent
  function counting:refused(call, param, reason)
    local before = self.n
    local msg, err = call()
    assert.is_nil(msg)
    assert.equal("invalid_param", err.kind, tostring(err))
    assert.equal(param, err.param)
    if reason then assert.matches(reason, err.message, 1, true) end
    assert.equal(before, self.n, "a request was sent")
    return err
  end
  return counting
end

return M
