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
    assert.matches("line 3 has 3 fields", select(2, csv.records("a;b\n\n1;2;3\n")))
  end)

  it("gives the file line each record starts on; skips blank lines and rows of empty fields after the last record",
      function()
    local text = 'a;b\r\n1;2\r\n\r\n"x\r\ny";3\r\n;\r\n"";\r\n5;6\r\n;;;;\r\n;;;;'
    local recs, header, lines = assert(csv.records(text))
    assert.same({ "a", "b" }, header)
    -- a row of empty fields between records stays one: skipping it would
    -- renumber the records after it (bulk's journal knows them by rank)
    assert.same({ { a = "1", b = "2" }, { a = "x\r\ny", b = "3" }, { a = "", b = "" }, { a = "", b = "" },
                  { a = "5", b = "6" } }, recs)
    assert.same({ 2, 4, 6, 7, 8 }, lines)
    -- a header alone, or followed by empty rows only: no record
    assert.same({}, (csv.records("a;b\r\n;\r\n")))
  end)

  it("finds the first line that is not UTF-8 (strict: no overlong form, surrogate, or past U+10FFFF)", function()
    assert.is_nil(csv.utf8_error("\239\187\191Nom;Ville\r\nThéâtre;Nîmes\r\n€;\240\159\152\128\r\n"))
    local cases = {
      { "Nom\r\nLyc\233e;B\233ziers\r\n", 2 },   -- Windows-1252 / Latin-1
      { "a\nb\nc\xC3", 3 },                         -- cut short at the end
      { "a\r\rb\xC3(", 3 },                          -- CR line breaks counted too
      { "\xC0\xAF", 1 }, { "\xE0\x80\xAF", 1 },        -- overlong
      { "\xED\xA0\x80", 1 },                         -- a surrogate
      { "\xF4\x90\x80\x80", 1 }, { "\xFF", 1 },     -- past U+10FFFF, never in UTF-8
    }
    for _, case in ipairs(cases) do assert.equal(case[2], csv.utf8_error(case[1]), case[1]) end
  end)

  it("quotes fields for reports only when needed", function()
    assert.equal("plain", csv.field("plain"))
    assert.equal('"a;b"', csv.field("a;b"))
    assert.equal('"say ""hi"""', csv.field('say "hi"'))
  end)
end)
