-- spec/xml_write_spec.lua: the options of core.xml_encode the sandbox's XML
-- answers use (indent, declaration = true | "standalone"), the element
-- builders of billetterie.sandbox.catalogue over it, and a real sandbox
-- answering from rows that hold control characters or invalid UTF-8.
-- Lua 5.4 and LuaJIT (the builders' unit tests need Lua 5.4: the sandbox's
-- modules are 5.4 code; the sandbox process is always lua5.4).
local core = require "billetterie.core"
local sandbox = require "spec.support.sandbox"

local it_54 = jit and pending or it

local TREE = { name = "R",
  { name = "A", attrs = { b = "1", a = 'x"<' }, "t<&>" },
  { name = "E" },
  { name = "L", { name = "K", "v" }, { name = "M" } },
}

describe("core.xml_encode options", function()
  it("indent = true: four spaces a level, text-only elements on one line, a final newline", function()
    assert.equal(table.concat({
      "<R>",
      '    <A a="x&quot;&lt;" b="1">t&lt;&amp;&gt;</A>',
      "    <E/>",
      "    <L>",
      "        <K>v</K>",
      "        <M/>",
      "    </L>",
      "</R>",
      "",
    }, "\n"), assert(core.xml_encode(TREE, { indent = true })))
  end)

  it("adds no whitespace by default (the S-360 callers' form)", function()
    assert.equal('<R><A a="x&quot;&lt;" b="1">t&lt;&amp;&gt;</A><E/><L><K>v</K><M/></L></R>',
      assert(core.xml_encode(TREE)))
    assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<a/>\n',
      assert(core.xml_encode({ name = "a" }, { declaration = true })))
  end)

  it('declaration = "standalone" declares standalone="yes", with or without indent', function()
    assert.equal('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<N>\n    <id>1</id>\n</N>\n',
      assert(core.xml_encode({ name = "N", { name = "id", "1" } }, { declaration = "standalone", indent = true })))
    assert.equal('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<a/>\n',
      assert(core.xml_encode({ name = "a" }, { declaration = "standalone" })))
    assert.equal("<a/>", assert(core.xml_encode({ name = "a" }, { declaration = false })))
    local ok, err = pcall(core.xml_encode, { name = "a" }, { declaration = "yes" })
    assert.is_false(ok)
    assert.truthy(tostring(err):find('opts.declaration must be true or "standalone"', 1, true), err)
  end)

  it("indent refuses mixed content (libxml2 would change its text); without indent it is kept", function()
    local mixed = { name = "R", { name = "P", "a", { name = "C", "c" }, "b" } }
    local text, err = core.xml_encode(mixed, { indent = true })
    assert.is_nil(text)
    assert.equal("indent cannot write mixed content (text and elements), in: P", err)
    text, err = core.xml_encode({ name = "P", { name = "C" }, "b" }, { indent = true })
    assert.is_nil(text)
    assert.truthy(err:find("mixed content", 1, true))
    assert.equal("<R><P>a<C>c</C>b</P></R>", assert(core.xml_encode(mixed)))
  end)

  it("indented text reads back as the same tree, namespaces included", function()
    local tree = { name = "r", ns = "urn:r", attrs = { id = "7" },
      { name = "s", ns = "urn:r", { name = "t", "a  b" }, { name = "u", ns = "urn:u", "é & <x>" } },
      { name = "v" } }
    local text = assert(core.xml_encode(tree, { indent = true, declaration = true }))
    local back = assert(core.xml_decode(text, { elements = true }))
    assert.equal("r", back.name)
    assert.equal("urn:r", back.ns)
    assert.equal("7", back.attrs.id)
    local s = back[1]
    assert.equal("s", s.name)
    assert.equal("a  b", s[1][1])
    assert.equal("urn:u", s[2].ns)
    assert.equal("é & <x>", s[2][1])
    assert.equal("v", back[2].name)
  end)

  it("still refuses control characters under indent", function()
    local text, err = core.xml_encode({ name = "a", "x\1y" }, { indent = true })
    assert.is_nil(text)
    assert.truthy(err:find("control character", 1, true))
  end)
end)

