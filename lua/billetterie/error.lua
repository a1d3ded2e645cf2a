-- The one error value of the SDK. Expected failures come back as
-- `nil, err` (as OpenResty libraries do); err is a table:
--   kind        "vendor" | "http" | "network" | "timeout" | "decode" | "invalid_param"
--   code        the vendor's code (904, 3...) or nil
--   message     readable text, never holding a secret
--   ws          the web service name
--   http_status the HTTP status when there was an answer
--   retryable   true when repeating the same request may succeed
--   request_id  the server's X-Request-Id when it sent one
--   detail      extra vendor text (retour.detail, erreur.détail) when present
--   param       the offending parameter for invalid_param
--   payload     what a vendor ko still carried (per-item results), if anything
--   attempts    how many times the request was sent (retries included)
--   partial     true when the vendor says part of the request succeeded
--               (1111: the successes are in payload)
-- tostring(err) gives one readable line.
local error_mt = {}
error_mt.__index = error_mt

local KINDS = { vendor = true, http = true, network = true, timeout = true,
                decode = true, invalid_param = true }

-- Vendor codes that mean "try again later": 5 no communication with the
-- server, 7 site in maintenance (annex 4.2).
local RETRYABLE_CODES = { [5] = true, [7] = true }
local RETRYABLE_HTTP = { [502] = true, [503] = true, [504] = true }

local function describe(e)
  local parts = { "billetterie" }
  if e.ws then parts[#parts + 1] = e.ws end
  local head = e.kind .. " error"
  if e.code then head = head .. " " .. tostring(e.code) end
  parts[#parts + 1] = head
  local line = table.concat(parts, ": ") .. ": " .. tostring(e.message)
  if e.detail and e.detail ~= "" then line = line .. " (" .. e.detail .. ")" end
  if e.http_status and e.kind ~= "vendor" then line = line .. " [HTTP " .. e.http_status .. "]" end
  if e.request_id then line = line .. " [request " .. e.request_id .. "]" end
  return line
end
error_mt.__tostring = describe

-- Removes every known secret value from a text. Secrets shorter than four
-- characters are not scrubbed (they would mangle ordinary words) but such
-- secrets are refused by the client anyway.
local function scrub(text, secrets)
  if type(text) ~= "string" or not secrets then return text end
  for i = 1, #secrets do
    local s = secrets[i]
    if #s >= 4 then
      local from = 1
      while true do
        local a, b = text:find(s, from, true)
        if not a then break end
        text = text:sub(1, a - 1) .. "***" .. text:sub(b + 1)
        from = a + 3
      end
    end
  end
  return text
end

local M = { KINDS = KINDS }

-- new{ kind=, message=, ... } -> err. `secrets` (a list of secret values)
-- is used to scrub the texts and is not kept.
function M.new(fields, secrets)
  assert(KINDS[fields.kind], "unknown error kind")
  local e = setmetatable({}, error_mt)
  for k, v in pairs(fields) do e[k] = v end
  e.message = scrub(e.message or e.kind, secrets)
  e.detail = scrub(e.detail, secrets)
  if e.retryable == nil then
    e.retryable = (e.kind == "network" or e.kind == "timeout")
      or (e.kind == "http" and RETRYABLE_HTTP[e.http_status] == true)
      or (e.kind == "vendor" and RETRYABLE_CODES[e.code] == true)
  end
  return e
end

function M.is(value)
  return getmetatable(value) == error_mt
end

M.scrub = scrub

-- The fields of an error for a transport failure (errkind and errmsg as
-- transport:request returns them; status 0 when nothing was answered), for
-- every client alike: { kind, message, retryable, http_status }.
function M.from_transport(errkind, errmsg, status)
  local kind, message, retryable = "network", errmsg, nil
  if errkind == "timeout" then
    kind = "timeout"
  elseif errkind == "tls" then
    message = errmsg .. " (TLS verification failed: give the CA bundle that signs this server with the cainfo or capath option)"
    retryable = false
  elseif errkind == "too_large" then
    kind, retryable = "http", false
  elseif errkind == "setup" then   -- the transport's configuration: retrying cannot help
    retryable = false
  end
  return { kind = kind, message = message, retryable = retryable, http_status = status ~= 0 and status or nil }
end

-- Up to 160 characters of an unexpected body (its HTML title if it has
-- one), tags stripped, for messages.
function M.excerpt(text)
  local title = text:match("<[Tt][Ii][Tt][Ll][Ee]>(.-)</[Tt][Ii][Tt][Ll][Ee]>")
  local s = title or text:gsub("<[^>]*>", " ")
  s = s:gsub("%s+", " "):gsub("^ ", "")
  if #s > 160 then s = s:sub(1, 157) .. "..." end
  return s
end

return M
