-- Every web service of the catalogue, through its generated method, against
-- the real sandbox: a validation failure sends nothing, and the vendor's
-- refusal comes back as a vendor error with its code.
local catalogue = require "billetterie.catalogue"
local sandbox = require "spec.support.sandbox"

local sb
setup(function() sb = sandbox.start() end)
teardown(function() if sb then sb:stop() end end)

-- The real libcurl transport, counting the requests that leave the machine.
local counting = require("spec.support.counting").new()

local UNKNOWN_TOKEN = "0123456789ABCDEF0123456789ABCDEF"

local function client(extra)
  local opts = { api_key = "0000000000000000000000000000000000000000",
                 pwd_key = "00000000000000000000000000000000", transport = counting }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return sb:client(opts)
end

-- A value that passes the client's checks for a parameter.
local PASSWORDS = {}
for _, n in ipairs(catalogue.password_rules.applies_to) do PASSWORDS[n] = true end

local function valid(p)
  if PASSWORDS[p.name] then return "Secret123" end
  if p.enum then return p.enum[1] end
  if p.type == "integer" then return tonumber(p.example) or 1 end
  if p.type == "boolean" then return 1 end
  if p.type == "base64_json" or p.type == "json" then
    -- an object with its required attributes (annex 4.3-4.6); a list may be empty
    local object = p.object and not p.object_list and catalogue.objects[p.object]
    local t = {}
    for _, f in ipairs(object and object.fields or {}) do
      if f.required then t[f.name] = valid(f) end
    end
    -- and those this service requires (organisme.id_organisme of ws_organisme_modification)
    for _, name in ipairs(p.required_attributes or {}) do
      for _, f in ipairs(object.fields) do
        if f.name == name then t[name] = valid(f) end
      end
    end
    return t
  end
  if p.type == "bracket_array" then return { 1 } end
  if p.type == "bracket_map" then return { [1] = 1 } end
  if p.type == "date" then
    return ({ AAAAMMJJ = "20270101", ["jj/mm/aaaa"] = "01/01/2027", ["AAAA-MM-JJ"] = "2027-01-01",
              ["AAAA-MM-DDTHH:MM:SS"] = "2027-01-01T00:00:00" })[p.format] or p.example
  end
  return p.example or "x"
end

-- Parameters that pass validation, and how to make the vendor refuse.
local function minimal(service)
  local given = {}
  for _, p in ipairs(service.params) do
    if p.required and p.type ~= "contact_fields" then given[p.name] = valid(p) end
  end
  return given
end

local REFUSAL = {  -- auth mode -> what the sandbox refuses, and the code
  ws = function(given) return client{ password = "not-the-password" }, given, 3 end,
  token = function(given) given.x_rsi_token = UNKNOWN_TOKEN; return client(), given, 605 end,
  ws_and_token = function(given) given.x_rsi_token = UNKNOWN_TOKEN; return client(), given, 605 end,
  ws_or_token = function(given) given.id_contact = 987654; return client(), given, 503 end,
  pwd_key = function(given) return client(), given, 3 end,
  api_key = function(given) return client(), given, 3 end,
  none = function(given) given.id_formulaire = 987654; return client(), given, 4 end,
}

local names = {}
for name in pairs(catalogue.services) do names[#names + 1] = name end
table.sort(names)

describe("every web service", function()
  for _, name in ipairs(names) do
    local service = catalogue.services[name]
    local method = name:gsub("^ws_", "")

    it(name .. ": a bad parameter is refused before anything is sent", function()
      local c = client()
      local target = type(c[method]) == "function" and c or assert(c:session())
      local before = counting.n
      local given = minimal(service)
      given.not_a_parameter = 1
      local msg, err
      if name == "ws_login" then   -- s:login(ident, password) has its own signature
        msg, err = target:call(name, given)
      else
        msg, err = target[method](target, given)
      end
      assert.is_nil(msg)
      assert.equal("invalid_param", err.kind)
      assert.equal("not_a_parameter", err.param)
      assert.equal(before, counting.n)
    end)

    it(name .. ": the vendor's refusal is a vendor error with its code", function()
      local c, given, code = REFUSAL[service.auth](minimal(service))
      local msg, err = c:call(name, given)
      assert.is_nil(msg)
      assert.is_table(err)
      assert.equal("vendor", err.kind, tostring(err))
      assert.equal(code, err.code, tostring(err))
      assert.equal(name, err.ws)
    end)
  end
end)
