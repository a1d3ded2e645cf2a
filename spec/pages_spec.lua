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

  it("checks parameters and never sends an empty token", function()
    local url, err = pages.url(BASE, "basket", { x_rsi_token = "" })
    assert.is_nil(url)
    assert.equal("x_rsi_token", err.param)
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
