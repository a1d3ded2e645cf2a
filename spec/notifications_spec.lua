-- Parsers of what the ticketing server pushes, on the spec's own examples.
local notifications = require "billetterie.notifications"

local function fixture(name)
  local f = assert(io.open("spec/fixtures/" .. name))
  local text = f:read("*a")
  f:close()
  return text
end

local function int(v) return math.type and math.type(v) == "integer" or type(v) == "number" end

describe("print-card NOTIFY (2.4.6)", function()
  it("reads the vendor's payload with ids as integers", function()
    local n = assert(notifications.print_card(fixture("notify_impression_carte.xml")))
    assert.equal("/CA0000000000938", n.idcarte)
    assert.equal("PASS", n.type_public)
    assert.equal("RICHON", n.nom)
    assert.equal("", n.organisme)
    assert.equal(29808, n.id_clistru)
    assert.equal(72050, n.id_contact)
    assert.equal(0, n.id_organisme)
    assert.is_true(int(n.id_contact))
  end)

  it("refuses what is not a NOTIFY", function()
    for _, body in ipairs{ "", "   ", "<NOTIFY><nom>x</NOTIFY>", "<caddy><id>1</id></caddy>", "{\"retour\":{}}", "<NOTIFY/>" } do
      local n, err = notifications.print_card(body)
      assert.is_nil(n)
      assert.equal("decode", err.kind)
    end
  end)
end)

describe("integer fields of a push", function()
  it("are integers or absent: text where the spec says integer is refused, an empty element is absent", function()
    local n, err = notifications.print_card("<NOTIFY><idcarte>/CA1</idcarte><id_contact>abc</id_contact></NOTIFY>")
    assert.is_nil(n)
    assert.equal("decode", err.kind)
    assert.matches("<id_contact> is not an integer", err.message, 1, true)
    assert.not_matches("abc", tostring(err), 1, true)          -- the value is not echoed
    for _, v in ipairs{ "12.5", "1e3", "0x10", "12345678901234567" } do
      n = notifications.print_card("<NOTIFY><id_clistru>" .. v .. "</id_clistru></NOTIFY>")
      assert.is_nil(n, v)
    end
    n = assert(notifications.print_card("<NOTIFY><idcarte>/CA1</idcarte><id_contact>7</id_contact>"
      .. "<id_organisme/><organisme/></NOTIFY>"))
    assert.equal(7, n.id_contact)
    assert.is_nil(n.id_organisme)
    assert.equal("", n.organisme)                               -- a text field stays text
    local c
    c, err = notifications.caddy("<caddy><id>070401758672</id><transaction><montant>75,40</montant>"
      .. "</transaction></caddy>")
    assert.is_nil(c)
    assert.matches("<montant> is not an integer", err.message, 1, true)
    c, err = notifications.caddy("<caddy><id>070401758672</id><produits><billets><billet><qtte>1</qtte></billet>"
      .. "<billet><qtte>deux</qtte></billet></billets></produits></caddy>")
    assert.is_nil(c)
    assert.matches("<qtte> is not an integer", err.message, 1, true)
  end)

  it("allow whitespace around an integer, as XML does (a pretty-printed push)", function()
    local c = assert(notifications.caddy("<caddy><id>070401758672</id><transaction><montant>\n  7540\n</montant>"
      .. "</transaction></caddy>"))
    assert.equal(7540, c.transaction.montant)
    assert.is_true(int(c.transaction.montant))
    local n = assert(notifications.print_card("<NOTIFY><idcarte>/CA1</idcarte><id_contact> 7 </id_contact></NOTIFY>"))
    assert.equal(7, n.id_contact)
  end)

  it("says what to pass when there is no raw body (a form-encoded request)", function()
    local n, err = notifications.print_card(nil)
    assert.is_nil(n)
    assert.equal("decode", err.kind)
    assert.matches("raw request body", err.message, 1, true)
  end)
end)

describe("ws_det_achat notification (2.4.2.2)", function()
  it("reads the vendor's caddy: centimes and ids as integers, order id as text, lists as arrays", function()
    local c = assert(notifications.caddy(fixture("caddy_det_achat.xml")))
    assert.equal("073101758907", c.id)
    assert.equal("170515-tito", c.x_rsi_option)
    assert.equal(7540, c.transaction.montant)
    assert.equal("OK", c.transaction.paye)
    assert.equal("20140731T105352", c.transaction.datevente)
    local carte = c.produits.cartes.carte[1]
    assert.equal("Carte Déclic", carte.libelle)
    assert.equal(1500, carte.prix_total)
    assert.equal(0, carte.billets.billet[1].frais)     -- "000"
    assert.equal(1876, carte.billets.billet[1].ref_spect)
    assert.equal(500, c.produits.billets.billet[1].prix_total)
    assert.equal(3, c.produits.prestations.prestation[1].type)
    assert.equal(13, c.produits.articles.article[1].prestations.prestation[1].ref_prest)
    assert.equal("366c728b456753fc4cbd5c5f", c.contact.identifiant)
    assert.is_true(int(c.transaction.montant))
  end)

  it("refuses a truncated or foreign body", function()
    local text = fixture("caddy_det_achat.xml")
    local c, err = notifications.caddy(text:sub(1, math.floor(#text / 2)))
    assert.is_nil(c)
    assert.equal("decode", err.kind)
    assert.matches("malformed XML", err.message)
    c, err = notifications.caddy(fixture("notify_impression_carte.xml"))
    assert.is_nil(c)
    assert.matches("expected <caddy>", err.message)
  end)
end)