describe("core.xml_encode refuses what would not read back", function()
  local function refused(element, message)
    local text, err = core.xml_encode(element)
    assert.is_nil(text)
    assert.equal(message, err)
  end

  it("refuses surrogates, overlong forms and code points past U+10FFFF like other bad UTF-8", function()
    local bad = {
      "\237\160\128", "\237\191\191",          -- U+D800, U+DFFF
      "\192\128", "\193\191", "\224\128\175",   -- overlong NUL, "?" and "/"
      "\240\130\130\172",                      -- overlong euro sign
      "\244\144\128\128", "\247\191\191\191", -- U+110000, past it
      "\248\136\128\128\128",                  -- five-byte form
      "\128", "a\191b", "\226\130", "\240\159\152", -- stray and truncated
      "\239\191\190", "\239\191\191",          -- U+FFFE, U+FFFF
    }
    for _, s in ipairs(bad) do
      refused({ name = "a", s }, "invalid UTF-8 or control character in the text of: a")
      refused({ name = "a", attrs = { v = s } }, "invalid UTF-8 or control character in attribute: v")
    end
    -- the edges that are valid
    local good = { "\194\128", "\223\191", "\224\160\128", "\237\159\191", "\238\128\128",
                   "\239\191\189", "\240\144\128\128", "\244\143\191\191", "é€😀" }
    for _, s in ipairs(good) do
      assert.equal("<a>" .. s .. "</a>", core.xml_encode({ name = "a", s }))
    end
  end)

  it("refuses names with a NUL byte instead of cutting them", function()
    refused({ name = "a\0b" }, "NUL byte in the name, ns or prefix of element: a")
    refused({ name = "a", ns = "urn:x\0y" }, "NUL byte in the name, ns or prefix of element: a")
    refused({ name = "a", ns = "urn:x", prefix = "p\0q" }, "NUL byte in the name, ns or prefix of element: a")
    refused({ name = "a", attrs = { ["b\0c"] = "1" } }, "NUL byte in attribute name: b")
  end)

  it("refuses names that are not UTF-8 before libxml2 sees them, showing the bytes escaped", function()
    local cases = {
      { { name = "a\237\160\128" }, "not an XML element name: a\\xED\\xA0\\x80" },
      { { name = "\192\161" }, "not an XML element name: \\xC0\\xA1" },
      { { name = "a", ns = "urn:x", prefix = "p\255" }, "not a usable namespace prefix: p\\xFF" },
      { { name = "a", attrs = { ["b\237\160\128"] = "1" } }, "not an XML attribute name: b\\xED\\xA0\\x80" },
      { { name = "a", attrs = { ["\233t\233"] = "1" } }, "not an XML attribute name: \\xE9t\\xE9" },
      { { name = "a", attrs = { ["b\1"] = "1" } }, "not an XML attribute name: b\\x01" },
    }
    for _, c in ipairs(cases) do
      local out, err = core.xml_encode(c[1])
      assert.is_nil(out)
      assert.equal(c[2], err)
      assert.is_nil(err:find("[\128-\255]"))   -- no raw byte of the bad name
    end
    -- valid UTF-8 names are still written and shown as they are
    assert.equal("<\195\169t\195\169 \195\169=\"1\"/>", core.xml_encode({ name = "\195\169t\195\169", attrs = { ["\195\169"] = "1" } }))
    refused({ name = "a\195\169 b" }, "not an XML element name: a\195\169 b")
    -- and libxml2 printed nothing (its name checks write to stderr on bad bytes)
    local interp = rawget(_G, "jit") and "luajit" or "lua5.4"
    local script = os.tmpname()
    local f = assert(io.open(script, "wb"))
    f:write([[
local core = require "billetterie.core"
for _, n in ipairs { "a\237\160\128", "\192\161", "\255" } do
  core.xml_encode({ name = n })
  core.xml_encode({ name = "a", attrs = { [n] = "1" } })
  core.xml_encode({ name = "a", ns = "urn:x", prefix = n })
end
io.write("done")
]])
    f:close()
    local p = io.popen(interp .. " " .. script .. " 2>&1")
    local out = p:read("*a")
    p:close()
    os.remove(script)
    assert.equal("done", out)
  end)

  it("refuses an attribute prefix no xmlns declares, accepts a declared one and xml:", function()
    refused({ name = "a", attrs = { ["p:x"] = "1" } },
      "undeclared attribute prefix (no xmlns:prefix here or above): p:x")
    refused({ name = "a", ns = "urn:q", prefix = "q", attrs = { ["p:x"] = "1" } },
      "undeclared attribute prefix (no xmlns:prefix here or above): p:x")
    assert.equal('<p:a xmlns:p="urn:p" p:x="1" xml:lang="fr"><b p:y="2"/></p:a>',
      core.xml_encode({ name = "a", ns = "urn:p", prefix = "p", attrs = { ["p:x"] = "1", ["xml:lang"] = "fr" },
        { name = "b", attrs = { ["p:y"] = "2" } } }))
    -- a binding ends with its element
    refused({ name = "r", { name = "a", ns = "urn:p", prefix = "p" }, { name = "b", attrs = { ["p:y"] = "2" } } },
      "undeclared attribute prefix (no xmlns:prefix here or above): p:y")
  end)
end)

