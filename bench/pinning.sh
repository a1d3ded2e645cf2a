# bench/pinning.sh, sourced by the bench scripts: pins the server to one CPU
# and the client to another (taskset), since on this 2-core VM a run's rate
# otherwise jumps with where the scheduler puts the two. PIN=0 turns it off.
# Sets SERVER_CPU, CLIENT_CPU (command prefixes) and PINNING (a description).
SERVER_CPU=
CLIENT_CPU=
PINNING="none (PIN=0 or fewer than two CPUs)"
if [ "${PIN:-1}" = 1 ] && command -v taskset >/dev/null 2>&1; then
  _cpus=$(taskset -pc $$ | sed 's/.*: *//' | tr ',' '\n' | awk -F- '
    { hi = ($2 == "" ? $1 : $2); for (i = $1; i <= hi && n < 2; i++) { print i; n++ } }')
  _c0=$(printf '%s\n' "$_cpus" | sed -n 1p)
  _c1=$(printf '%s\n' "$_cpus" | sed -n 2p)
  if [ -n "$_c0" ] && [ -n "$_c1" ]; then
    CLIENT_CPU="taskset -c $_c0"
    SERVER_CPU="taskset -c $_c1"
    PINNING="client on CPU $_c0, server on CPU $_c1 (taskset)"
  fi
fi
