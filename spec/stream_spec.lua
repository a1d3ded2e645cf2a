-- Streamed calls, c:call(name, { each = "TAG" }), end to end: the client
-- against a real sandbox (`--seed demo`) over real sockets, faults injected
-- through the sandbox's /_sandbox/faults. A streamed call is an ordinary
-- call (paced, holding a slot, retried before its first item), `each` is
-- one of the repeated elements of the service's answer, and ids come back
-- as integers as everywhere else. Runs under Lua 5.4 and LuaJIT.
local billetterie = require "billetterie"
local catalogue = require "billetterie.catalogue"
local transport = require "billetterie.transport"
local cjson = require "cjson"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"

local unpack = table.unpack or unpack

local sb
setup(function() sb = sandbox.start { args = { "--seed", "demo" } } end)
teardown(function() if sb then sb:stop() end end)

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

-- Replaces the sandbox's fault rules (an empty list clears them).
local function faults(rules)
  local body = cjson.encode { faults = rules }
  if #rules == 0 then body = '{"faults":[]}' end   -- cjson writes {} for an empty table
  local p = io.popen(("curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: application/json' -d %s %s"):format(
    q(body), q(sb.url .. "_sandbox/faults?replace=1")))
  local code = p:read("*a")
  p:close()
  assert(code == "200", "setting faults answered " .. tostring(code))
end

-- The real libcurl transport, counting the requests it carries and how
-- many were in flight at once.
local function counting()
  local t = { sent = 0, now = 0, peak = 0 }
  function t.request(self, req)
    self.sent, self.now = self.sent + 1, self.now + 1
    if self.now > self.peak then self.peak = self.now end
    local r = { n = 7, transport.curl:request(req) }
    self.now = self.now - 1
    return unpack(r, 1, r.n)
  end
  return t
end

