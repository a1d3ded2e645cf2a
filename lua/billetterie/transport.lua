-- The default transport: libcurl through the core's engine, one per Lua
-- state, so every client of the state shares one connection cache and one
-- event loop. A transport is any object with
--   transport:request{ url, method, body, headers, timeout, connect_timeout,
--                      max_size, verify, cainfo, capath }
--     -> status, body, content_type, errkind, errmsg, request_id
-- (errkind nil on success, else "timeout", "tls", "too_large", "network"),
-- so OpenResty or a test can plug in its own. A transport must read the
-- request table before it yields: clients reuse it for their next call.
local core = require "billetterie.core"
local runner = require "billetterie.runner"

local transport = {}

local engine
local function get_engine()
  if not engine then
    local lua_version = jit and jit.version or _VERSION
    engine = core.http_engine{
      user_agent = ("billetterie/%s (%s; libcurl %s)"):format(core.version, lua_version, core.curl_version()),
      -- Expect: (empty) stops libcurl waiting for "100 Continue" on big forms
      headers = { "Accept: application/json, application/xml;q=0.9, */*;q=0.1", "Expect:" },
    }
  end
  return engine
end
transport.engine = get_engine

local curl = {}

-- Inside an nginx request handler (OpenResty), the default transport hands
-- the request to billetterie.transport_ngx (a subrequest to the internal
-- location /_billetterie_upstream, see docs/openresty.md) so a worker is
-- never blocked by libcurl. Elsewhere (no global ngx, or an nginx phase
-- where subrequests are not allowed) nothing changes.
local ngx_transport
local function in_ngx_request()
  if ngx == nil then return false end
  ngx_transport = ngx_transport or require "billetterie.transport_ngx"
  return ngx_transport.available()
end
local ngx_default

function curl:request(req)
  if ngx ~= nil and in_ngx_request() then
    ngx_default = ngx_default or ngx_transport.new()
    return ngx_default:request(req)
  end
  local e = get_engine()
  local id, err = e:start(req)
  if not id then return 0, nil, nil, "network", err end
  return runner.await_transfer(e, id)
end

transport.curl = curl
return transport
