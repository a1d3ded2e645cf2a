#!/bin/sh
# The suite's C-facing specs under AddressSanitizer + UndefinedBehaviorSanitizer,
# with the garbage collector running constantly. The interpreter itself is
# not instrumented, so the ASan runtime is preloaded (LD_PRELOAD). Sandbox
# processes (spec/support/sandbox.lua) inherit the preload and load the
# instrumented modules (BILLETTERIE_BUILD below): httpd.c runs under ASan
# there too. nginx, the echo server and the tools below drop the preload.
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build-asan}
ASAN_LIB=$(gcc -print-file-name=libasan.so)
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;./?.lua;;'
export LUA_CPATH="./$BUILD/5.4/?.so;;"
export BILLETTERIE_BUILD="$BUILD"   # sandbox processes load the instrumented modules too
export ASAN_OPTIONS=detect_leaks=1:halt_on_error=1:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export LSAN_OPTIONS=suppressions=tools/lsan.supp:print_suppressions=0
# Programs the specs run (curl, openssl...) must not get the ASan runtime:
# curl deadlocks in setlocale with it. A PATH entry of wrappers drops it.
wrappers=$(mktemp -d)
trap 'rm -rf "$wrappers"' EXIT
for tool in curl openssl chromium sqlite3; do
  printf '#!/bin/sh\nexec env -u LD_PRELOAD %s "$@"\n' "$(command -v $tool || echo /usr/bin/$tool)" >"$wrappers/$tool"
  chmod +x "$wrappers/$tool"
done
export PATH="$wrappers:$PATH"
SPECS=$(ls spec/*_spec.lua | grep -E 'core|xml|client|sandbox|s360|httpd' | tr '\n' ' ')
echo "== ASan+UBSan: $SPECS"
# a hang must fail the run, not stall CI
timeout 1500 env LD_PRELOAD="$ASAN_LIB" lua5.4 /usr/bin/busted --helper=spec/support/gc_stress.lua $SPECS
