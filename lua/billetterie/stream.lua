-- Streamed calls: c:call("ws_name", { each = "TAG", ... }) yields the TAG
-- elements of an XML answer one at a time, in bounded memory. The answer
-- is first written whole to a temporary file by an ordinary call of the
-- client (Client:_send: paced by `rate`, holding a `max_in_flight` slot,
-- retried like any read), so a failed transfer is retried before the first
-- item reaches the caller; then the file is read back element by element.
local errors = require "billetterie.error"

local M = {}

local xml  -- loaded on the first streamed call

-- Per XML service: the tags it streams (catalogue xml_each: the repeated
-- elements its answer holds, from the seed), built on its first streamed
-- call; the decoder's options and integer leaves are the client's own.
local SHAPES = setmetatable({}, { __mode = "k" })
local function shape_of(self, service)
  local shape = SHAPES[service]
  if not shape then
    local tags, set = {}, {}
    for i, t in ipairs(service.xml_each or {}) do tags[i], set[t] = t, true end
    table.sort(tags)
    shape = { tags = set, listed = table.concat(tags, ", "),
              options = self._xml_options[service], integers = self._xml_integers[service] }
    SHAPES[service] = shape
  end
  return shape
end

-- An iterator that yields false, err once: how a streamed call reports a
-- failure inside a for-in loop (where nil would just end the loop).
local function failing(err)
  local sent = false
  return function()
    if sent then return nil end
    sent = true
    return false, err
  end
end

-- A body that is an XML document (an HTML error page is not).
local function xml_head(head)
  if head:sub(1, 3) == "\239\187\191" then head = head:sub(4) end   -- a UTF-8 byte order mark
  local lower = head:lower()
  return head:match("^%s*<") and not lower:match("^%s*<!doctype html") and not lower:match("^%s*<html[%s>]")
end

-- What an answer that is not an XML document still says (an error page, a
-- JSON ko envelope) is read up to this size for the error.
local ERROR_BODY_MAX = 64 * 1024

-- Removes `path` when collected, unless disarmed (guard.path = nil): a
-- call whose coroutine is never resumed (nginx drops the handler of a
-- visitor who went away, with lua_check_client_abort) leaves no file in
-- /tmp. LuaJIT runs __gc on userdata only: newproxy there.
local new_guard
if rawget(_G, "newproxy") then
  new_guard = function(path)
    local guard = newproxy(true)
    local state = { path = path }
    getmetatable(guard).__gc = function() if state.path then os.remove(state.path) end end
    return guard, state
  end
else
  new_guard = function(path)
    local state = { path = path }
    return setmetatable({}, { __gc = function() if state.path then os.remove(state.path) end end }), state
  end
end

-- One attempt, the exchange Client:_send paces and retries: the answer
-- goes to a temporary file. -> path | nil, err (the same errors as a
-- plain call: HTTP, network, timeout, vendor ko, HTML page).
local function fetch(self, service, fields, url, body)
  local path = os.tmpname()
  local guard, armed = new_guard(path)
  local request = {}   -- its own table: `file` must not reach the client's other calls
  for k, v in pairs(self._request) do request[k] = v end
  request.url, request.method, request.body, request.file = url, service.method, body, path
  local ok, status, _, ctype, errkind, errmsg, request_id, retry_after =
    pcall(self.transport.request, self.transport, request)
  armed.path, guard = nil, nil   -- resumed: the file is removed below on every path
  if not ok then   -- a raising transport is a programmer's mistake: no file left behind
    os.remove(path)
    error(status, 0)
  end
  local f = io.open(path, "rb")
  local head = f and f:read(512) or ""
  if not errkind and status < 400 and xml_head(head) then
    f:close()
    return path
  end
  local rest = f and f:read(ERROR_BODY_MAX) or ""
  if f then f:close() end
  os.remove(path)
  local payload, err = self:_answer(service, fields, status, head .. rest, ctype, errkind, errmsg, request_id,
    retry_after)
  if payload == nil then return nil, err end
  return nil, errors.new{ kind = "decode", ws = service.name, http_status = status, request_id = request_id,
                          retryable = false, message = "expected XML, got another answer (JSON?)" }
end

-- c:call(name, { each = "TAG", ... } [, opts]) -> iterator yielding each
-- TAG element (a table, see billetterie.xml), or false, err once. Called by
-- Client:call once `each` is known to be a string and the service an XML one.
function M.call(self, service, given, opts)
  local each = given.each
  local shape = shape_of(self, service)
  if not shape.tags[each] then
    -- a misspelt tag would stream nothing and look like an empty catalogue
    return failing(errors.new{
      kind = "invalid_param", ws = service.name, param = "each", retryable = false,
      message = ("parameter each: %s has no repeated element %q (one of: %s; case-sensitive)"):format(
        service.name, each, shape.listed),
    })
  end
  local params = {}
  for k, v in pairs(given) do if k ~= "each" then params[k] = v end end
  local fields, url, body = self:_prepare(service, params)
  if not fields then return failing(url) end
  local path, err = self:_send(service, fields, url, body, opts, fetch)
  if not path then return failing(err) end
  xml = xml or require "billetterie.xml"
  local items, _, _, reader = xml.each({ file = path }, each, shape.options)
  os.remove(path)   -- the reader holds the file open; nothing is left behind
  local integers = shape.integers
  return function()
    local item, message = items()
    if item == false then
      return false, errors.new{ kind = "decode", ws = service.name, retryable = false,
                                message = "malformed XML: " .. tostring(message) }
    end
    if item and integers then xml.integers(item, integers) end
    return item
  end, nil, nil, reader   -- Lua 5.4 closes the reader when the loop is left by break
end

return M
