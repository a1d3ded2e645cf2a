-- The clients against answers of odd shapes, programmer mistakes and the
-- bulk import's failure paths: every expected failure is an error value
-- (kind, message, a tostring that never raises), every mistake raises with
-- a clear message. Real HTTP against a real server answering fixed bodies
-- (spec/support/echo_server) and the sandbox.
local billetterie = require "billetterie"
local bulk = require "billetterie.bulk"
local errors = require "billetterie.error"
local json = require "billetterie.json"
local s360 = require "billetterie.s360"
local echo = require "spec.support.echo_server"
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"

local NGINX_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1>"
  .. "</center><hr><center>nginx</center></body></html>"
local function ko(erreur) return '{"retour":{"statut":{"code":4,"traitement":"ko","message":"Problème"},'
  .. '"erreur":' .. erreur .. '}}' end

local BODIES = {
  detailnull = { body = ko('{"code":4,"détail":null}') },
  detailfalse = { body = ko('{"code":4,"detail":false}') },
  detailtable = { body = ko('{"détail":{"champ":"x"}}') },
  msgnull = { body = '{"retour":{"statut":{"code":603,"traitement":"ok"},"message":null}}' },
  msgstring = { body = '{"retour":{"statut":{"code":603,"traitement":"ok"},"message":"hello"}}' },
  jetontable = { body = '{"retour":{"statut":{"code":603,"traitement":"ok"},"message":{"jeton":{"a":1}}}}' },
  codestring7 = { body = '{"retour":{"statut":{"code":"7","traitement":"ko"}}}' },
  feednull = { body = '{"statut":{"code":0,"traitement":"ok"},"data":null}' },
  barelogin = { body = '{"contact":{"name":"WUCHER","surname":"Anaïs","id_clistru":50832,"id_contact":20908}}' },
  nginx200 = { body = NGINX_PAGE, type = "text/html" },
  s_array = { body = "[]" },
  s_object = { body = "{}" },
  s_null = { body = '{"statusCode":null}' },
  s_detail = { body = '{"statusCode":"failed","statusDetail":{"a":1}}' },
}

local srv, sb
setup(function()
  srv = echo.start{ bodies = BODIES }
  sb = sandbox.start()
end)
teardown(function()
  if srv then srv:stop() end
  if sb then sb:stop() end
end)

