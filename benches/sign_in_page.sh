#!/usr/bin/env bash
# Latency of the sign-in page (GET /auth/sign-in: a form with its CSRF cookie, rendered per
# request): a release gateway on the embedded default config with [cookies] and [sign_in]
# enabled, driven by wrk over TLS on loopback. The public route (proxied to `portcullis echo`,
# no token) runs beside it, alternated, as the reference on the same machine.
# Usage: [ROUNDS=3] [PORTCULLIS_LOG=info] [PORTCULLIS_BIN=path] benches/sign_in_page.sh [secs] [conns]
# (PORTCULLIS_LOG defaults to info, the gateway's own default: the access log on, to a file).
# Needs wrk. Loopback only (ports 18443, 19091, 18080); stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
conns=${2:-32}
rounds=${ROUNDS:-3}
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
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
gw = open("config/gateway.toml").read()
for old, new in [
    ('"../certs/dev-signing.pem"', '"bench.pem"'), ('"../certs/', '"'),
    ('signing_kid = "dev"', 'signing_kid = "bench"'), ('kid = "dev"', 'kid = "bench"'),
    ("127.0.0.1:8443", "127.0.0.1:18443"), ("127.0.0.1:9091", "127.0.0.1:19091"),
    ("[cookies]\nenabled = false", "[cookies]\nenabled = true"),
    ("[sign_in]\nenabled = false", "[sign_in]\nenabled = true"),
]:
    assert old in gw, f"config/gateway.toml changed shape: {old!r}"
    gw = gw.replace(old, new)
open(f"{d}/gateway.toml", "w").write(gw)
routes = open("config/routes.toml").read().replace("127.0.0.1:8080", "127.0.0.1:18080")
open(f"{d}/routes.toml", "w").write(routes)
PY
cp config/users.toml "$dir/" 2>/dev/null || true

"$bin" echo --listen 127.0.0.1:18080 >/dev/null 2>&1 &
PORTCULLIS_LOG=${PORTCULLIS_LOG:-info} "$bin" run --config "$dir/gateway.toml" >"$dir/gw.log" 2>&1 &
for _ in $(seq 50); do curl -sf http://127.0.0.1:19091/readyz >/dev/null 2>&1 && break; sleep 0.1; done
code=$(curl -sk -o "$dir/page.html" -w '%{http_code}' https://127.0.0.1:18443/auth/sign-in)
[ "$code" = 200 ] && grep -qi '<form' "$dir/page.html" \
  || { echo "GET /auth/sign-in answered $code without a form" >&2; tail -n 5 "$dir/gw.log" >&2; exit 1; }

run() {
  local out
  out=$(wrk -t1 -c"$conns" -d"${secs}s" --latency "$2")
  if grep -q "Non-2xx" <<<"$out"; then echo "$1: non-2xx answers" >&2; echo "$out" >&2; exit 1; fi
  printf '%s\t%s\t%s\t%s\t%s\n' "$1" "$(awk '/Requests\/sec/ {print $2}' <<<"$out")" \
    "$(awk '$1 == "50%" {print $2}' <<<"$out")" "$(awk '$1 == "99%" {print $2}' <<<"$out")" \
    "$(awk '$1 == "Latency" && $2 != "Distribution" {print $2}' <<<"$out")"
}
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(basename "$bin"); $conns connections, ${secs}s"
echo -e "case\treq/s\tp50\tp99\tmean"
for round in $(seq "$rounds"); do
  run "sign-in page (GET /auth/sign-in) round $round" https://127.0.0.1:18443/auth/sign-in
  run "public route (proxied, no token) round $round" https://127.0.0.1:18443/public/x
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
