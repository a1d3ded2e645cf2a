-- Coroutine scheduler over the libcurl multi loop of the core.
--   billetterie.run(fn, ...)  runs fn as a task and drives every transfer
--                             until all tasks are done; returns fn's results
--   billetterie.spawn(fn, ...) starts a task inside run; task:wait() gives
--                             its results (or raises its error)
-- Inside run a call yields its task while its transfer is in flight and the
-- others proceed; outside run the same call blocks. C never calls back into
-- Lua: the engine returns what finished and this loop resumes the waiters.
local runner = {}

local unpack = table.unpack or unpack
local pack = function(...) return { n = select("#", ...), ... } end
local co_create, co_resume, co_running, co_yield, co_status =
  coroutine.create, coroutine.resume, coroutine.running, coroutine.yield, coroutine.status

local loop            -- the running loop, or nil outside run
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

-- Varargs instead of packed tables: a resume that does not end the task
-- (the common case, a call yielding on its transfer) allocates nothing.
local function after_resume(task, ok, ...)
  if co_status(task.co) == "dead" then
    if ok then
      finish(task, true, pack(...))
    else
      finish(task, false, { n = 1, debug.traceback(task.co, tostring((...))) })
    end
  end
end

local function resume(task, ...)
  return after_resume(task, co_resume(task.co, ...))
end

function runner.spawn(fn, ...)
  assert(type(fn) == "function", "billetterie.spawn needs a function")
  if not loop then error("billetterie.spawn must be called inside billetterie.run", 2) end
  local args = pack(...)
  local task = setmetatable({ waiters = {} }, task_mt)
  task.co = co_create(function() return fn(unpack(args, 1, args.n)) end)
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
  local task = current_task()
  if not task then return engine:wait(id) end
  loop.engine = engine
  loop.transfers[id] = task
  return co_yield()
end

function runner.run(fn, ...)
  if loop then
    -- Already inside run (a workflow calling another): just call it.
    return fn(...)
  end
  loop = { tasks = setmetatable({}, { __mode = "k" }), ready = {}, transfers = {}, live = 0, ids = {} }
  local ok, result = pcall(function(...)
    local main = runner.spawn(fn, ...)
    while loop.live > 0 do
      while #loop.ready > 0 do
        local ready = loop.ready
        loop.ready = {}
        for i = 1, #ready do resume(ready[i]) end
      end
      if loop.live > 0 then
        local engine = loop.engine
        if not engine or engine:pending() == 0 then
          error("billetterie.run: every task is waiting and nothing is in flight (deadlock)")
        end
        local ids = engine:poll(100, loop.ids)
        for i = 1, #ids do
          local id = ids[i]
          local task = loop.transfers[id]
          loop.transfers[id] = nil
          if task then
            resume(task, engine:result(id))
          else
            engine:cancel(id)   -- its task is gone; free the slot
          end
        end
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

function runner.running()
  return loop ~= nil
end

return runner
