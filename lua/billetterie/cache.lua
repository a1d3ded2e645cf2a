-- A small key/value cache with a TTL for answers that change slowly
-- (catalogue feeds, ws_cat_listes, S-360 static lists): in nginx it lives in
-- a lua_shared_dict, shared by every worker; elsewhere in this Lua state's
-- memory, bounded by max_items.
--
--   local cache = require "billetterie.cache"
--   local store = cache.new{ dict = ngx.shared.billetterie_cache,  -- optional: memory when absent
--                            ttl = 7200,                           -- default TTL in seconds (300)
--                            clock = function() return seconds end, -- memory store's clock (os.time)
--                            max_items = 1000 }                    -- memory store's bound (1000)
--   store:get(key)              --> a fresh copy of the value | nil (absent or expired)
--   store:set(key, value, ttl)  --> true | nil, err (ttl in seconds; nil = the store's default)
--   store:delete(key); store:flush()
--   store:lock(key) / store:unlock(key) / store:wait(key)   -- dict store only (see Dict:lock)
--   cache.key("ws_cat_listes", url, { x = 1 })  --> a stable string key
--
-- Values are tables, strings, numbers and booleans; they are stored as JSON
-- (lua-cjson through billetterie.json, so integers come back as integers
-- under Lua 5.4) in both stores, so every get is a copy and both stores keep
-- exactly the same values. A table must be an array (keys 1..n) or have
-- string keys only: set refuses other shapes rather than change them.
-- A dict store's TTL and eviction are nginx's (its clock option is unused);
-- flush() empties the whole dict: give each store its own lua_shared_dict.
local json = require "billetterie.json"

local cache = {}

local DEFAULT_TTL, DEFAULT_MAX = 300, 1000
local MAX_DEPTH = 64

local function is_integer(n)
  return n == math.floor(n) and n > -2 ^ 53 and n < 2 ^ 53
end

-- Nil, or why cjson could not give `v` back as it is.
local function unfit(v, depth)
  local t = type(v)
  if t == "string" or t == "boolean" then return nil end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "a number that is not finite" end
    -- lua-cjson 2.1.0 writes 14 significant digits: 123456789012345 would
    -- come back 123456789012340, 1/3 shortened
    if tonumber(("%.14g"):format(v)) ~= v then return "a number with more than 14 significant digits" end
    return nil
  end
  if v == json.null then return nil end
  if t ~= "table" then return "a " .. t end
  if depth > MAX_DEPTH then return "a table nested more than " .. MAX_DEPTH .. " deep (a cycle?)" end
  local n, count, strings = #v, 0, 0
  for k, x in pairs(v) do
    count = count + 1
    if type(k) == "string" then
      strings = strings + 1
    elseif type(k) ~= "number" or not is_integer(k) or k < 1 or k > n then
      return "a table with a " .. type(k) .. " key that is not part of an array"
    end
    local why = unfit(x, depth + 1)
    if why then return why end
  end
  if strings > 0 and strings < count then return "a table mixing array items and string keys" end
  if strings == 0 and count ~= n then return "a sparse array" end
  return nil
end

local function encode(value)
  local why = unfit(value, 0)
  if why then return nil, "cache: cannot store " .. why end
  local text, err = json.encode(value)
  if not text then return nil, "cache: " .. tostring(err) end
  return text
end

-- A lua_shared_dict reads a TTL under 1 ms, NaN, inf or one too large for
-- its clock as 0, "never expires": TTLs are checked against these bounds.
local MIN_TTL, MAX_TTL = 0.001, 366 * 86400
cache.MIN_TTL, cache.MAX_TTL = MIN_TTL, MAX_TTL

-- True when ttl is a number of seconds every store honours.
function cache.valid_ttl(ttl)
  return type(ttl) == "number" and ttl >= MIN_TTL and ttl <= MAX_TTL
end
local valid_ttl = cache.valid_ttl
local TTL_RULE = ("a number of seconds from %g to %d (a year)"):format(MIN_TTL, MAX_TTL)
cache.TTL_RULE = TTL_RULE

local function check_ttl(ttl, default)
  if ttl == nil then return default end
  if not valid_ttl(ttl) then error("cache: ttl must be " .. TTL_RULE, 3) end
  return ttl
end

local function check_key(key)
  if type(key) ~= "string" or key == "" then error("cache: a key must be a non-empty string (see cache.key)", 3) end
end

-- The memory store: a table of key -> { text, expires_at, last_used }.
local Memory = {}
Memory.__index = Memory

function Memory:get(key)
  check_key(key)
  local e = self.items[key]
  if not e then return nil end
  if e[2] <= self.clock() then
    self.items[key] = nil
    self.count = self.count - 1
    return nil
  end
  self.tick = self.tick + 1
  e[3] = self.tick
  return (json.decode(e[1]))
end

-- Makes room for one more item: the expired ones go first, then the least
-- recently used (a scan: max_items is small).
function Memory:_evict()
  local now, oldest, oldest_key = self.clock(), math.huge, nil
  for k, e in pairs(self.items) do
    if e[2] <= now then
      self.items[k] = nil
      self.count = self.count - 1
    elseif e[3] < oldest then
      oldest, oldest_key = e[3], k
    end
  end
  if self.count >= self.max_items and oldest_key then
    self.items[oldest_key] = nil
    self.count = self.count - 1
  end
end

function Memory:set(key, value, ttl)
  check_key(key)
  ttl = check_ttl(ttl, self.ttl)
  local text, err = encode(value)
  if not text then return nil, err end
  if not self.items[key] then
    if self.count >= self.max_items then self:_evict() end
    self.count = self.count + 1
  end
  self.tick = self.tick + 1
  self.items[key] = { text, self.clock() + ttl, self.tick }
  return true
end

function Memory:delete(key)
  check_key(key)
  if self.items[key] then
    self.items[key] = nil
    self.count = self.count - 1
  end
end

function Memory:flush()
  self.items, self.count = {}, 0
end

-- The lua_shared_dict store: nginx keeps the TTL and evicts under memory
-- pressure (then set still succeeds; it fails only when the value cannot fit).
local Dict = {}
Dict.__index = Dict

function Dict:get(key)
  check_key(key)
  local text = self.dict:get(key)
  if type(text) ~= "string" then return nil end
  return (json.decode(text))
end

function Dict:set(key, value, ttl)
  check_key(key)
  ttl = check_ttl(ttl, self.ttl)
  local text, err = encode(value)
  if not text then return nil, err end
  local ok, why = self.dict:set(key, text, ttl)
  if not ok then return nil, "cache: the shared dict refused the value: " .. tostring(why) end
  return true
end

function Dict:delete(key)
  check_key(key)
  self.dict:delete(key)
end

-- Against a stampede (billetterie.client_cache): when an entry is missing,
-- the first request takes a short lock ("lock:" .. key, expiring by itself
-- after LOCK_TTL seconds should its holder die) and fetches; the others
-- wait() for its value. The memory store has no lock: one Lua state, and
-- concurrent misses each fetch.
local LOCK_TTL, WAIT_TOTAL = 5, 2

-- -> true when this caller got the lock (and must unlock)
function Dict:lock(key)
  check_key(key)
  return (self.dict:add("lock:" .. key, true, LOCK_TTL)) == true
end

function Dict:unlock(key)
  check_key(key)
  self.dict:delete("lock:" .. key)
end

-- Only phases that can yield may sleep (ngx.sleep).
local CAN_SLEEP = { rewrite = true, access = true, content = true, timer = true }

-- Waits, a bounded WAIT_TOTAL seconds at most, while another request holds
-- the lock: -> the value it stored, or nil (it failed, the wait ran out, or
-- this phase cannot sleep): then the caller fetches by itself.
function Dict:wait(key)
  check_key(key)
  if type(ngx) ~= "table" or not CAN_SLEEP[ngx.get_phase()] then return nil end
  local step, waited = 0.005, 0
  while waited < WAIT_TOTAL do
    ngx.sleep(step)
    waited = waited + step
    local v = self:get(key)
    if v ~= nil then return v end
    if self.dict:get("lock:" .. key) == nil then return nil end   -- released without a value
    step = math.min(step * 2, 0.05)
  end
  return nil
end

function Dict:flush()
  self.dict:flush_all()
end

function cache.new(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("cache.new needs a table of options", 2) end
  local ttl = opts.ttl
  if ttl ~= nil and not valid_ttl(ttl) then error("cache.new: ttl must be " .. TTL_RULE, 2) end
  ttl = ttl or DEFAULT_TTL
  if opts.dict ~= nil then
    local d = opts.dict
    if (type(d) ~= "table" and type(d) ~= "userdata") or d.get == nil or d.set == nil then
      error("cache.new: dict must be a lua_shared_dict (ngx.shared.NAME)", 2)
    end
    return setmetatable({ dict = d, ttl = ttl }, Dict)
  end
  local max = opts.max_items or DEFAULT_MAX
  if type(max) ~= "number" or max < 1 or max ~= math.floor(max) then
    error("cache.new: max_items must be a positive integer", 2)
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then error("cache.new: clock must be a function", 2) end
  return setmetatable({ items = {}, count = 0, tick = 0, ttl = ttl, max_items = max,
                        clock = opts.clock or os.time }, Memory)
end

-- Canonical text of a key part: length-prefixed strings, numbers as
-- integers when they are whole, tables with their keys sorted.
local TYPE_ORDER = { boolean = 1, number = 2, string = 3 }
local function before(a, b)
  local ta, tb = type(a), type(b)
  if ta ~= tb then return (TYPE_ORDER[ta] or 9) < (TYPE_ORDER[tb] or 9) end
  if ta == "boolean" then return (not a) and b end
  return a < b
end

local function put(out, v, depth)
  local t = type(v)
  if t == "string" then
    out[#out + 1] = "s" .. #v .. ":" .. v
  elseif t == "number" then
    out[#out + 1] = is_integer(v) and ("n%d"):format(v) or ("n%.17g"):format(v)
  elseif t == "boolean" then
    out[#out + 1] = v and "T" or "F"
  elseif t == "table" and depth < MAX_DEPTH then
    local keys = {}
    for k in pairs(v) do
      local tk = type(k)
      if tk ~= "string" and tk ~= "number" and tk ~= "boolean" then
        error("cache.key: a table key must be a string, number or boolean", depth + 3)
      end
      keys[#keys + 1] = k
    end
    table.sort(keys, before)
    out[#out + 1] = "{"
    for _, k in ipairs(keys) do
      put(out, k, depth + 1)
      out[#out + 1] = "="
      put(out, v[k], depth + 1)
      out[#out + 1] = ";"
    end
    out[#out + 1] = "}"
  else
    error("cache.key: cannot make a key from a " .. t .. (t == "table" and " nested this deep" or ""), depth + 3)
  end
end

-- cache.key(...) -> string: the same parts give the same key, in any
-- process and on Lua 5.4 and LuaJIT alike (5 and 5.0 are one key).
function cache.key(...)
  local out = {}
  for i = 1, select("#", ...) do
    local v = select(i, ...)
    if v == nil then error("cache.key: part " .. i .. " is nil", 2) end
    put(out, v, 0)
    out[#out + 1] = "|"
  end
  return table.concat(out)
end

return cache
