#!/bin/sh
# Memcheck over the specs that exercise the C core, GC running constantly;
# then httpd.c: in-process servers, with the sandbox processes the specs
# start under valgrind too (SANDBOX_LUA, about 50 s).
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;'
export LUA_CPATH='./build/5.4/?.so;;'
VG='valgrind --quiet --error-exitcode=1 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite'
SPECS=$(ls spec/*_spec.lua | grep -E 'core|xml|client|s360_wire' | tr '\n' ' ')
timeout 1500 $VG lua5.4 /usr/bin/busted --helper=spec/support/gc_stress.lua $SPECS
SANDBOX_LUA="$VG lua5.4" timeout 900 $VG lua5.4 /usr/bin/busted --helper=spec/support/gc_stress.lua \
  spec/httpd_server_spec.lua spec/httpd_sandbox_spec.lua spec/sandbox_faults_spec.lua
