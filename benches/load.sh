#!/usr/bin/env bash
# End-to-end load: a release gateway on its embedded default in front of `portcullis echo`,
# driven by wrk over TLS on loopback. Usage: benches/load.sh [seconds] [connections]
# Needs wrk (apt-get install -y wrk). Loopback only; stops by itself.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

cargo build --release --quiet
bin=target/release/portcullis
"$bin" echo --listen 127.0.0.1:8080 >/dev/null 2>&1 &
echo_pid=$!
PORTCULLIS_LOG=warn "$bin" run >/dev/null 2>&1 &
gw_pid=$!
trap 'kill $echo_pid $gw_pid 2>/dev/null' EXIT

for _ in $(seq 50); do
  curl -sf http://127.0.0.1:9091/readyz >/dev/null 2>&1 && break
  sleep 0.1
done
token=$("$bin" token --sub bench --role admin)

run() {
  echo "== $1"
  shift
  wrk -t1 -c"$conns" -d"${secs}s" "$@" | grep -E "Latency|Requests/sec|Non-2xx"
}
run "upstream direct (http, no gateway)" http://127.0.0.1:8080/api/x
run "public route (TLS, no token)" https://127.0.0.1:8443/public/x
run "protected route (TLS, EdDSA token verified)" -H "Authorization: Bearer $token" https://127.0.0.1:8443/api/x
