-- billetterie.json: cjson underneath, integers kept, [] for marked lists.
local json = require "billetterie.json"

describe("billetterie.json", function()
  it("decodes with integers restored and reports errors as values", function()
    local v = json.decode('{"code":603,"ids":[5442],"x":1.5}')
    assert.equal("603", tostring(v.code))
    assert.equal("5442", tostring(v.ids[1]))
    assert.equal(1.5, v.x)
    local bad, err = json.decode('{"retour":')
    assert.is_nil(bad)
    assert.is_string(err)
  end)

  it("encodes minified JSON, ids without .0, empty lists as [] when marked", function()
    assert.equal('{"id":5442}', json.encode{ id = 5442 })
    assert.equal('{"l":[]}', json.encode{ l = json.array() })
    assert.equal('[1,2]', json.encode(json.array{ 1, 2 }))
    local nil_value, err = json.encode{ f = function() end }
    assert.is_nil(nil_value)
    assert.is_string(err)
  end)

  it("refuses a number it cannot write exactly rather than send it changed", function()
    assert.equal('{"id":12345678901234}', json.encode{ id = 12345678901234 })   -- 14 digits: exact
    local text, err = json.encode{ organisme = { id = 123456789012345 } }      -- 15: cjson would write 1.2345678901234e+14
    assert.is_nil(text)
    assert.matches("123456789012345", err, 1, true)
    assert.matches("as a string", err, 1, true)
    assert.is_nil((json.encode{ l = json.array(), x = 1 / 3 }))
    assert.equal('{"x":0.1}', json.encode{ x = 0.1 })
  end)
end)

describe("billetterie.decimal", function()
  it("converts the vendor's comma decimals only when asked", function()
    local billetterie = require "billetterie"
    assert.equal(18.5, billetterie.decimal("18,50"))
    assert.is_nil((billetterie.decimal("18.50")))
  end)
end)
