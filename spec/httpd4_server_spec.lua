-- billetterie.httpd's limits and refusals, in process, over real sockets
-- (curl and raw sockets against a server this spec drives with step()):
-- form field cap, JSON error bodies, handler statuses, httpd.check, a
-- second SIGTERM stopping a server whose handler is stuck.
--
-- LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;' LUA_CPATH='./build/5.4/?.so;;' \
--   lua5.4 /usr/bin/busted spec/httpd4_server_spec.lua

local httpd = require "billetterie.httpd"

local util = require "spec.support.util"
local q, popen = util.q, util.popen

local write_file, read_file, parse_answers = util.write, util.read, util.parse_answers

local function running(pid)
  local r = os.execute("kill -0 " .. pid .. " 2>/dev/null")
  return r == true or r == 0
end

-- Runs a shell command in the background while driving srv:step.
-- -> its output (stdout and stderr)
local function drive(srv, cmd)
  local out = os.tmpname()
  local pipe = popen(("(%s) >%s 2>&1 & echo $!; wait $!"):format(cmd, q(out)))
  local pid = pipe:read("*l")
  local deadline = os.time() + 20
  while running(pid) and os.time() <= deadline do srv:step(20) end
  pipe:close()
  local text = read_file(out)
  os.remove(out)
  return text
end