-- A client of the sandbox whose waits are recorded, not slept.
local function client(extra)
  local slept = {}
  local opts = { sleep = function(s) slept[#slept + 1] = s end, random = function() return 0.5 end }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return sb:client(opts), slept
end

-- -> items, err (the false, err a failed stream ends with)
local function drain(c, name, params, opts)
  local items = {}
  for item, err in c:call(name, params, opts) do
    if item == false then return items, err end
    items[#items + 1] = item
  end
  return items
end

local function is_integer(v)
  if math.type then return math.type(v) == "integer" end
  return type(v) == "number" and v == math.floor(v)
end

local SHOWS = 8   -- SPECTACLE elements of the demo seed's ws_programmation

describe("a streamed call is an ordinary call", function()
  after_each(function() faults({}) end)

  it("is retried after a 503, before its first item, like a plain read", function()
    faults { "ws_programmation:status=503,count=1" }
    local t = counting()
    local c, slept = client { transport = t }
    local shows, err = drain(c, "ws_programmation", { each = "SPECTACLE" })
    assert.is_nil(err)
    assert.equal(SHOWS, #shows)
    assert.equal(2, t.sent)
    assert.same({ 0.25 }, slept)   -- backoff of attempt 1: 0.5 s base * random 0.5
  end)

  it("gives up after `retries`, with the attempts, and honours the call's own retries", function()
    faults { "ws_programmation:status=503" }
    local t = counting()
    local c = client { transport = t }
    local shows, err = drain(c, "ws_programmation", { each = "SPECTACLE" })
    assert.equal(0, #shows)
    assert.equal("http", err.kind)
    assert.equal(503, err.http_status)
    assert.is_true(err.retryable)
    assert.equal(3, err.attempts)
    assert.equal(3, t.sent)
    _, err = drain(c, "ws_programmation", { each = "SPECTACLE" }, { retries = 0 })
    assert.equal(1, err.attempts)
    assert.equal(4, t.sent)
  end)

  it("waits a Retry-After, and returns at once one longer than retry_after_max", function()
    faults { "ws_programmation:status=503,retry_after=7,count=1" }
    local c, slept = client()
    local shows, err = drain(c, "ws_programmation", { each = "SALLE" })
    assert.is_nil(err)
    assert.is_true(#shows > 0)
    assert.same({ 7 }, slept)

    faults { "ws_programmation:status=503,retry_after=7,count=1" }
    local t = counting()
    c, slept = client { transport = t, retry_after_max = 5 }
    shows, err = drain(c, "ws_programmation", { each = "SALLE" })
    assert.equal(0, #shows)
    assert.equal(7, err.retry_after)
    assert.equal(1, t.sent)
    assert.same({}, slept)
  end)

  it("retries a cut-off transfer and leaves no temporary file behind", function()
    local made, tmpname = {}, os.tmpname
    os.tmpname = function() local p = tmpname(); made[#made + 1] = p; return p end
    faults { "ws_programmation:truncate,count=1" }
    local c = client()
    local ok, shows, err = pcall(drain, c, "ws_programmation", { each = "SPECTACLE" })
    faults { "ws_programmation:drop" }
    local ok2, _, err2 = pcall(drain, c, "ws_programmation", { each = "SPECTACLE" })
    os.tmpname = tmpname
    assert(ok, shows)
    assert(ok2, _)
    assert.is_nil(err)
    assert.equal(SHOWS, #shows)
    assert.equal("network", err2.kind)
    assert.equal(3, err2.attempts)
    assert.equal(5, #made)   -- one file per attempt: 2 + 3
    for _, path in ipairs(made) do assert.is_nil(io.open(path), path) end
  end)

  it("does not retry what a retry cannot mend (an HTML page, a refused account)", function()
    faults { "ws_programmation:html" }
    local t = counting()
    local c = client { transport = t }
    local _, err = drain(c, "ws_programmation", { each = "SPECTACLE" })
    assert.equal("decode", err.kind)
    assert.equal(1, t.sent)
    faults({})
    local bad = client { transport = t, password = "wrong-password" }
    _, err = drain(bad, "ws_programmation", { each = "SPECTACLE" })
    assert.equal("vendor", err.kind)
    assert.equal(3, err.code)
    assert.equal(2, t.sent)
  end)

  it("takes a token of the client's rate like any call", function()
    local c = client { rate = 1000 }
    local real, taken = c._rate, 0
    c._rate = { take = function(_) taken = taken + 1; return real:take() end }
    for _ = 1, 3 do
      local shows, err = drain(c, "ws_programmation", { each = "SALLE" })
      assert.is_nil(err)
      assert.is_true(#shows > 0)
    end
    assert.equal(3, taken)
  end)

  it("holds a max_in_flight slot during its transfer", function()
    faults { "ws_programmation:latency=150" }
    local function peak(extra)
      local t = counting()
      extra.transport = t
      local c = client(extra)
      local counts = billetterie.run(function()
        local tasks = {}
        for i = 1, 3 do
          tasks[i] = billetterie.spawn(function() return #drain(c, "ws_programmation", { each = "SPECTACLE" }) end)
        end
        local n = {}
        for i = 1, 3 do n[i] = tasks[i]:wait() end
        return n
      end)
      assert.same({ SHOWS, SHOWS, SHOWS }, counts)
      return t.peak
    end
    assert.is_true(peak({}) > 1)   -- the transfers do overlap without a cap...
    assert.equal(1, peak { max_in_flight = 1 })   -- ...and not with one
  end)
end)

describe("each names one repeated element of the service's answer", function()
  it("refuses a tag the answer does not hold before sending, listing those it holds", function()
    local t = counting()
    local c = client { transport = t }
    local cases = {
      { "ws_programmation", "NOPE" }, { "ws_programmation", "spectacle" },      -- misspelt, wrong case
      { "ws_programmation", "REPRESENTATIONS" },                                 -- a container, not an item
      { "ws_cat_spectacle", "ARTICLE" }, { "ws_cat_article", "SPECTACLE" },      -- not in that answer
      { "ws_det_achat", "BILLET" },
    }
    for _, case in ipairs(cases) do
      local params = { each = case[2] }
      if case[1] == "ws_det_achat" then params.id_caddy = "070401758672" end
      local items, err = drain(c, case[1], params)
      assert.equal(0, #items)
      assert.equal("invalid_param", err.kind, case[2])
      assert.equal("each", err.param)
      assert.is_false(err.retryable)
      for _, tag in ipairs(catalogue.services[case[1]].xml_each) do
        assert.matches(tag, err.message, 1, true)
      end
    end
    assert.equal(0, t.sent)
  end)

  it("must be one tag name: a list raises, naming the mistake rather than the service", function()
    local c = client()
    local ok, msg = pcall(function() return c:programmation { each = { "GRILLE", "SPECTACLE" } } end)
    assert.is_false(ok)
    assert.matches("each must be one tag name (a string)", msg, 1, true)
    ok, msg = pcall(function() return c:info_organisme { id_organisme = 1, each = "SALLE" } end)
    assert.is_false(ok)
    assert.matches("ws_info_organisme does not answer XML", msg, 1, true)
  end)

  it("is listed for every XML service, and each listed catalogue tag streams items", function()
    for name, service in pairs(catalogue.services) do
      if service.response == "xml" then
        assert.is_true(#(service.xml_each or {}) > 0, name)
      end
    end
    local c = client()
    for _, name in ipairs { "ws_programmation", "ws_cat_spectacle", "ws_cat_abonnement", "ws_cat_article" } do
      for _, tag in ipairs(catalogue.services[name].xml_each) do
        local items, err = drain(c, name, { each = tag })
        assert.is_nil(err, tostring(err))
        assert.is_true(#items > 0, name .. " each = " .. tag)
      end
    end
  end)
end)

describe("ids of the catalogue XML", function()
  local INTEGER_IDS = {   -- element -> its id attributes (the seed types them "Entier long")
    SPECTACLE = { "IDENT" }, REPRESENTATION = { "ID", "REP_SALLE" }, SALLE = { "SALLE_ID", "SALLE_MERE_ID" },
    ABONNEMENT = { "ID" }, ARTICLE = { "ID" }, CATEGORIE_PUBLIQUE = { "ID" }, GRILLE = { "ID" }, ZONE = { "ID" },
  }

  it("come back as integers, streamed or not; labels, dates and prices stay text", function()
    local c = client()
    local doc = assert(c:programmation {})
    local whole = {
      SPECTACLE = doc.SPECTACLES.SPECTACLE, SALLE = doc.SALLES.SALLE, GRILLE = doc.GRILLES.GRILLE,
      ABONNEMENT = doc.ABONNEMENTS.ABONNEMENT, ARTICLE = doc.ARTICLES.ARTICLE,
      REPRESENTATION = doc.SPECTACLES.SPECTACLE[1].REPRESENTATIONS.REPRESENTATION,
      CATEGORIE_PUBLIQUE = doc.GRILLES.GRILLE[1].CATEGORIE_PUBLIQUE,
      ZONE = doc.GRILLES.GRILLE[1].CATEGORIE_PUBLIQUE[1].ZONE,
    }
    for tag, names in pairs(INTEGER_IDS) do
      local streamed = drain(c, "ws_programmation", { each = tag })
      assert.is_true(#streamed > 0 and #whole[tag] > 0, tag)
      for _, list in ipairs { streamed, whole[tag] } do
        for _, item in ipairs(list) do
          for _, k in ipairs(names) do assert.is_true(is_integer(item[k]), tag .. "." .. k) end
        end
      end
    end
    local show = drain(c, "ws_programmation", { each = "SPECTACLE" })[1]
    assert.is_string(show.NOM)
    assert.is_string(show.TS_MODIF)
    local rep = show.REPRESENTATIONS.REPRESENTATION[1]
    assert.matches("^%d%d/%d%d/%d%d%d%d$", rep.REP_DATE)
    assert.is_string(rep.REP_GRILLE)
    local prix = drain(c, "ws_programmation", { each = "ZONE" })[1].PRIX
    assert.is_string(prix._text)   -- euros with a decimal comma: billetterie.decimal
    assert.is_string(prix.FRAIS)
    local det = assert(c:det_spectacle { id_spectacle = show.IDENT })
    assert.equal(show.IDENT, det.SPECTACLES.SPECTACLE[1].IDENT)
  end)

  it("join the purchases of ws_recap_achat and ws_det_achat to the catalogue", function()
    local c = client()
    local shows = {}
    for show in c:programmation { each = "SPECTACLE" } do shows[show.IDENT] = show.NOM end
    local lines = assert(c:recap_achat { id_contact = 2, format = "tableau" })
    local joined = 0
    for _, l in ipairs(lines) do
      if l.ref_spect > 0 then
        assert.is_string(shows[l.ref_spect], "ref_spect " .. l.ref_spect)
        joined = joined + 1
      end
    end
    assert.is_true(joined > 0)
  end)
end)

describe("billetterie call each=TAG", function()
  local BUILD = os.getenv("BILLETTERIE_BUILD") or "build"
  local function run(args)
    local env = ("LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./%s/5.4/?.so;;' BILLETTERIE_URL=%s "
      .. "BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp BILLETTERIE_CLIENT=677 "):format(BUILD, sb.url)
    return shell(env .. "lua5.4 bin/billetterie call " .. args)
  end
  after_each(function() faults({}) end)

  it("prints one JSON document per element", function()
    local ok, out = run("ws_programmation each=SALLE")
    assert(ok, out)
    local docs = {}
    for doc in out:gmatch("\n?({\n.-\n})\n") do docs[#docs + 1] = cjson.decode(doc) end
    assert.equal(6, #docs)   -- the demo seed's venues
    for _, d in ipairs(docs) do
      assert.is_number(d.SALLE_ID)
      assert.is_string(d.NOM)
    end
  end)

  it("exits 1 with the error on a failed stream, 2 on a usage mistake", function()
    faults { "ws_programmation:status=500" }
    local ok, out = run("ws_programmation each=SPECTACLE")
    assert.is_false(ok)
    assert.matches("exit=1", out, 1, true)
    assert.matches("HTTP 500", out, 1, true)
    assert.not_matches("traceback", out, 1, true)
    faults({})
    for _, args in ipairs { "ws_programmation each=NOPE", "ws_programmation 'each[]=SALLE'",
                            "ws_info_organisme id_organisme=1 each=SALLE" } do
      ok, out = run(args)
      assert.is_false(ok)
      assert.not_matches("traceback", out, 1, true)
    end
    ok, out = run("ws_programmation each=NOPE")
    assert.matches("exit=1", out, 1, true)
    assert.matches("parameter each", out, 1, true)
    ok, out = run("ws_programmation 'each[]=SALLE'")
    assert.matches("exit=2", out, 1, true)
  end)
end)

describe("a streamed call never resumed", function()
  it("leaves no temporary file once collected (nginx drops the handler of a visitor gone)", function()
    -- a transport that parks the call, as transport_ngx does while nginx
    -- waits on the upstream, and records the file it was to write
    local path
    local parked = { request = function(_, req)
      path = req.file
      coroutine.yield()
      error("never resumed")
    end }
    local c = billetterie.new { url = sb.url, login = "xrsitest", password = "xrsimdp", client_id = 677,
                                transport = parked }
    local co = coroutine.create(function() for _ in c:call("ws_programmation", { each = "SPECTACLE" }) do end end)
    assert.is_true(coroutine.resume(co))
    assert.is_string(path)
    assert.truthy(io.open(path, "rb"), "the temporary file exists while the call waits")
    co = nil
    collectgarbage()
    collectgarbage()
    local f = io.open(path, "rb")
    if f then f:close() end
    assert.is_nil(f, "the temporary file was left behind: " .. tostring(path))
  end)
end)
