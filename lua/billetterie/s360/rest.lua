-- S-360 over REST_RPC: a JSON object of the method's parameters POSTed to
-- .../backend-apis/{service}/{version}/{method}, authenticated by a JWT
-- (HS256) forged for each call, and the result type as the top-level JSON
-- object of the answer.
local core = require "billetterie.core"
local json = require "billetterie.json"
local catalogue = require "billetterie.s360.catalogue"
local schema = require "billetterie.s360.schema"

local rest = {}

local function b64url(s)
  return (core.b64encode(s):gsub("[+/=]", { ["+"] = "-", ["/"] = "_", ["="] = "" }))
end
rest.b64url = b64url

-- rest.sign(claims, secret) -> compact JWS (HS256) of a claims table.
local HEADER = b64url('{"alg":"HS256","typ":"JWT"}')
function rest.sign(claims, secret)
  local signing = HEADER .. "." .. b64url(assert(json.encode(claims)))
  return signing .. "." .. b64url(core.hmac_sha256(secret, signing))
end

-- rest.jwt{ institution =, operator =, partner =, secret =, now = seconds }
-- -> compact JWS. Claims in epoch seconds (the reference's sample token and
-- both public clients use seconds), exp = iat + 30 (the documented maximum).
function rest.jwt(c)
  local iat = math.floor(c.now)
  return rest.sign({ sub = c.institution, aud = c.operator, iss = c.partner,
                     iat = iat, exp = iat + catalogue.rest.jwt.lifetime }, c.secret)
end

-- Lists are marked so an empty one is [] (not {}), nested ones too.
local function mark_lists(list, values)
  for _, spec in ipairs(list) do
    local v = values[spec.name]
    if v ~= nil then
      local nested = schema.fields_of[spec.type] and catalogue.types[spec.type].fields
      if spec.list then
        json.array(v)
        if nested then for i = 1, #v do mark_lists(nested, v[i]) end end
      elseif nested then
        mark_lists(nested, v)
      end
    end
  end
  return values
end

-- rest.body(method, values) -> JSON text | nil, message
function rest.body(method, values)
  return json.encode(mark_lists(schema.params_of[method].list, values))
end

-- rest.read(method, body) -> result | nil, error fields
function rest.read(method, body)
  local doc, err = json.decode(body)
  if doc == nil then
    local what = body:match("^%s*<") and "expected JSON, got markup (HTML or XML)" or ("malformed JSON (" .. tostring(err) .. ")")
    return nil, { kind = "decode", message = what }
  end
  if type(doc) ~= "table" or doc[1] ~= nil then
    return nil, { kind = "decode", message = "expected a JSON object" }
  end
  return schema.from_json(catalogue.methods[method].result, doc, json.null)
end

return rest