local function client(name, extra)
  local opts = { url = srv.url .. name .. "/", login = "xrsitest", password = "ws-password", client_id = 677,
                 retries = 0 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return billetterie.new(opts)
end

local function rest(name, protocol)
  return s360.new{ url = srv.url .. name, institution = "DEMO", operator = "DEMO_B2C", password = "s360-secret",
                   protocol = protocol or "rest", retries = 0, rate_limit = false, cache = false }
end

describe("odd answers", function()
  it("keep erreur.détail only as text, and tostring(err) never raises", function()
    for name, want in pairs{ detailnull = "nil", detailfalse = "nil", detailtable = '{"champ":"x"}' } do
      local r, err = client(name):idsession()
      assert.is_nil(r)
      assert.equal("vendor", err.kind)
      assert.equal(want, tostring(err.detail), name)
      local ok, text = pcall(tostring, err)
      assert.is_true(ok, text)
      assert.matches("vendor error 4", text, 1, true)
    end
    -- whatever the fields hold
    local e = errors.new{ kind = "vendor", message = { "x" }, detail = { a = 1 }, code = {}, http_status = {},
                          request_id = true, ws = 5 }
    assert.is_string(tostring(e))
  end)

  it("read a null message as no payload: never json.null, and no session without a token", function()
    local msg, statut = client("msgnull"):idsession()
    assert.is_table(msg)
    assert.are_not.equal(json.null, msg)
    assert.equal(603, statut.code)
    for _, name in ipairs{ "msgnull", "msgstring", "jetontable" } do
      local ok, s, err = pcall(function() return client(name):session() end)
      assert.is_true(ok, tostring(s))
      assert.is_nil(s)
      assert.equal("decode", err.kind, name)
      assert.matches("jeton", err.message, 1, true)
    end
    local data = client("feednull", { api_url = srv.url .. "feednull/", api_login = "WSCE", api_key = "key-12345" })
      :liste_fiches_modifiees{ ts = "2024-01-01T00:00:00" }
    assert.is_table(data)
  end)

  it("read a code sent as a string as the number it is", function()
    local _, err = client("codestring7"):idsession()
    assert.equal(7, err.code)
    assert.is_true(err.retryable)   -- 7: site in maintenance
  end)

  it("normalise the status of every envelope shape: flat and statut/data too", function()
    local envelope = require "billetterie.envelope"
    local _, st = envelope.open(json.decode('{"retour":{"code":"102","traitement":"ok","message":"m","l":[1]}}'))
    assert.equal(102, st.code)
    assert.is_true(envelope.ok(st))
    _, st = envelope.open(json.decode('{"retour":{"code":null,"traitement":"ko","message":null}}'))
    assert.is_nil(st.code)
    assert.is_nil(st.message)
    assert.is_false(envelope.ok(st))
    local data
    data, st = envelope.open(json.decode('{"statut":{"code":"2","traitement":null,"message":"ok"},"data":[]}'))
    assert.equal(2, st.code)
    assert.is_nil(st.traitement)
    assert.is_table(data)
  end)

  it("read ws_login's answer as the spec prints it (a bare contact) as a success", function()
    local msg, statut = client("barelogin"):call("ws_login", { x_rsi_token = ("A1"):rep(16),
      web_ident = "anais@example.fr", web_passe = "Secret123" })
    assert.is_table(msg, tostring(statut))
    assert.equal("ok", statut.traitement)
    assert.equal(20908, msg.contact.id_contact)
    -- the retour form still reads, against the sandbox
    local s = assert(sb:client():session())
    assert(s:ccontact{ id_formulaire = 2, name = "Wucher", surname = "Anaïs", mail = "anais.w@example.fr",
                       v_passe = "Secret123", v_passec = "Secret123" })
    local s2 = assert(sb:client():session())
    local who = assert(s2:login("anais.w@example.fr", "Secret123"))
    assert.equal("Wucher", who.contact.name)
  end)

  it("tell an HTML error page that is not well-formed XML from XML, for every client", function()
    local _, err = client("nginx200"):idsession()
    assert.equal("decode", err.kind)
    assert.matches("expected JSON, got an HTML page: 502 Bad Gateway", err.message, 1, true)
    _, err = client("nginx200"):programmation{}
    assert.equal("decode", err.kind)
    assert.matches("expected XML, got an HTML page", err.message, 1, true)
    _, err = rest("nginx200", "soap"):authenticate{ contactAuthenticationData = { login = "a", password = "bbbbbb" } }
    assert.equal("decode", err.kind)
    assert.matches("got an HTML page", err.message, 1, true)
  end)

  it("read S-360 answers without a status as decode errors, and a statusDetail only as text", function()
    for _, name in ipairs{ "s_array", "s_object", "s_null" } do
      local r, err = rest(name):authenticate{ contactAuthenticationData = { login = "a", password = "bbbbbb" } }
      assert.is_nil(r)
      assert.equal("decode", err.kind, name)
      assert.is_nil(err.code)
    end
    local _, err = rest("s_detail"):authenticate{ contactAuthenticationData = { login = "a", password = "bbbbbb" } }
    assert.equal("vendor", err.kind)
    assert.equal("failed", err.code)
    assert.is_string(err.message)
  end)
end)

describe("programmer mistakes", function()
  local c
  before_each(function() c = client("nowhere", { url = "http://127.0.0.1:1/" }) end)

  it("raise for call options that are unknown or of the wrong type", function()
    assert.has_error(function() c:call("ws_cat_listes", nil, { idempotant = true }) end,
      "unknown call option 'idempotant' (idempotent, retries, cache, cache_ttl)")
    assert.has_error(function() c:call("ws_cat_listes", nil, { retries = "2" }) end,
      "call option retries must be a whole number between 0 and 100")
    assert.has_error(function() c:call("ws_cat_listes", nil, "x") end)
    assert.has_error(function() c:cat_listes(nil, { idempotent = 1 }) end)
    local _, err = c:call("ws_cat_listes", nil, { idempotent = true, retries = 0, cache = false, cache_ttl = 5 })
    assert.equal("network", err.kind)   -- valid options: the call is made
    local s = rest("s_null")
    assert.has_error(function() s:getContactData({ contactNumber = "1" }, { retries = "x" }) end,
      "call option retries must be a whole number between 0 and 100")
    assert.has_error(function() s:getContactData({ contactNumber = "1" }, { refresh = true, foo = 1 }) end)
  end)

  it("raise a clear message for methods called with a dot", function()
    assert.has_error(function() c.call("ws_idsession") end, "use c:call(name, params), with a colon")
    assert.has_error(function() c.idsession() end, "use c:idsession{...}, with a colon")
    assert.has_error(function() c.info_organisme{ id_organisme = 1 } end, "use c:info_organisme{...}, with a colon")
    assert.has_error(function() c.session() end, "use c:session(), with a colon")
    local s = assert(sb:client():session())
    assert.has_error(function() s.login("a@b.c", "Secret123") end, "use s:login(ident, password), with a colon")
    assert.has_error(function() rest("s_null").getContactData{ contactNumber = "1" } end,
      "use c:getContactData{...}, with a colon")
  end)

  it("let a proxy of a client through the colon check", function()
    local proxy = setmetatable({}, { __index = c })
    assert.equal("http://127.0.0.1:1/spectacle?id_spectacle=1", proxy:page("spectacle", { id_spectacle = 1 }))
    assert.has_error(function() c.page("spectacle", { id_spectacle = 1 }) end, "use c:page(name, params), with a colon")
    local s = assert(sb:client():session())
    assert.has_error(function() s.page("basket") end, "use s:page(name, params), with a colon")
    assert.has_error(function() s.logout() end, "use s:logout(), with a colon")
  end)

  it("refuse at new() an address holding spaces or control characters", function()
    for _, bad in ipairs{ "http://h/x y/", "http://h/\r\nX-Evil: 1", "http://h/\0", "http://h/\t" } do
      assert.has_error(function() billetterie.new{ url = bad } end,
        "billetterie.new: url must not contain spaces or control characters")
      assert.has_error(function() billetterie.new{ url = "http://h/", api_url = bad } end,
        "billetterie.new: api_url must not contain spaces or control characters")
    end
  end)

  it("refuse at new() number options out of their range, NaN included", function()
    local nan = 0 / 0
    local bad = {
      { "timeout", nan, "between 0.001 and 86400 seconds" }, { "timeout", 0, "between 0.001 and 86400 seconds" },
      { "connect_timeout", -1, "between 0.001 and 86400 seconds" },
      { "retries", -1, "a whole number between 0 and 100" }, { "retries", 1.5, "a whole number between 0 and 100" },
      { "max_in_flight", 0, "a whole number >= 1" }, { "rate", 0, "a number of calls a second > 0" },
      { "max_size", 0, "a whole number of bytes >= 1" }, { "client_id", -677, "a whole number >= 0" },
    }
    for _, case in ipairs(bad) do
      assert.has_error(function() billetterie.new{ url = "http://h/", [case[1]] = case[2] } end,
        ("billetterie.new: option %s must be %s"):format(case[1], case[3]))
    end
    assert.is_table(billetterie.new{ url = "http://h/", timeout = 0.5, retries = 0, max_in_flight = 1, rate = 0.5 })
    assert.has_error(function() require("billetterie.s360").new{ institution = "demo", operator = "DEMO_B2C",
      password = "abc" } end, "s360.new: password is too short to be real (4 characters at least)")
  end)

  it("with strict off, refuse a table or function value as invalid_param, sending nothing", function()
    local loose = client("nowhere", { url = "http://127.0.0.1:1/", strict = false })
    for _, v in ipairs{ { a = { b = 1 } }, print } do
      local r, err = loose:info_organisme{ id_organisme = 1, foo = v }
      assert.is_nil(r)
      assert.equal("invalid_param", err.kind)   -- a request sent would be a network error
      assert.equal("foo", err.param)
    end
  end)
end)

describe("bulk.import failures", function()
  local API_KEY = "b1829f60af03c1e69a13ed44405ec898f912b63a"
  local temp = {}
  teardown(function()
    for _, p in ipairs(temp) do
      for _, suffix in ipairs{ "", ".db", ".db-wal", ".db-shm", ".report" } do os.remove(p .. suffix) end
    end
  end)
  local function write_csv(names)
    local path = os.tmpname()
    temp[#temp + 1] = path
    local f = assert(io.open(path, "w"))
    f:write("Nom;Nature\r\n")
    for _, n in ipairs(names) do f:write(n, ";Association\r\n") end
    f:close()
    return path
  end

  it("reports a record whose handling raised as failed with the error's text, and counts already", function()
    local path = write_csv{ "Robuste A", "boom", "Robuste C" }
    local map = function(rec)
      if rec.Nom == "boom" then error("no mapping for boom") end
      return { organisme = { intitule = rec.Nom, nature = rec.Nature } }
    end
    local r = assert(bulk.import{ client = sb:client(), csv = path, journal = path .. ".db", map = map,
                                  report = path .. ".report" })
    assert.same({ 3, 2, 0, 1, 0, 0 }, { r.total, r.created, r.already, r.failed, r.unknown, r.pending })
    local report = assert(io.open(path .. ".report")):read("*a")
    assert.matches("\n2;;[^\n]*no mapping for boom[^\n]*;3\n", report)
    r = assert(bulk.import{ client = sb:client(), csv = path, journal = path .. ".db", map = map })
    assert.equal(2, r.already)
  end)

  it("counts records not sent (unknown outcomes could not be checked first) as pending, not failed", function()
    local path = write_csv{ "Pending A", "Pending B", "Pending C" }
    local dead = billetterie.new{ url = "http://127.0.0.1:1/", login = "xrsitest", password = "xrsimdp",
      client_id = 677, api_url = "http://127.0.0.1:1/", api_login = "WSCE", api_key = API_KEY, retries = 0 }
    local map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature" }
    local r = assert(bulk.import{ client = dead, csv = path, journal = path .. ".db", map = map })
    assert.equal(3, r.unknown)
    local ok, out = shell(("sqlite3 %s %q"):format(path .. ".db",
      "UPDATE records SET state = 'pending' WHERE line > 1"))
    assert(ok, out)
    r = assert(bulk.import{ client = dead, csv = path, journal = path .. ".db", map = map })
    assert.is_string(r.unresolved)
    assert.same({ 0, 1, 2 }, { r.failed, r.unknown, r.pending })
  end)

  it("returns error values for a CSV, a journal or a report it cannot use", function()
    local map = { ["organisme.intitule"] = "Nom" }
    local r, err = bulk.import{ client = sb:client(), csv = "/nonexistent/x.csv", map = map }
    assert.is_nil(r)
    assert.is_true(errors.is(err))
    assert.equal("invalid_param", err.kind)
    assert.equal("csv", err.param)
    local path = write_csv{ "Journal A" }
    r, err = bulk.import{ client = sb:client(), csv = path, journal = "/nonexistent/dir/j.db", map = map }
    assert.is_nil(r)
    assert.equal("journal", err.param)
    r, err = bulk.import{ client = sb:client(), csv = path, journal = path .. ".db", map = map,
                          report = "/nonexistent/dir/report.csv" }
    assert.is_nil(r)
    assert.equal("report", err.param)
  end)
end)
