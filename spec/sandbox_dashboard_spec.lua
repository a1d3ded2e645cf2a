-- The sandbox's dashboard at `/`, loaded in headless Chromium (Debian's
-- chromium package): what the project's client created shows in the page,
-- a name holding markup is shown as text (never run), secrets are not shown.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/sandbox_dashboard_spec.lua
local sandbox = require "spec.support.sandbox"
local shell = require "spec.support.shell"
local sbx = require "billetterie.sandbox"

local CHROMIUM = os.getenv("CHROMIUM") or "chromium"

-- The DOM after the page loaded (and its scripts, if any, ran). Chromium
-- runs as root here, hence --no-sandbox; a fresh profile each time; the
-- sanitizer run's preload must not reach it.
local function dom(url)
  local profile = os.tmpname()
  os.remove(profile)
  local ok, out = shell(("unset LD_PRELOAD; timeout 90 %s --headless --no-sandbox --disable-gpu --disable-quic "
    .. "--no-first-run --disable-background-networking --disable-component-update --disable-sync "
    .. "--user-data-dir=%s --dump-dom '%s' 2>/dev/null; rc=$?; rm -rf %s; [ $rc = 0 ]"):format(CHROMIUM, profile, url, profile))
  assert(ok, "chromium failed: " .. out)
  return (out:gsub("exit=%d+%s*$", ""))
end

describe("the dashboard", function()
  local sb, c, jeton, page
  local EVIL = [[Cie <script>document.title='pwned'</script><img src=x onerror="document.title='pwned2'"> & fils]]
  local CONTACT_PASSWORD = "Dashb0ardPass"

  setup(function()
    sb = sandbox.start()
    c = sb:client()
    jeton = assert(c:call("ws_idsession")).jeton
    assert(c:call("ws_organisme_creation", { organisme = { intitule = "Compagnie des Quais", nature = "Association" } }))
    -- pre-encoded: EVIL is longer than intitule's 38 characters (4.4), which the client refuses
    assert(c:call("ws_organisme_creation", { organisme = require("billetterie.core").b64encode(
      require("billetterie.json").encode({ intitule = EVIL, nature = "Association" })) }))
    assert(c:call("ws_ccontact", { x_rsi_token = jeton, id_formulaire = 1, v_nom = "LEGRAND",
      v_prenom = "Zoé", v_mail = "zoe.legrand@exemple.fr", v_passe = CONTACT_PASSWORD, v_passec = CONTACT_PASSWORD }))
    assert(sbx.faults(sb.url, { "ws_login:latency=5,count=3" }))
    page = dom(sb.url)
  end)
  teardown(function() sb:stop() end)

  it("shows the organismes and the contact the client created", function()
    assert.matches("<title>billetterie sandbox</title>", page, 1, true)
    assert.matches('id="table-organismes"', page, 1, true)
    assert.matches("Compagnie des Quais", page, 1, true)
    assert.matches('id="table-contacts"', page, 1, true)
    assert.matches("LEGRAND", page, 1, true)
    assert.matches("Zoé", page, 1, true)
    assert.matches('id="table-sessions"', page, 1, true)
    assert.matches('id="table-caddies"', page, 1, true)
  end)

  it("shows markup in a name as text: nothing injected runs", function()
    assert.matches("Cie &lt;script&gt;document.title='pwned'&lt;/script&gt;&lt;img src=x onerror=\"document.title='pwned2'\"&gt; &amp; fils", page, 1, true)
    assert.not_matches("pwned</title>", page, 1, true)
    assert.not_matches("<img", page, 1, true)
    local scripts = select(2, page:gsub("<script", ""))
    assert.equal(0, scripts)
  end)

  it("shows the fault rules and the latest requests, never a secret", function()
    assert.matches("ws_login:latency=5,count=3", page, 1, true)
    assert.matches("/ws_ccontact", page, 1, true)
    assert.matches("/ws_organisme_creation", page, 1, true)
    assert.matches(jeton:sub(1, 4) .. "…", page, 1, true) -- the token, cut
    assert.not_matches(jeton, page, 1, true)
    assert.not_matches(CONTACT_PASSWORD, page, 1, true)
    assert.not_matches(CONTACT_PASSWORD:sub(1, 4), page, 1, true) -- not even a part of it
    assert.not_matches("xrsimdp", page, 1, true)
  end)

  it("is read-only and refreshed on each load", function()
    local ok, out = shell(("unset LD_PRELOAD; curl -s -o /dev/null -w '%%{http_code}' -X POST %s"):format(sb.url))
    assert(ok, out)
    assert.matches("^405", out)
    assert(c:call("ws_organisme_creation", { organisme = { intitule = "Troupe du Lendemain", nature = "Association" } }))
    assert.matches("Troupe du Lendemain", dom(sb.url), 1, true)
  end)
end)
