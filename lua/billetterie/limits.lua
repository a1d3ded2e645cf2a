-- Pacing for many calls at once: a rate limit (token bucket) and a cap on
-- calls in flight (semaphore). Inside billetterie.run a task that must wait
-- sleeps or parks and the others go on; outside run, calls come one at a
-- time, so only the rate limit can make one wait (the thread sleeps). In an
-- nginx request handler the worker's requests share a client's semaphore:
-- a call over the cap waits on an ngx.semaphore (that worker's), the
-- others go on.
local core = require "billetterie.core"
local runner = require "billetterie.runner"

local limits = {}

local Rate = {}
Rate.__index = Rate

-- limits.rate(per_second [, burst [, clock, sleep]]): at most per_second
-- calls a second on average, `burst` (default 1) at once.
function limits.rate(per_second, burst, clock, sleep)
  assert(type(per_second) == "number" and per_second > 0, "rate must be a positive number of calls per second")
  clock = clock or core.now
  return setmetatable({ interval = 1 / per_second, burst = burst or 1, tokens = burst or 1,
                        last = clock(), clock = clock, sleep = sleep or runner.sleep }, Rate)
end

-- Takes one token, sleeping until there is one. Tokens are reserved before
-- sleeping, so tasks that wait together leave spaced by the interval.
function Rate:take()
  local now = self.clock()
  self.tokens = math.min(self.burst, self.tokens + (now - self.last) / self.interval)
  self.last = now
  self.tokens = self.tokens - 1
  if self.tokens < 0 then self.sleep(-self.tokens * self.interval) end
end

local Semaphore = {}
Semaphore.__index = Semaphore

-- Slots are counted per holder, so that a holder that can never give its
-- slot back does not keep it: a task of a run that ended in its deadlock
-- error (it is never resumed), or in nginx a request ended while its call
-- was in flight (the visitor went away, with lua_check_client_abort).
-- Holders: the running task inside run; in nginx the request's ngx.ctx
-- table (weak keys: an ended request's is collected; its coroutine would
-- not do, nginx reuses them for later requests); MAIN outside.
local MAIN = {}

local function holder_key()
  if runner.in_ngx_request() then return ngx.ctx end
  return runner.current() or MAIN
end

local function gone(holder)
  -- an ngx.ctx is never "gone": it is collected with its request
  return runner.is_task(holder) and not runner.alive(holder)
end

-- limits.semaphore(n): at most n holders at once.
function limits.semaphore(n)
  assert(type(n) == "number" and n >= 1, "a semaphore needs a count of at least 1")
  return setmetatable({ n = n, free = n, holders = setmetatable({}, { __mode = "k" }), waiting = {},
                        ngx_waiting = 0 }, Semaphore)
end

-- Counts the slots again from the holders still able to give them back
-- (only when none is free: the usual acquire and release are O(1)).
function Semaphore:_reclaim()
  local used = 0
  for holder, k in pairs(self.holders) do
    if gone(holder) then self.holders[holder] = nil else used = used + k end
  end
  self.free = self.n - used
end

-- A woken waiter checks `free` again: another may have taken the slot first.
function Semaphore:acquire()
  local key = holder_key()
  if self.free <= 0 then self:_reclaim() end
  while self.free <= 0 do
    if runner.in_ngx_request() then
      self.ngx_sem = self.ngx_sem or require("ngx.semaphore").new(0)
      self.ngx_waiting = self.ngx_waiting + 1
      local ok = self.ngx_sem:wait(1)
      self.ngx_waiting = self.ngx_waiting - 1
      if not ok and self.free <= 0 then
        -- a second without a release: a holder may have been killed with
        -- its request; once collected its slot is free again (one full
        -- collection a second at most, whatever the number of waiters)
        local now = ngx.now()
        if now - (self.collected_at or 0) >= 1 then
          self.collected_at = now
          collectgarbage()
        end
        self:_reclaim()
      end
    else
      local task = runner.current()
      if not task then error("more calls in flight than max_in_flight outside billetterie.run", 2) end
      self.waiting[#self.waiting + 1] = task
      runner.park()
    end
  end
  self.free = self.free - 1
  self.holders[key] = (self.holders[key] or 0) + 1
end

-- Given back by its holder, as the client does; another may give a slot
-- back for a holder (a semaphore shared by hand), never more than are held.
function Semaphore:release()
  local key = holder_key()
  local held = self.holders[key]
  if not held then
    key, held = next(self.holders)
    if not key then return end   -- nothing held (a slot reclaimed, see _reclaim)
  end
  self.holders[key] = held > 1 and held - 1 or nil
  self.free = self.free + 1
  -- wake one live waiter: a task whose run ended with an error is gone
  while self.waiting[1] do
    local task = table.remove(self.waiting, 1)
    if runner.alive(task) then return runner.wake(task) end
  end
  if self.ngx_waiting > 0 then self.ngx_sem:post(1) end
end

-- What the number options of both clients (billetterie.new, s360.new) may
-- be; NaN fails every comparison, so it is refused too.
local DAY = 86400
limits.NUMBER_RANGES = {
  timeout = { 0.001, DAY, says = "between 0.001 and 86400 seconds" },
  connect_timeout = { 0.001, DAY, says = "between 0.001 and 86400 seconds" },
  max_size = { 1, 2^53, whole = true, says = "a whole number of bytes >= 1" },
  retries = { 0, 100, whole = true, says = "a whole number between 0 and 100" },
  retry_base = { 0, DAY, says = "between 0 and 86400 seconds" },
  retry_max = { 0, DAY, says = "between 0 and 86400 seconds" },
  retry_after_max = { 0, DAY, says = "between 0 and 86400 seconds" },
}

-- Raises (a programmer's mistake) at `level` for the first option of `opts`
-- out of its range in `ranges`; `who` names the constructor.
function limits.check_ranges(opts, ranges, who, level)
  for k, range in pairs(ranges) do
    local v = opts[k]
    if type(v) == "number" and not (v >= range[1] and v <= range[2] and (not range.whole or v == math.floor(v))) then
      error(("%s: option %s must be %s"):format(who, k, range.says), level + 1)
    end
  end
end

-- The wait before retry number `attempt` (1, 2...): exponential from base
-- seconds, capped at max, with full jitter (random() in [0, 1)) so clients
-- that failed together do not come back together.
function limits.backoff(attempt, base, max, random)
  return math.min(max, base * 2 ^ (attempt - 1)) * random()
end

return limits
