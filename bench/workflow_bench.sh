#!/bin/sh
# bench/workflow_bench.sh: the workflow figures of issue #5, written to their
# own section of bench/RESULTS.md.
#  1. 1,000 ws_idsession calls against the sandbox with 50 ms of injected
#     latency (--fault), sequential and with 16 and 64 in flight, through
#     c:call (billetterie.run) and through raw libcurl multi from C, against
#     the ideal 1000 / concurrency x 50 ms.
#  2. A 10,000-record organisme import (billetterie.bulk, 16 in flight) and
#     the same 10,000 ws_organisme_creation requests from raw libcurl:
#     records per second and the importer's peak memory.
# Run from the repository root: sh bench/workflow_bench.sh (about 2 minutes).
# Knobs: N (1000), LATENCY_MS (50), ROWS (10000), SEQ (1: run the sequential
# case, 50 s of waiting by design), RESULTS (bench/RESULTS.md).
set -eu
cd "$(dirname "$0")/.."
N=${N:-1000}; LATENCY_MS=${LATENCY_MS:-50}; ROWS=${ROWS:-10000}; SEQ=${SEQ:-1}
RESULTS=${RESULTS:-bench/RESULTS.md}
export LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./build/5.4/?.so;;'
RAW=build/bench/raw_curl
mkdir -p build/bench
[ -x "$RAW" ] || cc -O2 -Wall -Wextra -Werror -o "$RAW" bench/raw_curl.c $(pkg-config --cflags --libs libcurl)
TMP=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; rm -rf "$TMP"; }
trap cleanup EXIT INT TERM

