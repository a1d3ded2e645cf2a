-- The LuaRocks build works offline with Debian's packages, and the rockspec
-- lists every module of lua/.
local run = require "spec.support.shell"

describe("rockspec", function()
  it("lists every Lua module of the tree", function()
    local ok, out = run("lua5.4 tools/sync-rockspec.lua --check")
    assert(ok, out)
  end)

  it("builds and installs with `luarocks make` offline, and the result loads", function()
    local tree, src = os.tmpname(), os.tmpname()
    os.remove(tree)
    os.remove(src)
    -- luarocks make builds in place: work on a copy so the checkout stays clean
    assert(run(("mkdir -p %s && tar --exclude='./build*' --exclude=./.git -cf - . | tar -xf - -C %s"):format(src, src)))
    -- Debian puts curl.h under the multiarch include directory
    local ok, out = run(("cd %s && luarocks --lua-version 5.4 make --deps-mode none --tree %s rockspec/billetterie-scm-1.rockspec "
      .. "CURL_INCDIR=/usr/include/$(gcc -print-multiarch)"):format(src, tree))
    assert(ok, out)
    -- load from the installed tree only, not from the checkout
    ok, out = run(("cd /tmp && LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.4/?.so;;' "
      .. "lua5.4 -e 'local b = require \"billetterie\"; local h = require \"billetterie.httpd\"; "
      .. "local s = require \"billetterie.s360\"; local core = require \"billetterie.core\"; "
      .. "assert(core.hmac_sha256 and core.xml_encode, \"the core lacks the S-360 functions\"); "
      .. "assert(package.searchpath(\"billetterie.core\", package.cpath):find(\"%s\", 1, true)); print(b.version)'"):format(tree, tree, tree, tree))
    assert(ok, out)
    assert.matches("^%d+%.%d+%.%d+", out)
    assert.truthy(io.open(tree .. "/bin/billetterie"), "the billetterie command is installed")
    os.execute("rm -rf " .. tree .. " " .. src)
  end)
end)
