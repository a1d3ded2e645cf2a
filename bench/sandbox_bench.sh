#!/bin/sh
# shellcheck disable=SC2016 # backquotes in printf formats are Markdown
# bench/sandbox_bench.sh: how many requests a second the sandbox serves, with
# CONC clients in flight (raw libcurl, build/bench/raw_curl from
# bench/raw_curl.c), for ws_idsession (one small write: a session) and
# ws_organisme_creation (a bigger write: decode, insert, read back), with its
# request journal on (the default) and off (--journal-max 0). nginx answering
# a static body (bench/nginx.conf.in) in the same run is the ceiling: every
# figure is also given as a ratio of it.
#
# Writes its own section of bench/RESULTS.md, between two marker comments
# (replaced on the next run, appended the first time); the rest of the file
# is bench/run.sh's and is left as it is.
#
# Knobs (environment): N (20000 requests per measurement), CONC (16),
# REPEAT (3, the median is kept), PIN (1: server and client on two CPUs with
# taskset), LUA (lua5.4), NGINX (/usr/sbin/nginx), RESULTS (bench/RESULTS.md).
set -eu

cd "$(dirname "$0")/.."

LUA=${LUA:-lua5.4}
NGINX=${NGINX:-/usr/sbin/nginx}
N=${N:-20000}
CONC=${CONC:-16}
REPEAT=${REPEAT:-3}
PIN=${PIN:-1}
RESULTS=${RESULTS:-bench/RESULTS.md}
RAW=build/bench/raw_curl
BEGIN_MARK='<!-- bench/sandbox_bench.sh: begin -->'
END_MARK='<!-- bench/sandbox_bench.sh: end -->'

CREDS='x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677'
# base64 of the organisme's JSON, URL-encoded (+ / = are form syntax)
ORG=$(printf '{"intitule":"Compagnie du Banc","nature":"Association","type":"Compagnie"}' \
  | base64 -w0 | sed -e 's/+/%2B/g' -e 's|/|%2F|g' -e 's/=/%3D/g')

say() { printf '%s\n' "sandbox_bench: $*" >&2; }
die() { say "$*"; exit 1; }

TMP=$(mktemp -d /tmp/billetterie-sbench.XXXXXX)
chmod 755 "$TMP"
PIDS=

alive() { kill -0 "$1" 2>/dev/null; }

