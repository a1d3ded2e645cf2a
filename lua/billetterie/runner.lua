-- Coroutine scheduler over the libcurl multi loop of the core.
--   billetterie.run(fn, ...)  runs fn as a task and drives every transfer
--                             until all tasks are done; returns fn's results
--   billetterie.spawn(fn, ...) starts a task inside run; task:wait() gives
--                             its results (or raises its error)
-- Inside run a call yields its task while its transfer is in flight and the
-- others proceed; outside run the same call blocks. C never calls back into
-- Lua: the engine returns what finished and this loop resumes the waiters.
--
-- In an nginx request handler (rewrite, access, content: where
-- transport_ngx carries the calls) there is no loop of ours: the worker's
-- Lua state serves many requests at once and a module-level loop would mix
-- them, and a loop waiting with core.sleep would freeze the worker. There
-- run calls fn, spawn makes an ngx.thread, sleep is ngx.sleep: every task
-- is its request's own and nothing is kept at module level.
local core = require "billetterie.core"

local runner = {}

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end
local co_create, co_resume, co_running, co_yield =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield

local loop            -- the running loop, or nil outside run (always nil in an nginx request)

local transport_ngx
local function in_ngx_request()
  if rawget(_G, "ngx") == nil then return false end
  transport_ngx = transport_ngx or require "billetterie.transport_ngx"
  return transport_ngx.available()
end
runner.in_ngx_request = in_ngx_request

local task_mt = {}
task_mt.__index = task_mt

local function current_task()
  if not loop then return nil end
  local co = co_running()
  return co and loop.tasks[co]
end

