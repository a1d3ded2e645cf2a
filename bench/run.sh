#!/bin/sh
# shellcheck disable=SC2016 # backquotes in printf formats are Markdown
# bench/run.sh: raw libcurl (bench/raw_curl.c) against the Lua client's c:call
# (bench/call_bench.lua), on loopback, against two servers:
#   - nginx answering a fixed ws_info_organisme JSON (bench/nginx.conf.in), the
#     fastest server there is here, so the client's own cost shows;
#   - the project's sandbox (bin/billetterie sandbox), with ws_idsession, which
#     needs only the credentials and no data in the sandbox's database.
# Each pair runs sequentially (1) and with 16 transfers in flight, REPEAT
# times, alternating which of the two goes first; the median is kept. Writes
# bench/RESULTS.md. Run from anywhere: `sh bench/run.sh` (or `make bench`,
# which builds the core first). Stops everything it started on exit.
#
# The server (nginx's one worker, or the sandbox) is pinned to one CPU and
# the client to another with taskset: left to the scheduler, a sequential
# client and its server sometimes share a core and sometimes not, and the
# sequential rate then jumps between about 10k and 45k requests/s from one
# run to the next. PIN=0 turns pinning off.
#
# Knobs (environment): REPEAT (5), NGINX_N_SEQ (20000), NGINX_N_CONC (50000),
# SANDBOX_N_SEQ (2000), SANDBOX_N_CONC (4000), CONC (16), PIN (1),
# LUA (lua5.4), NGINX (/usr/sbin/nginx), RESULTS (bench/RESULTS.md).
set -eu

cd "$(dirname "$0")/.."

LUA=${LUA:-lua5.4}
NGINX=${NGINX:-/usr/sbin/nginx}
REPEAT=${REPEAT:-5}
CONC=${CONC:-16}
NGINX_N_SEQ=${NGINX_N_SEQ:-20000}
NGINX_N_CONC=${NGINX_N_CONC:-50000}
SANDBOX_N_SEQ=${SANDBOX_N_SEQ:-2000}
SANDBOX_N_CONC=${SANDBOX_N_CONC:-4000}
PIN=${PIN:-1}
RESULTS=${RESULTS:-bench/RESULTS.md}
STEP_TIMEOUT=150 # seconds: no single measurement may take longer

LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'
LUA_CPATH='./build/5.4/?.so;;'
export LUA_PATH LUA_CPATH

CREDS='x_rsi_ws_login=xrsitest&x_rsi_ws_mdp=xrsimdp&x_rsi_client=677'
BODY_ORG="$CREDS&id_organisme=5442"
BODY_SESSION="$CREDS"
RAW=build/bench/raw_curl

say() { printf '%s\n' "bench: $*" >&2; }
die() { say "$*"; exit 1; }

# --- everything started is stopped on exit ---------------------------------
TMP=$(mktemp -d /tmp/billetterie-bench.XXXXXX)
chmod 755 "$TMP" # nginx's worker (user nobody) may need to enter it
NGINX_PID=
NGINX_WORKERS=
SANDBOX_PID=

alive() { # pid: running and not a zombie
  _s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
  case $_s in Z*) return 1 ;; esac
  return 0
}

stop_pids() { # pids...: TERM, wait up to 5 s, then KILL; reap our children
  for _p in "$@"; do kill -TERM "$_p" 2>/dev/null || true; done
  _i=0
  while [ $_i -lt 50 ]; do
    _left=
    for _p in "$@"; do alive "$_p" && _left=1; done
    [ -z "$_left" ] && break
    sleep 0.1
    _i=$((_i + 1))
  done
  for _p in "$@"; do
    if alive "$_p"; then kill -KILL "$_p" 2>/dev/null || true; fi
  done
  for _p in "$@"; do wait "$_p" 2>/dev/null || true; done
}

