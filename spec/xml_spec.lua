-- spec/xml_spec.lua: billetterie.xml and the XML part of billetterie.core.
-- Run from the repository root, under Lua 5.4 and LuaJIT, e.g.
--   LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--     lua5.4 /usr/bin/busted spec/xml_spec.lua
-- Documents are generated here; temporary files come from os.tmpname().

local xml = require "billetterie.xml"
local core = require "billetterie.core"

local LUA54 = _VERSION == "Lua 5.4" and not rawget(_G, "jit")

local CADDY = [[<caddy><id>073101758907</id><x_rsi_option>170515-tito</x_rsi_option><contact><genre>M.</genre><nom>TESTNEL20</nom></contact><transaction><datevente>20140731T105352</datevente><montant>7540</montant><paye>OK</paye></transaction><produits><cartes><carte><libelle>Carte Déclic</libelle><prix_total>1500</prix_total><billets><billet><frais>000</frais><liste_place/><ref_spect>1876</ref_spect><spectacle>L'OPERA DE 4 SOUS</spectacle></billet><billet><frais>000</frais><liste_place/><ref_spect>1877</ref_spect><spectacle>X</spectacle></billet></billets></carte></cartes></produits></caddy>]]

local function spectacle(i)
  return ('<SPECTACLE IDENT="%d" NOM="Spectacle %d"><TYPE>Opéra</TYPE>'
    .. '<REPRESENTATIONS><REPRESENTATION REP_DATE="12/03/2027" REP_HEURE="20:30:00" REP_SALLE="1"/>'
    .. '<REPRESENTATION REP_DATE="13/03/2027" REP_HEURE="15:00:00" REP_SALLE="2"/>'
    .. '</REPRESENTATIONS></SPECTACLE>\n'):format(i, i)
end

-- A season feed shaped like the vendor's, with n SPECTACLE elements.
local function catalogue(n, tail)
  local out = {
    '<?xml version="1.0" encoding="UTF-8"?>\n<CATALOGUE><SALLES>',
    '<SALLE SALLE_ID="1" SALLE_MERE_ID="0">Grande salle</SALLE>',
    '<SALLE SALLE_ID="2" SALLE_MERE_ID="1">Studio</SALLE></SALLES>',
    '<GRILLES><GRILLE><libelle>Tarif A</libelle><CATEGORIE_PUBLIQUE><ZONE>',
    '<PLEIN FRAIS="1,5">18,50</PLEIN></ZONE></CATEGORIE_PUBLIQUE></GRILLE></GRILLES>\n<SPECTACLES>\n',
  }
  for i = 1, n do out[#out + 1] = spectacle(i) end
  out[#out + 1] = tail or "</SPECTACLES></CATALOGUE>\n"
  return table.concat(out)
end

-- Writes s to a new temporary file, removed when the test ends, passed or not.
local tmp_files = {}
after_each(function()
  for i = #tmp_files, 1, -1 do os.remove(tmp_files[i]); tmp_files[i] = nil end
end)

local function write_tmp(s)
  local path = os.tmpname()
  tmp_files[#tmp_files + 1] = path
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
  return path
end

local function collect_all(source, tag, opts)
  local r = assert(xml.reader(source, tag, opts))
  local items = {}
  while true do
    local v, err = r:next()
    if v == nil then r:close(); return items, err end
    items[#items + 1] = v
  end
end

local fds_on = require("spec.support.util").fds_on   -- descriptors open on a path

describe("xml.decode", function()
  it("maps attributes, text and children", function()
    local t, root = xml.decode('<SPECTACLE IDENT="12" NOM="x"><TYPE>Opéra</TYPE></SPECTACLE>')
    assert.are.equal("SPECTACLE", root)
    assert.are.same({ IDENT = "12", NOM = "x", TYPE = "Opéra" }, t)
  end)

  it("gives a leaf element its text as a string, never a number", function()
    assert.are.equal("073101758907", (xml.decode("<id>073101758907</id>")))
    assert.are.equal("", (xml.decode("<liste_place/>")))
    assert.are.equal("", (xml.decode("<a></a>")))
    assert.are.equal("7540", xml.decode("<t><montant>7540</montant></t>").montant)
  end)

  it("keeps text of elements with attributes under _text", function()
    assert.are.same({ FRAIS = "1,5", _text = "18,50" },
      xml.decode('<PLEIN FRAIS="1,5">18,50</PLEIN>'))
    assert.are.same({ FRAIS = "1,5" }, xml.decode('<PLEIN FRAIS="1,5"/>'))
    -- whitespace-only text is not kept in a table
    assert.are.same({ b = "1" }, xml.decode("<a>\n  <b>1</b>\n</a>"))
  end)

  it("turns repeated children into sequences in document order", function()
    local t = xml.decode("<r><b>1</b><c>x</c><b>2</b><b>3</b></r>")
    assert.are.same({ b = { "1", "2", "3" }, c = "x" }, t)
    t = xml.decode('<r><i n="1"/><i n="2"/></r>')
    assert.are.same({ i = { { n = "1" }, { n = "2" } } }, t)
  end)

  it("makes opts.arrays names sequences even once, nil when absent", function()
    local opts = { arrays = { billet = true, caddy = true } }
    local t = xml.decode("<billets><billet><frais>000</frais></billet></billets>", opts)
    assert.are.same({ billet = { { frais = "000" } } }, t)
    t = xml.decode("<r><autre>1</autre></r>", opts)
    assert.is_nil(t.billet)
    t = xml.decode("<r><billet>1</billet><billet>2</billet></r>", opts)
    assert.are.same({ "1", "2" }, t.billet)
    -- the root itself is never wrapped
    assert.are.equal("x", (xml.decode("<caddy>x</caddy>", opts)))
  end)

  it("moves an attribute to @name when a child has its name", function()
    local t = xml.decode('<a b="attr" c="3"><b>child</b></a>')
    assert.are.same({ ["@b"] = "attr", b = "child", c = "3" }, t)
    t = xml.decode('<a b="attr"><b>1</b><b>2</b></a>')
    assert.are.same({ ["@b"] = "attr", b = { "1", "2" } }, t)
    t = xml.decode('<a b="attr"><b>1</b></a>', { arrays = { b = true } })
    assert.are.same({ ["@b"] = "attr", b = { "1" } }, t)
  end)

  it("decodes entities and character references", function()
    assert.are.equal("& < > \" ' é €",
      (xml.decode("<a>&amp; &lt; &gt; &quot; &apos; &#233; &#x20AC;</a>")))
    assert.are.equal("Tom & Jerry", xml.decode('<a n="Tom &amp; Jerry"/>').n)
  end)

  it("keeps CDATA verbatim", function()
    assert.are.equal("<b>&amp;</b>", (xml.decode("<a><![CDATA[<b>&amp;</b>]]></a>")))
    local t = xml.decode('<a x="1"><![CDATA[  ]]></a>')
    assert.are.same({ x = "1", _text = "  " }, t)
    t = xml.decode("<a>un <b>2</b> deux <![CDATA[<3>]]></a>")
    assert.are.same({ b = "2", _text = "un  deux <3>" }, t)
  end)

  it("handles UTF-8 and declared encodings", function()
    assert.are.equal("Carte Déclic", (xml.decode("<l>Carte Déclic</l>")))
    assert.are.equal("été", (xml.decode('<?xml version="1.0" encoding="ISO-8859-1"?><a>\233t\233</a>')))
  end)

  it("ignores comments and processing instructions, drops prefixes", function()
    local t = xml.decode('<?xml version="1.0"?><!-- c --><r xmlns:p="urn:p"><?pi x?>'
      .. '<!-- c --><p:b p:c="1">x</p:b></r><!-- end -->')
    assert.are.same({ b = { c = "1", _text = "x" } }, t)
  end)

  it("decodes the ws_det_achat caddy", function()
    local t, root = xml.decode(CADDY, { arrays = { billet = true, carte = true } })
    assert.are.equal("caddy", root)
    assert.are.equal("073101758907", t.id)
    assert.are.equal("170515-tito", t.x_rsi_option)
    assert.are.same({ genre = "M.", nom = "TESTNEL20" }, t.contact)
    assert.are.same({ datevente = "20140731T105352", montant = "7540", paye = "OK" }, t.transaction)
    local carte = t.produits.cartes.carte[1]
    assert.are.equal("Carte Déclic", carte.libelle)
    assert.are.equal("1500", carte.prix_total)
    local billets = carte.billets.billet
    assert.are.equal(2, #billets)
    assert.are.same({ frais = "000", liste_place = "", ref_spect = "1876",
      spectacle = "L'OPERA DE 4 SOUS" }, billets[1])
    assert.are.equal("1877", billets[2].ref_spect)
    -- without opts.arrays, two billets still make a sequence, one carte does not
    t = xml.decode(CADDY)
    assert.are.equal("Carte Déclic", t.produits.cartes.carte.libelle)
    assert.are.equal(2, #t.produits.cartes.carte.billets.billet)
  end)

  it("returns nil and a message on malformed input, without raising", function()
    local cases = {
      "<a><b>1</a>",                 -- unclosed tag
      "<caddy><id>0731",             -- truncated document
      "<a><b>1</b>",                 -- truncated after a complete child
      "",                            -- empty string
      "   ",
      "not xml",
      "<a/><b/>",                    -- two roots
      "<a>&bogus;</a>",              -- undefined entity
      "<a>\255</a>",                 -- not UTF-8
    }
    for _, s in ipairs(cases) do
      local t, err = xml.decode(s)
      assert.is_nil(t, s)
      assert.are.equal("string", type(err), s)
      assert.is_true(#err > 0, s)
    end
    local _, err = xml.decode("<a><b>1</a>")
    assert.matches("line 1: .*mismatch", err)
    _, err = xml.decode("<caddy><id>0731")
    assert.matches("premature end", err)
    _, err = xml.decode("")
    assert.are.equal("empty XML document", err)
  end)

  it("raises only for wrong argument types", function()
    assert.has_error(function() xml.decode(nil) end)
    assert.has_error(function() xml.decode(12) end)
    assert.has_error(function() xml.decode("<a/>", "opts") end)
    assert.has_error(function() xml.decode("<a/>", { arrays = "billet" }) end)
    assert.has_error(function() xml.decode("<a/>", { max_depth = 0 }) end)
  end)

  it("ignores extra arguments (opts.arrays kept, nothing shifted)", function()
    local doc = "<a><b>1</b></a>"
    for _, extra in ipairs({ "extra", 42, {}, false }) do
      local v = assert(core.xml_decode(doc, { arrays = { b = true } }, extra))
      assert.are.same({ b = { "1" } }, v)
      assert.are.same({ b = "1" }, (core.xml_decode(doc, nil, extra)))
      local r = assert(core.xml_reader({ string = "<r><it><b>1</b></it></r>" }, "it", { arrays = { b = true } }, extra))
      assert.are.same({ b = { "1" } }, r:next())
      r = assert(core.xml_reader({ string = "<r><it><b>1</b></it></r>" }, "it", nil, extra))
      assert.are.same({ b = "1" }, r:next())
    end
  end)

  it("enforces the depth limit", function()
    local function nested(n) return ("<a>"):rep(n) .. ("</a>"):rep(n) end
    assert.is_not_nil(xml.decode(nested(10), { max_depth = 10 }))
    local t, err = xml.decode(nested(11), { max_depth = 10 })
    assert.is_nil(t)
    assert.are.equal("XML nesting deeper than 10", err)
    assert.is_not_nil(xml.decode(nested(256)))
    t, err = xml.decode(nested(300))
    assert.is_nil(t)
    assert.matches("depth", err)
  end)

  it("refuses input larger than opts.max_size", function()
    local t, err = xml.decode(CADDY, { max_size = 100 })
    assert.is_nil(t)
    assert.are.equal("XML document larger than 100 bytes", err)
    assert.is_not_nil(xml.decode(CADDY, { max_size = #CADDY }))
  end)

  it("never loads external entities (no XXE)", function()
    local t = xml.decode('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    assert.are.equal("", t)
    t = xml.decode('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x><y>&e;</y><z>ok</z></x>')
    assert.are.same({ y = "", z = "ok" }, t)
    -- parameter entities and external DTDs are not fetched either
    local r = xml.decode('<!DOCTYPE x [<!ENTITY % p SYSTEM "file:///etc/passwd"> %p;]><x>ok</x>')
    assert.is_true(r == nil or not r:find("root:"))
    r = xml.decode('<!DOCTYPE x SYSTEM "file:///etc/passwd"><x>ok</x>')
    assert.is_true(r == nil or not r:find("root:"))
  end)

  it("survives a garbage collector running all the time", function()
    local pause = collectgarbage("setpause", 0)
    for _ = 1, 50 do
      local t = xml.decode(CADDY)
      assert.are.equal("1877", t.produits.cartes.carte.billets.billet[2].ref_spect)
      local items = collect_all({ string = catalogue(20) }, "REPRESENTATION")
      assert.are.equal(40, #items)
    end
    collectgarbage("setpause", pause)
  end)
end)

describe("xml.reader", function()
  local feed = catalogue(3)

  it("streams elements of a string source, at any depth", function()
    local items, err = collect_all({ string = feed }, "SPECTACLE")
    assert.is_nil(err)
    assert.are.equal(3, #items)
    assert.are.equal("1", items[1].IDENT)
    assert.are.equal("Spectacle 3", items[3].NOM)
    assert.are.equal("Opéra", items[2].TYPE)
    assert.are.equal("13/03/2027", items[1].REPRESENTATIONS.REPRESENTATION[2].REP_DATE)

    items = collect_all({ string = feed }, "SALLE")
    assert.are.same({ { SALLE_ID = "1", SALLE_MERE_ID = "0", _text = "Grande salle" },
      { SALLE_ID = "2", SALLE_MERE_ID = "1", _text = "Studio" } }, items)
    items = collect_all({ string = feed }, "PLEIN")
    assert.are.same({ { FRAIS = "1,5", _text = "18,50" } }, items)
    items = collect_all({ string = feed }, "REPRESENTATION")
    assert.are.equal(6, #items)
    assert.are.equal("15:00:00", items[6].REP_HEURE)
    items = collect_all({ string = feed }, "CATALOGUE")
    assert.are.equal(1, #items)
    assert.are.equal(3, #items[1].SPECTACLES.SPECTACLE)
    items = collect_all({ string = feed }, "libelle")
    assert.are.same({ "Tarif A" }, items)
    assert.are.same({}, (collect_all({ string = feed }, "ABSENT")))
  end)

  it("returns the outermost element when the tag nests", function()
    local items = collect_all({ string = "<r><a><a>1</a></a><a>2</a></r>" }, "a")
    assert.are.same({ { a = "1" }, "2" }, items)
  end)

  it("applies opts.arrays to each element", function()
    local items = collect_all({ string = feed }, "REPRESENTATIONS", { arrays = { REPRESENTATION = true } })
    assert.are.equal(3, #items)
    assert.are.equal(2, #items[1].REPRESENTATION)
    items = collect_all({ string = "<r><s><x>1</x></s></r>" }, "s", { arrays = { x = true } })
    assert.are.same({ { x = { "1" } } }, items)
  end)

  it("reads a file source", function()
    local path = write_tmp(feed)
    local items = collect_all({ file = path }, "SPECTACLE")
    assert.are.equal(3, #items)
    assert.are.equal("2", items[2].IDENT)
    os.remove(path)
    local r, err = xml.reader({ file = path }, "SPECTACLE")
    assert.is_nil(r)
    assert.matches("cannot open", err)
  end)

  it("returns nil, message on malformed input mid-stream, then nil", function()
    local bad = catalogue(200, "<SPECTACLE IDENT='x'><TYPE>oops</SPECTACLE></SPECTACLES></CATALOGUE>")
    for _, source in ipairs({ { string = bad }, { file = write_tmp(bad) } }) do
      local r = assert(xml.reader(source, "SPECTACLE"))
      local n, v, err = 0, nil, nil
      repeat
        v, err = r:next()
        if v then n = n + 1 end
      until v == nil
      assert.are.equal(200, n) -- every SPECTACLE before the broken one
      assert.matches("mismatch", err)
      assert.is_nil(r:next())
      assert.are.equal(1, select("#", r:next()))
      r:close()
    end
    local r = assert(xml.reader({ string = "" }, "a"))
    assert.are.same({ nil, "empty XML document" }, { r:next() })
    assert.is_nil(r:next())
    -- an empty file says the same as an empty string
    r = assert(xml.reader({ file = write_tmp("") }, "a"))
    assert.are.same({ nil, "empty XML document" }, { r:next() })
    assert.is_nil(r:next())
    r:close()
  end)

  it("yields every item completed before a malformation, wherever it falls (string or file)", function()
    local items = {
      function(i) return ("<it><id>%d</id><nom>Spectacle %d</nom></it>"):format(i, i) end,
      function(i) return ("<it a='%d'/>"):format(i) end,
      function(i) return ("\n  <p:it xmlns:p='u'><b x='1'>%s</b></p:it>"):format(("z"):rep(i % 700)) end,
      function(i) return ("<it>%s</it><other>it it</other>"):format(("y"):rep(i * 37 % 1500)) end,
    }
    local junk = { "<bad></r>", "<it><x>1</x>\1</it>", "<it>unterminated", "</r><extra/>", "<it a='1' a='2'/>", "&bogus;" }
    for k, item in ipairs(items) do
      for _, tail in ipairs(junk) do
        for n = 1, 40 do
          local parts = { "<r>" }
          for i = 1, n do parts[#parts + 1] = item(i) end
          parts[#parts + 1] = tail
          local doc = table.concat(parts)
          local sources = { { string = doc } }
          if n % 7 == 0 then sources[2] = { file = write_tmp(doc) } end
          for _, source in ipairs(sources) do
            local r = assert(core.xml_reader(source, "it"))
            local got, v, err = 0, nil, nil
            repeat
              v, err = r:next()
              if v then got = got + 1 end
            until v == nil
            assert.are.equal(n, got, ("item kind %d, %d items, then %q"):format(k, n, tail))
            assert.is_string(err)
            r:close()
            if source.file then os.remove(source.file) end
          end
        end
      end
    end
  end)

  it("yields the item before a malformation past libxml2's 512-byte blocks or after a quoted '>'", function()
    local y = ("y"):rep(600)
    local cases = {
      { "<r><it>" .. y .. "</it>&bogus;</r>", 1, "Entity 'bogus' not defined" },
      { "<r><it><id>1</id><c>" .. y .. "</c></it>\n<bad></r>", 1, "mismatch" },
      { '<r><it a="x>y">1</it>&bogus;</r>', 1, "Entity 'bogus' not defined" },
      { "<r><it a='x>y' b=\"'>\">1</it><it/>&bogus;</r>", 2, "Entity 'bogus' not defined" },
      { '<r><it a="' .. ("q>"):rep(400) .. '">1</it><it b="' .. y .. '"/>&bogus;</r>', 2, "bogus" },
      { "<r><it>1</it><it>" .. ("y"):rep(5000) .. "</it><it>3</oops></r>", 2, "mismatch" },
    }
    for i, c in ipairs(cases) do
      for _, source in ipairs({ { string = c[1] }, { file = write_tmp(c[1]) } }) do
        local items, err = collect_all(source, "it")
        assert.are.equal(c[2], #items, ("case %d (%s)"):format(i, next(source)))
        assert.matches(c[3], err, 1, true)
      end
    end
  end)

  it("yields every item before a malformation: random items with long texts and quoted '>'", function()
    local seed = os.time()
    math.randomseed(seed)
    local function text(n)
      local pieces = { "é", "x", "&gt;", "it", "a b", "\n", "€", "'", '"' }
      local t = {}
      for i = 1, n do t[i] = pieces[math.random(#pieces)] end
      return table.concat(t)
    end
    local function item(i)
      local kind = math.random(8)
      local body
      if kind == 1 then body = "<v>" .. text(math.random(0, 1500)) .. "</v>"
      elseif kind == 2 then body = "<![CDATA[ <it> > ]]>" .. text(math.random(0, 40))
      elseif kind == 3 then body = "<!-- it > <it> -->" .. text(math.random(0, 20))
      elseif kind == 4 then body = ('<w a="x>it>y" b=\'%s>\'/>'):format(("z"):rep(math.random(0, 700)))
      elseif kind == 5 then body = "<p:v xmlns:p='u'>" .. text(3) .. "</p:v>"
      elseif kind == 6 then body = '<!-- <it a="' .. text(math.random(0, 900)) .. " -->"
      elseif kind == 7 then body = "<![CDATA[ <p:it b='" .. text(math.random(0, 900)) .. "]]>"
      else body = text(math.random(0, 10)) end
      local attr = ("q>"):rep(math.random(0, 3) == 0 and math.random(0, 400) or 1)
      if math.random(4) == 1 then return ('<it n="%d" q="%s"/>'):format(i, attr) end
      return ('<it n="%d" q="%s">'):format(i, attr) .. body .. "</it>"
    end
    local bads = { "<<x", "&bogus;", "</nope>", "<it a=1>", "<it>\1", "<v></w>" }
    for round = 1, 60 do
      local parts, n = {}, math.random(1, 12)
      for i = 1, n do parts[i] = item(i) .. (math.random(3) == 1 and "\n  " or "") end
      local m = math.random(0, n - 1)
      local doc = '<?xml version="1.0"?>\n<r>' .. table.concat(parts, "", 1, m) .. bads[math.random(#bads)]
        .. table.concat(parts, "", m + 1) .. "</r>"
      local good = '<?xml version="1.0"?>\n<r>' .. table.concat(parts) .. "</r>"
      local sources = { { string = doc } }
      if round % 5 == 0 then sources[2] = { file = write_tmp(doc) } end
      for _, source in ipairs(sources) do
        local items, err = collect_all(source, "it")
        assert.are.equal(m, #items, ("seed %d round %d"):format(seed, round))
        assert.is_string(err)
      end
      local items, err = collect_all({ string = good }, "it")
      assert.is_nil(err, ("seed %d round %d"):format(seed, round))
      assert.are.equal(n, #items)
      for i = 1, n do assert.are.equal(tostring(i), items[i].n) end
    end
  end)

  -- Passes on the build before the comment-aware pre-scan too: libxml2
  -- reports what follows the root, and next() reads to the end.
  it("junk after a root element named like the tag is an error (string or file)", function()
    local roots = {
      function(n) return "<it>" .. ("y"):rep(n) .. "</it>" end,
      function(n) return "<it a='>'><b>" .. ("y"):rep(n) .. "</b></it>" end,
      function(n) return "<?xml version='1.0'?>\n<p:it xmlns:p='u'>" .. ("<c>1</c>"):rep(n % 97) .. "</p:it>" end,
      function(n) return ("<it a='%s'/>"):format(("q>"):rep(n % 300)) end,
    }
    local junks = { "junk", "<x/>", "<it/>", "<it>2</it>", "</it>", "&amp;", "<![CDATA[x]]>", "\n<!-- c -->\n<x/>", "<it" }
    for k, root in ipairs(roots) do
      for _, n in ipairs({ 0, 1, 495, 503, 507, 508, 509, 510, 511, 1020, 65530, 65536 }) do
        for _, junk in ipairs(junks) do
          local doc = root(n) .. (n % 2 == 0 and "" or "\n ") .. junk
          local sources = { { string = doc } }
          if n > 1000 or n % 5 == 0 then sources[2] = { file = write_tmp(doc) } end
          for _, source in ipairs(sources) do
            local got = {}
            for item, err in xml.each(source, "it") do got[#got + 1] = item or err end
            local last = got[#got]
            assert.is_string(last, ("root %d, %d bytes, then %q (%s)"):format(k, n, junk, next(source)))
            assert.matches("^line %d+: ", last)
            -- the root, if yielded at all, comes whole before the error
            assert.is_true(#got <= 2)
          end
        end
      end
      -- whitespace, comments and PIs after the root are allowed
      local doc = root(7) .. "\n  <!-- c --> <?pi x?>\n"
      for _, source in ipairs({ { string = doc }, { file = write_tmp(doc) } }) do
        local items, err = collect_all(source, "it")
        assert.is_nil(err)
        assert.are.equal(1, #items)
      end
    end
  end)

  -- Failed before the pre-scan knew comments, CDATA, PIs and the DOCTYPE: the
  -- fake tag's open quote hid the ends of the items that followed, so items
  -- shared a piece with the malformation and were lost.
  it("a tag-like text with an open quote in a comment, CDATA, PI or DOCTYPE does not hide items", function()
    local fakes = {
      '<!-- <it a="x -->', "<!-- <it a='x -->", "<!--<it a=\"x--><!-- ' -->",
      '<![CDATA[ <it a="x ]]>', '<?pi <it a="x ?>', '<?pi <it a="x??>',
    }
    local doctypes = {
      "<!DOCTYPE r [ <!ENTITY e \"<it a='x\"> ]>",
      "<!DOCTYPE r [ <!-- <it a=\"x --> ]>", -- (libxml2's push parser rejects a quote in a PI there)
      "<!DOCTYPE r SYSTEM \"<it a='x]\">",
    }
    local function check(doc, want, pattern, label)
      for _, source in ipairs({ { string = doc }, { file = write_tmp(doc) } }) do
        local items, err = collect_all(source, "it")
        assert.are.equal(want, #items, label .. " " .. next(source))
        for i = 1, want do assert.are.equal(tostring(i), items[i]) end
        if pattern then assert.matches(pattern, err, 1, true) else assert.is_nil(err, label) end
      end
    end
    for f, fake in ipairs(fakes) do
      for _, pad in ipairs({ 0, 1, 200, 490, 505, 510, 511, 600, 1021 }) do
        local before = "<r>" .. ("<x/>"):rep(math.floor(pad / 4)) .. ("\n"):rep(pad % 4)
        local items = "<it>1</it><it>2</it><it>3</it>"
        check(before .. fake .. items .. "&bogus;</r>", 3, "bogus", ("fake %d pad %d"):format(f, pad))
        check(before .. fake .. items .. "<bad></r>", 3, "mismatch", ("fake %d pad %d"):format(f, pad))
        check(before .. fake .. items .. "</r>", 3, nil, ("fake %d pad %d"):format(f, pad))
        if not fake:find("CDATA", 1, true) then -- the fake before the root
          check(fake .. "\n<r>" .. items .. "<bad></r>", 3, "mismatch", ("fake %d first"):format(f))
        end
      end
    end
    for d, doctype in ipairs(doctypes) do
      -- with a declaration first, and at the very first byte (libxml2's
      -- first read asks for 4 bytes: "<!DO")
      for _, head in ipairs({ '<?xml version="1.0"?>\n', "" }) do
        local doc = head .. doctype .. "\n<r><it>1</it><it>2</it>"
        local label = ("doctype %d%s"):format(d, head == "" and " first" or "")
        check(doc .. "</r>", 2, nil, label)
        check(doc .. "<bad></r>", 2, "mismatch", label)
      end
    end
  end)

  it("enforces max_depth and max_size", function()
    local deep = "<r>" .. ("<a>"):rep(20) .. ("</a>"):rep(20) .. "</r>"
    local r = assert(xml.reader({ string = deep }, "zzz", { max_depth = 5 }))
    assert.are.same({ nil, "XML nesting deeper than 5" }, { r:next() })
    r = assert(xml.reader({ string = deep }, "a", { max_depth = 5 }))
    assert.are.same({ nil, "XML nesting deeper than 5" }, { r:next() })
    assert.are.same({ nil, "XML document larger than 10 bytes" },
      { xml.reader({ string = deep }, "a", { max_size = 10 }) })
  end)

  it("raises for wrong argument types", function()
    assert.has_error(function() xml.reader("x.xml", "a") end)
    assert.has_error(function() xml.reader({}, "a") end)
    assert.has_error(function() xml.reader({ string = "<a/>", file = "f" }, "a") end)
    assert.has_error(function() xml.reader({ string = "<a/>" }, nil) end)
    assert.has_error(function() xml.reader({ string = "<a/>" }, "a", { arrays = 1 }) end)
    assert.has_error(function() core.xml_reader({ string = "<a/>" }, "a").next({}) end)
  end)

  it("closes idempotently; next after close says so", function()
    local r = assert(xml.reader({ string = feed }, "SPECTACLE"))
    assert.are.equal("1", r:next().IDENT)
    r:close()
    r:close()
    assert.are.same({ nil, "reader closed" }, { r:next() })
    assert.matches("closed", tostring(r))
    -- closing after the end, and at the end
    r = assert(xml.reader({ string = "<a/>" }, "a"))
    assert.are.equal("", r:next())
    assert.is_nil(r:next())
    r:close()
    assert.are.same({ nil, "reader closed" }, { r:next() })
  end)

  it("survives finalizers closing the reader while next() runs", function()
    local r = assert(xml.reader({ string = catalogue(300) }, "SPECTACLE"))
    local function garbage_closing_r()   -- its finalizer closes r
      local mt = { __gc = function() r:close() end }
      if rawget(_G, "newproxy") then    -- LuaJIT: only userdata have __gc
        local p = newproxy(true)
        getmetatable(p).__gc = mt.__gc
      else
        setmetatable({}, mt)
      end
    end
    local pause = collectgarbage("setpause", 0)
    local n, v, err = 0, nil, nil
    repeat
      garbage_closing_r()
      v, err = r:next()
      if v then n = n + 1 end
    until v == nil
    collectgarbage("setpause", pause)
    -- When the collector ran during the loop the reader ended closed;
    -- otherwise it reached the end. Either way, once the pending
    -- finalizers run it is closed and nothing crashed (valgrind/ASan runs).
    assert.is_true(err == nil or err == "reader closed")
    assert.is_true(n <= 300)
    collectgarbage()
    collectgarbage()
    assert.are.same({ nil, "reader closed" }, { r:next() })
  end)

  it("has __close on Lua 5.4", function()
    if not LUA54 then return end
    local chunk = assert(load([[
      local xml, src = ...
      local r <close> = assert(xml.reader(src, "SPECTACLE"))
      assert(r:next())
      return r
    ]]))
    local r = chunk(xml, { string = feed })
    assert.are.same({ nil, "reader closed" }, { r:next() })
  end)

  it("closes the file and is collected when dropped (leak test)", function()
    local path = write_tmp(feed)
    local fds = fds_on(path)
    local weak = setmetatable({}, { __mode = "v" })
    -- in a function of its own, so no dead register keeps the reader alive
    local function open_and_drop()
      local r = assert(xml.reader({ file = path }, "SPECTACLE"))
      assert.is_not_nil(r:next())     -- file open, parse under way
      weak[1] = r
      if fds then assert.are.equal(fds + 1, fds_on(path)) end
    end
    open_and_drop()
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(weak[1])
    if fds then assert.are.equal(fds, fds_on(path)) end
    -- close() frees at once
    local r = assert(xml.reader({ file = path }, "SPECTACLE"))
    assert.is_not_nil(r:next())
    r:close()
    if fds then assert.are.equal(fds, fds_on(path)) end
  end)

  it("keeps memory bounded by one element on a big document", function()
    local N = 50000
    local path = write_tmp(catalogue(N))
    local function rss_kb()
      local f = io.open("/proc/self/statm")
      if not f then return nil end
      local pages = f:read("*n") and f:read("*n")
      f:close()
      return pages and pages * 4
    end
    -- Lua heap: a full collection at checkpoints must find the same size.
    -- Process memory (libxml2 nodes, not seen by the Lua GC): checked only
    -- where it means something (not under valgrind or ASan's LD_PRELOAD).
    local check_rss = os.getenv("LD_PRELOAD") == nil and rss_kb() ~= nil
    -- settle first: LuaJIT shrinks its string table (grown while the
    -- document was generated) by half per cycle
    for _ = 1, 10 do collectgarbage("collect") end
    local base, worst = collectgarbage("count"), 0
    local r = assert(xml.reader({ file = path }, "SPECTACLE"))
    local n, rss0, rss1 = 0, nil, nil
    while true do
      local item = r:next()
      if not item then break end
      n = n + 1
      if n % 5000 == 0 then
        collectgarbage("collect")
        worst = math.max(worst, collectgarbage("count") - base)
        if n == 5000 then rss0 = check_rss and rss_kb() end
        rss1 = check_rss and rss_kb()
      end
    end
    r:close()
    assert.are.equal(N, n)
    assert.is_true(worst < 256, ("Lua heap grew by %.0f KB"):format(worst))
    if check_rss then
      -- the file is ~13 MB: a kept tree would add far more than 4 MB
      assert.is_true(rss1 - rss0 < 4096, ("RSS grew by %d KB"):format(rss1 - rss0))
    end
  end)
end)

describe("xml.each", function()
  it("iterates over the elements", function()
    local ids = {}
    for item, err in xml.each({ string = catalogue(5) }, "SPECTACLE") do
      assert.is_nil(err)
      ids[#ids + 1] = item.IDENT
    end
    assert.are.same({ "1", "2", "3", "4", "5" }, ids)
  end)

  it("delivers an error once as false, message, and raises nothing", function()
    local function run(...)
      local seen = {}
      for item, err in xml.each(...) do seen[#seen + 1] = { item, err } end
      return seen
    end
    -- libxml2 parses ahead of what it hands out, so the elements just
    -- before the error may not come out: the error is what must
    local seen = run({ string = catalogue(200, "<SPECTACLE><x></SPECTACLE>") }, "SPECTACLE")
    assert.is_true(#seen > 1)
    assert.are.equal("1", seen[1][1].IDENT)
    assert.is_false(seen[#seen][1])
    assert.matches("mismatch", seen[#seen][2])
    for i = 1, #seen - 1 do assert.are.equal(tostring(i), seen[i][1].IDENT) end
    seen = run({ file = "/nonexistent/feed.xml" }, "SPECTACLE")
    assert.are.equal(1, #seen)
    assert.is_false(seen[1][1])
    assert.matches("cannot open", seen[1][2])
    seen = run("not a source", "SPECTACLE")
    assert.are.equal(1, #seen)
    assert.is_false(seen[1][1])
    assert.matches("table expected", seen[1][2])
  end)

  it("closes the reader when the loop is left by break (Lua 5.4)", function()
    if not LUA54 then return end
    local path = write_tmp(catalogue(10))
    local fds = fds_on(path)
    for item in xml.each({ file = path }, "SPECTACLE") do
      if fds then assert.are.equal(fds + 1, fds_on(path)) end
      if item.IDENT == "2" then break end
    end
    if fds then assert.are.equal(fds, fds_on(path)) end
  end)
end)

describe("xml.decimal", function()
  it("converts comma decimals", function()
    assert.are.equal(18.5, xml.decimal("18,50"))
    assert.are.equal(5.5, xml.decimal("5,5"))
    assert.are.equal(1.5, xml.decimal("1,5"))
    assert.are.equal(1234.56, xml.decimal("1 234,56"))
    assert.are.equal(1234.56, xml.decimal("1\194\160234,56"))         -- U+00A0
    assert.are.equal(1234567.5, xml.decimal("1\226\128\175234\226\128\175567,5")) -- U+202F
    assert.are.equal(-3.25, xml.decimal("-3,25"))
    assert.are.equal(18.5, xml.decimal(" 18,50 "))
    assert.are.equal(0, xml.decimal("000"))
  end)

  it("keeps integers integers", function()
    assert.are.equal(12, xml.decimal("12"))
    assert.are.equal(1234, xml.decimal("1 234"))
    if math.type then assert.are.equal("integer", math.type(xml.decimal("12"))) end
  end)

  it("refuses anything else", function()
    for _, s in ipairs({ "", "abc", "18.50", "1,2,3", ",5", "5,", "12 34", "1 2345",
      "1  234", "1e3", "0x10", "--1", "18,5a", "inf", "nan" }) do
      local v, err = xml.decimal(s)
      assert.is_nil(v, s)
      assert.are.equal("not a decimal: " .. s, err)
    end
    assert.is_nil(xml.decimal(nil))
    assert.is_nil(xml.decimal(18.5))
    assert.is_nil(xml.decimal({}))
  end)
end)