# In the script's own shell (not in $(...), where PIDS would be lost and the
# sandbox left running): start_sandbox NAME [sandbox args...] sets URL.
start_sandbox() {
  name=$1; shift
  lua5.4 bin/billetterie sandbox --port 0 --db "$TMP/$name.db" --journal-max 0 "$@" >"$TMP/$name.out" 2>"$TMP/$name.err" &
  PIDS="$PIDS $!"
  i=0
  while [ $i -lt 100 ]; do
    URL=$(sed -n 's/^billetterie sandbox listening on //p' "$TMP/$name.out")
    [ -n "$URL" ] && return 0
    sleep 0.1; i=$((i + 1))
  done
  cat "$TMP/$name.err" >&2; exit 1
}
field() { echo "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }
SESSION='x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677'

# 1. latency
start_sandbox slow --fault "ws_idsession:latency=$LATENCY_MS"; SLOW=$URL
echo "sandbox with ${LATENCY_MS} ms of latency at $SLOW" >&2
: >"$TMP/latency"
for c in 1 16 64; do
  [ "$c" = 1 ] && [ "$SEQ" != 1 ] && continue
  lua=$(lua5.4 bench/call_bench.lua "$SLOW" "$N" "$c" ws_idsession)
  raw=$("$RAW" "${SLOW}ws_idsession" "$SESSION" "$N" "$c")
  ideal=$(awk -v n="$N" -v c="$c" -v l="$LATENCY_MS" 'BEGIN { printf "%.2f", n / c * l / 1000 }')
  echo "$c $ideal $(field "$lua" seconds) $(field "$raw" seconds)" >>"$TMP/latency"
  echo "latency c=$c: ideal $ideal s, c:call $(field "$lua" seconds) s, raw $(field "$raw" seconds) s" >&2
done

# 2. import
start_sandbox fast; FAST=$URL
ROWS=$ROWS CSV="$TMP/rows.csv" lua5.4 -e '
  local f = assert(io.open(os.getenv("CSV"), "w"))
  f:write("Nom;Nature;Ville\n")
  for i = 1, tonumber(os.getenv("ROWS")) do f:write(("Structure %05d;Association;Lyon\n"):format(i)) end
  f:close()'
cat >"$TMP/import.lua" <<LUA
local billetterie = require "billetterie"
local core = require "billetterie.core"
local c = billetterie.new{ url = "$FAST", login = "xrsitest", password = "xrsimdp", client_id = 677,
  api_url = "$FAST", api_login = "WSCE", api_key = "b1829f60af03c1e69a13ed44405ec898f912b63a" }
local t0 = core.now()
local r = assert(require("billetterie.bulk").import{ client = c, csv = "$TMP/rows.csv", journal = "$TMP/rows.db",
  concurrency = 16, map = { ["organisme.intitule"] = "Nom", ["organisme.nature"] = "Nature",
  ["adresses.1.type_adresse"] = "Nature", ["adresses.1.ville"] = "Ville" } })
local seconds = core.now() - t0
local status = io.open("/proc/self/status"):read("*a")
print(("created=%d seconds=%.3f peak_kb=%s"):format(r.created, seconds, status:match("VmHWM:%s*(%d+)")))
LUA
imp=$(lua5.4 "$TMP/import.lua")
echo "import: $imp" >&2
ORG=$(lua5.4 -e 'io.write(require("billetterie.core").b64encode([[{"intitule":"Structure brute","nature":"Association"}]]))')
ORG_Q=$(ORG="$ORG" lua5.4 -e 'io.write((require("billetterie.core").form_escape(os.getenv("ORG"))))')
rawimp=$("$RAW" "${FAST}ws_organisme_creation" "$SESSION&organisme=$ORG_Q" "$ROWS" 16)
echo "raw import: $rawimp" >&2

# 3. RESULTS.md section
BEGIN_MARK='<!-- bench/workflow_bench.sh: begin -->'
END_MARK='<!-- bench/workflow_bench.sh: end -->'
{
  echo "$BEGIN_MARK"
  echo "## Workflows (issue #5): latency and bulk import"
  echo
  echo "Measured $(date -u '+%Y-%m-%d %H:%M') UTC by \`sh bench/workflow_bench.sh\` ($(nproc) cores)."
  echo
  echo "### $N ws_idsession calls, the sandbox adding ${LATENCY_MS} ms to each"
  echo
  echo "| in flight | ideal (N / C x latency) | c:call | c:call / ideal | raw libcurl multi | raw / ideal |"
  echo "|---:|---:|---:|---:|---:|---:|"
  while read -r c ideal lua raw; do
    awk -v c="$c" -v i="$ideal" -v l="$lua" -v r="$raw" 'BEGIN { printf "| %d | %.2f s | %.2f s | %.2fx | %.2f s | %.2fx |\n", c, i, l, l / i, r, r / i }'
  done <"$TMP/latency"
  echo
  echo "The target is c:call within 1.15x of the ideal; raw libcurl multi shows what the transport alone reaches."
  echo
  echo "### Import of $ROWS organismes (16 in flight, against the sandbox)"
  echo
  created=$(field "$imp" created); secs=$(field "$imp" seconds); peak=$(field "$imp" peak_kb)
  rawsecs=$(field "$rawimp" seconds)
  awk -v n="$ROWS" -v c="$created" -v s="$secs" -v p="$peak" -v rs="$rawsecs" 'BEGIN {
    printf "| | records | seconds | records/s | peak memory |\n|---|---:|---:|---:|---:|\n"
    printf "| billetterie.bulk (journal, resumable) | %d | %.1f | %.0f | %.1f MB |\n", c, s, c / s, p / 1024
    printf "| raw libcurl, same requests, no journal | %d | %.1f | %.0f | |\n", n, rs, n / rs
    printf "\nbilletterie.bulk reaches %.0f%% of the raw rate; the difference is the SQLite journal (two committed writes per record) and the CSV mapping.\n", 100 * (c / s) / (n / rs) }'
  echo "$END_MARK"
} >"$TMP/section"
if [ -f "$RESULTS" ] && grep -q "$BEGIN_MARK" "$RESULTS"; then
  awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v f="$TMP/section" '
    $0 == b { while ((getline line < f) > 0) print line; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }' "$RESULTS" >"$TMP/results" && mv "$TMP/results" "$RESULTS"
else
  { [ -f "$RESULTS" ] && cat "$RESULTS"; echo; cat "$TMP/section"; } >"$TMP/results" && mv "$TMP/results" "$RESULTS"
fi
echo "wrote $RESULTS" >&2