cleanup() {
  _rc=$?
  trap - EXIT INT TERM HUP
  # shellcheck disable=SC2086 # word splitting of the pid lists is wanted
  stop_pids $SANDBOX_PID $NGINX_PID
  # nginx's workers end with their master; a KILLed master would orphan them.
  for _p in $NGINX_WORKERS; do
    if alive "$_p"; then kill -KILL "$_p" 2>/dev/null || true; fi
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

# --- build -------------------------------------------------------------------
[ -f build/5.4/billetterie/core.so ] || die "build/5.4/billetterie/core.so is missing: run 'make all' (or 'make bench')"
[ -f lua/billetterie/init.lua ] || die "lua/billetterie/init.lua is missing"
mkdir -p build/bench
# shellcheck disable=SC2046
"${CC:-cc}" -O2 -Wall -Wextra -Werror -o "$RAW" bench/raw_curl.c $(pkg-config --cflags --libs libcurl)

# --- URLs: the same request line as the client sends --------------------------
# The client posts OPERATION's form to BASE_URL .. OPERATION (see
# lua/billetterie); raw_curl is given the same full URL.
op_url() { # base op
  case $1 in */) printf '%s%s' "$1" "$2" ;; *) printf '%s/%s' "$1" "$2" ;; esac
}

ready() { # url body: one request answers 200
  timeout 5 "$RAW" "$1" "$2" 1 1 >/dev/null 2>&1
}

# --- nginx ---------------------------------------------------------------------
start_nginx() {
  _used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
  _r=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
  _start=$((20000 + _r % 30000))
  _try=0
  while [ $_try -lt 20 ]; do
    _port=$((_start + _try * 7))
    _try=$((_try + 1))
    if printf '%s\n' "$_used" | grep -qx "$_port"; then continue; fi
    mkdir -p "$TMP/nginx"
    sed -e "s|@PORT@|$_port|g" -e "s|@PREFIX@|$TMP/nginx|g" bench/nginx.conf.in >"$TMP/nginx/nginx.conf"
    # shellcheck disable=SC2086 # $SERVER_CPU is a command prefix or empty
    $SERVER_CPU "$NGINX" -p "$TMP/nginx" -e "$TMP/nginx/error.log" -c "$TMP/nginx/nginx.conf" -g 'daemon off;' \
      >"$TMP/nginx/stdout" 2>&1 &
    NGINX_PID=$!
    NGINX_BASE="http://127.0.0.1:$_port/"
    _i=0
    while [ $_i -lt 30 ] && alive "$NGINX_PID"; do
      if ready "$(op_url "$NGINX_BASE" ws_info_organisme)" "$BODY_ORG"; then
        NGINX_WORKERS=$(pgrep -P "$NGINX_PID" || true)
        say "nginx listening on $NGINX_BASE (pid $NGINX_PID)"
        return 0
      fi
      sleep 0.1
      _i=$((_i + 1))
    done
    # did not come up (port taken in between, most likely): try another
    stop_pids "$NGINX_PID"
    NGINX_PID=
  done
  cat "$TMP/nginx/error.log" >&2 2>/dev/null || true
  die "nginx did not start"
}

# --- sandbox ---------------------------------------------------------------------
SANDBOX_BASE=
start_sandbox() {
  if [ ! -f bin/billetterie ]; then
    say "bin/billetterie is missing: sandbox runs skipped"
    return 0
  fi
  # shellcheck disable=SC2086
  $SERVER_CPU stdbuf -oL "$LUA" bin/billetterie sandbox --port 0 --db "$TMP/sandbox.db" \
    >"$TMP/sandbox.out" 2>"$TMP/sandbox.err" &
  SANDBOX_PID=$!
  _i=0
  while [ $_i -lt 100 ]; do
    SANDBOX_BASE=$(sed -n 's|^billetterie sandbox listening on \(http://127\.0\.0\.1:[0-9][0-9]*/\).*$|\1|p' "$TMP/sandbox.out" | head -n 1)
    [ -n "$SANDBOX_BASE" ] && break
    if ! alive "$SANDBOX_PID"; then
      cat "$TMP/sandbox.out" "$TMP/sandbox.err" >&2
      die "the sandbox exited before listening"
    fi
    sleep 0.1
    _i=$((_i + 1))
  done
  [ -n "$SANDBOX_BASE" ] || die "the sandbox printed no 'listening on' line within 10 s"
  ready "$(op_url "$SANDBOX_BASE" ws_idsession)" "$BODY_SESSION" \
    || die "the sandbox does not answer ws_idsession with HTTP 200"
  say "sandbox listening on $SANDBOX_BASE (pid $SANDBOX_PID)"
}

