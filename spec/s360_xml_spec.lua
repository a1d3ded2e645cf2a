-- spec/s360_xml_spec.lua: the element form of the C core's XML
-- (core.xml_encode and core.xml_decode{ elements = true }) and HMAC-SHA256,
-- used by the S-360 client. Lua 5.4 and LuaJIT.
local core = require "billetterie.core"

local SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
local CI = "http://v2_21.ContactInformationPublicService.service.secutix.com/"

local function decode(text, opts)
  opts = opts or {}
  opts.elements = true
  return core.xml_decode(text, opts)
end

local function hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

describe("core.xml_encode", function()
  it("writes prefixed namespaces, declared once where first needed", function()
    local text = assert(core.xml_encode{
      name = "Envelope", ns = SOAP, prefix = "soapenv",
      { name = "Body", ns = SOAP, { name = "getContactData", ns = CI, { name = "contactNumber", "4711" } } },
    })
    assert.equal('<soapenv:Envelope xmlns:soapenv="' .. SOAP .. '"><soapenv:Body>'
      .. '<ns1:getContactData xmlns:ns1="' .. CI .. '"><contactNumber>4711</contactNumber>'
      .. '</ns1:getContactData></soapenv:Body></soapenv:Envelope>', text)
  end)

  it("adds the XML declaration on request", function()
    local text = assert(core.xml_encode({ name = "a" }, { declaration = true }))
    assert.truthy(text:match('^<%?xml version="1.0" encoding="UTF%-8"%?>\n<a/>'))
  end)

  it("escapes text and attribute values through libxml2", function()
    local text = assert(core.xml_encode{ name = "p", attrs = { b = 'x"<&>', a = "1" }, "a<b & c>d" })
    assert.equal('<p a="1" b="x&quot;&lt;&amp;&gt;">a&lt;b &amp; c&gt;d</p>', text)
    local back = assert(decode(text))
    assert.equal('x"<&>', back.attrs.b)
    assert.equal("a<b & c>d", back[1])
  end)

  it("round-trips a tree: names, namespaces, attributes, text and order", function()
    local tree = {
      name = "root", ns = "urn:a", attrs = { id = "7" },
      { name = "x", "one" }, "mid text", { name = "y", ns = "urn:b", { name = "z", ns = "urn:a", "é€😀" } },
      { name = "x", "two" }, { name = "empty" },
    }
    local back = assert(decode(assert(core.xml_encode(tree))))
    assert.same({
      name = "root", ns = "urn:a", attrs = { id = "7" },
      { name = "x", "one" }, "mid text", { name = "y", ns = "urn:b", { name = "z", ns = "urn:a", "é€😀" } },
      { name = "x", "two" }, { name = "empty" },
    }, back)
  end)

  it("reuses an ancestor's prefix and re-declares a shadowed one", function()
    local text = assert(core.xml_encode{
      name = "a", ns = "urn:1", prefix = "p",
      { name = "b", ns = "urn:1" }, { name = "c", ns = "urn:2", prefix = "p", { name = "d", ns = "urn:1" } },
    })
    local back = assert(decode(text))
    assert.equal("urn:1", back[1].ns)
    assert.equal("urn:2", back[2].ns)
    assert.equal("urn:1", back[2][1].ns)
    local _, declarations = text:gsub("xmlns:", "")
    assert.equal(3, declarations)
  end)

  it("refuses bad data with nil, message and never crashes", function()
    local cases = {
      { name = "a", "bad\1char" },
      { name = "a", "bad\255utf8" },
      { name = "a", "nul\0inside" },
      { name = "a", attrs = { x = "\2" } },
      { name = "a", attrs = { ["1x"] = "v" } },
      { name = "a", attrs = { [1] = "v" } },
      { name = "1a" },
      { name = "a b" },
      {},
      { name = "a", 12 },
      { name = "a", ns = "" },
      { name = "a", ns = "urn:x", prefix = "xmlns" },
      { name = "a", attrs = "nope" },
    }
    for i, c in ipairs(cases) do
      local text, err = core.xml_encode(c)
      assert.is_nil(text, "case " .. i)
      assert.is_string(err, "case " .. i)
    end
  end)

  it("stops at max_depth and on cycles", function()
    local deep = { name = "a" }
    local cur = deep
    for _ = 1, 50 do
      local n = { name = "a" }
      cur[1] = n
      cur = n
    end
    assert.truthy(core.xml_encode(deep))
    local text, err = core.xml_encode(deep, { max_depth = 10 })
    assert.is_nil(text)
    assert.truthy(err:match("deeper than 10"))
    local loop = { name = "loop" }
    loop[1] = loop
    text, err = core.xml_encode(loop)
    assert.is_nil(text)
    assert.truthy(err:match("cycle"))
  end)

  it("caps max_depth at 256: a cycle or a 60000-deep tree is an error, not a C stack overflow", function()
    local loop = { name = "loop" }
    loop[1] = loop
    local text, err = core.xml_encode(loop, { max_depth = 100000 })
    assert.is_nil(text)
    assert.truthy(err:match("deeper than 256 %(or a cycle%)"), err)
    local deep = { name = "a" }
    local cur = deep
    for _ = 1, 60000 do
      local n = { name = "a" }
      cur[1] = n
      cur = n
    end
    text, err = core.xml_encode(deep, { max_depth = 100000 })
    assert.is_nil(text)
    assert.truthy(err:match("deeper than 256"), err)
    -- 256 levels still go through, and decode back
    local ok = { name = "a" }
    cur = ok
    for _ = 2, 256 do
      local n = { name = "a" }
      cur[1] = n
      cur = n
    end
    assert.is_string(core.xml_encode(ok, { max_depth = 100000 }))
  end)

  it("declares long prefixes and writes long qualified names whole", function()
    local prefix = ("p"):rep(200)
    local short = assert(core.xml_encode({ name = "r", ns = "urn:long", prefix = prefix }))
    assert.equal("urn:long", assert(decode(short)).ns, short)
    local name = ("n"):rep(600)
    local text = assert(core.xml_encode({ name = name, ns = "urn:long", prefix = prefix,
      { name = "c", ns = "urn:long", "v" } }))
    assert.truthy(text:find('xmlns:' .. prefix .. '="urn:long"', 1, true), text)
    local e = assert(decode(text))
    assert.equal(name, e.name)
    assert.equal("urn:long", e.ns)
    assert.equal("urn:long", e[1].ns)
    assert.equal("v", e[1][1])
  end)

  it("raises on a non-table element (a programmer mistake)", function()
    assert.has_error(function() core.xml_encode("a") end)
    assert.has_error(function() core.xml_encode({ name = "a" }, { max_depth = 0 }) end)
  end)
end)

