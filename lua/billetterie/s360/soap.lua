-- S-360 over SOAP 1.1 (document/literal wrapped): builds the request
-- envelope with its WS-Security UsernameToken and reads the answer, both
-- through libxml2 in the C core (core.xml_encode, core.xml_decode with
-- elements = true). Namespaces come from the catalogue; only the operation
-- element is qualified, parameters are not, lists are repeated elements.
local core = require "billetterie.core"
local catalogue = require "billetterie.s360.catalogue"
local schema = require "billetterie.s360.schema"

local soap = {}

local SOAP = catalogue.soap
local ENV, WSSE = SOAP.envelope_ns, SOAP.wsse_ns

-- soap.envelope(method, values, { namespace =, operator =, password = })
--   -> XML text | nil, message (values already checked by schema.check)
function soap.envelope(method, values, opts)
  local op = { name = method, ns = opts.namespace, prefix = "ser" }
  schema.to_elements(method, values, op)
  local env = {
    name = "Envelope", ns = ENV, prefix = "soapenv",
    { name = "Header", ns = ENV, prefix = "soapenv",
      { name = "Security", ns = WSSE, prefix = "wsse",
        { name = "UsernameToken", ns = WSSE,
          { name = "Username", ns = WSSE, opts.operator },
          { name = "Password", ns = WSSE, attrs = { Type = SOAP.password_type }, opts.password },
        },
      },
    },
    { name = "Body", ns = ENV, op },
  }
  return core.xml_encode(env, { declaration = true })
end

local child, text = schema.child, schema.text

-- Faults whose code says the request was refused (credentials, a bad
-- request) are the vendor's answer; the others (Server) are the server's
-- failure, reported like an HTTP error.
local CLIENT_FAULTS = { Client = true, VersionMismatch = true, MustUnderstand = true }

-- The WS-Security fault codes (OASIS WSS 1.0 SOAP Message Security §12)
-- that say the operator's credentials were refused or missing: reported as
-- REST reports a refused JWT, kind "http" with http_status 401.
local AUTH_FAULTS = {
  FailedAuthentication = true, InvalidSecurityToken = true, InvalidSecurity = true,
  UnsupportedSecurityToken = true, SecurityTokenUnavailable = true, MessageExpired = true,
  FailedCheck = true, UnsupportedAlgorithm = true,
}

-- soap.read(method, body) -> result table | nil, error fields (no kind
-- "vendor" status check here: the caller compares statusCode).
function soap.read(method, body)
  -- an error page is seldom well-formed XML (<hr>): told apart first
  local head = body:sub(1, 256):lower()
  if head:match("^%s*<!doctype html") or head:match("^%s*<html[%s>]") then
    return nil, { kind = "decode", message = "expected a SOAP envelope, got an HTML page" }
  end
  local doc, err = core.xml_decode(body, { elements = true, max_depth = 128 })
  if not doc then return nil, { kind = "decode", message = "malformed XML: " .. tostring(err) } end
  if doc.name:lower() == "html" then
    return nil, { kind = "decode", message = "expected a SOAP envelope, got an HTML page" }
  end
  if doc.name ~= "Envelope" or doc.ns ~= ENV then
    return nil, { kind = "decode", message = "expected a SOAP 1.1 envelope, got <" .. doc.name .. ">" }
  end
  local b = child(doc, "Body", ENV)
  if not b then return nil, { kind = "decode", message = "SOAP envelope without a Body" } end
  local fault = child(b, "Fault", ENV)
  if fault then
    local code = (text(child(fault, "faultcode")) or ""):match("^%s*(.-)%s*$")
    local short = code:match(":(.*)$") or code
    local message = text(child(fault, "faultstring"))
    if message == nil or message == "" then message = "SOAP fault " .. code end
    -- WS-Security's code, in the faultcode or as an element of <detail>
    -- under a generic S:Client. The faultcode's prefix is the server's
    -- choice (wsse:, ns0:, S:...) and the decoder does not give the
    -- declarations that would resolve it: its local part decides.
    local wsse = AUTH_FAULTS[short] and short or nil
    local detail = child(fault, "detail")
    if not wsse and detail then
      local w = child(detail, nil, WSSE)
      wsse = w and w.name
    end
    if wsse and AUTH_FAULTS[wsse] then
      -- refused credentials: the same error as REST's 401
      return nil, { kind = "http", http_status = 401, code = wsse, message = message, retryable = false,
                    fault = true }
    end
    -- SOAP 1.1 §4.4.1: "Client.Something" is a more specific Client fault
    local kind = (CLIENT_FAULTS[short:match("^[^.]*")] or short:match("Authentication")
                  or short:match("Security") or short:match("Token")) and "vendor" or "http"
    return nil, { kind = kind, code = short ~= "" and short or nil, message = message,
                  detail = code ~= short and code or nil, fault = true }
  end
  local resp = child(b, method .. "Response")
  if not resp then
    local got = child(b)
    return nil, { kind = "decode", message = "expected <" .. method .. "Response>, got "
                  .. (got and ("<" .. got.name .. ">") or "an empty Body") }
  end
  local m = catalogue.methods[method]
  local result = child(resp)
  if not result then return nil, { kind = "decode", message = "empty <" .. method .. "Response>" } end
  return schema.from_element(m.result, result)
end

return soap