# --- one measurement -------------------------------------------------------------
# measure TARGET IMPL N CONC: appends "TARGET CONC IMPL RPS CPU REP" to results.
measure() {
  _target=$1 _impl=$2 _n=$3 _c=$4
  case $_target in
    nginx) _base=$NGINX_BASE _op=ws_info_organisme _body=$BODY_ORG ;;
    sandbox) _base=$SANDBOX_BASE _op=ws_idsession _body=$BODY_SESSION ;;
  esac
  case $_impl in
    raw) set -- "$RAW" "$(op_url "$_base" "$_op")" "$_body" "$_n" "$_c" ;;
    floor) set -- "$LUA" bench/call_bench.lua "$_base" "$_n" "$_c" "$_op" floor ;;
    *) set -- "$LUA" bench/call_bench.lua "$_base" "$_n" "$_c" "$_op" ;;
  esac
  # shellcheck disable=SC2086
  if ! _out=$(timeout "$STEP_TIMEOUT" $CLIENT_CPU "$@" 2>"$TMP/step.err"); then
    cat "$TMP/step.err" >&2
    printf '%s\n' "$_out" >&2
    die "$_impl against $_target (N=$_n, concurrency $_c) failed: not counted"
  fi
  _rps=$(printf '%s\n' "$_out" | sed -n 's/.* rps=\([0-9.]*\).*/\1/p')
  _cpu=$(printf '%s\n' "$_out" | sed -n 's/.* cpu_us_per_req=\([0-9.]*\).*/\1/p')
  if [ -z "$_rps" ] || [ -z "$_cpu" ]; then die "unreadable output from $_impl: $_out"; fi
  say "$_target c=$_c $_impl: $_out"
  printf '%s %s %s %s %s %s\n' "$_target" "$_c" "$_impl" "$_rps" "$_cpu" "${rep:-0}" >>"$TMP/results"
}

median() { # target conc impl column(4=rps, 5=cpu)
  awk -v t="$1" -v c="$2" -v i="$3" -v col="$4" '$1 == t && $2 == c && $3 == i { print $col }' \
    "$TMP/results" | sort -n | awk '{ v[NR] = $1 } END {
      if (NR == 0) { print "-"; exit }
      if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# --- run ---------------------------------------------------------------------------
start_nginx
start_sandbox
: >"$TMP/results"
TARGETS=nginx
[ -n "$SANDBOX_BASE" ] && TARGETS="nginx sandbox"

say "warming up"
for t in $TARGETS; do
  measure "$t" raw 1000 1
  measure "$t" lua 1000 1
  measure "$t" raw 2000 "$CONC"
  measure "$t" lua 2000 "$CONC"
done
: >"$TMP/results"

T0=$(date +%s)
rep=1
while [ $rep -le "$REPEAT" ]; do
  for t in $TARGETS; do
    for c in 1 "$CONC"; do
      case $t.$c in
        nginx.1) n=$NGINX_N_SEQ ;;
        nginx.*) n=$NGINX_N_CONC ;;
        sandbox.1) n=$SANDBOX_N_SEQ ;;
        *) n=$SANDBOX_N_CONC ;;
      esac
      if [ $((rep % 2)) -eq 1 ]; then
        measure "$t" raw "$n" "$c"
        measure "$t" lua "$n" "$c"
      else
        measure "$t" lua "$n" "$c"
        measure "$t" raw "$n" "$c"
      fi
      # the floor (call_bench.lua ... floor): nginx only, where the client's cost shows
      if [ "$t" = nginx ]; then measure "$t" floor "$n" "$c"; fi
    done
  done
  rep=$((rep + 1))
done
# --- the client's own CPU, without network (bench/client_cost.lua) -----------
# shellcheck disable=SC2086 # $CLIENT_CPU is a command prefix or empty
COST=$($CLIENT_CPU "$LUA" bench/client_cost.lua) \
  || die "bench/client_cost.lua failed"
