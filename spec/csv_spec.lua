local csv = require "billetterie.csv"

describe("csv (RFC 4180, French exports)", function()
  it("reads ';' exports with quotes, doubled quotes, line breaks and CRLF", function()
    local text = '\239\187\191Nom;Ville;Note\r\n"Théâtre ""Le Pont""";Lyon;"deux\r\nlignes"\r\nCie B;Nîmes;\r\n'
    local recs, header = assert(csv.records(text))
    assert.same({ "Nom", "Ville", "Note" }, header)
    assert.equal(2, #recs)
    assert.equal('Théâtre "Le Pont"', recs[1].Nom)
    assert.equal("deux\r\nlignes", recs[1].Note)
    assert.equal("Nîmes", recs[2].Ville)
    assert.equal("", recs[2].Note)
  end)

  it("guesses ',' and reads a last line without a line break", function()
    local recs = assert(csv.records("a,b\n1,2\n3,\"4,5\""))
    assert.equal("4,5", recs[2].b)
  end)

  it("reports malformed input with its line", function()
    assert.matches("unterminated", select(2, csv.parse('a;b\n"x;y\n')))
    assert.matches("quote inside", select(2, csv.parse('a;b\nx"y;z\n')))
    assert.matches("record 1 has 3 fields", select(2, csv.records("a;b\n1;2;3\n")))
  end)

  it("quotes fields for reports only when needed", function()
    assert.equal("plain", csv.field("plain"))
    assert.equal('"a;b"', csv.field("a;b"))
    assert.equal('"say ""hi"""', csv.field('say "hi"'))
  end)
end)
