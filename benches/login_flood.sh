#!/usr/bin/env bash
# Proxied p99 latency with and without 50 clients flooding /auth/login with wrong passwords.
# Usage: benches/login_flood.sh [seconds]. Needs wrk. Loopback only; stops by itself.
# Throttling is raised out of the way here so every flood request costs a real argon2 hash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }
cargo build --release --quiet
bin=$PWD/target/release/portcullis
dir=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$dir"' EXIT

"$bin" dev-certs --out "$dir" >/dev/null
"$bin" keygen --alg EdDSA --kid bench --out "$dir" >/dev/null
sed -e 's#"../certs/dev-signing.pem"#"bench.pem"#' -e 's#"../certs/#"#' -e 's#signing_kid = "dev"#signing_kid = "bench"#' \
    -e 's#kid = "dev"#kid = "bench"#' -e 's#max_failures_per_user = 5#max_failures_per_user = 1000000#' \
    -e 's#max_failures_per_ip = 20#max_failures_per_ip = 1000000#' -e 's#127.0.0.1:8443#127.0.0.1:18443#' \
    -e 's#127.0.0.1:9091#127.0.0.1:19091#' config/gateway.toml > "$dir/gateway.toml"
sed -e 's#127.0.0.1:8080#127.0.0.1:18080#' config/routes.toml > "$dir/routes.toml"
echo "flood-test-secret-value" | "$bin" user add bench --role admin --config "$dir/gateway.toml" >/dev/null

"$bin" echo --listen 127.0.0.1:18080 >/dev/null 2>&1 &
PORTCULLIS_LOG=error "$bin" run --config "$dir/gateway.toml" >/dev/null 2>&1 &
for _ in $(seq 50); do curl -sf http://127.0.0.1:19091/readyz >/dev/null 2>&1 && break; sleep 0.1; done
token=$("$bin" token --config "$dir/gateway.toml" --sub bench --role admin)

cat > "$dir/login.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"username":"bench","password":"wrong-password-attempt"}'
wrk.headers["Content-Type"] = "application/json"
LUA

proxied() {
  wrk -t1 -c8 -d"${secs}s" --latency -H "Authorization: Bearer $token" https://127.0.0.1:18443/api/x \
    | grep -E "Requests/sec| 99%"
}
echo "== proxied, no flood"
proxied
echo "== proxied, 50 clients flooding /auth/login with wrong passwords"
wrk -t1 -c50 -d"$((secs + 2))s" -s "$dir/login.lua" https://127.0.0.1:18443/auth/login > "$dir/flood.txt" &
flood=$!
sleep 1
proxied
wait $flood || true
echo "-- the flood itself:"; grep -E "Requests/sec|Non-2xx" "$dir/flood.txt"
