-- spec/support/counting.lua: the real libcurl transport, counting the
-- requests that leave the machine (a check that fails locally sends none).
--   local counting = require("spec.support.counting").new()
--   billetterie.new{ ..., transport = counting }; counting.n
local transport = require "billetterie.transport"

local M = {}

function M.new()
  local counting = { n = 0 }
  function counting:request(req)
    self.n = self.n + 1
    return transport.curl:request(req)
  end
  return counting
end

return M
