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

-- limits.semaphore(n): at most n holders at once.
function limits.semaphore(n)
  assert(type(n) == "number" and n >= 1, "a semaphore needs a count of at least 1")
  return setmetatable({ free = n, waiting = {}, ngx_waiting = 0 }, Semaphore)
end

-- A woken waiter checks `free` again: another may have taken the slot first.
function Semaphore:acquire()
  while self.free <= 0 do
    if runner.in_ngx_request() then
      self.ngx_sem = self.ngx_sem or require("ngx.semaphore").new(0)
      self.ngx_waiting = self.ngx_waiting + 1
      self.ngx_sem:wait(60)
      self.ngx_waiting = self.ngx_waiting - 1
    else
      local task = runner.current()
      if not task then error("more calls in flight than max_in_flight outside billetterie.run", 2) end
      self.waiting[#self.waiting + 1] = task
      runner.park()
    end
  end
  self.free = self.free - 1
end

function Semaphore:release()
  self.free = self.free + 1
  -- wake one live waiter: a task whose run ended with an error is gone
  while self.waiting[1] do
    local task = table.remove(self.waiting, 1)
    if runner.alive(task) then return runner.wake(task) end
  end
  if self.ngx_waiting > 0 then self.ngx_sem:post(1) end
end

-- The wait before retry number `attempt` (1, 2...): exponential from base
-- seconds, capped at max, with full jitter (random() in [0, 1)) so clients
-- that failed together do not come back together.
function limits.backoff(attempt, base, max, random)
  return math.min(max, base * 2 ^ (attempt - 1)) * random()
end

return limits
