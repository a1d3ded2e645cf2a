-- client_cost: where c:call's own CPU goes, without any network.
--
--   lua5.4 bench/client_cost.lua [N]
--
-- Prints one line per measure, "name=us_per_call", for bench/run.sh:
--   call     c:call("ws_info_organisme", { id_organisme = 5442 }) through an
--            in-process transport that returns the answer nginx serves in
--            the bench (bench/nginx.conf.in), so everything but the network:
--            checks, form, envelope, JSON, garbage collection
--   prepare  the request side alone: parameter checks, credentials, form
--   decode   json.decode of that answer alone (lua-cjson, then integers
--            restored), with the collection of the tables it makes
-- Each figure is the best of 3 rounds of N calls (os.clock).

local billetterie = require "billetterie"
local catalogue = require "billetterie.catalogue"
local json = require "billetterie.json"

local N = tonumber(arg[1]) or 300000

-- The very body bench/nginx.conf.in answers.
local conf = assert(io.open("bench/nginx.conf.in")):read("a")
local ANSWER = assert(conf:match("return 200 '(.-)';"), "no answer in bench/nginx.conf.in")

local in_process = {}
function in_process:request() return 200, ANSWER, "application/json" end

local c = billetterie.new{ url = "http://127.0.0.1:1/", login = "xrsitest", password = "xrsimdp",
                           client_id = 677, transport = in_process }
local params = { id_organisme = 5442 }
local service = catalogue.services.ws_info_organisme

local function best(fn)
  local low
  for _ = 1, 3 do
    collectgarbage()
    local t = os.clock()
    for _ = 1, N do fn() end
    local us = (os.clock() - t) / N * 1e6
    if not low or us < low then low = us end
  end
  return low
end

local msg, statut = c:call("ws_info_organisme", params)
assert(msg and statut.code == 906, "the in-process answer did not decode: " .. tostring(statut))

print(("call=%.2f"):format(best(function() return c:call("ws_info_organisme", params) end)))
print(("prepare=%.2f"):format(best(function() return c:_prepare(service, params) end)))
print(("decode=%.2f"):format(best(function() return json.decode(ANSWER) end)))