-- A urlencoded body of n fields a0=0&a1=1...
local function fields(n)
  local t = {}
  for i = 0, n - 1 do t[#t + 1] = ("a%d=%d"):format(i, i) end
  return table.concat(t, "&")
end

describe("billetterie.httpd form bodies", function()
  local srv, url, seen
  before_each(function()
    seen = nil
    srv = assert(httpd.new { port = 0, handler = function(req)
      seen = #req.params
      return 200, { ["Content-Type"] = "text/plain" }, tostring(#req.params)
    end })
    url = "http://127.0.0.1:" .. srv:port()
  end)
  after_each(function() srv:close() end)

  it("serves 10000 fields, refuses 10001 with 413 and a JSON error, the handler never called", function()
    local ok_body, big_body = os.tmpname(), os.tmpname()
    write_file(ok_body, fields(10000))
    write_file(big_body, fields(10001))
    local a = parse_answers(drive(srv, ("curl -s -i --data-binary @%s %s/f"):format(q(ok_body), url)))[1]
    assert.are.equal(200, a.status)
    assert.are.equal("10000", a.body)
    seen = nil
    a = parse_answers(drive(srv, ("curl -s -i --data-binary @%s %s/f"):format(q(big_body), url)))[1]
    os.remove(ok_body); os.remove(big_body)
    assert.are.equal(413, a.status)
    assert.is_nil(seen)
    assert.are.equal("application/json; charset=utf-8", a.headers["content-type"])
    assert.are.equal(413, a.json.error.status)
    assert.matches("too many form fields", a.json.error.message)
    assert.are.equal(a.headers["x-request-id"], a.json.error.request_id)
  end)

  it("refuses 8 MB of a=1& (2 million fields) with 413, and keeps serving", function()
    local path = os.tmpname()
    write_file(path, ("a=1&"):rep(2 * 1024 * 1024))
    local raw = drive(srv, ("curl -s -i --data-binary @%s %s/f; curl -s -i %s/after?x=1"):format(q(path), url, url))
    os.remove(path)
    local a = parse_answers(raw)
    assert.are.equal(413, a[1].status, raw:sub(1, 300))
    assert.are.equal(200, a[2].status)
    assert.are.equal("1", a[2].body)
  end)

  it("counts query and body fields together, and multipart fields", function()
    local body, query = os.tmpname(), {}
    write_file(body, fields(9990))
    for i = 1, 11 do query[#query + 1] = "q" .. i .. "=1" end
    local a = parse_answers(drive(srv, ("curl -s -i --data-binary @%s '%s/f?%s'"):format(q(body), url,
      table.concat(query, "&"))))[1]
    assert.are.equal(413, a.status)
    -- multipart: 10001 parts
    local parts = {}
    for i = 1, 10001 do
      parts[#parts + 1] = ('--XyZ\r\nContent-Disposition: form-data; name="f%d"\r\n\r\n%d\r\n'):format(i, i)
    end
    parts[#parts + 1] = "--XyZ--\r\n"
    write_file(body, table.concat(parts))
    a = parse_answers(drive(srv, ("curl -s -i -H 'Content-Type: multipart/form-data; boundary=XyZ' "
      .. "--data-binary @%s %s/m"):format(q(body), url)))[1]
    os.remove(body)
    assert.are.equal(413, a.status)
    assert.are.equal(413, a.json.error.status)
  end)
end)

describe("billetterie.httpd answers made without the handler", function()
  it("are the JSON error body: an oversized body gets 413 {error}", function()
    local srv = assert(httpd.new { port = 0, max_body = 100, request_id_prefix = 'p"\\-',
      handler = function() return 200, {}, "x" end })
    local url = "http://127.0.0.1:" .. srv:port()
    local body = ("y"):rep(1000)
    local a = parse_answers(drive(srv, ("curl -s -i -H 'Content-Type: text/plain' --data-binary %s %s/a; "
      .. "curl -s -i -H 'Content-Type: text/plain' -H 'Transfer-Encoding: chunked' --data-binary %s %s/b")
      :format(body, url, body, url)))
    srv:close()
    assert.are.equal(2, #a)
    for _, x in ipairs(a) do
      assert.are.equal(413, x.status)
      assert.are.equal("application/json; charset=utf-8", x.headers["content-type"])
      assert.is_table(x.json, x.body)
      assert.are.equal(413, x.json.error.status)
      assert.are.equal("request body too large", x.json.error.message)
      -- the prefix's quote and backslash are escaped in the JSON text
      assert.are.equal(x.headers["x-request-id"], x.json.error.request_id)
      assert.matches('^p"\\%-%d+$', x.json.error.request_id)
    end
  end)

  it("a handler error is a 500 with the JSON error body", function()
    local srv = assert(httpd.new { port = 0, handler = function() error("boom") end })
    local a = parse_answers(drive(srv, ("curl -s -i http://127.0.0.1:%d/x 2>/dev/null"):format(srv:port())))[1]
    srv:close()
    assert.are.equal(500, a.status)
    assert.are.equal(500, a.json.error.status)
    assert.are.equal("internal server error", a.json.error.message)
  end)
end)

describe("billetterie.httpd handler statuses", function()
  it("accepts 200-599 only: a 1xx becomes a 500 and the next request is served", function()
    local srv = assert(httpd.new { port = 0, handler = function(req)
      local s = tonumber(req.query.s)
      return s, { ["Content-Type"] = "text/plain" }, "body"
    end })
    local url = "http://127.0.0.1:" .. srv:port()
    local raw = drive(srv, ("curl -s -i --max-time 5 '%s/?s=101'; curl -s -i --max-time 5 '%s/?s=199'; "
      .. "curl -s -i --max-time 5 '%s/?s=200'; curl -s -i --max-time 5 '%s/?s=599'"):format(url, url, url, url))
    srv:close()
    local a = parse_answers(raw)
    assert.are.equal(4, #a, raw)
    assert.are.equal(500, a[1].status)
    assert.are.equal(500, a[2].status)
    assert.are.equal(200, a[3].status)
    assert.are.equal("body", a[3].body)
    assert.are.equal(599, a[4].status)
  end)
end)

describe("httpd.check", function()
  it("tells whether results would be sent or become a 500", function()
    assert.is_true(httpd.check(200, { A = "b" }, "x"))
    assert.is_true(httpd.check(200, {}, "xy", { chunk = 3, delay = 600000 }))
    local cases = {
      { 101, {}, "" }, { "200", {}, "" }, { 200, { A = "a\r\nb" }, "" }, { 200, { "x" }, "" },
      { 200, {}, {} }, { 200, {}, "xy", { chunk = 4 } }, { 200, {}, "", { delay = 600001 } },
      { 200, {}, "ab", { send = 3 } },
    }
    for i, c in ipairs(cases) do
      local ok, err = httpd.check(c[1], c[2], c[3], c[4])
      assert.is_nil(ok, "case " .. i)
      assert.is_string(err, "case " .. i)
    end
  end)
end)

describe("a server whose handler is stuck", function()
  it("ends on a second SIGTERM (the first one asks for a clean stop)", function()
    local script, out = os.tmpname(), os.tmpname()
    write_file(script, [[
      local httpd = require "billetterie.httpd"
      local srv = assert(httpd.new { port = 0, handler = function() while true do end end })
      io.stdout:write(srv:port(), "\n"); io.stdout:flush()
      print(srv:run())
    ]])
    local lua = "lua5.4" -- billetterie.httpd is built for Lua 5.4 only
    -- io.popen: under an ASan run the server keeps the preload its modules need
    local pipe = io.popen(("%s %s >%s 2>&1 & echo $!; wait $!; echo \"exit $?\""):format(lua, q(script), q(out)))
    local pid = pipe:read("*l")
    local port
    for _ = 1, 250 do
      port = read_file(out):match("^(%d+)\n")
      if port then break end
      os.execute("sleep 0.02")
    end
    assert.is_string(port, read_file(out))
    os.execute(("curl -s --max-time 1 http://127.0.0.1:%s/ >/dev/null 2>&1"):format(port))
    os.execute("kill -TERM " .. pid)
    os.execute("sleep 0.3")
    assert.is_true(running(pid)) -- the handler never returns: run() cannot see the flag
    os.execute("kill -TERM " .. pid)
    for _ = 1, 100 do
      if not running(pid) then break end
      os.execute("sleep 0.02")
    end
    local alive = running(pid)
    if alive then os.execute("kill -KILL " .. pid) end
    local status = pipe:read("*l")
    pipe:close()
    os.remove(script); os.remove(out)
    assert.is_false(alive)
    assert.are.equal("exit 143", status) -- killed by SIGTERM (128 + 15)
  end)

  it("a server that is not stuck still stops cleanly on the first SIGTERM", function()
    local script, out = os.tmpname(), os.tmpname()
    write_file(script, [[
      local httpd = require "billetterie.httpd"
      local srv = assert(httpd.new { port = 0, handler = function() return 200, {}, "x" end })
      io.stdout:write(srv:port(), "\n"); io.stdout:flush()
      print(srv:run())
      srv:close()
      print("closed")
    ]])
    local lua = "lua5.4" -- billetterie.httpd is built for Lua 5.4 only
    -- io.popen: under an ASan run the server keeps the preload its modules need
    local pipe = io.popen(("%s %s >%s 2>&1 & echo $!; wait $!; echo \"exit $?\""):format(lua, q(script), q(out)))
    local pid = pipe:read("*l")
    for _ = 1, 250 do
      if read_file(out):match("^%d+\n") then break end
      os.execute("sleep 0.02")
    end
    os.execute("kill -TERM " .. pid)
    local status = pipe:read("*l")
    pipe:close()
    local text = read_file(out)
    os.remove(script); os.remove(out)
    assert.are.equal("exit 0", status)
    assert.matches("true\tSIGTERM\nclosed\n", text)
  end)
end)

describe("billetterie.httpd connections", function()
  local srv, port, seen
  before_each(function()
    seen = nil
    srv = assert(httpd.new { port = 0, handler = function(req)
      local n = 0
      for _ in pairs(req.query) do n = n + 1 end
      seen = n
      return 200, { ["Content-Type"] = "text/plain" }, "n=" .. n
    end })
    port = srv:port()
  end)
  after_each(function() srv:close() end)

  -- A perl script (perl-base: always there on Debian) run while the server
  -- is driven. -> its output
  local function perl(code)
    local path = os.tmpname()
    write_file(path, code)
    local out = drive(srv, "perl " .. q(path) .. " " .. port)
    os.remove(path)
    return out
  end

  it("closes a connection whose client sent its request with a FIN, once answered", function()
    local out = perl([[
      use IO::Socket::INET; use Time::HiRes qw(time);
      my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die;
      print $s "GET /fin HTTP/1.1\r\nHost: x\r\n\r\n"; $s->shutdown(1);
      my $t = time; local $SIG{ALRM} = sub { print "TIMEOUT\n"; exit }; alarm 8;
      my $all = ""; while (sysread($s, my $buf, 65536)) { $all .= $buf }
      printf "closed after %.1f s: %s\n", time - $t, substr($all, 0, 15);
    ]])
    local secs = tonumber(out:match("closed after ([%d.]+) s: HTTP/1.1 200"))
    assert.is_number(secs, out)
    assert.is_true(secs < 5, out) -- not the 30 s idle timeout
  end)

  it("serves a GET of 1000 query parameters (MHD's 32 KiB pool gave no answer)", function()
    local qs = {}
    for i = 1, 1000 do qs[#qs + 1] = ("p%d=vvvvvvvvvv"):format(i) end
    local a = parse_answers(drive(srv, ("curl -s -i 'http://127.0.0.1:%d/q?%s'"):format(port,
      table.concat(qs, "&"))))[1]
    assert.is_table(a)
    assert.are.equal(200, a.status)
    assert.are.equal("n=1000", a.body)
    -- a request line past the pool: 414
    local out = perl([[
      use IO::Socket::INET;
      my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or die;
      print $s "GET /" . ("x" x 400000) . " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
      local $SIG{ALRM} = sub { print "TIMEOUT\n"; exit }; alarm 8;
      my $all = ""; while (sysread($s, my $buf, 65536)) { $all .= $buf } print substr($all, 0, 12), "\n";
    ]])
    a = { status = tonumber(out:match("^HTTP/1.1 (%d+)")) }
    assert.are.equal(414, a.status)
  end)

  it("holds at most 500 connections at once, whatever clients open", function()
    local function fds()
      local p = popen("ls /proc/" .. read_file("/proc/self/stat"):match("^(%d+)") .. "/fd | wc -l")
      local n = tonumber(p:read("*a"))
      p:close()
      return n
    end
    local base = fds()
    local most = 0
    local path, out = os.tmpname(), os.tmpname()
    write_file(path, [[
      use IO::Socket::INET; my @s; $| = 1;
      for (1..700) { my $c = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$ARGV[0]") or last;
        print $c "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: "; push @s, $c }
      print "opened ", scalar(@s), "\n"; sleep 3;
    ]])
    local pipe = popen(("perl %s %d >%s 2>&1 & echo $!; wait $!"):format(q(path), port, q(out)))
    local pid = pipe:read("*l")
    local deadline = os.time() + 15
    while running(pid) and os.time() <= deadline do
      srv:step(20)
      if read_file(out):find("opened") then most = math.max(most, fds() - base) end
    end
    pipe:close()
    local text = read_file(out)
    os.remove(path); os.remove(out)
    assert.matches("opened 700", text)
    assert.is_true(most > 0)
    -- 500 connections, and the pipe of the count itself
    assert.is_true(most <= 505, "server held " .. most .. " descriptors")
    -- and serves again once they are gone
    local a = parse_answers(drive(srv, ("curl -s -i http://127.0.0.1:%d/?a=1"):format(port)))[1]
    assert.are.equal(200, a.status)
  end)
end)
