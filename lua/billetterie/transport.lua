-- The default transport: libcurl through the core's engine, one per Lua
-- state, so every client of the state shares one connection cache and one
-- event loop; inside an nginx request handler it hands over to
-- billetterie.transport_ngx, and elsewhere in an nginx worker it refuses
-- rather than block it (below). transport.blocking is libcurl everywhere.
--
-- The transport interface (docs/openresty.md). A transport is any table
-- with a request method; plug one with billetterie.new{ url = ..., transport = t }:
--   t:request(req) -> status, body, content_type, errkind, errmsg, request_id, retry_after
-- req (read-only, and read it all before yielding: the client refills the
-- same table for its next call):
--   url      the full URL (GET: with its query string)
--   method   "POST" or "GET"
--   body     the body (L@billetterie: a form), or nil
--   headers  nil, or a list of "Name: value" lines (S-360's Content-Type,
--            Accept, SOAPAction, Authorization) replacing the defaults
--   timeout, connect_timeout (seconds), max_size (bytes: larger is "too_large")
--   verify, cainfo, capath   TLS peer/host verification and the CA to trust
--   file     when set (streamed calls, each = "TAG"): write the body to this
--            path and return "" as body
--   config   libcurl's prepared copy of the above: ignore it
-- Results: status is the HTTP status (0 when no answer came), body the
-- answer's bytes, content_type its Content-Type, request_id its
-- X-Request-Id, retry_after its Retry-After as sent (read on statuses >= 400
-- only; nil when absent: a transport may leave it out); errkind is nil on success, else "timeout", "tls",
-- "too_large", "network", or "setup" (a request this transport cannot carry
-- as configured: not worth a retry), with errmsg a readable reason (never a
-- secret). A transport never raises for a failed transfer, sends the body as
-- application/x-www-form-urlencoded and asks for JSON or XML (Accept) unless
-- the request's headers say otherwise, and
-- may yield (a coroutine scheduler, nginx's cosockets): the client turns
-- these results into payload, statut or nil, err and retries what may be.
local core = require "billetterie.core"
local runner = require "billetterie.runner"

local transport = {}

-- nginx's init phase (init_by_lua) runs in the master: an engine made there
-- would be inherited by every forked worker with the same keep-alive
-- sockets, and answers would reach the wrong worker. libcurl is refused
-- there; init_worker (one state per worker) may use it.
local function in_master()
  if ngx == nil or type(ngx.get_phase) ~= "function" then return false end
  local ok, phase = pcall(ngx.get_phase)
  return ok and phase == "init"
end
local MASTER = "libcurl is refused in nginx's init phase (init_by_lua runs in the master: every worker would "
  .. "inherit its connections); call from init_worker_by_lua or a request handler (docs/openresty.md)"

local engine
local function get_engine()
  if in_master() then error("transport.engine: " .. MASTER, 2) end
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

-- libcurl in this process, whatever the context: in nginx it blocks the
-- worker for the whole call. Plug it (billetterie.new{ transport =
-- transport.blocking }) only where that is acceptable.
local await_transfer = runner.await_transfer
local blocking = {}
function blocking:request(req)
  if in_master() then return 0, nil, nil, "setup", MASTER end
  local e = engine or get_engine()
  local id, err = e:start(req)
  if not id then return 0, nil, nil, "network", err end
  return await_transfer(e, id)
end

local curl = {}

-- Inside an nginx request handler (OpenResty), the default transport hands
-- the request to billetterie.transport_ngx (a subrequest to the internal
-- location /_billetterie_upstream, see docs/openresty.md) so a worker is
-- never blocked by libcurl. Elsewhere in a worker that serves requests (a
-- timer, a log or filter phase) libcurl would block it and there is no
-- subrequest: the call is refused (errkind "setup"). So is the init phase
-- (the master: see in_master). init_worker and OpenResty's privileged agent,
-- which serves no request, use libcurl; so does plain Lua (no global ngx).
local ngx_transport
local function in_ngx_request()
  ngx_transport = ngx_transport or require "billetterie.transport_ngx"
  return ngx_transport.available()
end

local START_UP = { init = true, init_worker = true }
-- -> the phase when libcurl would block a worker serving requests, else nil
local function blocked_phase()
  local ok, phase = pcall(ngx.get_phase)
  if not ok or START_UP[phase] then return nil end
  local has, process = pcall(require, "ngx.process")
  if has and process.type() == "privileged agent" then return nil end
  return tostring(phase)
end
local ngx_default

function curl:request(req)
  if ngx ~= nil then
    if in_ngx_request() then
      ngx_default = ngx_default or ngx_transport.new()
      return ngx_default:request(req)
    end
    if in_master() then return 0, nil, nil, "setup", MASTER end
    local phase = blocked_phase()
    if phase then
      return 0, nil, nil, "setup", "libcurl would block this nginx worker (phase " .. phase .. "): call from a "
        .. "request handler (rewrite, access, content) or outside nginx, or plug transport.blocking to "
        .. "accept it (docs/openresty.md)"
    end
  end
  -- blocking.request, inlined: this runs once per call
  local e = engine or get_engine()
  local id, err = e:start(req)
  if not id then return 0, nil, nil, "network", err end
  return await_transfer(e, id)
end

transport.curl = curl
transport.blocking = blocking
return transport
