-- billetterie.cache: the memory store with a clock the test moves, keys,
-- what a store accepts, and a client with billetterie.new{ cache = store }
-- against a running sandbox (its request journal tells what reached it).
-- The lua_shared_dict store runs under nginx in spec/openresty_spec.lua.
local cache = require "billetterie.cache"
local sandbox = require "spec.support.sandbox"
local cjson = require "cjson"

-- The sandbox's control endpoints through curl: billetterie.sandbox needs
-- the Lua 5.4 server module, and this spec runs under LuaJIT too.
local function control(url, args)
  local p = assert(io.popen("curl -s " .. args .. " '" .. url .. "'"))
  local out = p:read("*a")
  p:close()
  return cjson.decode(out)
end
local sbx = {
  journal = function(base, opts)
    return control(base .. "_sandbox/requests?path=" .. opts.path, "").requests
  end,
  faults = function(base, rules)
    return control(base .. "_sandbox/faults", "-X POST -H 'Content-Type: application/json' -d '"
      .. cjson.encode{ faults = rules } .. "'").faults
  end,
}

local function is_int(v)
  if math.type then return math.type(v) == "integer" end
  return v == math.floor(v)
end

describe("billetterie.cache memory store", function()
  local now, store
  before_each(function()
    now = 1000
    store = cache.new{ ttl = 60, clock = function() return now end, max_items = 3 }
  end)

  it("gives back a fresh copy, integers as integers, until the TTL runs out", function()
    local value = { id = 5442, prix = 18.5, noms = { "a", "b" }, web = true, vide = {} }
    assert.is_true(store:set("k", value))
    local got = store:get("k")
    assert.are.same(value, got)
    assert.is_true(is_int(got.id))
    assert.is_false(is_int(got.prix))
    got.id = 1
    got.noms[1] = "changed"
    assert.are.same(value, store:get("k"))        -- the stored value did not move
    value.id = 2
    assert.are.equal(5442, store:get("k").id)     -- nor did it follow the caller's table
    now = now + 59
    assert.is_truthy(store:get("k"))
    now = now + 1
    assert.is_nil(store:get("k"))
  end)

  it("keeps strings, numbers and booleans, and per-item TTLs", function()
    assert.is_true(store:set("s", "texte", 10))
    assert.is_true(store:set("n", 42))
    assert.is_true(store:set("b", false, 100))
    assert.are.equal("texte", store:get("s"))
    assert.are.equal(42, store:get("n"))
    assert.is_true(is_int(store:get("n")))
    assert.are.equal(false, store:get("b"))
    now = now + 30
    assert.is_nil(store:get("s"))
    assert.are.equal(42, store:get("n"))
    now = now + 40
    assert.is_nil(store:get("n"))
    assert.are.equal(false, store:get("b"))
  end)

  it("refuses values JSON would change, and keeps nothing of them", function()
    for _, bad in ipairs{ { [1] = "a", [3] = "c" }, { "a", x = 1 }, { [2.5] = 1 }, { f = print },
                          0 / 0, math.huge } do
      local ok, err = store:set("bad", bad)
      assert.is_nil(ok)
      assert.matches("^cache: cannot store", err)
      assert.is_nil(store:get("bad"))
    end
    local cycle = {}
    cycle.self = cycle
    assert.is_nil((store:set("cycle", cycle)))
  end)

  it("refuses a number JSON would shorten (14 significant digits), keeps the others", function()
    for _, bad in ipairs{ { a = 123456789012345 }, { 1 / 3 }, 2 ^ 53, { x = { y = 0.1 + 0.2 } } } do
      local ok, err = store:set("long", bad)
      assert.is_nil(ok)
      assert.matches("^cache: cannot store a number with more than 14 significant digits", err)
      assert.is_nil(store:get("long"))
    end
    local fine = { a = 12345678901234, b = -99999999999999, c = 18.5, d = 0.1, e = 1e300, f = -2.5e-7 }
    assert.is_true(store:set("fine", fine))
    assert.are.same(fine, store:get("fine"))
  end)

  it("holds at most max_items: expired items go first, then the least recently used", function()
    store:set("a", 1)
    store:set("b", 2, 5)
    store:set("c", 3)
    now = now + 10                        -- b expired
    store:set("d", 4)
    assert.are.same({ 1, 3, 4 }, { store:get("a"), store:get("c"), store:get("d") })
    store:get("a")                        -- c is now the least recently used
    store:get("d")
    store:set("e", 5)
    assert.is_nil(store:get("c"))
    assert.are.same({ 1, 4, 5 }, { store:get("a"), store:get("d"), store:get("e") })
    store:set("a", 10)                    -- replacing does not evict
    assert.are.same({ 10, 4, 5 }, { store:get("a"), store:get("d"), store:get("e") })
  end)

  it("deletes and flushes", function()
    store:set("a", 1)
    store:set("b", 2)
    store:delete("a")
    store:delete("missing")
    assert.is_nil(store:get("a"))
    assert.are.equal(2, store:get("b"))
    store:flush()
    assert.is_nil(store:get("b"))
    store:set("c", 3)
    assert.are.equal(3, store:get("c"))
  end)

  it("raises on programmer mistakes", function()
    assert.has_error(function() cache.new{ ttl = 0 } end)
    assert.has_error(function() cache.new{ max_items = 0 } end)
    assert.has_error(function() cache.new{ dict = {} } end)
    assert.has_error(function() store:set("k", 1, -1) end)
    assert.has_error(function() store:get(42) end)
    assert.has_error(function() store:set("", 1) end)
  end)

  it("defaults to os.time and a 300 s TTL", function()
    local s = cache.new()
    assert.is_true(s:set("k", { 1, 2 }))
    assert.are.same({ 1, 2 }, s:get("k"))
  end)
end)