describe("core.xml_decode{ elements = true }", function()
  it("resolves namespaces from declarations, default ones included", function()
    local e = assert(decode('<S:Envelope xmlns:S="' .. SOAP .. '"><S:Body><r xmlns="urn:d"><k>v</k>'
      .. '<n:k xmlns:n="urn:n" n:at="1" plain="2"/></r></S:Body></S:Envelope>'))
    assert.equal("Envelope", e.name)
    assert.equal(SOAP, e.ns)
    local r = e[1][1]
    assert.equal("urn:d", r.ns)
    assert.equal("urn:d", r[1].ns)   -- inherits the default namespace
    assert.equal("urn:n", r[2].ns)
    assert.same({ at = "1", plain = "2" }, r[2].attrs)
  end)

  it("drops whitespace between elements, keeps text of leaves, merges CDATA", function()
    local e = assert(decode("<a>\n  <b> </b>\n  <c>x<![CDATA[<y>]]>z</c>\n</a>"))
    assert.same({ name = "a", { name = "b", " " }, { name = "c", "x<y>z" } }, e)
  end)

  it("keeps the default decoder unchanged", function()
    local t, root = core.xml_decode("<a><b>1</b><b>2</b></a>")
    assert.equal("a", root)
    assert.same({ b = { "1", "2" } }, t)
  end)

  it("never expands entities nor reads the network", function()
    local e = assert(decode('<!DOCTYPE a [<!ENTITY e "zz"><!ENTITY x SYSTEM "file:///etc/passwd">]><a>&e;&x;</a>'))
    assert.equal("a", e.name)
    assert.is_nil(e[1])
  end)

  it("reports malformed, truncated and trailing-junk documents", function()
    for _, bad in ipairs { "<a><b></a>", "<a><b>", "<a/>junk", "", "not xml", "<a>\255</a>",
                           "<a><b><c/></b></a><a/>", "<a><b>x</b></a><!-- c --><", "<a><b/></a>\n</b>" } do
      local e, err = decode(bad)
      assert.is_nil(e, bad)
      assert.is_string(err, bad)
    end
  end)

  it("accepts comments, processing instructions and blanks after the root", function()
    local e = assert(decode("<a><b><c>x</c></b></a>\n<!-- end --><?pi data?>\n"))
    assert.equal("x", e[1][1][1])
  end)

  it("limits depth (max_depth, and libxml2's own 256)", function()
    local e, err = decode(("<a>"):rep(30) .. ("</a>"):rep(30), { max_depth = 10 })
    assert.is_nil(e)
    assert.truthy(err:match("deeper than 10"))
    e, err = decode(("<a>"):rep(5000) .. ("</a>"):rep(5000))
    assert.is_nil(e)
    assert.is_string(err)
    assert.truthy(decode(("<a>"):rep(100) .. ("</a>"):rep(100)))
  end)

  it("honours max_size", function()
    local e, err = decode("<a>0123456789</a>", { max_size = 5 })
    assert.is_nil(e)
    assert.truthy(err:match("larger than 5"))
  end)

  it("survives constant garbage collection on a large document", function()
    local parts = { '<r xmlns="urn:r">' }
    for i = 1, 2000 do parts[#parts + 1] = ('<i n="%d"><v>%d</v></i>'):format(i, i) end
    parts[#parts + 1] = "</r>"
    local text = table.concat(parts)
    collectgarbage("setpause", 0)
    local e = assert(decode(text))
    local again = assert(core.xml_encode(e))
    collectgarbage("setpause", 200)
    assert.equal(2000, #e)
    assert.equal("2000", e[2000][1][1])
    assert.same(e, assert(decode(again)))
  end)
end)

describe("core.hmac_sha256", function()
  it("matches RFC 4231 test case 2", function()
    assert.equal("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
      hex(core.hmac_sha256("Jefe", "what do ya want for nothing?")))
  end)

  it("takes binary keys and empty data", function()
    assert.equal(32, #core.hmac_sha256(("\11"):rep(20), ""))
    assert.has_error(function() core.hmac_sha256(nil, "x") end)
  end)
end)
