-- billetterie.sandbox.s360_soap: SOAP 1.1 envelopes of the emulated S-360
-- services, read and written with libxml2 through the core
-- (core.xml_decode{elements = true} / core.xml_encode).
--
--   read(body) -> { username, password, operation (element), header = bool }
--                 or nil, fault  (fault = { code =, string = })
--   answer(namespace, operation, result_type, children) -> XML text
--   fault(code, text [, detail]) -> XML text (sent with HTTP 500)
--
-- The WS-Security UsernameToken is accepted in every variant the reference
-- lists (Type attribute or not, mustUnderstand, wsu:Id); no Nonce/Created.

local cat = require "billetterie.s360.catalogue"
local core = require "billetterie.core"
local schema = require "billetterie.s360.schema"

local M = {}

local ENV = cat.soap.envelope_ns
local WSSE = cat.soap.wsse_ns
local SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
local PREFIX = cat.soap.response_prefixes

M.CONTENT_TYPE = "text/xml; charset=utf-8"

-- The client's element helpers: children(el, name, ns), child(...), text(el).
local children, child, text = schema.children, schema.child, schema.text

local function client_fault(s) return nil, { code = "Client", string = s } end

function M.read(body)
  if not body or not body:find("%S") then return client_fault("empty request body") end
  local root, err = core.xml_decode(body, { elements = true, max_depth = 64, max_size = 4 * 1024 * 1024 })
  if not root then return client_fault("malformed XML: " .. tostring(err)) end
  if root.name ~= "Envelope" or root.ns ~= ENV then
    if root.ns == SOAP12 then return nil, { code = "VersionMismatch", string = "SOAP 1.1 expected" } end
    return client_fault("not a SOAP 1.1 Envelope")
  end
  local req = {}
  local headers, bodies = children(root, "Header", ENV), children(root, "Body", ENV)
  if #bodies ~= 1 or #headers > 1 then return client_fault("one Body (and at most one Header) expected") end
  local h = headers[1]
  local security = h and child(h, "Security", WSSE)
  local token = security and child(security, "UsernameToken", WSSE)
  if token then
    req.username = text(child(token, "Username", WSSE))
    req.password = text(child(token, "Password", WSSE))
  end
  local ops = children(bodies[1])
  if #ops ~= 1 then return client_fault("the Body must hold exactly one operation element") end
  req.operation = ops[1]
  return req
end

local function envelope(body_child)
  return core.xml_encode({ name = "Envelope", ns = ENV, prefix = PREFIX.envelope,
    { name = "Body", ns = ENV, prefix = PREFIX.envelope, body_child } }, { declaration = true })
end

-- <S:Envelope><S:Body><ns2:{op}Response><{ResultType}>children...
function M.answer(namespace, operation, result_type, kids)
  local result = { name = result_type }
  for i, k in ipairs(kids) do result[i] = k end
  return envelope({ name = operation .. "Response", ns = namespace, prefix = PREFIX.service, result })
end

-- code: "Client", "Server" or "VersionMismatch" (SOAP envelope namespace),
-- or a WS-Security failure "FailedAuthentication" / "InvalidSecurity":
-- those are sent as faultcode S:Client with a <detail><wsse:...></detail>
-- (xml_encode declares namespaces on elements only, and the faultcode text
-- `wsse:FailedAuthentication` needs xmlns:wsse in scope).
local WSSE_CODES = { FailedAuthentication = true, InvalidSecurity = true }

function M.fault(code, s)
  local fault = { name = "Fault", ns = ENV, prefix = PREFIX.envelope }
  local wsse = WSSE_CODES[code]
  fault[1] = { name = "faultcode", PREFIX.envelope .. ":" .. (wsse and "Client" or code) }
  fault[2] = { name = "faultstring", wsse and code .. ": " .. s or s }
  if wsse then fault[3] = { name = "detail", { name = code, ns = WSSE, prefix = "wsse" } } end
  return envelope(fault)
end

return M