describe("cache.key", function()
  it("is stable: table keys sorted, 5 and 5.0 alike, parts unambiguous", function()
    local a = cache.key("ws", { b = 1, a = { 2, 3 }, [1] = true })
    local b = cache.key("ws", { [1] = true, a = { 2, 3 }, b = 1.0 })
    assert.are.equal(a, b)
    assert.are_not.equal(cache.key("ab", "c"), cache.key("a", "bc"))
    assert.are_not.equal(cache.key("1"), cache.key(1))
    assert.are_not.equal(cache.key({ a = "1" }), cache.key({ a = 1 }))
    assert.are.equal('s2:ws|{n1=T;s1:a={n1=n2;n2=n3;};s1:b=n1;}|', a)
  end)

  it("raises on what cannot be a key", function()
    assert.has_error(function() cache.key("a", nil) end)
    assert.has_error(function() cache.key(print) end)
    assert.has_error(function() cache.key({ [{}] = 1 }) end)
  end)
end)

describe("billetterie.new{ cache = store } against the sandbox", function()
  local sb, store, c

  setup(function() sb = sandbox.start{ args = { "--seed", "demo" } } end)
  teardown(function() if sb then sb:stop() end end)
  before_each(function()
    store = cache.new{ ttl = 60 }
    c = sb:client{ cache = store, retries = 0 }
  end)

  local function sent(ws)
    return #assert(sbx.journal(sb.url, { path = ws }))
  end

  it("serves ws_cat_listes from the cache the second time", function()
    local before = sent("ws_cat_listes")
    local first, statut = c:call("ws_cat_listes")
    assert.is_table(first)
    assert.is_nil(statut.cached)
    local second, statut2 = c:call("ws_cat_listes")
    assert.are.same(first, second)
    assert.is_true(statut2.cached)
    assert.are.equal(statut.code, statut2.code)
    assert.are.equal(before + 1, sent("ws_cat_listes"))
    -- a client of its own, the same store: a hit too
    local other = sb:client{ cache = store }
    assert.are.same(first, (other:call("ws_cat_listes")))
    assert.are.equal(before + 1, sent("ws_cat_listes"))
    -- cache = false asks the vendor
    assert.is_table((c:call("ws_cat_listes", nil, { cache = false })))
    assert.are.equal(before + 2, sent("ws_cat_listes"))
  end)

  it("caches an XML catalogue feed with its integers, per parameters", function()
    local before = sent("ws_cat_spectacle")
    local doc = assert(c:call("ws_cat_spectacle"))
    local again, statut = c:call("ws_cat_spectacle")
    assert.is_true(statut.cached)
    assert.are.same(doc, again)
    assert.are.equal(before + 1, sent("ws_cat_spectacle"))
    assert(c:call("ws_cat_spectacle", { filtre = 1, date_modif = "20190701" }))
    assert.are.equal(before + 2, sent("ws_cat_spectacle"))
  end)

  it("keeps the answers of clients with another client number apart", function()
    local before = sent("ws_cat_listes")
    assert(c:call("ws_cat_listes"))
    local other = sb:client{ cache = store, client_id = 100 }   -- the sandbox's second client
    local _, statut = assert(other:call("ws_cat_listes"))
    assert.is_nil(statut.cached)
    assert.are.equal(before + 2, sent("ws_cat_listes"))
  end)

  it("honours cache_ttl", function()
    local now = 0
    local s = cache.new{ ttl = 3600, clock = function() return now end }
    local cc = sb:client{ cache = s }
    local before = sent("ws_cat_article")
    assert(cc:call("ws_cat_article", nil, { cache_ttl = 5 }))
    now = 4
    assert(cc:call("ws_cat_article"))
    assert.are.equal(before + 1, sent("ws_cat_article"))
    now = 6
    assert(cc:call("ws_cat_article"))
    assert.are.equal(before + 2, sent("ws_cat_article"))
    assert.has_error(function() cc:call("ws_cat_article", nil, { cache_ttl = 0 }) end)
  end)

  it("never caches a failure", function()
    assert(sbx.faults(sb.url, { "ws_cat_abonnement:status=503,count=1" }))
    local before = sent("ws_cat_abonnement")
    local doc, err = c:call("ws_cat_abonnement")
    assert.is_nil(doc)
    assert.are.equal("http", err.kind)
    assert(c:call("ws_cat_abonnement"))
    assert.are.equal(before + 2, sent("ws_cat_abonnement"))
  end)

  it("never caches what is not in its list, and nothing in its list takes a session token", function()
    local before = sent("ws_idsession")
    assert(c:call("ws_idsession"))
    assert(c:call("ws_idsession"))
    assert.are.equal(before + 2, sent("ws_idsession"))
    local s = assert(c:session())
    before = sent("ws_info_contact")
    s:info_contact{}
    s:info_contact{}
    assert.are.equal(before + 2, sent("ws_info_contact"))
    -- a visitor's answer cannot reach the cache: every cached service is
    -- ws or none mode, and a token given to one is refused before sending
    local client_cache = require "billetterie.client_cache"
    local catalogue = require "billetterie.catalogue"
    for name in pairs(client_cache.SERVICES) do
      local auth = catalogue.services[name].auth
      assert.truthy(auth == "ws" or auth == "none", name .. " is " .. auth .. " mode")
      before = sent(name)
      local doc, err = c:call(name, { x_rsi_token = s.token })
      assert.is_nil(doc)
      assert.are.same({ "invalid_param", before }, { err.kind, sent(name) }, name)
    end
    -- nor a service whose answer the client finishes after the call (next_ts)
    assert.is_nil(client_cache.SERVICES.ws_liste_fiches_modifiees)
  end)

  it("with strict = false, never serves or stores a call carrying a token or a credential", function()
    -- the catalogue's check is off: x_rsi_token reaches a ws-mode service,
    -- and the key leaves secrets out, so only applies() keeps them apart
    local loose = sb:client{ cache = store, retries = 0, strict = false }
    local s1, s2 = assert(loose:session()), assert(loose:session())
    local before = sent("ws_cat_abonnement")
    local calls = {
      { x_rsi_token = s1.token }, { x_rsi_token = s2.token }, { x_rsi_token = "garbage" },
      { X_RSI_TOKEN = s1.token }, { jeton = s1.token }, { web_passe = "Autre-2024" },
      { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp" },   -- another account's, given by the caller
      { x_rsi_client = 677 }, { x_rsi_pwd_key = "k" }, { x_rsi_api_key = "k" },
    }
    for i, p in ipairs(calls) do
      local _, statut = loose:call("ws_cat_abonnement", p)
      assert.is_nil(statut and statut.cached, "call " .. i)
      assert.are.equal(before + i, sent("ws_cat_abonnement"), "call " .. i)
    end
    -- nothing of those calls was stored: the plain call is a miss, then a hit
    local _, first = assert(loose:call("ws_cat_abonnement"))
    assert.is_nil(first.cached)
    local _, second = assert(loose:call("ws_cat_abonnement"))
    assert.is_true(second.cached)
    assert.are.equal(before + #calls + 1, sent("ws_cat_abonnement"))
    -- every credential of every mode and every secret is refused, whatever its case
    local client_cache = require "billetterie.client_cache"
    local catalogue = require "billetterie.catalogue"
    local service = catalogue.services.ws_cat_listes
    for _, names in pairs(catalogue.credentials) do
      for _, name in ipairs(names) do
        assert.is_false(client_cache.applies(service, { [name] = "v" }), name)
        assert.is_false(client_cache.applies(service, { [name:upper()] = "v" }), name)
      end
    end
    for name in pairs(catalogue.secrets) do
      assert.is_false(client_cache.applies(service, { [name] = "v" }), name)
      assert.is_false(client_cache.applies(service, { [name .. "[0]"] = "v" }), name)
    end
    assert.is_true(client_cache.applies(service, { id_formulaire = 1 }))
  end)

  it("keeps the password out of its keys", function()
    local client_cache = require "billetterie.client_cache"
    local catalogue = require "billetterie.catalogue"
    local fields = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = 677 }
    local key = client_cache.key(c, catalogue.services.ws_cat_listes, fields)
    assert.is_nil(key:find("xrsimdp", 1, true))
    assert.truthy(key:find("xrsitest", 1, true))
    -- and what the store holds has no secret either
    local seen = {}
    local spy = {
      get = function(_, k) return store:get(k) end,
      set = function(_, k, v, ttl) seen[#seen + 1] = { k, cjson.encode(v) }; return store:set(k, v, ttl) end,
    }
    local cc = sb:client{ cache = spy }
    assert(cc:call("ws_info_formulaire", { id_formulaire = 1 }))
    assert(cc:call("ws_cat_listes"))
    assert.are.equal(2, #seen)
    for _, kv in ipairs(seen) do
      for _, text in ipairs(kv) do
        assert.is_nil(text:find("xrsimdp", 1, true), text)
        assert.is_nil(text:find("x_rsi_ws_mdp", 1, true), text)
      end
      assert.truthy(#kv[2] > 20, kv[2])                 -- the answer itself was stored
    end
  end)
end)
