#!/bin/sh
# Memcheck over the specs that exercise the C core, GC running constantly.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;'
export LUA_CPATH='./build/5.4/?.so;;'
SPECS=$(ls spec/*_spec.lua | grep -E 'core|xml|client|s360_wire' | tr '\n' ' ')
timeout 1500 valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite \
  --show-leak-kinds=definite lua5.4 /usr/bin/busted --helper=spec/support/gc_stress.lua $SPECS
