#!/bin/sh
# Runs examples/openresty/nginx.conf in the foreground against a vendor URL
# (a sandbox: bin/billetterie sandbox --port 8080 --db /tmp/demo.db --seed demo).
#   sh examples/openresty/run.sh http://127.0.0.1:8080/ 8090
#   sh examples/openresty/run.sh https://billetterieweb.fr/ 8090
#   sh examples/openresty/run.sh --config URL PORT   # only print the config
# then open http://127.0.0.1:8090/newsletter, /account, /catalogue.
# The pages call the vendor with its own scheme and name (https://HOST/...:
# TLS checked against HOST with $CA, Host: HOST) through a keep-alive pool
# named HOST that connects to HOST:PORT.
set -eu
config_only=
if [ "${1:-}" = "--config" ]; then config_only=1; shift; fi
vendor=${1:-http://127.0.0.1:8080/}
port=${2:-8090}
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
ca=${CA:-/etc/ssl/certs/ca-certificates.crt}
die() { echo "run.sh: $*" >&2; exit 2; }
case "$vendor" in
  http://*) scheme=http; default_port=80 ;;
  https://*) scheme=https; default_port=443 ;;
  *) die "the vendor URL must start with http:// or https:// ($vendor)" ;;
esac
rest=${vendor#*://}
hostport=${rest%%/*}
path=${rest#"$hostport"}
[ -n "$path" ] || path=/
host=${hostport%%:*}
case "$hostport" in *:*) vport=${hostport#*:} ;; *) vport=$default_port ;; esac
# what goes into nginx.conf (and sed): a plain name, a port, a plain path
printf '%s' "$host" | grep -Eq '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$' || die "bad host in $vendor"
printf '%s' "$vport" | grep -Eq '^[0-9]{1,5}$' || die "bad port in $vendor"
printf '%s' "$path" | grep -Eq '^/[A-Za-z0-9/._~%=+,:@!-]*$' || die "unsupported characters in the path of $vendor"
case "$port" in *[!0-9]*|'') die "bad port $port" ;; esac
prefix=$(mktemp -d)
sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$port#g" -e "s#@REPO@#$repo#g" -e "s#@BUILD@#$build#g" \
    -e "s#@VENDOR_URL@#$scheme://$host$path#g" -e "s#@VENDOR_HOST@#$host#g" \
    -e "s#@VENDOR_ADDR@#$host:$vport#g" -e "s#@SHOP@#$vendor#g" -e "s#@CA@#$ca#g" \
    "$repo/examples/openresty/nginx.conf" > "$prefix/nginx.conf"
if [ -n "$config_only" ]; then cat "$prefix/nginx.conf"; rm -rf "$prefix"; exit 0; fi
echo "pages on http://127.0.0.1:$port/ (newsletter, account, catalogue), logs in $prefix"
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -g "daemon off;"
