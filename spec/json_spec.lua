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

  it("writes whole numbers up to 2^53 exactly, refuses a number it cannot write exactly", function()
    assert.equal('{"id":12345678901234}', json.encode{ id = 12345678901234 })   -- 14 digits: cjson's own
    -- 15 and 16 digits: cjson would write 1.2345678901234e+14
    assert.equal('{"organisme":{"id":123456789012345}}', json.encode{ organisme = { id = 123456789012345 } })
    assert.equal('[9007199254740992,-1234567890123456,[]]', json.encode(json.array{ 2 ^ 53, -1234567890123456, json.array() }))
    local text, err = json.encode{ x = 0.12345678901234567 }
    assert.is_nil(text)
    assert.matches("0.1234567890123456", err, 1, true)
    assert.is_nil((json.encode{ x = 2 ^ 54 }))
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
