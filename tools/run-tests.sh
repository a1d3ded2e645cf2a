#!/bin/sh
# Runs the whole suite: every spec under Lua 5.4, the core and client specs
# under LuaJIT too, then prints one closing line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUSTED=${BUSTED:-/usr/bin/busted}
LUA_PATH_DEV='./lua/?.lua;./lua/?/init.lua;./?.lua;;'
log=$(mktemp)
status=0


LUA_PATH="$LUA_PATH_DEV" LUA_CPATH='./build/5.4/?.so;;' timeout 2400 lua5.4 "$BUSTED" -o TAP spec >"$log.54" 2>&1 || status=1
cat "$log.54"; cat "$log.54" >>"$log"
JIT_SPECS=$(ls spec/*_spec.lua | grep -E 'core|xml|client|catalogue|runner|session|json|pages|notifications|retry|cache|s360|/bulk_|/secrets_|/robustness_' | tr '\n' ' ')
LUA_PATH="$LUA_PATH_DEV" LUA_CPATH='./build/jit/?.so;;' timeout 1200 luajit "$BUSTED" -o TAP $JIT_SPECS >"$log.jit" 2>&1 || status=1
echo "== LuaJIT:"; cat "$log.jit"; cat "$log.jit" >>"$log"

passed=$(grep -c '^ok ' "$log")
failed=$(grep -c '^not ok ' "$log")
rm -f "$log" "$log.54" "$log.jit"
[ "$failed" = 0 ] || status=1
[ "$passed" -gt 0 ] || status=1
echo "$passed passed, $failed failed"
exit $status
