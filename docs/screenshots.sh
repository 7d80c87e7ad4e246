#!/usr/bin/env bash
# Regenerates docs/sign-in.png and docs/sessions.png: the real gateway with the sample
# config (cookies and sign-in turned on), the echo upstream, Debian's chromium.
# Needs `npm ci --prefix tests/browser` and chromium (as .ci/run installs them).
set -euo pipefail
cd "$(dirname "$0")/.."
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
port=$(free_port) admin=$(free_port) echo_port=$(free_port)
cargo build -q
bin=$PWD/target/debug/portcullis
work=$(mktemp -d)
pids=()
cleanup() { status=$?; [ $status -eq 0 ] || tail -n 20 "$work/gateway.log" >&2; kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

mkdir -p "$work/config" "$work/certs"
"$bin" dev-certs --out "$work/certs" >/dev/null
"$bin" keygen --alg EdDSA --kid dev-signing --out "$work/certs" >/dev/null
cp config/*.toml "$work/config/"
sed -i -e "s/127.0.0.1:8443/127.0.0.1:$port/" -e "s/127.0.0.1:9091/127.0.0.1:$admin/" \
  -e '/^\[cookies\]/,/^$/ s/^enabled = false/enabled = true/' \
  -e '/^\[sign_in\]/,/^$/ s/^enabled = false/enabled = true\ntitle = "Example Corp"/' \
  "$work/config/gateway.toml"
sed -i "s/127.0.0.1:8080/127.0.0.1:$echo_port/" "$work/config/routes.toml"
printf 'correct horse battery\n' | "$bin" user add alice --role admin --config "$work/config/gateway.toml" >/dev/null

"$bin" echo --listen "127.0.0.1:$echo_port" >"$work/echo.log" 2>&1 & pids+=($!)
"$bin" run --config "$work/config/gateway.toml" >"$work/gateway.log" 2>&1 & pids+=($!)
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null && break
  sleep 0.1
done
GATEWAY="https://127.0.0.1:$port" PASSWORD="correct horse battery" OUT="$PWD/docs" \
  node tests/browser/screenshots.mjs
