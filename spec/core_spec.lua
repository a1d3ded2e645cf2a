-- The Lua-visible C core (billetterie.core), run under Lua 5.4 and LuaJIT.
local core = require "billetterie.core"
local cjson = require "cjson"

local function engine()
  return core.http_engine{ user_agent = "billetterie-test/1" }
end

describe("core.form_encode", function()
  it("encodes arrays with [] and maps with [key], in a deterministic order", function()
    assert.equal("liste[]=12&liste[]=13", core.form_encode{ liste = { 12, 13 } })
    assert.equal("liste_maj_code_envoi[145]=1&liste_maj_code_envoi[152]=3",
      core.form_encode{ liste_maj_code_envoi = { [152] = 3, [145] = 1 } })
    assert.equal("a=1&b=2&c=3", core.form_encode{ c = 3, a = 1, b = 2 })
  end)

  it("writes the fields named as maps keyed, whatever their keys (ids 1..n look like an array)", function()
    local maps = { liste_maj_code_envoi = true, liste_maj_interet = true }
    assert.equal("liste_maj_code_envoi[]=2", core.form_encode{ liste_maj_code_envoi = { [1] = 2 } })
    assert.equal("liste_maj_code_envoi[1]=2", core.form_encode({ liste_maj_code_envoi = { [1] = 2 } }, nil, maps))
    assert.equal("x=1&liste[]=1&liste_maj_code_envoi[1]=2&liste_maj_code_envoi[2]=3&liste_maj_interet[1]=3",
      core.form_encode({ liste_maj_code_envoi = { 2, 3 }, liste_maj_interet = { 3 }, liste = { 1 } }, "x=1", maps))
    assert.equal("liste_maj_code_envoi[145]=1&liste_maj_code_envoi[152]=3",
      core.form_encode({ liste_maj_code_envoi = { [152] = 3, [145] = 1 } }, nil, maps))
    assert.equal("liste_maj_code_envoi=2", core.form_encode({ liste_maj_code_envoi = 2 }, nil, maps))
    assert.equal("", core.form_encode({ liste_maj_code_envoi = {} }, nil, maps))
    assert.equal("a[]=1", core.form_encode({ a = { 1 } }, nil, { a = false }))
    assert.has_error(function() core.form_encode({}, nil, "liste_maj_code_envoi") end)
  end)

  it("writes integer-valued numbers without a decimal part", function()
    assert.equal("id=5442", core.form_encode{ id = 5442.0 })
    assert.equal("id=5442", core.form_encode{ id = 5442 })
    assert.equal("x=2.5", core.form_encode{ x = 2.5 })
    assert.equal("a=0&b=-7&c=10", core.form_encode{ a = 0, b = -7, c = 10 })
    if math.type then   -- Lua 5.4: the whole integer range, both ends
      assert.equal("max=9223372036854775807&min=-9223372036854775808",
        core.form_encode{ max = math.maxinteger, min = math.mininteger })
    end
  end)

  it("puts an already encoded prefix first (a client's credentials, encoded once)", function()
    assert.equal("x_rsi_client=677&id=5442&liste[]=1", core.form_encode({ id = 5442, liste = { 1 } }, "x_rsi_client=677"))
    assert.equal("x_rsi_client=677", core.form_encode({}, "x_rsi_client=677"))
    assert.equal("id=1", core.form_encode({ id = 1 }, ""))
    assert.has_error(function() core.form_encode({}, {}) end)
  end)

  it("percent-encodes UTF-8, reserved characters and spaces", function()
    assert.equal("v_nom=Th%C3%A9%C3%A2tre+%26+Cie&k=a%2Bb%2Fc%3D", core.form_encode{ v_nom = "Théâtre & Cie", k = "a+b/c=" }
      :gsub("^(k=[^&]*)&(.*)$", "%2&%1"))
    assert.equal("b=1&f=0", core.form_encode{ b = true, f = false })
  end)

  it("handles forms larger than its inline buffers (many keys, long values)", function()
    local fields, list = {}, {}
    for i = 1, 100 do fields[("k%03d"):format(i)] = string.rep("é", 20) end
    for i = 1, 50 do list[i] = i end
    fields.l = list
    local text = core.form_encode(fields)
    local value = string.rep("%C3%A9", 20)
    assert.equal("k001=" .. value .. "&k002=" .. value, text:sub(1, 2 * #("k001=" .. value) + 1))
    assert.matches("&l%[%]=1&l%[%]=2&", text)
    assert.matches("&l%[%]=50$", text)
    local n = 0
    for _ in text:gmatch("&") do n = n + 1 end
    assert.equal(149, n)
  end)

  it("refuses values a form cannot hold", function()
    assert.has_error(function() core.form_encode{ f = function() end } end)
    assert.has_error(function() core.form_encode{ t = { { 1 } } } end)
    assert.has_error(function() core.form_encode{ [1] = "x" } end)
  end)

  it("writes reals with the fewest digits that read back the same, and -0 as 0", function()
    assert.equal("a=12.3&b=0.1&c=19.99&d=-2.5", core.form_encode{ a = 12.3, b = 0.1, c = 19.99, d = -2.5 })
    for _, x in ipairs{ 1 / 3, 2 / 3, 0.1 + 0.2, 1e-300, 123456.789e200, 2 ^ 60 + 0.5, -1.7976931348623157e308 } do
      local text = core.form_encode{ x = x }:match("^x=(.*)$"):gsub("%%2B", "+")
      assert.equal(x, tonumber(text))
      assert.is_true(#text <= 24)
    end
    assert.equal("x=0.30000000000000004", core.form_encode{ x = 0.1 + 0.2 })
    -- whole-number floats up to 2^63 in full, the same on both runtimes
    assert.equal("a=100000000000000000&b=-100000000000000000&c=9007199254740994&d=9223372036854775808",
      core.form_encode{ a = 1e17, b = -1e17, c = 2 ^ 53 + 2, d = 2 ^ 63 })
    assert.equal("x=1.8446744073709552e%2B19", core.form_encode{ x = 2 ^ 64 })
    assert.equal("x=1e%2B300", core.form_encode{ x = 1e300 })
    assert.equal("m[]=0&z=0", core.form_encode{ z = -0.0, m = { -0.0 } })
  end)

  it("writes integer map keys exactly and refuses non-integer number keys", function()
    assert.equal("m[-3]=b&m[7]=a", core.form_encode{ m = { [7] = "a", [-3] = "b" } })
    assert.equal("m[-100000000000000000]=c&m[2]=b&m[100000000000000000]=a",
      core.form_encode{ m = { [1e17] = "a", [2] = "b", [-1e17] = "c" } })
    if math.type then   -- Lua 5.4 keys above 2^53 do not go through a double
      assert.equal("m[1152921504606846977]=1&m[9223372036854775807]=2",
        core.form_encode{ m = { [1152921504606846977] = 1, [math.maxinteger] = 2 } })
    end
    local ok, err = pcall(core.form_encode, { m = { [1.5] = 1 } })
    assert.is_false(ok)
    assert.matches("form field m: number keys must be integers, not 1.5", err, 1, true)
    assert.has_error(function() core.form_encode{ m = { [math.huge] = 1 } } end)
  end)
end)

describe("core base64", function()
  it("round-trips binary data with standard padding", function()
    for _, s in ipairs{ "", "a", "ab", "abc", "abcd", "\0\255\128", string.rep("é", 100) } do
      assert.equal(s, core.b64decode(core.b64encode(s)))
    end
    assert.equal("aGVsbG8=", core.b64encode("hello"))
  end)

  it("reads what the vendor's examples send: wrapped, unpadded or URL-safe", function()
    assert.equal("hello", core.b64decode("aGVs\nbG8"))
    assert.equal("\251\255", core.b64decode("-_8"))
    assert.equal("\251\255", core.b64decode("+/8="))
  end)

  it("returns nil and a message on garbage", function()
    local v, err = core.b64decode("ab$d")
    assert.is_nil(v)
    assert.matches("invalid base64", err)
    assert.is_nil((core.b64decode("abcde")))
  end)
end)

describe("core.restore_integers", function()
  it("gives back integers for integer-valued numbers, keeps strings and reals", function()
    local t = core.restore_integers(cjson.decode('{"code":603,"ids":[5442,2.4],"id":"070401758672","n":{"x":-7}}'))
    assert.equal("603", tostring(t.code))
    assert.equal("5442", tostring(t.ids[1]))
    assert.equal(2.4, t.ids[2])
    assert.equal("070401758672", t.id)
    assert.equal("-7", tostring(t.n.x))
    if math.type then assert.equal("integer", math.type(t.code)) end
  end)
end)

describe("core.json_decoder", function()
  local decode = core.json_decoder(cjson.new().decode)

  it("decodes with lua-cjson and restores integers in the same call", function()
    local t = decode('{"retour":{"statut":{"code":906},"ids":[5442,2.5]}}')
    assert.equal("906", tostring(t.retour.statut.code))
    assert.equal("5442", tostring(t.retour.ids[1]))
    assert.equal(2.5, t.retour.ids[2])
    assert.equal("603", tostring(decode("603")))
    assert.equal("x", decode('"x"'))
  end)

  it("returns nil and cjson's message instead of raising", function()
    local v, err = decode('{"retour":')
    assert.is_nil(v)
    assert.is_string(err)
    assert.matches("Expected", err)
    v, err = decode(nil)
    assert.is_nil(v)
    assert.matches("string expected", err)
  end)

  it("needs a decode function", function()
    assert.has_error(function() core.json_decoder("decode") end)
  end)
end)

describe("core.private_file", function()
  local function mode(path)
    local p = io.popen("stat -c %a '" .. path .. "'")
    local m = p:read("*a"):gsub("%s+$", "")
    p:close()
    return m
  end

  it("creates a file only its owner reads, leaves an existing one, says why it cannot", function()
    local path = os.tmpname()
    os.remove(path)
    assert.is_true(core.private_file(path))
    assert.equal("600", mode(path))
    local f = assert(io.open(path, "w")); f:write("kept"); f:close()
    os.execute("chmod 644 '" .. path .. "'")
    assert.is_true(core.private_file(path))   -- an existing file: neither emptied nor changed
    assert.equal("644", mode(path))
    assert.equal("kept", assert(io.open(path)):read("*a"))
    os.remove(path)
    local ok, err = core.private_file("/nonexistent/dir/file")
    assert.is_nil(ok)
    assert.matches("cannot create /nonexistent/dir/file: ", err, 1, true)
  end)
end)

describe("core.sleep", function()
  it("sleeps, returns at once for 0 or less, and refuses NaN and huge values", function()
    local t0 = core.now()
    core.sleep(0.05)
    assert.is_true(core.now() - t0 >= 0.04)
    core.sleep(0)
    core.sleep(-1)
    core.sleep(-math.huge)
    for _, bad in ipairs{ 0 / 0, math.huge, 1e300, 86401 } do
      local ok, err = pcall(core.sleep, bad)
      assert.is_false(ok)
      assert.matches("seconds must be a number, at most 86400", err, 1, true)
    end
  end)
end)

describe("core http engine", function()
  local nginx
  setup(function() nginx = require("spec.support.nginx").start() end)
  teardown(function() if nginx then nginx.stop() end end)

  it("posts a body and reads the answer, with our user agent and gzip", function()
    local e = engine()
    local id = e:start{ url = nginx.url .. "echo", body = "a=1&b=%C3%A9", headers = { "X-Test: yes" } }
    local status, body, ctype, errkind = e:wait(id)
    assert.is_nil(errkind)
    assert.equal(200, status)
    assert.matches("^application/json", ctype)
    local echo = cjson.decode(body)
    assert.equal("POST", echo.method)
    assert.equal("a=1&b=%C3%A9", echo.body)
    assert.equal("billetterie-test/1", echo.headers["user-agent"])
    assert.equal("yes", echo.headers["x-test"])
    assert.matches("gzip", echo.headers["accept-encoding"])
    e:close()
  end)

  it("sends the engine's default headers, and a request's own beside them", function()
    local e = core.http_engine{ headers = { "Accept: application/json", "X-Default: 1" } }
    local _, body = e:wait(e:start{ url = nginx.url .. "echo", method = "GET" })
    local h = cjson.decode(body).headers
    assert.equal("application/json", h.accept)
    assert.equal("1", h["x-default"])
    _, body = e:wait(e:start{ url = nginx.url .. "echo", method = "GET", headers = { "X-Own: 2" } })
    h = cjson.decode(body).headers
    assert.equal("1", h["x-default"])
    assert.equal("2", h["x-own"])
    -- the next request on the same handle is back to the defaults only
    _, body = e:wait(e:start{ url = nginx.url .. "echo", method = "GET" })
    assert.is_nil(cjson.decode(body).headers["x-own"])
    -- a request's own header replaces the default of that name (sent once)
    _, body = e:wait(e:start{ url = nginx.url .. "echo", method = "GET", headers = { "accept: text/xml" } })
    h = cjson.decode(body).headers
    assert.equal("text/xml", h.accept)
    assert.equal("1", h["x-default"])
    e:close()
  end)

  it("applies each request's settings on a reused handle (prepared or not)", function()
    local e = engine()
    local short = core.http_config{ timeout = 0.3 }
    local long = core.http_config{ timeout = 5 }
    local _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "sleep?s=0.8", config = short })
    assert.equal("timeout", errkind)
    local status
    status, _, _, errkind = e:wait(e:start{ url = nginx.url .. "sleep?s=0.8", config = long })
    assert.is_nil(errkind)
    assert.equal(200, status)
    _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "sleep?s=0.8", timeout = 0.3 })
    assert.equal("timeout", errkind)
    -- and the URL changes with the request, GET after POST too
    local body
    status, body = e:wait(e:start{ url = nginx.url .. "echo?x=1", method = "GET", config = long })
    assert.equal("GET", cjson.decode(body).method)
    status, body = e:wait(e:start{ url = nginx.url .. "echo?x=2", body = "b=1", config = long })
    assert.equal("POST", cjson.decode(body).method)
    assert.equal("b=1", cjson.decode(body).body)
    assert.has_error(function() core.http_config{ timeout = 0 } end)
    e:close()
  end)

  it("fills a reused table from poll", function()
    local e = engine()
    local ids = { 99, 98, 97 }
    e:start{ url = nginx.url .. "echo", method = "GET" }
    local got, rounds = 0, 0
    while got == 0 and rounds < 100 do
      rounds = rounds + 1
      assert.equal(ids, e:poll(100, ids))
      got = #ids
    end
    assert.equal(1, got)
    assert.is_nil(ids[2])
    e:result(ids[1])
    e:close()
  end)

  it("reuses one connection across calls (keep-alive)", function()
    local e = engine()
    local seen = {}
    for i = 1, 5 do
      local _, body = e:wait(e:start{ url = nginx.url .. "echo", method = "GET" })
      seen[i] = cjson.decode(body).connection
    end
    for i = 2, 5 do assert.equal(seen[1], seen[i]) end
    e:close()
  end)

  it("reports a total timeout as kind timeout", function()
    local e = engine()
    local status, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url .. "sleep?s=3", timeout = 0.3 })
    assert.equal("timeout", errkind)
    assert.equal(0, status)
    assert.matches("timed out", errmsg)
    e:close()
  end)

  it("reports a refused connection as kind network", function()
    local e = engine()
    local _, _, _, errkind = e:wait(e:start{ url = "http://127.0.0.1:1/x", connect_timeout = 1 })
    assert.equal("network", errkind)
    e:close()
  end)

  it("stops at max_size, with or without Content-Length", function()
    local e = engine()
    local _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url .. "big?n=200000", max_size = 1000 })
    assert.equal("too_large", errkind)
    assert.matches("max_size", errmsg)
    _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "chunked?k=64", max_size = 10000 })
    assert.equal("too_large", errkind)
    local status, body = e:wait(e:start{ url = nginx.url .. "chunked?k=4", max_size = 10000 })
    assert.equal(200, status)
    assert.equal(4096, #body)
    e:close()
  end)

  it("writes the body to a file when asked, within max_size", function()
    local e = engine()
    local path = os.tmpname()
    local status, body = e:wait(e:start{ url = nginx.url .. "big?n=100000", method = "GET", file = path })
    assert.equal(200, status)
    assert.equal("", body)
    local f = assert(io.open(path, "rb"))
    assert.equal(string.rep("x", 100000), f:read("*a"))
    f:close()
    local _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "chunked?k=64", file = path, max_size = 10000 })
    assert.equal("too_large", errkind)
    local id, err = e:start{ url = nginx.url .. "big", file = "/nonexistent-dir/x" }
    assert.is_nil(id)
    assert.matches("cannot write", err)
    id = e:start{ url = nginx.url .. "sleep?s=2", file = path }
    e:cancel(id)
    os.remove(path)
    e:close()
  end)

  it("reports a truncated body as a network error", function()
    local e = engine()
    local _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "truncated" })
    assert.equal("network", errkind)
    e:close()
  end)

  it("hands back the X-Request-Id header", function()
    local e = engine()
    local _, body, _, _, _, request_id = e:wait(e:start{ url = nginx.url .. "fixed?body=ok", method = "GET" })
    assert.equal("ok", body)
    assert.equal("req-42", request_id)
    e:close()
  end)

  it("verifies TLS peers by default and accepts a given CA", function()
    local e = engine()
    local _, _, _, errkind = e:wait(e:start{ url = nginx.tls_url .. "echo" })
    assert.equal("tls", errkind)
    local status, body, _, err2 = e:wait(e:start{ url = nginx.tls_url .. "echo", cainfo = nginx.cert })
    assert.is_nil(err2)
    assert.equal(200, status)
    assert.equal("POST", cjson.decode(body).method)
    e:close()
  end)

  it("runs many transfers at once on the multi handle", function()
    local e = engine()
    local t0 = os.time()
    local ids, done = {}, {}
    for i = 1, 10 do ids[i] = e:start{ url = nginx.url .. "sleep?s=0.5", method = "GET" } end
    assert.equal(10, e:pending())
    local n, rounds = 0, 0
    while n < 10 and rounds < 1000 do
      rounds = rounds + 1
      for _, id in ipairs(e:poll(100)) do
        local status = e:result(id)
        assert.equal(200, status)
        done[id] = true
        n = n + 1
      end
    end
    assert.equal(10, n)
    -- ten half-second answers overlapped: far less than the 5 s they take in a row
    assert.is_true(os.time() - t0 <= 3)
    e:close()
  end)

  it("can cancel a transfer and close twice", function()
    local e = engine()
    local id = e:start{ url = nginx.url .. "sleep?s=2" }
    e:cancel(id)
    assert.equal(0, e:pending())
    e:close()
    e:close()
    assert.has_error(function() e:start{ url = nginx.url } end)
  end)

  it("checks its arguments", function()
    local e = engine()
    assert.has_error(function() e:start{} end)
    assert.has_error(function() e:start{ url = "http://x/", method = "PUT" } end)
    assert.has_error(function() e:wait(99) end)
    assert.has_error(function() e:start{ url = "http://x/", body = {} } end)
    local ok, err = pcall(e.start, e, { url = "http://x/", config = { timeout = 1 } })
    assert.is_false(ok)
    assert.matches("config must be made by core.http_config", err, 1, true)
    -- the methods check their object: another userdata (a config) is refused
    local config = core.http_config{ timeout = 1 }
    assert.has_error(function() e.start(config, { url = "http://x/" }) end)
    assert.has_error(function() e.pending(io.stdout) end)
    assert.has_error(function() e.pending({}) end)
    assert.equal(0, e:pending())
    e:close()
  end)

  it("reports a Content-Length over max_size as too_large, with the exact limit", function()
    local e = engine()
    -- /truncated announces 1000 bytes: libcurl refuses before any byte comes
    local _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url .. "truncated", max_size = 100, gzip = false })
    assert.equal("too_large", errkind)
    assert.equal("response larger than max_size (100 bytes)", errmsg)
    _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url .. "big?n=5000000", max_size = 4294967297, method = "GET" })
    assert.is_nil(errkind, errmsg)
    _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url .. "chunked?k=64", max_size = 3 * 2 ^ 31 / 2 ^ 31 * 1000 })
    assert.equal("response larger than max_size (3000 bytes)", errmsg)
    e:close()
  end)

  it("reports a failed TLS handshake as a network failure that says so", function()
    local e = engine()
    -- https to the plain-HTTP port: no certificate was ever seen
    local _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.url:gsub("^http:", "https:") .. "echo" })
    assert.equal("network", errkind)
    assert.matches("^TLS handshake failed: ", errmsg)
    assert.matches("wrong version number", errmsg, 1, true)
    -- a certificate that cannot be verified stays "tls"
    _, _, _, errkind, errmsg = e:wait(e:start{ url = nginx.tls_url .. "echo" })
    assert.equal("tls", errkind)
    assert.not_matches("handshake", errmsg)
    e:close()
  end)

  it("validates timeouts, max_size and max_host_connections before libcurl sees them", function()
    local e = engine()
    local function refused(fields, pattern)
      fields.url = nginx.url .. "echo"
      local ok, err = pcall(e.start, e, fields)
      assert.is_false(ok, pattern)
      assert.matches(pattern, err, 1, true)
    end
    for _, bad in ipairs{ 0, -1, 0 / 0, math.huge, -math.huge, 86401 } do
      refused({ timeout = bad }, "timeout must be a number of seconds in (0, 86400]")
      refused({ connect_timeout = bad }, "connect_timeout must be a number of seconds in (0, 86400]")
      assert.has_error(function() core.http_config{ timeout = bad } end)
    end
    for _, bad in ipairs{ 0, -5, 0 / 0, math.huge, 2 ^ 53 + 2, 1.5 } do
      refused({ max_size = bad }, "max_size must be a whole number in [1, 2^53]")
    end
    refused({ timeout = "10" }, "timeout must be a number")
    for _, bad in ipairs{ -1, 0 / 0, math.huge, 1e300, 2.5 } do
      local ok, err = pcall(core.http_engine, { max_host_connections = bad })
      assert.is_false(ok)
      assert.matches("max_host_connections must be a whole number in [0, 65536]", err, 1, true)
    end
    -- a sub-millisecond timeout is 1 ms, not libcurl's 0 = "no timeout"
    local t0 = core.now()
    local _, _, _, errkind = e:wait(e:start{ url = nginx.url .. "sleep?s=3", timeout = 0.0004 })
    assert.equal("timeout", errkind)
    assert.is_true(core.now() - t0 < 2)
    e:close()
  end)

  it("names the request field in argument errors", function()
    local e = engine()
    local function refused(fields, text)
      local ok, err = pcall(e.start, e, fields)
      assert.is_false(ok)
      assert.matches(text, err, 1, true)
    end
    refused({ url = nginx.url, headers = { "X-A: 1", {} } }, "headers[2] must be a string")
    refused({ url = nginx.url, headers = { "X-A: 1", 42 } }, "headers[2] must be a string")
    refused({ url = nginx.url, headers = "X-A: 1" }, "headers must be a table")
    refused({ url = nginx.url, method = 5 }, "method must be a string")
    refused({ url = nginx.url, body = 5 }, "body must be a string")
    refused({ url = nginx.url, file = 5 }, "file must be a string")
    refused({ url = nginx.url, cainfo = 5 }, "cainfo must be a string")
    assert.equal(0, e:pending())
    e:close()
  end)

  it("refuses a user agent that is not a string (no converted string freed under it)", function()
    pcall(collectgarbage, "generational")   -- Lua 5.4: frees young strings at once
    for i = 1, 50 do
      local ok, err = pcall(core.http_engine, { user_agent = 1234567890123 + i, headers = { "A: b" } })
      assert.is_false(ok)
      assert.matches("user_agent must be a string", err, 1, true)
      assert.has_error(function() core.http_config{ capath = 1e10 + i } end)
    end
    pcall(collectgarbage, "incremental")
    local e = core.http_engine{ user_agent = "ua-" .. 7 }
    local _, body = e:wait(e:start{ url = nginx.url .. "echo" })
    assert.equal("ua-7", cjson.decode(body).headers["user-agent"])
    e:close()
  end)

  it("survives a finalizer that closes the engine while results are pushed", function()
    for _, method in ipairs{ "result", "wait", "poll" } do
      local e = engine()
      local id = e:start{ url = nginx.url .. "big?n=300000", method = "GET", gzip = false }
      if method ~= "wait" then while #e:poll(50) == 0 do end end
      local f, arg = e[method], method == "poll" and {} or nil
      -- garbage whose finalizers close the engine, collected while C pushes
      -- (nothing allocates between restart and the call)
      collectgarbage("stop")
      for _ = 1, 50 do setmetatable({}, { __gc = function() e:close() end }) end
      collectgarbage("setpause", 0)
      collectgarbage("restart")
      local ok, status, body = pcall(f, e, id, arg)
      collectgarbage("setpause", 200)
      collectgarbage()
      assert.is_true(ok, tostring(status))
      if method ~= "poll" then
        assert.equal(200, status)
        assert.equal(300000, #body)
      end
      -- closed by a finalizer by now (or about to be): either way no crash
      e:close()
      assert.has_error(function() e:pending() end)
    end
  end)

  -- Sockets this process has open (Linux /proc), or nil without /proc.
  local function sockets()
    local f = io.open("/proc/self/stat")
    if not f then return nil end
    local pid = f:read("*l"):match("^(%d+)")
    f:close()
    local p = io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null")
    local n = 0
    for line in p:lines() do if line:find("socket:", 1, true) then n = n + 1 end end
    p:close()
    return n
  end

  it("reads a request raw: its __index cannot close the engine under start", function()
    collectgarbage()
    collectgarbage()
    local before = sockets()
    local e = engine()
    local req = setmetatable({ url = nginx.url .. "echo", method = "GET" }, { __index = function(_, k)
      if k == "timeout" then e:close() end
    end })
    local id = e:start(req)      -- timeout comes from the default: __index never ran
    local status = e:wait(id)
    assert.equal(200, status)
    -- a finalizer closing the engine while start reads the request
    local e2 = engine()
    local ok, err
    for _ = 1, 50 do
      collectgarbage("stop")
      for _ = 1, 20 do setmetatable({}, { __gc = function() e2:close() end }) end
      collectgarbage("setpause", 0)
      collectgarbage("restart")
      ok, err = pcall(e2.start, e2, { url = nginx.url .. "echo", method = "GET", timeout = 5, gzip = false,
        verify = true, cainfo = nil, max_size = 100000, connect_timeout = 5 })
      collectgarbage("setpause", 200)
      if not ok then break end
      e2:wait(err)
    end
    collectgarbage()
    if not ok then assert.matches("closed", err) end
    e:close()
    e2:close()
    if before then assert.equal(before, sockets()) end
  end)

  -- Closing, collecting and cancelling while transfers run. Each check is on
  -- what the process holds right after the call (sockets, the body's file),
  -- so a release skipped or deferred forever fails here, and a handle freed
  -- twice or used after its release fails under ASan and valgrind.
  local fds_on = require("spec.support.util").fds_on

  -- Garbage whose finalizer runs f (LuaJIT: only userdata have __gc, and an
  -- error in one reaches the code that allocated; Lua 5.4 only warns).
  local function garbage_running(f)
    if rawget(_G, "newproxy") then
      getmetatable(newproxy(true)).__gc = f
    else
      setmetatable({}, { __gc = f })
    end
  end

  -- An engine with three transfers nginx answers in 30 s (never, for the
  -- test): a GET, a GET writing to a file, a POST; all connected.
  local function busy_engine(path)
    local e = engine()
    local idle = sockets()   -- with the multi handle's own (its wakeup pair)
    local ids = {
      e:start{ url = nginx.url .. "sleep?s=30", method = "GET" },
      e:start{ url = nginx.url .. "sleep?s=30", method = "GET", file = path },
      e:start{ url = nginx.url .. "sleep?s=30", body = ("b"):rep(100000) },
    }
    for _ = 1, 5 do e:poll(20) end
    assert.equal(3, e:pending())
    return e, ids, idle
  end

  local function settle()
    collectgarbage()
    collectgarbage()
    return sockets()
  end

  it("closes an engine whose transfers still run: sockets and files released at once", function()
    local path = os.tmpname()
    local before = settle()
    local e, ids = busy_engine(path)
    if before then assert.is_true(sockets() >= before + 3) end
    assert.equal(1, fds_on(path) or 1)
    e:close()
    if before then assert.equal(before, sockets()) end
    assert.equal(0, fds_on(path) or 0)
    e:close()
    for _, m in ipairs{ "wait", "result", "cancel" } do
      assert.has_error(function() e[m](e, ids[1]) end, "http engine is closed")
    end
    assert.has_error(function() e:pending() end, "http engine is closed")
    assert.has_error(function() e:start{ url = nginx.url } end, "http engine is closed")
    e = nil
    collectgarbage()   -- __gc after close: nothing left to free
    collectgarbage()
    os.remove(path)
  end)

  it("releases the sockets and files of running transfers when the engine is collected", function()
    local path = os.tmpname()
    local before = settle()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local e = busy_engine(path)
      weak[1] = e
    end
    assert.equal(1, fds_on(path) or 1)
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
    if before then assert.equal(before, sockets()) end
    assert.equal(0, fds_on(path) or 0)
    os.remove(path)
  end)

  it("cancels a running transfer: its file and socket are released, its slot serves the next", function()
    local path = os.tmpname()
    settle()
    local e, ids, idle = busy_engine(path)
    e:cancel(ids[2])
    assert.equal(0, fds_on(path) or 0)
    e:cancel(ids[1])
    e:cancel(ids[3])
    assert.equal(0, e:pending())
    if idle then assert.equal(idle, sockets()) end
    assert.has_error(function() e:cancel(ids[1]) end)   -- freed: no such transfer now
    -- a start that fails on its file leaves no transfer behind
    local id, err = e:start{ url = nginx.url .. "echo", file = "/nonexistent/dir/body" }
    assert.is_nil(id)
    assert.matches("cannot write /nonexistent/dir/body", err, 1, true)
    assert.equal(0, e:pending())
    id = e:start{ url = nginx.url .. "fixed?body=again", method = "GET" }
    assert.equal(ids[1], id)
    local status, body = e:wait(id)
    assert.equal(200, status)
    assert.equal("again", body)
    e:close()
    os.remove(path)
  end)

  it("a finalizer that closes the engine, then raises, while a result is pushed: closed and released", function()
    local path = os.tmpname()
    local pause, stepmul = collectgarbage("setpause"), collectgarbage("setstepmul")
    local before = settle()
    local exercised = false
    for _ = 1, 5 do
      local e, ids = busy_engine(path)
      local done = e:start{ url = nginx.url .. "big?n=300000", method = "GET", gzip = false }
      while e:pending() > 3 do e:poll(50) end
      local inside = false
      collectgarbage("stop")
      garbage_running(function()
        exercised = exercised or inside
        e:close()
        error("finalizer failed")
      end)
      collectgarbage("setpause", 0)
      collectgarbage("setstepmul", 1e6)   -- one step, a whole cycle: at the first allocation
      collectgarbage("restart")
      inside = true
      local ok, status = pcall(e.result, e, done)
      inside = false
      collectgarbage("setpause", pause)
      collectgarbage("setstepmul", stepmul)
      pcall(collectgarbage)   -- the finalizer has run by now (LuaJIT: it may raise)
      if ok then assert.equal(200, status) else assert.matches("finalizer failed", status, 1, true) end
      -- released by now, while e is still referenced: by the method if the
      -- finalizer ran inside it (deferred close), else by close itself
      if before then assert.equal(before, sockets()) end
      assert.equal(0, fds_on(path) or 0)
      assert.has_error(function() e:wait(ids[1]) end, "http engine is closed")
      e:close()
      if exercised then break end
    end
    assert.is_true(exercised, "the finalizer never ran while the result was pushed")
    os.remove(path)
  end)

  it("stays usable after a finalizer raised while a result was pushed (LuaJIT), and closes at once", function()
    local pause, stepmul = collectgarbage("setpause"), collectgarbage("setstepmul")
    local before = settle()
    local e = engine()
    local slow = e:start{ url = nginx.url .. "sleep?s=30", method = "GET" }
    local id = e:start{ url = nginx.url .. "big?n=300000", method = "GET", gzip = false }
    while e:pending() > 1 do e:poll(50) end
    collectgarbage("stop")
    local inside, ran_inside = false, false
    garbage_running(function()
      ran_inside = inside
      error("finalizer failed")
    end)
    collectgarbage("setpause", 0)
    collectgarbage("setstepmul", 1e6)
    collectgarbage("restart")
    inside = true
    local ok, status, body = pcall(e.result, e, id)
    inside = false
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
    pcall(collectgarbage)
    assert.is_true(ran_inside, "the finalizer never ran while the result was pushed")
    if not ok then   -- the push stopped halfway: the result is still there
      assert.matches("finalizer failed", status, 1, true)
      status, body = e:result(id)
    end
    assert.equal(200, status)
    assert.equal(300000, #body)
    assert.equal(1, e:pending())
    assert.is_nil(select(2, pcall(e.cancel, e, slow)))
    e:close()   -- not deferred: the failed push left the engine idle
    if before then assert.equal(before, sockets()) end
  end)

  it("is collected with its transfers (no leak through __gc)", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local e = engine()
      e:start{ url = nginx.url .. "sleep?s=2" }
      weak[1] = e
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak[1])
  end)
end)