describe("billetterie.sandbox.catalogue element builders", function()
  local catalogue
  setup(function() if not jit then catalogue = require "billetterie.sandbox.catalogue" end end)

  it_54("build the element form: attribute values as strings, text children, empty elements", function()
    local E, T = catalogue.element, catalogue.text
    assert.same({ name = "S", attrs = { ID = "12", NOM = "x" }, { name = "N", "a" }, { name = "V" } },
      E("S", { ID = 12, NOM = "x" }, { T("N", "a"), T("V", "") }))
    assert.same({ name = "P", attrs = { FRAIS = "1,5" }, "18" }, E("P", { FRAIS = "1,5" }, "18"))
    assert.same({ name = "C" }, E("C"))
    assert.same({ name = "C" }, E("C", nil, ""))
    assert.same({ name = "x" }, T("x"))
    assert.same({ name = "n", "42" }, T("n", 42))
  end)

  it_54("drop the control characters XML 1.0 forbids, keep tab, CR and LF", function()
    local E, T = catalogue.element, catalogue.text
    assert.same({ name = "t", "abc\t\r\nd" }, T("t", "a\0b\1c\t\r\n\27d\31"))
    assert.same({ name = "e", attrs = { A = "xy" }, "z" }, E("e", { A = "x\8y" }, "\12z"))
    assert.same({ name = "t" }, T("t", "\1\2")) -- nothing left: an empty element
    assert.equal("<t>ab</t>\n", catalogue.document(T("t", "a\11b")))
  end)

  it_54("document: indented, with the declarations the answers use; a refusal raises", function()
    local root = catalogue.element("C", nil, { catalogue.text("A", "1") })
    assert.equal('<?xml version="1.0" encoding="UTF-8"?>\n<C>\n    <A>1</A>\n</C>\n', catalogue.document(root, true))
    assert.equal('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<C>\n    <A>1</A>\n</C>\n',
      catalogue.document(root, "standalone"))
    local ok, err = pcall(catalogue.document, catalogue.text("A", "\255"))
    assert.is_false(ok)
    assert.truthy(tostring(err):find("sandbox XML answer <A>: invalid UTF-8 or control character in the text of: A",
      1, true), err)
  end)
end)

describe("the sandbox's XML answers from odd data", function()
  local sb, c
  setup(function()
    sb = sandbox.start { args = { "--seed", "demo" } }
    c = sb:client()
  end)
  teardown(function() if sb then sb:stop() end end)

  -- Runs SQL on the sandbox's own file, as another writer would.
  local function sql(statement)
    local luasql = require "luasql.sqlite3"
    local env = luasql.sqlite3()
    local conn = assert(env:connect(sb.db))
    local pragma = conn:execute("PRAGMA busy_timeout = 5000")
    if type(pragma) ~= "number" then pragma:close() end
    assert(conn:execute(statement))
    conn:close(); env:close()
  end

  local function show(doc, ident)
    for _, s in ipairs(doc.SPECTACLES.SPECTACLE) do
      if s.IDENT == ident then return s end
    end
  end

  local function status_of(ws)
    local p = io.popen(("curl -s -o /dev/null -w '%%{http_code}' -d %s '%s%s'"):format(
      "'x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677'", sb.url, ws))
    local code = p:read("*a")
    p:close()
    return tonumber(code)
  end

  it("drops control characters from the catalogue feed, keeps tab and newline", function()
    sql([[UPDATE spectacles SET nom = 'A' || char(1) || 'B' || char(9) || 'C',
        champ_libre1 = 'x' || char(27) || 'y', titre_libre2 = 'l1' || char(10) || 'l2'
        WHERE client = 677 AND id_spectacle = 2185]])
    local doc = assert(c:call("ws_programmation"))
    local s = assert(show(doc, 2185))
    assert.equal("AB\tC", s.NOM)
    assert.equal("xy", s.CHAMP_LIBRE1)
    assert.equal("l1\nl2", s.TITRE_LIBRE2)
  end)

  it("answers 500 for invalid UTF-8 and logs why, then serves again once the data is fixed", function()
    sql("UPDATE spectacles SET nom = CAST(X'41FF42' AS TEXT) WHERE client = 677 AND id_spectacle = 2185")
    assert.equal(500, status_of("ws_programmation"))
    assert.truthy(sb:stderr():find("sandbox XML answer <CATALOGUE>: invalid UTF-8 or control character in attribute: NOM",
      1, true), sb:stderr())
    sql("UPDATE spectacles SET nom = 'BACK' WHERE client = 677 AND id_spectacle = 2185")
    assert.equal(200, status_of("ws_programmation"))
    assert.equal("BACK", show(assert(c:call("ws_programmation")), 2185).NOM)
  end)
end)
