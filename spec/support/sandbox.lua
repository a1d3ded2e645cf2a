-- spec/support/sandbox.lua: start `billetterie sandbox` as a real process
-- for a spec, and stop it.
--
--   local sandbox = require "spec.support.sandbox"
--   local sb = sandbox.start()            -- or start{ db = path, args = { "--log" } }
--   ... requests to sb.url ...
--   sb:stop()
--
-- sb = { url = "http://127.0.0.1:PORT/", port, pid, db, stderr_path,
--        stop = function(self) -> exit code, stderr = function(self) -> text }
-- Paths are found from this file, so specs may run from any directory.
-- Works under Lua 5.4 and LuaJIT; the sandbox itself always runs under
-- lua5.4 (its C module is built for 5.4 only).

local M = {}

-- The repository root, from this file's own path (spec/support/..).
local ROOT = (function()
  local src = debug.getinfo(1, "S").source:match("^@(.*)$") or ""
  local dir = src:match("^(.*)/spec/support/[^/]*$")
  if dir == nil or dir == "" then dir = "." end
  return dir
end)()

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

local read_file = require("spec.support.util").read   -- "" when missing

-- os.execute gives true (5.2+) or 0 (5.1, LuaJIT) on success.
local function sh_ok(cmd)
  local r = os.execute(cmd)
  return r == true or r == 0
end

local function alive(pid)
  return sh_ok("kill -0 " .. pid .. " 2>/dev/null")
end

local function sleep(s) os.execute("sleep " .. s) end

-- open_db(path) -> the sandbox's database in that file, every table made
-- (loads the sandbox's modules in process: Lua 5.4 only)
function M.open_db(path)
  local services = require "billetterie.sandbox.services"
  return assert(require("billetterie.sandbox.db").open(path, services.schemas()))
end

-- seeded_db(fill) -> the path of a fresh temp file holding every table of
-- the sandbox, filled by fill(db) in one transaction (Lua 5.4 only). The
-- caller removes it.
function M.seeded_db(fill)
  local path = os.tmpname()
  local db = M.open_db(path)
  db:tx(function() fill(db) end)
  db:close()
  return path
end

-- opts: db (path; default a fresh temp file, removed by stop), args (extra
-- CLI arguments), lua (interpreter command, default $SANDBOX_LUA or
-- lua5.4, e.g. "valgrind -q lua5.4"), timeout (seconds to wait for the URL
-- line, default 5).
function M.start(opts)
  opts = opts or {}
  local own_db = opts.db == nil
  local db = opts.db or os.tmpname() -- an empty file is a valid empty SQLite base
  local out_path, err_path = os.tmpname(), os.tmpname()
  local argv = {}
  for word in (opts.lua or os.getenv("SANDBOX_LUA") or "lua5.4"):gmatch("%S+") do
    argv[#argv + 1] = word
  end
  for _, a in ipairs { ROOT .. "/bin/billetterie", "sandbox", "--port", "0", "--db", db } do
    argv[#argv + 1] = a
  end
  for _, a in ipairs(opts.args or {}) do argv[#argv + 1] = a end
  for i, a in ipairs(argv) do argv[i] = q(a) end

  -- The popen'd shell starts the server in the background, prints its pid,
  -- waits for it (so it is reaped at once) and prints its exit status.
  local pipe = io.popen(("%s >%s 2>%s & echo $!; wait $!; echo \"exit $?\""):format(
    table.concat(argv, " "), q(out_path), q(err_path)))
  local pid = tonumber(pipe:read("*l"))
  if not pid then
    pipe:close()
    error("could not start the sandbox: " .. table.concat(argv, " "), 2)
  end

  -- Sends sig, waits up to `wait` seconds (then SIGKILL). -> exit code
  local function finish(sig, wait)
    os.execute(("kill -%s %d 2>/dev/null"):format(sig, pid))
    local t = os.time() + wait
    while alive(pid) and os.time() <= t do sleep(0.02) end
    if alive(pid) then os.execute("kill -KILL " .. pid .. " 2>/dev/null") end
    local code = tonumber((pipe:read("*l") or ""):match("^exit (%d+)"))
    pipe:close()
    return code
  end

  local url
  local deadline = os.time() + (opts.timeout or 5)
  repeat
    url = read_file(out_path):match("billetterie sandbox listening on (http://%S+/)\n")
    if url or not alive(pid) then break end
    sleep(0.02)
  until os.time() > deadline
  if not url then
    finish("KILL", 1)
    local stderr = read_file(err_path)
    os.remove(out_path); os.remove(err_path)
    if own_db then os.remove(db) end
    error(("sandbox did not start (it exited, or printed no URL line within %ds); stderr:\n%s"):format(
      opts.timeout or 5, stderr), 2)
  end

  local sb = { url = url, port = tonumber(url:match(":(%d+)/$")), pid = pid,
    db = db, stderr_path = err_path }

  -- A client of this sandbox with its test account (and the api host's
  -- credentials for the change feed); `extra` options override.
  function sb.client(self, extra)
    local opts = { url = self.url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10,
                   api_url = self.url, api_login = "WSCE", api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a" }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return require("billetterie").new(opts)
  end

  -- The server's stderr so far (kept after stop()).
  function sb.stderr(self) return self.stderr_text or read_file(err_path) end

  -- SIGTERM, wait up to 5 s (then SIGKILL), clean up. -> exit code
  function sb.stop(self)
    if self.stopped then return self.exit_code end
    self.stopped = true
    self.exit_code = finish("TERM", 5)
    self.stderr_text = read_file(err_path)
    os.remove(out_path)
    os.remove(err_path)
    if own_db then os.remove(db) end
    return self.exit_code
  end

  -- A forgotten stop() must not hang the run: closing the pipe (at garbage
  -- collection or exit) waits for the server, so stop it first. This
  -- finalizer is set after the pipe was made, so it runs before the pipe's.
  local function finalize() sb:stop() end
  if newproxy then -- LuaJIT: tables have no __gc
    sb._finalizer = newproxy(true)
    getmetatable(sb._finalizer).__gc = finalize
  else
    setmetatable(sb, { __gc = finalize })
  end

  return sb
end

return M
