#!/usr/bin/env bash
# End-to-end load: a release gateway in front of `portcullis echo`, driven by wrk over TLS
# on loopback. Usage: [STORE=memory|redis] [PORTCULLIS_LOG=info] [PORTCULLIS_BIN=path]
# benches/load.sh [secs] [conns]
# (the default PORTCULLIS_LOG=warn leaves the access log off; info, the gateway's own default,
# turns it on; the log goes to a file). PORTCULLIS_BIN measures a binary built elsewhere (the
# commit before a change). Each case also prints the gateway's CPU time per request (user +
# system, all threads, from /proc/PID/stat), steadier than req/s on shared cores.
# STORE=redis starts its own redis-server on 127.0.0.1:16379. Needs wrk (and redis-server).
# Loopback only; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
store=${STORE:-memory}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

if [ -n "${PORTCULLIS_BIN:-}" ]; then
  bin=$(realpath "$PORTCULLIS_BIN")
else
  cargo build --release --quiet
  bin=$PWD/target/release/portcullis
fi
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT

"$bin" dev-certs --out "$dir" >/dev/null
"$bin" keygen --alg EdDSA --kid bench --out "$dir" >/dev/null
sed -e 's#"../certs/dev-signing.pem"#"bench.pem"#' -e 's#"../certs/#"#' -e 's#signing_kid = "dev"#signing_kid = "bench"#' \
    -e 's#kid = "dev"#kid = "bench"#' -e 's#127.0.0.1:8443#127.0.0.1:18443#' -e 's#127.0.0.1:9091#127.0.0.1:19091#' \
    config/gateway.toml > "$dir/gateway.toml"
sed -e 's#127.0.0.1:8080#127.0.0.1:18080#' config/routes.toml > "$dir/routes.toml"
if [ "$store" = redis ]; then
  redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >/dev/null &
  sed -i 's#^backend = "memory".*#backend = "redis"\nredis_url = "redis://127.0.0.1:16379/0"#' "$dir/gateway.toml"
  sleep 0.5
fi

"$bin" echo --listen 127.0.0.1:18080 >/dev/null 2>&1 &
PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$bin" run --config "$dir/gateway.toml" >"$dir/gw.log" 2>&1 &
gw_pid=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:19091/readyz >/dev/null 2>&1 && break; sleep 0.1; done
token=$("$bin" token --config "$dir/gateway.toml" --sub bench --role admin)

cpu_ticks() { # user + system clock ticks the gateway has used so far
  local fields
  read -ra fields < <(sed 's/^.*) //' "/proc/$gw_pid/stat")
  echo $(( fields[11] + fields[12] ))
}
run() {
  local before out after requests
  echo "== $1"
  shift
  before=$(cpu_ticks)
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$@")
  after=$(cpu_ticks)
  grep -E "Requests/sec| 50%| 99%|Non-2xx" <<<"$out"
  requests=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "  gateway CPU us/req: $(( (after - before) * 1000000 / $(getconf CLK_TCK) / requests ))"
}
echo "store: $store"
run "upstream direct (http, no gateway)" http://127.0.0.1:18080/api/x
run "public route (TLS, no token)" https://127.0.0.1:18443/public/x
run "protected route (TLS, EdDSA token verified, revocation checked)" -H "Authorization: Bearer $token" https://127.0.0.1:18443/api/x
