-- Page links (chapter 3) and the B2B return URL, with the spec's examples.
local pages = require "billetterie.pages"
local billetterie = require "billetterie"

local BASE = "http://billetterieweb.fr/"

describe("page links", function()
  it("builds the spec's own examples", function()
    assert.equal(BASE .. "spectacle?id_spectacle=515&lng=1", pages.url(BASE, "spectacle", { lng = 1, id_spectacle = 515 }))
    assert.equal(BASE .. "abonnement?id_abonnement=421", pages.url(BASE, "abonnement", { id_abonnement = 421 }))
    assert.equal(BASE .. "home?lng=1", pages.url(BASE, "home", { lng = 1 }))
    assert.equal(BASE .. "3web_mailing_cherche?template=11783&email=assistance%40ressources-si.fr",
      pages.url(BASE, "3web_mailing_cherche", { template = 11783, email = "assistance@ressources-si.fr" }))
    assert.equal(BASE .. "catalogue_spectacle?filtre=1&date_debut=04/09/2015&date_fin=04/09/2015&categ=chanson",
      pages.url(BASE, "catalogue_spectacle", { filtre = 1, date_debut = "04/09/2015", date_fin = "04/09/2015", categ = "chanson" }))
    assert.equal(BASE .. "basket?x_rsi_token=41C9D2F85AF54E618F52E5C43441A967",
      pages.url(BASE, "basket", { x_rsi_token = "41C9D2F85AF54E618F52E5C43441A967" }))
  end)

  it("percent-encodes values and adds the global parameters", function()
    local url = pages.url("http://x.fr", "catalogue_abonnement", { filtre = 1, code_regroup = "Super r&d", x_rsi_option = "170515-tito" })
    assert.equal("http://x.fr/catalogue_abonnement?filtre=1&code_regroup=Super%20r%26d&x_rsi_option=170515-tito", url)
  end)

  it("writes x_rsi_provenance as the seed's link does, from the origin, never encoded twice (2.7.1.3)", function()
    local seed = BASE .. "catalogue_spectacle?lng=1&x_rsi_provenance=http%3A%2F%2F127.0.0.1"
    assert.equal(seed, pages.url(BASE, "catalogue_spectacle", { lng = 1, x_rsi_provenance = "http://127.0.0.1" }))
    -- a value the caller encoded already: decoded once, so the same bytes
    assert.equal(seed, pages.url(BASE, "catalogue_spectacle", { lng = 1, x_rsi_provenance = "http%3A%2F%2F127.0.0.1" }))
    assert.equal(seed, pages.url(BASE, "catalogue_spectacle", { lng = 1, x_rsi_provenance = "http%3a%2f%2f127.0.0.1" }))
    assert.equal(BASE .. "home?x_rsi_provenance=https%3A%2F%2Fwww.th%C3%A9%C3%A2tre.fr%3A8443",
      pages.url(BASE, "home", { x_rsi_provenance = "https://www.théâtre.fr:8443" }))
    -- as catalogue data: the other params keep "/" (3.2 date_debut=04/09/2015)
    local global
    for _, p in ipairs(require("billetterie.catalogue").page_global_params) do
      if p.name == "x_rsi_provenance" then global = p end
    end
    assert.equal("component", global.query_encoding)
    assert.matches("http://127.0.0.1", global.format, 1, true)
    assert.equal(BASE .. "home?x_rsi_iframe=a/b", pages.url(BASE, "home", { x_rsi_iframe = "a/b" }))
  end)

  it("checks parameters and never sends an empty token", function()
    local url, err = pages.url(BASE, "basket", { x_rsi_token = "" })
    assert.is_nil(url)
    assert.equal("x_rsi_token", err.param)
    local _
    _, err = pages.url(BASE, "spectacle", { id_spectacle = "abc" })
    assert.equal("id_spectacle", err.param)
    _, err = pages.url(BASE, "catalogue_spectacle", { filtre = 1, date_debut = "2015-09-04", date_fin = "04/09/2015" })
    assert.equal("date_debut", err.param)
    _, err = pages.url(BASE, "home", { lng = 7 })
    assert.equal("lng", err.param)
    _, err = pages.url(BASE, "nope", {})
    assert.equal("invalid_param", err.kind)
    assert.has_error(function() pages.url("billetterieweb.fr", "home") end)
  end)

  it("is reachable from a client and every page has a builder", function()
    local c = billetterie.new{ url = "https://billetterie.theatre.fr" }
    assert.equal("https://billetterie.theatre.fr/article?id_article=39", c:page("article", { id_article = 39 }))
    assert.equal(29, #pages.names())
    local catalogue = require "billetterie.catalogue"
    for _, name in ipairs(pages.names()) do
      -- the required parameters, with the spec's example values
      local given = {}
      for _, p in ipairs(catalogue.pages[name].params) do
        if p.required then given[p.name] = p.example end
      end
      local url, err = c:page(name, given)
      assert(url, tostring(err))
      assert.equal("https://billetterie.theatre.fr/" .. name, url:match("^[^?]*"))
      if next(given) == nil then
        local _, missing = c:page(name, {})
        assert.is_nil(missing)
      else
        local none, missing = c:page(name, {})
        assert.is_nil(none)
        assert.equal("invalid_param", missing.kind)
      end
    end
  end)
end)

describe("B2B return URL", function()
  it("reads the spec's example", function()
    local r = assert(pages.b2b_return("http://siteinstitutionnel.fr/?idcaddy=040708408135&cycle="))
    assert.same({ idcaddy = "040708408135", cycle = "", paid = false }, r)
    r = assert(pages.b2b_return("idcaddy=040708408135&cycle=fin"))
    assert.is_true(r.paid)
  end)

  it("refuses a URL without a valid cart id or with an odd cycle", function()
    local r, err = pages.b2b_return("http://siteinstitutionnel.fr/?cycle=fin")
    assert.is_nil(r)
    assert.equal("decode", err.kind)
    assert.is_nil((pages.b2b_return("http://x/?idcaddy=12&cycle=maybe")))
  end)
end)

describe("pages.confirm_b2b against the sandbox (demo seed)", function()
  local sandbox = require "spec.support.sandbox"
  local sb, c
  setup(function()
    sb = sandbox.start{ args = { "--seed", "demo" } }
    c = sb:client{ retries = 0 }
  end)
  teardown(function() if sb then sb:stop() end end)

  it("believes the vendor, not the browser's cycle=fin", function()
    -- a paid cart, and an unpaid one whose return URL a visitor forged,
    -- from the sandbox's own SQLite file
    local paid_id, unpaid_id
    local db = require("luasql.sqlite3").sqlite3()
    local conn = assert(db:connect(sb.db))
    local cur = assert(conn:execute("SELECT id_caddy, etat FROM caddies WHERE client = 677 ORDER BY id_caddy"))
    local row = cur:fetch({}, "a")
    while row do
      if row.etat == "V" and not paid_id then paid_id = row.id_caddy end
      if row.etat == "A" and not unpaid_id then unpaid_id = row.id_caddy end
      row = cur:fetch({}, "a")
    end
    cur:close(); conn:close(); db:close()
    assert(paid_id and unpaid_id, "the demo seed has a paid and an unpaid cart")

    local forged = assert(pages.b2b_return("http://site.fr/?idcaddy=" .. unpaid_id .. "&cycle=fin"))
    assert.is_true(forged.paid)                        -- what the browser claims
    local r = assert(pages.confirm_b2b(c, forged))
    assert.are.same({ unpaid_id, false }, { r.idcaddy, r.paid })
    assert.equal(unpaid_id, r.caddy.id)
    assert.equal("KO", r.caddy.transaction.paye)

    r = assert(pages.confirm_b2b(c, assert(pages.b2b_return("idcaddy=" .. paid_id .. "&cycle=fin"))))
    assert.is_true(r.paid)
    assert.is_true(r.caddy.transaction.montant > 0)
    -- a caddy notification's table and a bare id work too
    assert.is_true(assert(pages.confirm_b2b(c, { id = paid_id })).paid)
    assert.is_false(assert(pages.confirm_b2b(c, unpaid_id)).paid)
  end)

  it("gives the vendor's error for an unknown cart, refuses a bad id before sending", function()
    local r, err = pages.confirm_b2b(c, { idcaddy = "999999999999", cycle = "fin", paid = true })
    assert.is_nil(r)
    assert.are.same({ "vendor", 702 }, { err.kind, err.code })
    for _, bad in ipairs{ "", "12 OR 1=1", {}, { idcaddy = 12 } } do
      r, err = pages.confirm_b2b(c, bad)
      assert.is_nil(r)
      assert.are.same({ "invalid_param", "id_caddy" }, { err.kind, err.param })
    end
    assert.has_error(function() pages.confirm_b2b(nil, "1") end)
  end)
end)