-- Schedules a task to be resumed (with no values: a start or a wake-up).
local function wake(task)
  loop.ready[#loop.ready + 1] = task
end

local function finish(task, ok, values)
  task.done = true
  task.ok = ok
  task.results = values
  loop.tasks[task.co] = nil
  loop.live = loop.live - 1
  for i = 1, #task.waiters do wake(task.waiters[i]) end
  task.waiters = nil
end

-- A task's body returns DONE before its results, so a resume that ended the
-- task is told from one that yielded without asking coroutine.status.
local DONE = {}

-- Varargs instead of packed tables: a resume that does not end the task
-- (the common case, a call yielding on its transfer) allocates nothing.
local function after_resume(task, ok, first, ...)
  if ok then
    if first == DONE then finish(task, true, pack(...)) end
  else
    finish(task, false, { n = 1, debug.traceback(task.co, tostring(first)) })
  end
end

local function resume(task, ...)
  return after_resume(task, co_resume(task.co, ...))
end

local function body_of(fn, args)
  return function() return DONE, fn(unpack(args, 1, args.n)) end
end

-- Tasks in an nginx request: light threads of that request. The body
-- catches its error (kept for the waiters, with its traceback) so nginx
-- does not log it as an aborted thread; the parent waits with
-- ngx.thread.wait, another task of the request on a semaphore.
local ngx_task_mt = {}
ngx_task_mt.__index = ngx_task_mt

local function ngx_finish(task, ok, ...)
  task.done, task.ok = true, ok
  task.results = ok and pack(...) or { n = 1, (...) }
  if task.sem then task.sem:post(task.waiting) end
end

local function ngx_spawn(fn, args)
  local task = setmetatable({ parent = co_running(), waiting = 0 }, ngx_task_mt)
  local traceback = debug.traceback
  task.thread = ngx.thread.spawn(function()
    ngx_finish(task, xpcall(fn, function(e) return traceback(tostring(e), 2) end, unpack(args, 1, args.n)))
  end)
  return task
end

function ngx_task_mt:wait()
  if not self.done then
    local me = co_running()
    if me == self.thread then error("a task cannot wait for itself", 2) end
    if me == self.parent then
      ngx.thread.wait(self.thread)
    else
      self.sem = self.sem or require("ngx.semaphore").new(0)
      self.waiting = self.waiting + 1
      while not self.done do self.sem:wait(60) end
      self.waiting = self.waiting - 1
    end
  end
  if not self.ok then error(self.results[1], 0) end
  return unpack(self.results, 1, self.results.n)
end

function ngx_task_mt:done_yet()
  return self.done == true
end

function runner.spawn(fn, ...)
  assert(type(fn) == "function", "billetterie.spawn needs a function")
  if in_ngx_request() then return ngx_spawn(fn, pack(...)) end
  if not loop then error("billetterie.spawn must be called inside billetterie.run", 2) end
  local task = setmetatable({ waiters = {} }, task_mt)
  task.co = co_create(body_of(fn, pack(...)))
  loop.tasks[task.co] = task
  loop.live = loop.live + 1
  wake(task)
  return task
end

-- task:wait() -> the task's return values; a Lua error in the task (a
-- programmer mistake) is raised again here, in the waiter only.
function task_mt:wait()
  if not self.done then
    local me = current_task()
    if not me then error("task:wait() must be called from a task inside billetterie.run", 2) end
    if me == self then error("a task cannot wait for itself", 2) end
    self.waiters[#self.waiters + 1] = me
    co_yield()
  end
  if not self.ok then error(self.results[1], 0) end
  return unpack(self.results, 1, self.results.n)
end

function task_mt:done_yet()
  return self.done == true
end

-- Waits for transfer `id` of `engine`: yields inside run, blocks outside.
function runner.await_transfer(engine, id)
  local task = loop and loop.tasks[co_running()]   -- current_task(), inlined: once per call
  if not task then return engine:wait(id) end
  loop.engine = engine
  loop.transfers[id] = task
  return co_yield()
end

-- Timers: tasks asleep until a monotonic time, kept sorted by that time.
local function add_timer(at, task)
  local timers = loop.timers
  local i = #timers + 1
  while i > 1 and timers[i - 1].at > at do
    timers[i] = timers[i - 1]
    i = i - 1
  end
  timers[i] = { at = at, task = task }
end

local function wake_due_timers()
  local timers, now, n = loop.timers, core.now(), 0
  while n < #timers and timers[n + 1].at <= now do n = n + 1 end
  if n == 0 then return end
  for i = 1, n do wake(timers[i].task) end
  local rest = #timers - n            -- drop the n first (no table.move on LuaJIT)
  for i = 1, rest do timers[i] = timers[i + n] end
  for i = rest + 1, rest + n do timers[i] = nil end
end

-- runner.sleep(seconds): inside run, this task sleeps and the others go on;
-- outside run, the thread sleeps.
local NGX_SLEEP_PHASES = { rewrite = true, access = true, content = true, timer = true }

function runner.sleep(seconds)
  if in_ngx_request() then return ngx.sleep(seconds) end
  local task = current_task()
  if not task then
    -- In an nginx request, a blocking sleep would freeze the whole worker.
    local ngx = rawget(_G, "ngx")
    if ngx and ngx.sleep and ngx.get_phase and NGX_SLEEP_PHASES[ngx.get_phase()] then
      return ngx.sleep(seconds)
    end
    return core.sleep(seconds)
  end
  add_timer(core.now() + seconds, task)
  co_yield()
end

-- The running task (or nil), and a way to park it until someone wakes it:
-- the pieces semaphores and rate limits are made of.
runner.current = current_task
function runner.park()
  local task = current_task()
  if not task then error("runner.park() needs a task inside billetterie.run", 2) end
  co_yield()
end
function runner.wake(task) wake(task) end
-- Whether a parked task can still be woken (its loop is the running one).
function runner.alive(task)
  return loop ~= nil and loop.tasks[task.co] == task
end
function runner.is_task(value)
  return getmetatable(value) == task_mt
end

-- How long the loop may wait for the network: up to the next timer.
local function poll_timeout()
  local timers = loop.timers
  if #timers == 0 then return 100 end
  local ms = math.ceil((timers[1].at - core.now()) * 1000)
  return ms < 0 and 0 or ms > 100 and 100 or ms
end

function runner.run(fn, ...)
  if loop or in_ngx_request() then
    -- Already inside run (a workflow calling another), or in an nginx
    -- request (its own light threads): just call it.
    return fn(...)
  end
  loop = { tasks = setmetatable({}, { __mode = "k" }), ready = {}, transfers = {}, live = 0, ids = {},
           timers = {} }
  local ok, result = pcall(function(...)
    local main = runner.spawn(fn, ...)
    local transfers, spare = loop.transfers, {}
    while loop.live > 0 do
      while loop.ready[1] do
        -- swap in an empty list: tasks woken meanwhile go to the next round
        local ready = loop.ready
        loop.ready = spare
        for i = 1, #ready do
          resume(ready[i])
          ready[i] = nil
        end
        spare = ready
      end
      if loop.live > 0 then
        local engine = loop.engine
        local in_flight = engine and engine:pending() > 0
        if not in_flight and #loop.timers == 0 and not loop.ready[1] then
          error("billetterie.run: every task is waiting and nothing is in flight (deadlock)")
        end
        if in_flight then
          local ids = engine:poll(poll_timeout(), loop.ids)
          local result = engine.result
          for i = 1, #ids do
            local id = ids[i]
            local task = transfers[id]
            transfers[id] = nil
            if task then
              after_resume(task, co_resume(task.co, result(engine, id)))   -- resume(task, ...), inlined
            else
              engine:cancel(id)   -- its task is gone; free the slot
            end
          end
        elseif not loop.ready[1] then
          core.sleep(poll_timeout() / 1000)   -- only timers: nothing else to wait for
        end
        if loop.timers[1] then wake_due_timers() end
      end
    end
    return main
  end, ...)
  if loop.engine then
    for id in pairs(loop.transfers) do loop.engine:cancel(id) end
  end
  loop = nil
  if not ok then error(result, 0) end
  if not result.ok then error(result.results[1], 0) end
  return unpack(result.results, 1, result.results.n)
end

-- Progress on stderr for map: a bar with rate and ETA on a terminal,
-- a line every few seconds otherwise.
local function progress_reporter(total)
  local tty = os.execute("test -t 2")
  tty = tty == true or tty == 0
  local started, last = core.now(), 0
  return function(done, final)
    local now = core.now()
    if not final and now - last < (tty and 0.2 or 5) then return end
    last = now
    local elapsed = now - started
    local rate = elapsed > 0 and done / elapsed or 0
    local eta = rate > 0 and (total - done) / rate or 0
    if tty then
      local width = 30
      local filled = total > 0 and math.floor(width * done / total) or width
      io.stderr:write(("\r[%s%s] %d/%d %.1f/s ETA %ds%s"):format(string.rep("#", filled),
        string.rep(".", width - filled), done, total, rate, math.floor(eta + 0.5), final and "\n" or ""))
    else
      io.stderr:write(("progress: %d/%d done, %.1f/s, ETA %ds\n"):format(done, total, rate, math.floor(eta + 0.5)))
    end
    io.stderr:flush()
  end
end

-- runner.map(items, fn [, opts]) -> results, errors
-- Calls fn(item, i) for every item, `concurrency` (default 8) at a time,
-- at most `rate` calls a second if given, with `progress` on stderr if
-- true. results[i] is fn's first value; errors[i] is its second when the
-- first is nil, or the Lua error it raised: one failing item never stops
-- the others. Outside run, map runs its own loop (in an nginx request,
-- its workers are the request's light threads).
function runner.map(items, fn, opts)
  opts = opts or {}
  assert(type(items) == "table" and type(fn) == "function", "map(items, fn [, opts])")
  local concurrency = opts.concurrency or 8
  if type(concurrency) ~= "number" or concurrency < 1 or concurrency ~= math.floor(concurrency)
      or concurrency == math.huge then
    error("map: concurrency must be a whole number >= 1, got " .. tostring(opts.concurrency), 2)
  end
  if not loop and not in_ngx_request() then return runner.run(runner.map, items, fn, opts) end
  local limits = require "billetterie.limits"
  local n, results, errors = #items, {}, {}
  local next_index, done = 0, 0
  local rate = opts.rate and limits.rate(opts.rate)
  local progress = opts.progress and progress_reporter(n)
  local function worker()
    while next_index < n do
      next_index = next_index + 1
      local i = next_index
      if rate then rate:take() end
      local ok, value, err = pcall(fn, items[i], i)
      if not ok then
        errors[i] = value
      elseif value == nil then
        errors[i] = err
      else
        results[i] = value
      end
      done = done + 1
      if progress then progress(done) end
    end
  end
  local workers = {}
  for k = 1, math.min(concurrency, n) do workers[k] = runner.spawn(worker) end
  for k = 1, #workers do workers[k]:wait() end
  if progress then progress(done, true) end
  return results, errors
end

function runner.running()
  return loop ~= nil or in_ngx_request()
end

return runner