cleanup() {
  _rc=$?
  trap - EXIT INT TERM HUP
  for _p in $PIDS; do kill -TERM "$_p" 2>/dev/null || true; done
  for _p in $PIDS; do
    _i=0
    while alive "$_p" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
    if alive "$_p"; then kill -KILL "$_p" 2>/dev/null || true; fi
    wait "$_p" 2>/dev/null || true
  done
  rm -rf "$TMP"
  exit $_rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# --- CPU pinning ---------------------------------------------------------------
. bench/pinning.sh

# --- build ---------------------------------------------------------------------
[ -f build/5.4/billetterie/httpd.so ] || die "build/5.4/billetterie/httpd.so is missing: run 'make all'"
if [ ! -x "$RAW" ] || [ -n "$(find bench/raw_curl.c -newer "$RAW")" ]; then
  mkdir -p build/bench
  # shellcheck disable=SC2046
  "${CC:-cc}" -O2 -Wall -Wextra -Werror -o "$RAW" bench/raw_curl.c $(pkg-config --cflags --libs libcurl)
fi

# --- servers -------------------------------------------------------------------
free_port() {
  _used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  while :; do
    _p=$((20000 + $(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 30000))
    printf '%s\n' "$_used" | grep -qx "$_p" || { echo "$_p"; return; }
  done
}

start_nginx() {
  _port=$(free_port)
  mkdir -p "$TMP/nginx"
  sed -e "s|@PORT@|$_port|g" -e "s|@PREFIX@|$TMP/nginx|g" bench/nginx.conf.in >"$TMP/nginx/nginx.conf"
  # shellcheck disable=SC2086
  $SERVER_CPU "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" \
    -g 'daemon off;' >"$TMP/nginx/out" 2>&1 &
  PIDS="$PIDS $!"
  NGINX_URL="http://127.0.0.1:$_port/ws_info_organisme"
  _i=0
  until timeout 5 "$RAW" "$NGINX_URL" "$CREDS" 1 1 >/dev/null 2>&1; do
    _i=$((_i + 1))
    [ $_i -lt 50 ] || die "nginx did not start: $(cat "$TMP/nginx/error.log" 2>/dev/null)"
    sleep 0.1
  done
}

start_sandbox() { # name extra-args...
  _name=$1
  shift
  # shellcheck disable=SC2086
  $SERVER_CPU stdbuf -oL "$LUA" bin/billetterie sandbox --port 0 --db "$TMP/$_name.db" "$@" \
    >"$TMP/$_name.out" 2>"$TMP/$_name.err" &
  PIDS="$PIDS $!"
  _i=0
  while :; do
    _url=$(sed -n 's|^billetterie sandbox listening on \(http://[^ ]*/\)$|\1|p' "$TMP/$_name.out")
    [ -n "$_url" ] && break
    _i=$((_i + 1))
    [ $_i -lt 100 ] || die "the sandbox $_name did not start: $(cat "$TMP/$_name.err")"
    sleep 0.1
  done
  eval "SANDBOX_$_name=\$_url"
}

# --- measuring -----------------------------------------------------------------
: >"$TMP/results"
measure() { # label url body
  # shellcheck disable=SC2086
  _out=$(timeout 300 $CLIENT_CPU "$RAW" "$2" "$3" "$N" "$CONC") || die "$1 failed: $_out"
  _rps=$(printf '%s\n' "$_out" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p')
  _cpu=$(printf '%s\n' "$_out" | sed -n 's/.* cpu_us_per_req=\([0-9.]*\).*/\1/p')
  say "$1: $_out"
  printf '%s %s %s\n' "$1" "$_rps" "$_cpu" >>"$TMP/results"
}

median() { # label -> median req/s
  awk -v l="$1" '$1 == l { print $2 }' "$TMP/results" | sort -n | awk '{ v[NR] = $1 }
    END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

start_nginx
start_sandbox on
start_sandbox off --journal-max 0
# shellcheck disable=SC2154 # set by eval in start_sandbox
SB_ON=$SANDBOX_on SB_OFF=$SANDBOX_off
say "nginx $NGINX_URL, sandbox $SB_ON (journal on), $SB_OFF (journal off); $PINNING"

run_all() {
  measure nginx "$NGINX_URL" "$CREDS"
  measure idsession "${SB_ON}ws_idsession" "$CREDS"
  measure organisme "${SB_ON}ws_organisme_creation" "$CREDS&organisme=$ORG"
  measure idsession_nojournal "${SB_OFF}ws_idsession" "$CREDS"
  measure organisme_nojournal "${SB_OFF}ws_organisme_creation" "$CREDS&organisme=$ORG"
}

say "warming up"
N_SAVED=$N
N=2000
run_all
N=$N_SAVED
: >"$TMP/results"
rep=1
while [ $rep -le "$REPEAT" ]; do
  run_all
  rep=$((rep + 1))
done

# --- the section ----------------------------------------------------------------
NGINX_RPS=$(median nginx)
row() { # label request server
  _r=$(median "$1")
  awk -v r="$_r" -v n="$NGINX_RPS" -v req="$2" -v srv="$3" 'BEGIN {
    printf "| %s | %s | %.0f | %.0f | %.1f%% |\n", req, srv, r, (r > 0 ? 1e6 / r : 0), (n > 0 ? 100 * r / n : 0) }'
}

SECTION="$TMP/section.md"
{
  printf '%s\n' "$BEGIN_MARK"
  printf '# Benchmark: sandbox requests per second\n\n'
  printf 'Measured %s by `bench/sandbox_bench.sh`: %s requests per row with %s in flight, raw libcurl (`build/bench/raw_curl`), median of %s runs; %s cores (%s), %s; pinning: %s.\n\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$N" "$CONC" "$REPEAT" "$(nproc)" \
    "$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)" \
    "$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')" "$PINNING"
  printf '| request | server | req/s | us per request | of nginx |\n|---|---|---:|---:|---:|\n'
  printf '| any path, static JSON body | nginx, one worker (`bench/nginx.conf.in`) | %.0f | %.0f | 100%% |\n' \
    "$NGINX_RPS" "$(awk -v r="$NGINX_RPS" 'BEGIN { print (r > 0 ? 1e6 / r : 0) }')"
  row idsession "ws_idsession (a session written)" "sandbox"
  row organisme "ws_organisme_creation (an organisme written, read back)" "sandbox"
  row idsession_nojournal "ws_idsession" "sandbox, \`--journal-max 0\`"
  row organisme_nojournal "ws_organisme_creation" "sandbox, \`--journal-max 0\`"
  printf '\nThe sandbox is one Lua process serving one request at a time (libmicrohttpd in external-poll mode), so its rate is its CPU time per request; nginx shows what the loopback and the client allow. '
  printf 'Before this bench existed the sandbox wrote through SQLite'"'"'s rollback journal with an fsync per commit and served about 500 ws_idsession a second on this machine (the issue measured 1.4k elsewhere): the time went to the disk. '
  printf 'It now runs SQLite in WAL mode with synchronous=NORMAL (no fsync per commit, safe against a killed process: see docs/sandbox-http.md), and each request with its journal row is one transaction. '
  printf 'What is left is CPU: the kernel'"'"'s loopback TCP (about 40%% of the server'"'"'s samples under perf), Lua (the services, building the request table, JSON), SQLite (LuaSQL prepares every statement again) and malloc. '
  printf 'The request journal is the difference between the journal-on and journal-off rows: an INSERT in the request'"'"'s transaction, the services'"'"' own transactions becoming savepoints of it, one more page per commit (`--journal-max 0` for load tests). '
  printf 'In ws_organisme_creation the base64 organisme is decoded by the core'"'"'s C decoder (a pure-Lua decoder cost about 14 us per call before); what is left is the SQL of the write and the read-back, and the JSON.\n'
  printf '%s\n' "$END_MARK"
} >"$SECTION"

if [ -f "$RESULTS" ] && grep -qF "$BEGIN_MARK" "$RESULTS"; then
  awk -v b="$BEGIN_MARK" -v e="$END_MARK" -v f="$SECTION" '
    $0 == b { while ((getline l < f) > 0) print l; skip = 1; next }
    $0 == e { skip = 0; next }
    !skip { print }' "$RESULTS" >"$RESULTS.tmp"
else
  { [ -f "$RESULTS" ] && cat "$RESULTS" && printf '\n'; cat "$SECTION"; } >"$RESULTS.tmp"
fi
mv "$RESULTS.tmp" "$RESULTS"
say "wrote the sandbox section of $RESULTS"
