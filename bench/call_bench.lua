-- call_bench: the raw_curl workload through the project's Lua client.
--
--   lua5.4 bench/call_bench.lua URL N CONCURRENCY [OPERATION [floor]]
--
-- OPERATION is ws_info_organisme (default, with id_organisme = 5442) or
-- ws_idsession (credentials only: what the sandbox answers with no data).
-- CONCURRENCY = 1: N plain sequential c:call. CONCURRENCY > 1: inside
-- billetterie.run, CONCURRENCY tasks each calling c:call in a loop until N
-- calls in all are done.
-- With `floor`, each call is only what any Lua client handing back Lua
-- tables must do: the same prepared request through the same transport
-- (libcurl's engine, the same tasks) and json.decode of the answer (lua-cjson,
-- integers restored); no checks, no form encoding, no envelope. Its rate
-- against raw libcurl's is the most c:call could reach.
--
-- Prints one line, as raw_curl does:
--   requests=N concurrency=C seconds=S rps=R cpu_us_per_req=U failures=F
-- CPU is os.clock() (process CPU time) over the measured calls. One untimed
-- call first checks the set-up and reports a failure at once. Any call
-- returning nil is a failure: the first error is printed on stderr and the
-- script exits 1. The run gives up after MAX_SECONDS of wall time.

local billetterie = require "billetterie"

local MAX_SECONDS = 300

local function usage(msg)
  io.stderr:write("call_bench: ", msg, "\n",
    "usage: lua5.4 bench/call_bench.lua URL N CONCURRENCY [ws_info_organisme|ws_idsession]\n")
  os.exit(2)
end

local url, n, conc, op = arg[1], tonumber(arg[2]), tonumber(arg[3]), arg[4] or "ws_info_organisme"
local floor = arg[5] == "floor"
if arg[5] and not floor then usage("the fifth argument can only be floor") end
if not url or url == "" then usage("missing URL") end
if not n or n < 1 or n ~= math.floor(n) then usage("bad N") end
if not conc or conc < 1 or conc > 1024 or conc ~= math.floor(conc) then usage("bad CONCURRENCY") end
n, conc = math.floor(n), math.floor(conc)

-- What a correct answer looks like, per operation. The check is as cheap as
-- the caller's first look at the result would be.
local params, expect
if op == "ws_info_organisme" then
  params = { id_organisme = 5442 }
  expect = function(msg, statut)
    return type(statut) == "table" and statut.code == 906 and type(msg) == "table"
      and type(msg.organisme) == "table"
  end
elseif op == "ws_idsession" then
  params = {}
  expect = function(msg, statut)
    return type(statut) == "table" and msg ~= nil
  end
else
  usage("unknown OPERATION " .. tostring(op))
end

-- Wall clock: Lua has none finer than a second, so ask date(1) once before
-- and once after the measured loop (about a millisecond of error in all).
local function wall()
  local p = io.popen("date +%s.%N")
  if p then
    local s = p:read("*l")
    p:close()
    local t = tonumber(s)
    if t then return t end
  end
  return os.time()
end

local function describe(msg, statut)
  if type(statut) == "table" then
    local mt = getmetatable(statut)
    if mt and mt.__tostring then return tostring(statut) end
    local parts = {}
    for _, k in ipairs { "kind", "message", "status", "code", "traitement" } do
      if statut[k] ~= nil then parts[#parts + 1] = k .. "=" .. tostring(statut[k]) end
    end
    return table.concat(parts, " ")
  end
  return ("unexpected result: msg=%s statut=%s"):format(tostring(msg), tostring(statut))
end

local failures, first_error = 0, nil
local function record(msg, statut)
  if msg == nil or not expect(msg, statut) then
    failures = failures + 1
    if not first_error then first_error = describe(msg, statut) end
  end
end

local c = billetterie.new {
  url = url, login = "xrsitest", password = "xrsimdp", client_id = 677, timeout = 10,
}

-- one() -> what a call gives the caller: payload, statut (or nil, err)
local one = function() return c:call(op, params) end
if floor then
  local core = require "billetterie.core"
  local json = require "billetterie.json"
  local transport = require "billetterie.transport"
  local fields = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = 677 }
  for k, v in pairs(params) do fields[k] = v end
  local request = { url = url:gsub("/?$", "/") .. op, method = "POST", body = core.form_encode(fields), timeout = 10 }
  request.config = core.http_config(request)
  local curl = transport.curl
  one = function()
    local status, body = curl:request(request)
    if status ~= 200 then return nil, "HTTP " .. tostring(status) end
    local doc = json.decode(body)
    local retour = type(doc) == "table" and doc.retour
    if type(retour) ~= "table" then return nil, "no retour in the answer" end
    return retour.message or retour, retour.statut
  end
end

-- Untimed check of the set-up (also opens the first connection).
record(one())
if failures > 0 then
  io.stderr:write("call_bench: first call failed: ", first_error, "\n")
  os.exit(1)
end
failures = 0

local deadline = os.time() + MAX_SECONDS
local timed_out = false
local done = 0

local t0, c0 = wall(), os.clock()
if conc == 1 then
  for i = 1, n do
    record(one())
    done = i
    if i % 1024 == 0 and os.time() > deadline then timed_out = true; break end
  end
else
  local started = 0
  billetterie.run(function()
    local tasks = {}
    for w = 1, math.min(conc, n) do
      tasks[w] = billetterie.spawn(function()
        while started < n and not timed_out do
          started = started + 1
          record(one())
          done = done + 1
          if done % 1024 == 0 and os.time() > deadline then timed_out = true end
        end
      end)
    end
    for w = 1, #tasks do tasks[w]:wait() end
  end)
end
local secs, cpu = wall() - t0, os.clock() - c0

if done < n then
  if not first_error then
    first_error = timed_out and ("gave up after " .. MAX_SECONDS .. " s")
      or ("only " .. done .. " calls completed")
  end
  failures = failures + (n - done)
end

io.write(("requests=%d concurrency=%d seconds=%.3f rps=%.0f cpu_us_per_req=%.2f failures=%d\n"):format(
  n, conc, secs, secs > 0 and n / secs or 0, cpu * 1e6 / n, failures))
if failures > 0 then
  io.stderr:write("call_bench: ", failures, " failed calls; first error: ", first_error, "\n")
  os.exit(1)
end
