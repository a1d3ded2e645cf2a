-- Rewrites the Lua module list of the rockspec from the files under lua/,
-- so the rock can never miss a module. `lua5.4 tools/sync-rockspec.lua
-- [--check]`: with --check, exits 1 when the rockspec is not current.
local path = "rockspec/billetterie-scm-1.rockspec"
local check = arg[1] == "--check"

local files = {}
local p = assert(io.popen("find lua -name '*.lua' | LC_ALL=C sort"))
for file in p:lines() do files[#files + 1] = file end
p:close()

local lines = {}
for _, file in ipairs(files) do
  local module = file:gsub("^lua/", ""):gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  lines[#lines + 1] = ('    ["%s"] = "%s",'):format(module, file)
end

local f = assert(io.open(path))
local text = f:read("*a")
f:close()
local head, tail = text:match("^(.-    %-%- BEGIN LUA MODULES[^\n]*\n).-(    %-%- END LUA MODULES.*)$")
assert(head, "markers not found in " .. path)
local new = head .. table.concat(lines, "\n") .. "\n" .. tail
if check then
  if new ~= text then
    io.stderr:write(path .. " is not current: run `make rockspec`\n")
    os.exit(1)
  end
  return
end
f = assert(io.open(path, "w"))
f:write(new)
f:close()
