-- The examples run as written.
local sh = require "spec.support.shell"

-- ./build, or a helper's own build directory ($BILLETTERIE_NGINX_BUILD)
local BUILD = require("spec.support.util").BUILD
local ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/5.4/?.so;;' "
local JIT_ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. BUILD .. "/jit/?.so;;' "

describe("examples", function()
  it("quickstart.lua runs against a fresh sandbox (make demo)", function()
    local ok, out = sh("sh tools/demo.sh")
    assert(ok, out)
    assert.matches("ws_idsession: 603 Session initialisée", out, 1, true)
    assert.matches("unknown organisme: kind=vendor code=904", out, 1, true)
    assert.matches("ws_deconnexion_session: 611", out, 1, true)
    assert.not_matches("xrsimdp", out, 1, true)
  end)

  it("notification_receiver.lua accepts the vendor's NOTIFY and refuses junk", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    local run = ("cd %s && PORT=0 %s lua5.4 %s/examples/notification_receiver.lua > out.txt 2>&1 & echo $!")
      :format(dir, ENV:gsub("%./", os.getenv("PWD") .. "/"), os.getenv("PWD"))
    local p = io.popen(run)
    local pid = p:read("*l")
    p:close()
    local url
    for _ = 1, 50 do
      local f = io.open(dir .. "/out.txt")
      local text = f and f:read("*a") or ""
      if f then f:close() end
      url = text:match("listening on (http://%S+)")
      if url then break end
      os.execute("sleep 0.1")
    end
    assert(url, "the receiver did not start")
    local ok, out = sh(("curl -s -H 'Content-Type: text/xml' --data-binary @spec/fixtures/notify_impression_carte.xml %s"):format(url))
    assert(ok, out)
    assert.matches("^OK", out)
    ok, out = sh(("curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: text/xml' --data-binary '<html/>' %s"):format(url))
    assert.matches("^400", out)
    -- a NOTIFY without a usable id_contact is refused, never a crash (500)
    for _, body in ipairs{ "<NOTIFY><idcarte>/CA1</idcarte></NOTIFY>",
                           "<NOTIFY><idcarte>/CA1</idcarte><id_contact>abc</id_contact></NOTIFY>",
                           "<NOTIFY><idcarte>/CA1</idcarte><id_contact><x>1</x></id_contact></NOTIFY>" } do
      ok, out = sh(("curl -s -w ' %%{http_code}' -H 'Content-Type: text/xml' --data-binary '%s' %s"):format(body, url))
      assert.matches(" 400exit=0", out, 1, true)
      assert.matches("id_contact", out, 1, true)
    end
    -- posted form-encoded (curl -d's default), the XML is no raw body: said so
    ok, out = sh(("curl -s -w ' %%{http_code}' --data-binary @spec/fixtures/notify_impression_carte.xml %s"):format(url))
    assert.matches(" 415exit=0", out, 1, true)
    assert.matches("Content-Type: text/xml", out, 1, true)
    -- and the receiver still takes the next one
    ok, out = sh(("curl -s -H 'Content-Type: text/xml' --data-binary @spec/fixtures/notify_impression_carte.xml %s"):format(url))
    assert.matches("^OK", out)
    os.execute("kill " .. pid)
    local f = assert(io.open(dir .. "/out.txt"))
    local log = f:read("*a")
    f:close()
    os.execute("rm -rf " .. dir)
    assert.matches("card /CA0000000000938 (PASS) printed for contact 72050", log, 1, true)
  end)

  describe("workflows against a sandbox with the demo seed", function()
    local sb, env
    setup(function()
      sb = require("spec.support.sandbox").start{ args = { "--seed", "demo" } }
      env = ENV .. ("BILLETTERIE_URL=%s BILLETTERIE_LOGIN=xrsitest BILLETTERIE_PASSWORD=xrsimdp BILLETTERIE_CLIENT=677 "
        .. "BILLETTERIE_API_URL=%s BILLETTERIE_API_LOGIN=WSCE BILLETTERIE_API_KEY=b1829f60af03c1e69a13ed44405ec898f912b63a ")
        :format(sb.url, sb.url)
    end)
    teardown(function() if sb then sb:stop() end end)

    it("newsletter_signup.lua signs a new address up and sends a known one to the newsletter page", function()
      local ok, out = sh(env .. "lua5.4 examples/newsletter_signup.lua nouvelle@example.fr Anne Neuve")
      assert(ok, out)
      assert.matches("nouvelle@example.fr signed up (contact ", out, 1, true)
      ok, out = sh(env .. "lua5.4 examples/newsletter_signup.lua herve.richon@example.org")
      assert(ok, out)
      assert.matches("already known; confirm on " .. sb.url .. "3web_mailing_cherche?template=11783&email=herve.richon%40example.org", out, 1, true)
    end)

    it("newsletter_signup.lua gives each new contact its own kernel-random password, which the vendor accepts", function()
      -- Two runs at once under LuaJIT (whose math.random is never seeded:
      -- the same numbers every run) and so within a second or so.
      local jit_env = env:gsub("^" .. ENV:gsub("%p", "%%%0"), JIT_ENV)
      local outs = { os.tmpname(), os.tmpname() }
      local mails = { "mot.de.passe.un@example.fr", "mot.de.passe.deux@example.fr" }
      assert(sh(("%sluajit examples/newsletter_signup.lua %s Un Premier >%s 2>&1 & "
        .. "%sluajit examples/newsletter_signup.lua %s Deux Second >%s 2>&1 & wait"):format(
        jit_env, mails[1], outs[1], jit_env, mails[2], outs[2])))
      local luasql = require "luasql.sqlite3"
      local senv = luasql.sqlite3()
      local db = assert(senv:connect(sb.db))
      local passwords = {}
      for i, mail in ipairs(mails) do
        local f = assert(io.open(outs[i]))
        local out = f:read("*a")
        f:close()
        os.remove(outs[i])
        assert.matches(mail .. " signed up (contact ", out, 1, true)
        local cur = assert(db:execute("SELECT passe FROM contacts WHERE mail = '" .. mail .. "'"))
        passwords[i] = cur:fetch()
        cur:close()
        assert.is_string(passwords[i])
        assert.not_matches(passwords[i], out, 1, true)            -- never printed
        -- annex 4.7: 8 characters at least, upper, lower, digit, no "@";
        -- and at least 128 bits of it (32 hex digits) from the kernel
        assert.is_true(#passwords[i] >= 8)
        assert.matches("%u", passwords[i])
        assert.matches("%l", passwords[i])
        assert.matches("%d", passwords[i])
        assert.not_matches("@", passwords[i], 1, true)
        assert.matches(("%x"):rep(32), passwords[i])
        -- the vendor took it: the contact logs in with it
        local s = assert(sb:client():session())
        local who, err = s:login(mail, passwords[i])
        assert.is_table(who, tostring(err))
        s:logout()
      end
      db:close()
      senv:close()
      assert.are_not.equal(passwords[1], passwords[2])
    end)

    it("account_area.lua logs in and prints signed-in links; refuses a wrong password", function()
      local ok, out = sh("echo 'Garrigues-2024!' | " .. env .. "lua5.4 examples/account_area.lua herve.richon@example.org")
      assert(ok, out)
      assert.matches("Bonjour Hervé RICHON", out, 1, true)
      assert.matches("basket\t" .. sb.url .. "basket%?x_rsi_token=%x+", out)
      ok, out = sh("echo 'wrong' | " .. env .. "lua5.4 examples/account_area.lua herve.richon@example.org")
      assert.is_false(ok)
      assert.matches("login refused", out, 1, true)
    end)

    it("catalogue_sync.lua streams the season into a store, then updates it", function()
      local store = os.tmpname()
      local ok, out = sh(env .. "lua5.4 examples/catalogue_sync.lua " .. store)
      assert(ok, out)
      local n = tonumber(out:match("(%d+) show%(s%) loaded"))
      assert.is_true(n and n > 0, out)
      ok, out = sh(env .. "lua5.4 examples/catalogue_sync.lua " .. store .. " 20000101")
      assert(ok, out)
      assert.matches(n .. " show(s) changed since 20000101", out, 1, true)
      local f = assert(io.open(store))
      local shows = require("cjson").decode(f:read("*a"))
      f:close()
      os.remove(store)
      local count = 0
      for _ in pairs(shows) do count = count + 1 end
      assert.equal(n, count)
    end)

    it("sales_export.lua writes one CSV line per ticket, cards and their tickets included, amounts in euros", function()
      local ok, out = sh(env .. "lua5.4 examples/sales_export.lua 2>/dev/null")
      assert(ok, out)
      local lines = {}
      for line in out:gmatch("[^\n]+") do
        if line:sub(1, 1) == '"' then lines[#lines + 1] = line end   -- the CSV, not the summary (stderr)
      end
      assert.matches("%d+ cart%(s%), %d+ ticket%(s%), %d+ card%(s%)", out)
      assert.equal('"commande";"date";"acheteur";"produit";"spectacle";"séance";"prix"', lines[1])
      local kinds = {}
      for i = 2, #lines do
        local kind = lines[i]:match('^"%d%d%d%d%d%d%d%d%d%d%d%d";"%d+T%d+";"[^"]+@[^"]+";"([^"]+)";"[^"]*";"[%dT]*";"%d+,%d%d"$')
        assert(kind, lines[i])
        kinds[kind:match("^%S+")] = true
        if kind:match("^billet %(") then kinds.card_ticket = true end
      end
      -- the demo seed sells tickets alone and inside cards (a membership, a youth pass)
      assert.is_true(kinds.billet and kinds.carte and kinds.card_ticket, out)
    end)

    it("bulk_import.lua imports the sample CSV once, even when run twice", function()
      local copy = os.tmpname()
      assert(sh("cp examples/data/organismes.csv " .. copy))
      local ok, out = sh(env .. "lua5.4 examples/bulk_import.lua " .. copy)
      assert(ok, out)
      assert.matches("3 records: 3 created, 0 failed", out, 1, true)
      assert.matches("progress: 3/3 done", out, 1, true)
      ok, out = sh(env .. "lua5.4 examples/bulk_import.lua " .. copy)   -- nothing left to send
      assert(ok, out)
      assert.matches("progress: 0/0 done", out, 1, true)
      assert.matches("3 records: 3 created, 0 failed", out, 1, true)
      for _, suffix in ipairs{ "", ".journal.db", ".journal.db-wal", ".journal.db-shm", ".failures.csv" } do
        os.remove(copy .. suffix)
      end
    end)

    it("contact_delta_sync.lua lists what changed and remembers where to start next", function()
      local state = os.tmpname()
      os.remove(state)
      local ok, out = sh(env .. "lua5.4 examples/contact_delta_sync.lua " .. state)
      assert(ok, out)
      assert.matches("contact %d+: Hervé RICHON <herve.richon@example.org>", out)
      assert.matches("organisme %d+: Lycée Alphonse Daudet", out)
      local f = assert(io.open(state))
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d$", f:read("*l"))
      f:close()
      os.remove(state)
    end)
  end)
end)
