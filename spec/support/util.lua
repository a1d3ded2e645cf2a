-- spec/support/util.lua: what the nginx specs share: the repository's
-- absolute root, the build directory nginx loads the core from, and small
-- shell and file helpers.
local M = {}

-- The core built for LuaJIT that nginx loads: ./build/jit, or that of
-- $BILLETTERIE_NGINX_BUILD (a helper's own build directory). Never an ASan
-- build: nginx runs without the sanitizer runtime.
M.BUILD = os.getenv("BILLETTERIE_NGINX_BUILD") or "build"

-- The repository root, absolute, from this file's own path (spec/support/..).
M.ROOT = (function()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  local dir = src:match("^(.*)/spec/support/[^/]*$")
  if dir == nil or dir == "" then dir = "." end
  if dir:sub(1, 1) ~= "/" then dir = os.getenv("PWD") .. "/" .. dir end
  return dir
end)()

-- sh(cmd) -> whether it exited 0
function M.sh(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- q(s) -> s quoted for the shell
function M.q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

-- run(cmd) -> its standard output
function M.run(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out
end

-- read(path) -> the file's bytes, or "" when it cannot be read
function M.read(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

-- nginx_up(dir, conf) -> whether nginx started on conf (written to
-- dir/nginx.conf, its errors appended to dir/start.log), its pid file
-- awaited. Without the sanitizer runtime: nginx is not an ASan build.
function M.nginx_up(dir, conf)
  local f = assert(io.open(dir .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  if not M.sh(("env -u LD_PRELOAD nginx -p %s -c %s/nginx.conf 2>>%s/start.log")
      :format(M.q(dir), M.q(dir), M.q(dir))) then
    return false
  end
  for _ = 1, 50 do
    if M.sh("test -s " .. M.q(dir .. "/nginx.pid")) then break end
    M.sh("sleep 0.1")
  end
  return true
end

return M
