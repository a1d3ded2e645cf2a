-- spec/support/util.lua: what the specs share: the repository's absolute
-- root, the build directory nginx loads the core from, small shell and file
-- helpers, and the reading of `curl -i` output.
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

-- read_file(path) -> the file's bytes, or nil when it cannot be read
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- read(path) -> the file's bytes, or "" when it cannot be read
function M.read(path) return M.read_file(path) or "" end

-- write(path, text): the file holds text (raises when it cannot)
function M.write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

-- popen(cmd): io.popen without an ASan preload (curl deadlocks under it)
-- How many descriptors of this process are open on `path` (nil without
-- /proc): only the file under test counts, never what other specs' objects
-- open or close meanwhile.
function M.fds_on(path)
  local f = io.open("/proc/self/stat")
  if not f then return nil end
  local pid = f:read("*l"):match("^(%d+)")
  f:close()
  local p = io.popen(("ls -l /proc/%s/fd 2>/dev/null | grep -cF -- ' -> %s'"):format(pid, path))
  local n = tonumber(p:read("*a"))
  p:close()
  return n
end

function M.popen(cmd) return io.popen("unset LD_PRELOAD; " .. cmd) end

-- parse_answers(raw) -> the answers in `curl -i` output, each
-- { status, headers (names lower-case), body, json (the body decoded, or nil) }
function M.parse_answers(raw)
  local cjson = require("cjson").new()
  local answers = {}
  while raw and raw ~= "" do
    raw = raw:gsub("^HTTP/%S+ 1%d%d[^\r\n]*\r\n\r\n", "") -- curl's "100 Continue"
    local head, rest = raw:match("^(HTTP/%S+ %d+.-)\r\n\r\n(.*)$")
    if not head then break end
    local a = { status = tonumber(head:match("^HTTP/%S+ (%d+)")), headers = {} }
    for name, value in head:gmatch("\r\n([^:\r\n]+):%s*([^\r\n]*)") do a.headers[name:lower()] = value end
    local len = tonumber(a.headers["content-length"] or #rest)
    a.body, raw = rest:sub(1, len), rest:sub(len + 1)
    local ok, v = pcall(cjson.decode, a.body)
    a.json = ok and v or nil
    answers[#answers + 1] = a
  end
  return answers
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


-- lua54_env() -> "LUA_PATH=... LUA_CPATH=... " for a lua5.4 child process:
-- this tree's entries of the search paths (the 5.4 build of the C modules,
-- also from a LuaJIT spec), then lua5.4's own defaults.
function M.lua54_env()
  local function ours(path)
    local kept = {}
    for entry in path:gmatch("[^;]+") do
      if not entry:match("^/usr/") then kept[#kept + 1] = (entry:gsub("/jit/", "/5.4/")) end
    end
    return table.concat(kept, ";") .. ";;"
  end
  return ("LUA_PATH=%s LUA_CPATH=%s "):format(M.q(ours(package.path)), M.q(ours(package.cpath)))
end

-- temp_files(suffixes) -> t: t.new(suffix) names a fresh temp file (plus
-- suffix); t.clean() removes each one with every suffix (for a teardown).
function M.temp_files(suffixes)
  local made = {}
  local t = {}
  function t.new(suffix)
    local p = os.tmpname()
    made[#made + 1] = p
    return p .. (suffix or "")
  end
  function t.clean()
    for _, p in ipairs(made) do
      for _, suffix in ipairs(suffixes) do os.remove(p .. suffix) end
    end
  end
  return t
end

-- vendor_code(msg, err) -> err.code, asserting the call's answer was a
-- vendor refusal (msg nil, err.kind "vendor")
function M.vendor_code(msg, err)
  local luassert = require "luassert"
  luassert.is_nil(msg)
  luassert.equal("vendor", err.kind, tostring(err))
  return err.code
end

-- wait_for(path): until the file is not empty (raises after 10 s)
function M.wait_for(path)
  for _ = 1, 500 do
    if M.read(path) ~= "" then return true end
    os.execute("sleep 0.02")
  end
  error("timed out waiting for " .. path)
end

return M