cost() { printf '%s\n' "$COST" | sed -n "s/^$1=//p"; }

ELAPSED=$(($(date +%s) - T0))

# --- RESULTS.md --------------------------------------------------------------------
first_line() { "$@" 2>&1 | head -n 1; }
CPU_MODEL=$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -n 1)
LUA_V=$(first_line "$LUA" -v | sed "s/  *Copyright.*//")
CURL_V=$(pkg-config --modversion libcurl 2>/dev/null || echo unknown)
CURL_SSL=$(curl-config --ssl-backends 2>/dev/null || true)
NGINX_V=$(first_line "$NGINX" -v | sed 's/^nginx version: //')
CJSON_V=$(dpkg-query -W -f='${Version}' lua-cjson 2>/dev/null || echo unknown)
NPROC=$(nproc)
KERNEL=$(uname -sr)

spread() { # target conc -> "min–max" of c:call/raw over the repetitions (each pair run back to back)
  awk -v t="$1" -v c="$2" '$1 == t && $2 == c { v[$3, $6] = $4; reps[$6] = 1 }
    END { n = 0; for (r in reps) if ((("lua", r) in v) && (("raw", r) in v) && v["raw", r] > 0) {
            x = 100 * v["lua", r] / v["raw", r]; if (!n || x < lo) lo = x; if (!n || x > hi) hi = x; n++ }
          if (n) printf "%.0f–%.0f%%", lo, hi; else print "-" }' "$TMP/results"
}

ratio() { # a b -> a/b in percent, or -
  awk -v a="$1" -v b="$2" 'BEGIN { if (a == "-" || b == "-" || b + 0 == 0) print "-"; else printf "%.0f%%", 100 * a / b }'
}

table() { # target
  printf '| in flight | N | raw libcurl req/s | raw CPU us/req | c:call req/s | c:call CPU us/req | c:call / raw (rate) | per-repetition range | c:call − raw (CPU us/req) |\n'
  printf '|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
  for c in 1 "$CONC"; do
    case $1.$c in
      nginx.1) n=$NGINX_N_SEQ ;; nginx.*) n=$NGINX_N_CONC ;;
      sandbox.1) n=$SANDBOX_N_SEQ ;; *) n=$SANDBOX_N_CONC ;;
    esac
    rr=$(median "$1" "$c" raw 4); rc=$(median "$1" "$c" raw 5)
    lr=$(median "$1" "$c" lua 4); lc=$(median "$1" "$c" lua 5)
    extra=$(awk -v a="$lc" -v b="$rc" 'BEGIN { printf "%+.1f", a - b }')
    printf '| %s | %s | %s | %s | %s | %s | **%s** | %s | %s |\n' "$c" "$n" "$rr" "$rc" "$lr" "$lc" "$(ratio "$lr" "$rr")" "$(spread "$1" "$c")" "$extra"
  done
}

pct() { # target conc -> numeric percent
  awk -v a="$(median "$1" "$2" lua 4)" -v b="$(median "$1" "$2" raw 4)" 'BEGIN { if (b + 0 == 0) print 0; else printf "%.0f", 100 * a / b }'
}

verdict() { # target conc
  if [ "$(pct "$1" "$2")" -ge 85 ]; then echo "meets"; else echo "misses"; fi
}

