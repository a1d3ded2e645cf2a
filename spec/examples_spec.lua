-- The examples run as written.
local sh = require "spec.support.shell"

local ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;' "

describe("examples", function()
  it("quickstart.lua runs against a fresh sandbox (make demo)", function()
    local ok, out = sh("sh tools/demo.sh")
    assert(ok, out)
    assert.matches("ws_idsession: 603 Session initialisée", out, 1, true)
    assert.matches("unknown organisme: kind=vendor code=904", out, 1, true)
    assert.matches("ws_deconnexion_session: 611", out, 1, true)
    assert.not_matches("xrsimdp", out, 1, true)
  end)

  it("notification_receiver.lua accepts the vendor's NOTIFY and refuses junk", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(sh("mkdir -p " .. dir))
    local run = ("cd %s && PORT=0 %s lua5.4 %s/examples/notification_receiver.lua > out.txt 2>&1 & echo $!")
      :format(dir, ENV:gsub("%./", os.getenv("PWD") .. "/"), os.getenv("PWD"))
    local p = io.popen(run)
    local pid = p:read("*l")
    p:close()
    local url
    for _ = 1, 50 do
      local f = io.open(dir .. "/out.txt")
      local text = f and f:read("*a") or ""
      if f then f:close() end
      url = text:match("listening on (http://%S+)")
      if url then break end
      os.execute("sleep 0.1")
    end
    assert(url, "the receiver did not start")
    local ok, out = sh(("curl -s -H 'Content-Type: text/xml' --data-binary @spec/fixtures/notify_impression_carte.xml %s"):format(url))
    assert(ok, out)
    assert.matches("^OK", out)
    ok, out = sh(("curl -s -o /dev/null -w '%%{http_code}' -H 'Content-Type: text/xml' --data-binary '<html/>' %s"):format(url))
    assert.matches("^400", out)
    os.execute("kill " .. pid)
    local f = assert(io.open(dir .. "/out.txt"))
    local log = f:read("*a")
    f:close()
    os.execute("rm -rf " .. dir)
    assert.matches("card /CA0000000000938 (PASS) printed for contact 72050", log, 1, true)
  end)
end)
