-- The sandbox over real sockets: a `billetterie sandbox` process driven with
-- the curl command-line tool (not the SDK's own client), plus in-process
-- tests of billetterie.httpd.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_spec.lua

local sandbox = require "spec.support.sandbox"

local WS = { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp", x_rsi_client = "677" }
-- annex 4.3.1's fixture, and the vendor's pretty-printed, line-wrapped
-- adresses value of 2.6.2 (whitespace inside the base64 text)
local ADRESSES_431 = "W3siYWRyZXNzMSI6IjIgcnVlIGhlbGVuZSBib3VjaGVyIiwiYWRyZXNzMiI6IiIsImFkcmVzczMiOiIiLCJhZHJlc3M0IjoiIiwiY2VkZXgiOiIiLCJjb2RlX3Bvc3RhbCI6Ijc4MjgwIiwiZGF0ZV9kZWJ1dCI6IiIsImRhdGVfZmluIjoiIiwiZmF4IjoiIiwiaWRfYWRyZXNzZSI6MTIzLCJpZF9jb250YWN0Ijo0NTYsImlkX29yZ2FuaXNtZSI6Nzg5LCJwYXlzIjoiRlJBTkNFIiwicHJpb3JpdGFpcmUiOnRydWUsInRlbDEiOiIwMTAyMDMwNDA1IiwidGVsMiI6IiIsInR5cGVfYWRyZXNzZSI6IlByaW5jaXBhbGUiLCJ2aWxsZSI6IkdVWUFOQ09VUlQifV0="
local ADRESSES_PRETTY = [[
WwogIHsKICAgICJhZHJlc3MxIjogIjIgcnVlIGhlbGVuZSBib3VjaGVyIiwKICAgICJhZHJlc3
MyIjogIiIsCiAgICAiYWRyZXNzMyI6ICIiLAogICAgImNlZGV4IjogIiIsCiAgICAiY29kZV9wb
3N0YWwiOiAiNzgyODAiLAogICAgImRhdGVfZGVidXQiOiAiIiwKICAgICJkYXRlX2ZpbiI6I
CIiLAogICAgImZheCI6ICIiLAogICAgInBheXMiOiAiRlJBTkNFIiwKICAgICJwcmlvcml0YW
lyZSI6IHRydWUsCiAgICAidGVsMSI6ICIwMTAyMDMwNDA1IiwKICAgICJ0ZWwyIjogIiIs
CiAgICAidHlwZV9hZHJlc3NlIjogIlByb2Zlc3Npb25uZWxsZSIsCiAgICAidmlsbGUiOiAiR1
VZQU5DT1VSVCIKICB9Cl0= ]]
local NIVEAUX = "W3siTml2ZWF1X3JlbGF0aW9uIjoiRm91cm5pc3NldXIiLCJjaGVja2VkIjp0cnVlfSx7Ik5pdmVhdV9yZWxhdGlvbiI6IlJlbGFpcyIsImNoZWNrZWQiOmZhbHNlfV0="
local CRITERES = [[{"id_formulaire":6869,"liste_champs":[{"nom":"champ_1","valeur":603},{"nom":"champ_2","valeur":[608,607]},{ "nom" : "champ_3","valeur" : "Commentaire"} ]}]]

local function q(s) return "'" .. tostring(s):gsub("'", [['\'']]) .. "'" end

-- Shell commands of the spec. Under an ASan run (LD_PRELOAD of libasan)
-- they must not inherit the preload: curl deadlocks in setlocale under it.
local function popen(cmd) return io.popen("unset LD_PRELOAD; " .. cmd) end

local function b64(s)
  local p = popen("printf %s " .. q(s) .. " | base64 -w0")
  local out = p:read("a")
  p:close()
  return out
end

local function with(base, extra)
  local t = {}
  for k, v in pairs(base) do t[k] = v end
  for k, v in pairs(extra or {}) do t[k] = v end
  return t
end

local parse_answers = require("spec.support.util").parse_answers

local function curl(args)
  local p = popen("curl -s -S -i " .. table.concat(args, " ") .. " 2>&1")
  local raw = p:read("a")
  p:close()
  return assert(parse_answers(raw)[1], "no HTTP answer: " .. raw), raw
end

-- mode: "form" (urlencoded, default), "multipart" (curl -F) or "get" (query string)
local function call(sb, path, fields, mode)
  local args = {}
  for k, v in pairs(fields or {}) do
    if mode == "multipart" then
      args[#args + 1] = "--form-string " .. q(k .. "=" .. v)
    else
      args[#args + 1] = "--data-urlencode " .. q(k .. "=" .. v)
    end
  end
  if mode == "get" then args[#args + 1] = "-G" end
  args[#args + 1] = q(sb.url .. path)
  return curl(args)
end

local function statut(a) return a.json and a.json.retour and a.json.retour.statut end

local function assert_statut(a, code, traitement)
  local s = statut(a)
  assert.is_table(s, "no retour.statut in: " .. tostring(a.body))
  assert.are.equal(code, s.code, a.body)
  assert.are.equal(traitement, s.traitement)
  assert.are.equal(require("billetterie.codes")[code].message, s.message)
end

describe("billetterie sandbox", function()
  local sb

  setup(function() sb = sandbox.start() end)
  teardown(function()
    if sb then assert.are.equal(0, sb:stop(), sb:stderr()) end
  end)

  describe("ws_idsession", function()
    it("creates a 32 hex token good for PT48H", function()
      local a = call(sb, "ws_idsession", WS)
      assert.are.equal(200, a.status)
      assert.are.equal("application/json; charset=utf-8", a.headers["content-type"])
      assert_statut(a, 603, "ok")
      local m = a.json.retour.message
      assert.matches("^[0-9A-F]+$", m.jeton)
      assert.are.equal(32, #m.jeton)
      assert.are.equal("PT48H", m.duree)
      assert.are.equal(172800, m.temps_restant)
      assert.are.equal("", m.id_session)
      assert.are.same({ id = "", temps_restant = 0, status = 0 }, m.commande)
      -- integers go out as integers, not 603.0
      assert.matches('"code":603[,}]', a.body)
      assert.matches('"temps_restant":172800[,}]', a.body)
      assert.are_not.equal(m.jeton, call(sb, "ws_idsession", WS).json.retour.message.jeton)
    end)

    it("accepts client 100 too", function()
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_client = "100" })), 603, "ok")
    end)

    it("refuses wrong credentials with 3", function()
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_ws_mdp = "nope" })), 3, "ko")
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_ws_login = "nope" })), 3, "ko")
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_client = "999" })), 3, "ko")
    end)

    it("answers 4 for a missing or malformed parameter", function()
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_client = "" })), 4, "ko")
      assert_statut(call(sb, "ws_idsession", { x_rsi_ws_login = "xrsitest", x_rsi_ws_mdp = "xrsimdp" }), 4, "ko")
      assert_statut(call(sb, "ws_idsession", with(WS, { x_rsi_client = "abc" })), 4, "ko")
    end)
  end)

  describe("session life cycle", function()
    it("goes idsession -> status 1 -> deconnexion 611 -> status 0", function()
      local jeton = call(sb, "ws_idsession", WS).json.retour.message.jeton
      local a = call(sb, "ws_status_session", { x_rsi_token = jeton })
      assert_statut(a, 603, "ok")
      local m = a.json.retour.message
      assert.are.equal(1, m.status)
      assert.is_true(m.temps_restant <= 172800 and m.temps_restant > 172700)
      assert.is_false(m.login)

      a = call(sb, "ws_deconnexion_session", with(WS, { x_rsi_token = jeton }))
      assert_statut(a, 611, "ok")
      assert.matches('"message":{}', a.body)

      a = call(sb, "ws_status_session", { x_rsi_token = jeton })
      assert_statut(a, 605, "ko")
      assert.are.equal(0, a.json.retour.message.status)
      assert.are.equal(0, a.json.retour.message.temps_restant)
      assert_statut(call(sb, "ws_deconnexion_session", with(WS, { x_rsi_token = jeton })), 605, "ko")
    end)

    it("ws_status_session: 4 without a well-formed token, 605 for an unknown one", function()
      assert_statut(call(sb, "ws_status_session", {}), 4, "ko")
      assert_statut(call(sb, "ws_status_session", { x_rsi_token = "XYZ" }), 4, "ko")
      local a = call(sb, "ws_status_session", { x_rsi_token = ("0"):rep(32) })
      assert_statut(a, 605, "ko")
      assert.are.equal(0, a.json.retour.message.status)
    end)

    it("ws_deconnexion_session needs the ws account and the token", function()
      local jeton = call(sb, "ws_idsession", WS).json.retour.message.jeton
      assert_statut(call(sb, "ws_deconnexion_session", { x_rsi_token = jeton }), 4, "ko")
      assert_statut(call(sb, "ws_deconnexion_session", with(WS, { x_rsi_token = jeton, x_rsi_ws_mdp = "x" })), 3, "ko")
      assert_statut(call(sb, "ws_deconnexion_session", WS), 4, "ko")
      -- a token of client 677 is unknown to client 100
      assert_statut(call(sb, "ws_deconnexion_session", with(WS, { x_rsi_token = jeton, x_rsi_client = "100" })), 605, "ko")
      -- still running: the failed calls did not end it
      assert.are.equal(1, call(sb, "ws_status_session", { x_rsi_token = jeton }).json.retour.message.status)
    end)
  end)

  describe("organismes", function()
    local ORG = [[{"intitule":"Ministère de la Culture","nature":"Administration","champ_libre6":2.5,"memo1":"m"}]]

    local function create(extra, mode)
      return call(sb, "ws_organisme_creation", with(WS, with({ organisme = b64(ORG) }, extra)), mode)
    end

    it("creates an organisme and ws_info_organisme reads it back", function()
      local a = create { adresses = ADRESSES_431, Niveau_de_relations = NIVEAUX, criteres = CRITERES,
        contacts = b64('[{"id_contact":21021,"action_attachement":"attacher"}]') }
      assert_statut(a, 901, "ok")
      assert.is_string(a.json.retour.detail)
      local o = a.json.retour.message.organisme
      assert.are.equal(math.type(math.tointeger(o.id_organisme)), "integer")
      assert.are.equal("Ministère de la Culture", o.intitule)
      assert.are.equal(2.5, o.champ_libre6)
      assert.are.equal(0, o.champ_libre7)
      assert.are.equal(os.date("%Y-%m-%d"), o.date_creation)
      assert.are.equal("", o.date_modif)
      assert.is_false(o.fiche_supprimee)
      assert.are.equal(1, #o.adresses)
      local ad = o.adresses[1]
      assert.are.equal("Principale", ad.type_adresse)
      assert.are.equal("GUYANCOURT", ad.ville)
      assert.is_true(ad.prioritaire)
      -- ids are the server's, not the ones sent (123/456/789)
      assert.are.equal(o.id_organisme, ad.id_organisme)
      assert.are.equal(0, ad.id_contact)
      assert.are_not.equal(123, ad.id_adresse)
      -- contact 21021 does not exist: reported per contact (503), the organisme is still created
      assert.are.equal(21021, o.contacts[1].id_contact)
      assert.are.equal(503, o.contacts[1].errors[1].code)
      assert.are.equal(6869, o.criteres.id_formulaire)

      local id = tostring(math.tointeger(o.id_organisme))
      local r = call(sb, "ws_info_organisme", with(WS, { id_organisme = id }))
      assert_statut(r, 906, "ok")
      local o2 = r.json.retour.message.organisme
      assert.is_nil(o2.contacts)
      assert.is_nil(o2.criteres)
      o.contacts, o.criteres = nil, nil
      assert.are.same(o, o2)

      r = call(sb, "ws_info_organisme", with(WS, { id_organisme = id, get_contact = "1", get_criteres = "1" }))
      assert_statut(r, 906, "ok")
      o2 = r.json.retour.message.organisme
      assert.are.same({}, o2.contacts)
      assert.matches('"contacts":%[%]', r.body)
      local c = o2.criteres
      assert.are.equal(6869, c.id_formulaire)
      assert.are.equal(3, #c.liste_champs)
      local by_nom = {}
      for _, f in ipairs(c.liste_champs) do by_nom[f.nom] = f end
      assert.are.same({ nom = "champ_1", libelle = "champ_1", type = "enumeration", multi_valeur = 0,
        valeur = { id = 603, libelle = "", code = "", ordre = 0 } }, by_nom.champ_1)
      assert.are.equal(1, by_nom.champ_2.multi_valeur)
      assert.are.equal(2, #by_nom.champ_2.valeur)
      assert.are.same({ nom = "champ_3", libelle = "champ_3", type = "texte", multi_valeur = 0,
        valeur = "Commentaire" }, by_nom.champ_3)

      -- another client does not see it
      assert_statut(call(sb, "ws_info_organisme", with(WS, { id_organisme = id, x_rsi_client = "100" })), 904, "ko")
    end)

    it("accepts plain JSON, pretty base64 wrapped over lines, URL-safe base64 without padding", function()
      local a = call(sb, "ws_organisme_creation", with(WS, { organisme = ORG, adresses = ADRESSES_PRETTY }))
      assert_statut(a, 901, "ok")
      assert.are.equal("Professionnelle", a.json.retour.message.organisme.adresses[1].type_adresse)
      local urlsafe = b64('{"intitule":"A?>>","nature":"B~~~"}'):gsub("=", ""):gsub("+", "-"):gsub("/", "_")
      assert.matches("[-_]", urlsafe)
      a = call(sb, "ws_organisme_creation", with(WS, { organisme = urlsafe }))
      assert_statut(a, 901, "ok")
      assert.are.equal("A?>>", a.json.retour.message.organisme.intitule)
    end)

    it("upserts adresses by type_adresse", function()
      local two = b64('[{"type_adresse":"Siège","ville":"PARIS","tel1":"01"},{"type_adresse":"Siège","ville":"LYON"}]')
      local o = create({ adresses = two }).json.retour.message.organisme
      assert.are.equal(1, #o.adresses)
      assert.are.equal("LYON", o.adresses[1].ville)
      assert.are.equal("01", o.adresses[1].tel1) -- absent attributes are not updated
    end)

    it("answers 903 without intitule or nature, with a detail", function()
      local a = call(sb, "ws_organisme_creation", with(WS, { organisme = b64('{"intitule":"X"}') }))
      assert_statut(a, 903, "ko")
      assert.matches("nature", a.json.retour.detail)
    end)

    it("answers 907-910 for bad criteres", function()
      local cases = {
        [907] = '{"liste_champs":[]}',
        [909] = '{"id_formulaire":1}',
        [908] = '{"id_formulaire":1,"liste_champs":{"a":1}}',
        [910] = '{"id_formulaire":1,"liste_champs":[{"nom":"champ_1"}]}',
      }
      for code, criteres in pairs(cases) do
        assert_statut(create { criteres = criteres }, code, "ko")
      end
    end)

    it("answers 4 for missing or undecodable parameters, 3 for wrong credentials", function()
      assert_statut(call(sb, "ws_organisme_creation", WS), 4, "ko")
      assert_statut(create { organisme = "%%%not base64" }, 4, "ko")
      assert_statut(create { adresses = b64('{"not":"an array"}') }, 4, "ko")
      assert_statut(create { criteres = "{broken" }, 4, "ko")
      assert_statut(call(sb, "ws_organisme_creation", with(WS, { organisme = ORG, x_rsi_ws_mdp = "x" })), 3, "ko")
      assert_statut(call(sb, "ws_info_organisme", WS), 4, "ko")
      assert_statut(call(sb, "ws_info_organisme", with(WS, { id_organisme = "12a" })), 4, "ko")
      assert_statut(call(sb, "ws_info_organisme", with(WS, { id_organisme = "1", x_rsi_client = "5" })), 3, "ko")
    end)

    it("answers 904 for an unknown id_organisme", function()
      assert_statut(call(sb, "ws_info_organisme", with(WS, { id_organisme = "999999" })), 904, "ko")
    end)
  end)

  describe("HTTP", function()
    it("accepts urlencoded, multipart and GET query strings, body over query", function()
      assert_statut(call(sb, "ws_idsession", WS, "form"), 603, "ok")
      assert_statut(call(sb, "ws_idsession", WS, "multipart"), 603, "ok")
      assert_statut(call(sb, "ws_idsession", WS, "get"), 603, "ok")
      local a = call(sb, "ws_idsession?x_rsi_client=999&x_rsi_ws_mdp=bad", WS, "form")
      assert_statut(a, 603, "ok")
      a = call(sb, "ws_organisme_creation", with(WS, { organisme = b64(ORG or "") }), "multipart")
      assert.are.equal(200, a.status)
    end)

    it("tolerates a raw '=' in an urlencoded value (unencoded base64 padding)", function()
      local a = curl { "--data-binary", q("x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677&id_organisme=1&organisme=e30="),
        q(sb.url .. "ws_info_organisme") }
      assert.are.equal(200, a.status)
      assert.is_table(statut(a))
    end)

    it("answers 404 with a JSON body for an unknown path, 405 for other methods", function()
      local a = curl { q(sb.url .. "ws_nope") }
      assert.are.equal(404, a.status)
      assert.are.equal("application/json; charset=utf-8", a.headers["content-type"])
      assert.are.equal(404, a.json.error.status)
      a = curl { "-X", "PUT", q(sb.url .. "ws_idsession") }
      assert.are.equal(405, a.status)
    end)

    it("puts a distinct X-Request-Id on every answer", function()
      local a, b = call(sb, "ws_idsession", WS), curl { q(sb.url .. "nope") }
      assert.is_string(a.headers["x-request-id"])
      assert.is_string(b.headers["x-request-id"])
      assert.are_not.equal(a.headers["x-request-id"], b.headers["x-request-id"])
      assert.are.equal(b.headers["x-request-id"], b.json.error.request_id)
    end)

    it("keeps connections alive", function()
      local p = popen(("curl -s -o /dev/null -o /dev/null -w '%%{num_connects}\\n' %s %s"):format(
        q(sb.url .. "ws_status_session"), q(sb.url .. "ws_info_organisme")))
      local out = p:read("a")
      p:close()
      assert.are.equal("1\n0\n", out)
    end)

    it("refuses an oversized body with 413", function()
      local big = os.tmpname()
      local f = assert(io.open(big, "wb"))
      f:write(("x"):rep(9 * 1024 * 1024))
      f:close()
      local a = curl { "-H", q("Content-Type: application/octet-stream"), "--data-binary", "@" .. q(big),
        q(sb.url .. "ws_idsession") }
      os.remove(big)
      assert.are.equal(413, a.status)
      assert.is_string(a.headers["x-request-id"])
      assert_statut(call(sb, "ws_idsession", WS), 603, "ok")
    end)
  end)
end)

describe("billetterie sandbox process", function()
  it("keeps its state across a restart on the same db file", function()
    local db = os.tmpname()
    local sb = sandbox.start { db = db }
    local jeton = call(sb, "ws_idsession", WS).json.retour.message.jeton
    local id = call(sb, "ws_organisme_creation", with(WS, { organisme = [[{"intitule":"Persist","nature":"N"}]] }))
      .json.retour.message.organisme.id_organisme
    assert.are.equal(0, sb:stop())

    sb = sandbox.start { db = db }
    local a = call(sb, "ws_status_session", { x_rsi_token = jeton })
    assert.are.equal(1, a.json.retour.message.status)
    a = call(sb, "ws_info_organisme", with(WS, { id_organisme = tostring(math.tointeger(id)) }))
    assert_statut(a, 906, "ok")
    assert.are.equal("Persist", a.json.retour.message.organisme.intitule)
    assert.are.equal(0, sb:stop())
    os.remove(db)
  end)

  it("expires sessions after --session-duration, and honours --clients", function()
    local sb = sandbox.start { args = { "--session-duration", "1", "--clients", "42" } }
    local a = call(sb, "ws_idsession", with(WS, { x_rsi_client = "42" }))
    assert.are.equal("PT1S", a.json.retour.message.duree)
    assert_statut(call(sb, "ws_idsession", WS), 3, "ko")
    os.execute("sleep 1.2")
    local s = call(sb, "ws_status_session", { x_rsi_token = a.json.retour.message.jeton })
    assert.are.equal(0, s.json.retour.message.status)
    sb:stop()
  end)

  it("logs one line per request with --log, exits 0 on SIGTERM", function()
    local sb = sandbox.start { args = { "--log" } }
    call(sb, "ws_idsession", WS)
    assert.are.equal(0, sb:stop())
    assert.matches("POST /ws_idsession %-> 200", sb:stderr())
    assert.not_matches("xrsimdp", sb:stderr())
  end)

  it("loads --seed demo into an existing database too, once, as --help says", function()
    local dbmod = require "billetterie.sandbox.db"
    local services = require "billetterie.sandbox.services"
    local path = os.tmpname()
    local function open() return assert(dbmod.open(path, services.schemas())) end
    local db = open()     -- a database with a record of its own
    db:tx(function()
      require("billetterie.sandbox.contacts").insert(db, 677, { name = "EXISTANT", mail = "existant@x.fr" }, os.time())
    end)
    db:close()
    local function counts()
      assert.are.equal(0, sandbox.start({ db = path, args = { "--seed", "demo" } }):stop())
      local d = open()
      local all = d:one("SELECT count(*) AS n FROM contacts").n
      local own = d:one("SELECT count(*) AS n FROM contacts WHERE data LIKE '%EXISTANT%'").n
      d:close()
      return all, own
    end
    local all, own = counts()
    assert.are.equal(1, own)          -- kept
    assert.is_true(all > 1)           -- the demo's added
    assert.are.same({ all, own }, { counts() }) -- not loaded twice
    os.remove(path)
    local p = popen("lua5.4 bin/billetterie sandbox --help")
    local help = p:read("a")
    p:close()
    assert.matches("%-%-seed NAME%s+data loaded into the database, new or existing", help)
  end)

  it("prints usage and exits 2 on a wrong flag; --help exits 0", function()
    local function run(args)
      local p = popen("lua5.4 bin/billetterie " .. args .. " 2>&1; echo \"rc=$?\"")
      local out = p:read("a")
      p:close()
      return out
    end
    local out = run("sandbox --port 0 --nope")
    assert.matches("unknown argument: %-%-nope", out)
    assert.matches("usage: billetterie sandbox", out)
    assert.matches("rc=2\n$", out)
    assert.matches("rc=2\n$", run("sandbox --db x.db"))
    assert.matches("rc=2\n$", run("frobnicate"))
    assert.matches("usage: billetterie sandbox.*rc=0\n$", run("sandbox --help"))
    assert.matches("sandbox.*rc=0\n$", run("--help"))
  end)
end)

describe("billetterie.httpd in process", function()
  local httpd = require "billetterie.httpd"

  -- Starts a shell command in the background (output to the file `out`).
  -- The popen'd shell waits for it, so it is reaped as soon as it ends.
  -- -> { pid, pipe }
  local function spawn(cmd, out)
    local pipe = popen(("(%s) >%s 2>&1 & echo $!; wait $!"):format(cmd, q(out)))
    return { pid = pipe:read("l"), pipe = pipe }
  end

  local function running(job)
    return os.execute("kill -0 " .. job.pid .. " 2>/dev/null") == true
  end

  -- Runs cmd in the background while driving srv:step; -> its output.
  local function drive(srv, cmd)
    local out = os.tmpname()
    local job = spawn(cmd, out)
    local deadline = os.time() + 10
    while running(job) and os.time() <= deadline do srv:step(20) end
    job.pipe:close()
    local f = io.open(out, "rb")
    local text = f:read("a")
    f:close()
    os.remove(out)
    return text
  end

  it("turns a handler error into a 500 and keeps serving", function()
    local srv = assert(httpd.new { port = 0, handler = function(req)
      if req.path == "/boom" then error("boom") end
      return 200, { ["Content-Type"] = "text/plain" }, "fine"
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local raw = drive(srv, ("curl -s -i %s/boom; curl -s -i %s/ok"):format(url, url))
    local answers = parse_answers(raw)
    assert.are.equal(500, answers[1].status)
    assert.is_string(answers[1].headers["x-request-id"])
    assert.are.equal(200, answers[2].status)
    assert.are.equal("fine", answers[2].body)
    srv:close()
  end)

  it("turns bad handler results into a 500", function()
    local srv = assert(httpd.new { port = 0, handler = function(req)
      if req.path == "/status" then return "200" end
      if req.path == "/header" then return 200, { ["X-Bad"] = "a\r\nb" }, "" end
      if req.path == "/name" then return 200, { "X-No-Name" }, "" end
      return 200, {}, {}
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local raw = drive(srv, ("curl -s -i %s/status %s/header %s/name %s/body"):format(url, url, url, url))
    for _, a in ipairs(parse_answers(raw)) do assert.are.equal(500, a.status) end
    assert.are.equal(4, #parse_answers(raw))
    srv:close()
  end)

  it("gives the handler method, path, query, form, params in order, headers and raw body", function()
    local seen = {}
    local srv = assert(httpd.new { port = 0, handler = function(req)
      seen[#seen + 1] = req
      return 200, { A = { "1", "2" } }, "ok"
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    drive(srv, table.concat({
      ("curl -s -H 'X-Test: a' -H 'x-test: b' --data 'liste[]=12&liste%%5B%%5D=13&k=v+w&e=&k=last' '%s/p?q=1&liste[]=11'"):format(url),
      ("curl -s -F 'f=1' -F 'g=@/etc/hostname' %s/m"):format(url),
      ("curl -s -H 'Content-Type: application/json' --data '{\"a\":1}' %s/j"):format(url),
    }, "; "))
    assert.are.equal(3, #seen)
    local r = seen[1]
    assert.are.equal("POST", r.method)
    assert.are.equal("/p", r.path)
    assert.are.same({ q = "1", ["liste[]"] = "11" }, r.query)
    assert.are.same({ ["liste[]"] = "13", k = "last", e = "" }, r.form)
    assert.are.same({ { "q", "1" }, { "liste[]", "11" }, { "liste[]", "12" }, { "liste[]", "13" },
      { "k", "v w" }, { "e", "" }, { "k", "last" } }, r.params)
    assert.are.equal("a, b", r.headers["x-test"])
    assert.is_nil(r.body)
    assert.are.equal("1", seen[2].form.f)
    assert.is_string(seen[2].form.g)
    assert.are.equal('{"a":1}', seen[3].body)
    assert.are.same({}, seen[3].form)
    assert.is_true(seen[2].id > seen[1].id)
    srv:close()
  end)

  it("enforces max_body on announced and chunked bodies", function()
    local srv = assert(httpd.new { port = 0, max_body = 100, handler = function(req)
      return 200, {}, tostring(#(req.body or ""))
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local body = ("y"):rep(1000)
    local raw = drive(srv, table.concat({
      ("curl -s -i -H 'Content-Type: text/plain' --data-binary %s %s/a"):format(body, url),
      ("curl -s -i -H 'Content-Type: text/plain' -H 'Transfer-Encoding: chunked' --data-binary %s %s/b"):format(body, url),
      ("curl -s -i -H 'Content-Type: text/plain' --data-binary %s %s/c"):format(("z"):rep(100), url),
    }, "; "))
    local a = parse_answers(raw)
    assert.are.equal(413, a[1].status)
    assert.are.equal(413, a[2].status)
    assert.are.equal(200, a[3].status)
    assert.are.equal("100", a[3].body)
    srv:close()
  end)

  it("stops reading a chunked body that runs far past max_body (closes the connection)", function()
    local calls = 0
    -- a limit above MHD's pieces (at most its 32 KiB connection buffer), so
    -- that only the count of received bytes can reach it
    local srv = assert(httpd.new { port = 0, max_body = 200000, handler = function()
      calls = calls + 1
      return 200, {}, "x"
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local path = os.tmpname()
    local f = assert(io.open(path, "wb"))
    f:write(("z"):rep(32 * 1024 * 1024))
    f:close()
    -- plain, malformed multipart (no boundary: refused from the first byte)
    -- and multipart whose parts never parse: cut alike
    for _, ctype in ipairs{ "text/plain", "multipart/form-data", "multipart/form-data; boundary=XyZ",
        "application/x-www-form-urlencoded" } do
      local raw = drive(srv, ("curl -s -o /dev/null -w '%%{size_upload}' -H 'Content-Type: %s' "
        .. "-H 'Transfer-Encoding: chunked' --data-binary @%s %s/big"):format(ctype, path, url))
      local uploaded = tonumber(raw:match("^%d+"))
      -- about 1 MiB dropped, plus what the sockets buffer: far from 32 MiB
      assert.is_true(uploaded ~= nil and uploaded < 16 * 1024 * 1024, ctype .. ": " .. raw)
    end
    os.remove(path)
    assert.are.equal(0, calls)
    srv:close()
  end)

  it("stop() from a handler makes step() return false; close is idempotent", function()
    local srv
    srv = assert(httpd.new { port = 0, handler = function()
      srv:stop()
      return 204
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local job = spawn(("curl -s %s/"):format(url), "/dev/null")
    local result
    for _ = 1, 200 do
      result = srv:step(20)
      if result == false then break end
    end
    assert.is_false(result)
    for _ = 1, 50 do srv:step(20) if not running(job) then break end end
    job.pipe:close()
    srv:close()
    srv:close()
    assert.is_nil(srv:port())
    assert.is_nil((srv:step(0)))
  end)

  it("run() returns after stop(), and close() from a handler is deferred", function()
    local srv
    srv = assert(httpd.new { port = 0, handler = function()
      srv:close()
      return 200, {}, "bye"
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local out = os.tmpname()
    local job = spawn(("curl -s %s/"):format(url), out)
    local ok, why = srv:run()
    assert.is_true(ok)
    assert.are.equal("stopped", why)
    assert.is_nil(srv:port())
    job.pipe:close()
    local f = io.open(out)
    assert.are.equal("bye", f:read("a"))
    f:close()
    os.remove(out)
  end)

  it("reports a busy port and bad arguments", function()
    local a = assert(httpd.new { port = 0, handler = print })
    local b, err = httpd.new { port = a:port(), handler = print }
    assert.is_nil(b)
    assert.matches("cannot listen", err)
    a:close()
    assert.has_error(function() httpd.new { port = 0 } end)
    assert.has_error(function() httpd.new { port = 70000, handler = print } end)
  end)

  it("is collected when dropped (and its handler with it)", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local h = function() return 200 end
      weak.srv = httpd.new { port = 0, handler = h }
      weak.handler = h
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak.srv)
    assert.is_nil(weak.handler)
  end)
end)