reading() {
  s1=$(pct nginx 1); sc=$(pct nginx "$CONC")
  d1=$(awk -v a="$(median nginx 1 lua 5)" -v b="$(median nginx 1 raw 5)" 'BEGIN { printf "%.1f", a - b }')
  dc=$(awk -v a="$(median nginx "$CONC" lua 5)" -v b="$(median nginx "$CONC" raw 5)" 'BEGIN { printf "%.1f", a - b }')
  printf 'Against nginx, which answers almost for free, the client is what limits the rate: '
  printf 'c:call reaches %s%% of raw libcurl'"'"'s rate with one request at a time (it %s the 85%% target) ' "$s1" "$(verdict nginx 1)"
  printf 'and %s%% with %s in flight (it %s it). ' "$sc" "$CONC" "$(verdict nginx "$CONC")"
  printf 'What the client adds to each call (encoding the form, setting up the transfer, decoding the JSON '
  printf 'answer into Lua tables, building the statut, and with concurrency the task scheduling) '
  printf 'costs %s us of CPU per request sequentially and %s us with %s in flight. ' "$d1" "$dc" "$CONC"
  fc=$(median nginx "$CONC" floor 4)
  if [ "$fc" != "-" ]; then
    printf 'The floor row sets this against what cannot be avoided: a Lua client that only sends the prepared request through the same engine and decodes the answer with lua-cjson reaches %s of raw libcurl'"'"'s rate with %s in flight, and c:call reaches %s of that floor; ' \
      "$(ratio "$fc" "$(median nginx "$CONC" raw 4)")" "$CONC" "$(ratio "$(median nginx "$CONC" lua 4)" "$fc")"
    printf 'checking the parameters, encoding the form and reading the envelope are the difference. '
  fi
  printf 'Sequentially part of each request is spent waiting for the round trip through the kernel and nginx, '
  printf 'so extra client CPU lowers the rate less than in proportion; with %s in flight the client'"'"'s core is busy all the time ' "$CONC"
  printf 'and the rate follows the CPU cost per request. '
  printf 'The sequential rate also hangs on cross-core wake-ups of this virtual machine and can move a lot from one run to the next (the range column gives this run'"'"'s spread), '
  printf 'so the CPU per request and the %s-in-flight rows are the steadier measure of what the client costs. ' "$CONC"
  if [ -n "$SANDBOX_BASE" ]; then
    nr=$(median nginx "$CONC" raw 4); sr=$(median sandbox "$CONC" raw 4)
    if awk -v a="$sr" -v b="$nr" 'BEGIN { exit !(a < b / 2) }'; then
      printf 'Against the sandbox the server is the bottleneck (raw libcurl with %s in flight: %s req/s against the sandbox, %s against nginx), ' "$CONC" "$sr" "$nr"
      printf 'so those rows (c:call at %s%% sequentially and %s%% with %s in flight) tell what a test suite against the sandbox can expect, more than what the client costs.' \
        "$(pct sandbox 1)" "$(pct sandbox "$CONC")" "$CONC"
    else
      printf 'Against the sandbox c:call reaches %s%% of raw libcurl'"'"'s rate sequentially and %s%% with %s in flight.' "$(pct sandbox 1)" "$(pct sandbox "$CONC")" "$CONC"
    fi
  else
    printf 'The sandbox (bin/billetterie) was missing, so its rows were not measured.'
  fi
  printf '\n'
}

