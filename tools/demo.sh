#!/bin/sh
# `make demo`: start the sandbox on a free port with a fresh SQLite file, run
# examples/quickstart.lua against it, stop the sandbox.
set -eu
cd "$(dirname "$0")/.."
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
export LUA_CPATH='./build/5.4/?.so;;'
work=$(mktemp -d)
lua5.4 bin/billetterie sandbox --port 0 --db "$work/sandbox.db" >"$work/out" 2>"$work/err" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$work"' EXIT INT TERM
url=""
for _ in $(seq 1 50); do
  url=$(sed -n 's/^billetterie sandbox listening on \(http[^ ]*\)$/\1/p' "$work/out")
  [ -n "$url" ] && break
  kill -0 $pid 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "the sandbox did not start:" >&2
  cat "$work/err" >&2
  exit 1
fi
echo "sandbox at $url (a fresh database, removed when the demo ends)"
BILLETTERIE_URL="$url" lua5.4 examples/quickstart.lua
