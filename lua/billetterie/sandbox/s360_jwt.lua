-- billetterie.sandbox.s360_jwt: checks the self-forged HS256 bearer token of
-- S-360's REST_RPC (reference 1.3): header alg HS256, signature with the
-- operator's secret, sub = the institution, aud = the operator, iat/exp in
-- seconds or milliseconds (values above 10^12), 0 <= exp - iat <= 30 s, exp not
-- passed, iat not in the future, both with a small clock skew.
--
-- verify(token, { institution, operator, secret, now, skew, lifetime })
--   -> claims, or nil, reason (a short text that never holds the token)

local codec = require "billetterie.sandbox.codec"
local core = require "billetterie.core"
local rest = require "billetterie.s360.rest"

local M = {}

local function b64url_decode(s)
  if not s or s == "" or s:find("[^%w%-_=]") then return nil end
  return codec.b64decode(s)
end


-- The same bytes, compared without stopping at the first difference.
local function same(a, b)
  if #a ~= #b then return false end
  local diff = 0
  for i = 1, #a do
    if a:byte(i) ~= b:byte(i) then diff = diff + 1 end
  end
  return diff == 0
end

local function seconds(v)
  if type(v) ~= "number" then return nil end
  if v > 1e12 then v = v / 1000 end
  return v
end

local function audience_has(aud, operator)
  if type(aud) == "string" then return aud:upper() == operator:upper() end
  if type(aud) == "table" then
    for _, a in ipairs(aud) do
      if type(a) == "string" and a:upper() == operator:upper() then return true end
    end
  end
  return false
end

function M.verify(token, o)
  local h64, c64, s64 = (token or ""):match("^([^.]+)%.([^.]+)%.([^.]+)$")
  if not h64 then return nil, "not a JWT (header.claims.signature)" end
  local header = codec.decode(b64url_decode(h64) or "")
  local claims = codec.decode(b64url_decode(c64) or "")
  local sig = b64url_decode(s64)
  if type(header) ~= "table" or type(claims) ~= "table" or not sig then
    return nil, "malformed JWT"
  end
  if header.alg ~= "HS256" then return nil, "alg must be HS256" end
  if not same(core.hmac_sha256(o.secret, h64 .. "." .. c64), sig) then
    return nil, "bad signature"
  end
  if type(claims.sub) ~= "string" or claims.sub:upper() ~= o.institution:upper() then
    return nil, "sub is not this institution"
  end
  if not audience_has(claims.aud, o.operator) then return nil, "aud is not the operator" end
  local iat, exp = seconds(claims.iat), seconds(claims.exp)
  if not iat or not exp then return nil, "iat and exp are required" end
  local skew = o.skew or 5
  if exp < iat then return nil, "exp is before iat" end
  if exp - iat > (o.lifetime or 30) then return nil, "exp is more than 30 s after iat" end
  if iat > o.now + skew then return nil, "iat is in the future" end
  if exp < o.now - skew then return nil, "token expired" end
  return claims
end

-- For tests and examples: a token as the client forges it (its signer).
M.sign = rest.sign

return M