{
  printf '# Benchmark: c:call against raw libcurl\n\n'
  printf 'Measured %s by `bench/run.sh` (%s repetitions per row, median kept; the order of the two clients alternates between repetitions; the whole measurement took %s s).\n\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$REPEAT" "$ELAPSED"
  printf '## Machine\n\n'
  printf -- '- %s cores, %s, %s\n' "$NPROC" "$CPU_MODEL" "$KERNEL"
  printf -- '- %s; libcurl %s%s; %s; lua-cjson %s\n' "$LUA_V" "$CURL_V" "${CURL_SSL:+ ($CURL_SSL)}" "$NGINX_V" "$CJSON_V"
  printf -- '- loopback (127.0.0.1), HTTP/1.1 keep-alive; nginx with one worker; pinning: %s\n\n' "$PINNING"
  printf '## Reproduce\n\n'
  printf '```sh\nmake bench            # installs what is missing, builds the core, then runs: sh bench/run.sh\n'
  printf 'REPEAT=5 sh bench/run.sh   # knobs: REPEAT NGINX_N_SEQ NGINX_N_CONC SANDBOX_N_SEQ SANDBOX_N_CONC CONC PIN\n```\n\n'
  printf 'Each row runs the same N requests through both clients:\n\n'
  printf -- '- raw libcurl: `build/bench/raw_curl URL BODY N C` (bench/raw_curl.c): the same request headers as c:call (user agent, Accept, gzip accepted, empty Expect), set once per handle; one easy handle and `curl_easy_perform` in a loop for C=1; a multi handle with C transfers in flight and `curl_multi_poll` otherwise; every body kept in memory and every status checked.\n'
  printf -- '- c:call: `lua5.4 bench/call_bench.lua BASE_URL N C OPERATION`: `c:call(OPERATION, params)` in a loop for C=1; C tasks under `billetterie.run`/`spawn` otherwise; every answer decoded and its statut checked.\n'
  printf -- '- CPU is the process'"'"'s user+sys time (getrusage / os.clock) divided by N; any failed request aborts the run.\n\n'
  printf '## nginx (fixed ws_info_organisme JSON answer, bench/nginx.conf.in)\n\n'
  table nginx
  printf '\nThe issue'"'"'s target is c:call at 85%% or more of raw libcurl'"'"'s rate. For scale, the reference figures for raw libcurl on this kind of machine are about 16.5k req/s sequential (31 us CPU) and 74k req/s with 16 in flight (13 us).\n\n'
  printf '## The floor: what any Lua client returning Lua tables pays\n\n'
  printf 'The same requests, prepared once, through the same transport and tasks (libcurl'"'"'s engine in the core, `billetterie.run`), each answer decoded by `json.decode` (lua-cjson, integers restored) and nothing else: no parameter checks, no form encoding, no envelope (`lua5.4 bench/call_bench.lua BASE_URL N C ws_info_organisme floor`). No client built on lua-cjson and Lua tables can go faster than this; c:call / floor is what the client'"'"'s own work costs on top.\n\n'
  printf '| in flight | raw libcurl req/s | floor req/s | floor CPU us/req | floor / raw (rate) | c:call / floor (rate) |\n'
  printf '|---:|---:|---:|---:|---:|---:|\n'
  for c in 1 "$CONC"; do
    fr=$(median nginx "$c" floor 4)
    printf '| %s | %s | %s | %s | %s | %s |\n' "$c" "$(median nginx "$c" raw 4)" "$fr" "$(median nginx "$c" floor 5)" \
      "$(ratio "$fr" "$(median nginx "$c" raw 4)")" "$(ratio "$(median nginx "$c" lua 4)" "$fr")"
  done
  printf '\n'
  rc=$(median nginx "$CONC" raw 5)
  printf '## Where c:call'"'"'s CPU goes (no network: `lua5.4 bench/client_cost.lua`)\n\n'
  printf '| per call | CPU us |\n|---|---:|\n'
  printf '| c:call through an in-process transport returning the nginx answer (all the client does) | %s |\n' "$(cost call)"
  printf '| of which the request side: checks, credentials, form (`c:_prepare`) | %s |\n' "$(cost prepare)"
  printf '| of which `json.decode` of the answer alone (lua-cjson, integers restored, its tables collected) | %s |\n' "$(cost decode)"
  awk -v r="$rc" -v d="$(cost decode)" 'BEGIN {
    b = r / 0.85 - r
    printf "\nAt 85%% of raw libcurl'"'"'s rate with %s in flight, c:call may add %.1f us of CPU per request to raw'"'"'s %.1f us. ", "'"$CONC"'", b, r
    printf "Decoding the answer into Lua tables with lua-cjson takes %.1f us of it (%.0f%%) before anything else the client does. ", d, 100 * d / b
    printf "The rest of the client (checks, form, envelope, task scheduling, the transfer set-up in the core) shares what is left.\n\n" }'
  if [ -n "$SANDBOX_BASE" ]; then
    printf '## Sandbox (`bin/billetterie sandbox`, ws_idsession: credentials only, no data needed)\n\n'
    table sandbox
    printf '\n'
  else
    printf '## Sandbox\n\nNot measured: bin/billetterie was missing when this ran.\n\n'
  fi
  printf '## Reading\n\n'
  reading
  # keep the sections the other bench scripts wrote (between their markers)
  if [ -f "$RESULTS" ]; then
    awk '/^<!-- bench\/[a-z_]+\.sh: begin -->$/ { keep = 1 } keep { print } /^<!-- bench\/[a-z_]+\.sh: end -->$/ { keep = 0; print "" }' "$RESULTS"
  fi
} >"$RESULTS.tmp"
mv "$RESULTS.tmp" "$RESULTS"
say "wrote $RESULTS"
