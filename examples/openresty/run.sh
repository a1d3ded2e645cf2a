#!/bin/sh
# Runs examples/openresty/nginx.conf in the foreground against a vendor URL
# (a sandbox: bin/billetterie sandbox --port 8080 --db /tmp/demo.db --seed demo).
#   sh examples/openresty/run.sh http://127.0.0.1:8080/ 8090
# then open http://127.0.0.1:8090/newsletter, /account, /catalogue.
set -eu
vendor=${1:-http://127.0.0.1:8080/}
port=${2:-8090}
repo=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-build}
ca=${CA:-/etc/ssl/certs/ca-certificates.crt}
addr=$(echo "$vendor" | sed -E 's#^https?://([^/]+).*#\1#')
case "$addr" in *:*) ;; *) case "$vendor" in https*) addr="$addr:443" ;; *) addr="$addr:80" ;; esac ;; esac
prefix=$(mktemp -d)
sed -e "s#@PREFIX@#$prefix#g" -e "s#@PORT@#$port#g" -e "s#@REPO@#$repo#g" -e "s#@BUILD@#$build#g" \
    -e "s#@VENDOR_ADDR@#$addr#g" -e "s#@SHOP@#$vendor#g" -e "s#@CA@#$ca#g" \
    "$repo/examples/openresty/nginx.conf" > "$prefix/nginx.conf"
echo "pages on http://127.0.0.1:$port/ (newsletter, account, catalogue), logs in $prefix"
exec nginx -p "$prefix" -c "$prefix/nginx.conf" -g "daemon off;"
