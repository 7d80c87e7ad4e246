#!/usr/bin/env bash
# Resident memory per idle keep-alive connection: a release gateway (embedded default config,
# plain listener added) in front of `portcullis echo`; benches/idle_conns.py opens COUNT
# connections, sends one authorized request on each (/api/x, EdDSA token), holds them idle and
# reads the gateway's VmRSS. A fresh gateway per case, so one case's heap does not serve the next.
#
# Cases: plain (HTTP/1.1), tls (HTTP/1.1 over TLS), h2 (HTTP/2 over TLS, ALPN h2), ws and
# ws-plain (a WebSocket tunnel to `portcullis echo` over TLS or plain, held open; the RSS is the
# gateway's alone, the upstream's side of each tunnel is not in it).
# Usage: [COUNT=5000] [ROUNDS=1] [CASES="plain tls"] [SETTLE=12] [PORTCULLIS_BIN=path ...]
#        benches/idle_mem.sh
# PORTCULLIS_BIN may name several binaries (space-separated; e.g. the commit before a change and
# after it): each round measures each of them in turn, so they share the machine's state.
# Prints one line per measurement: binary, case, connections held, RSS before and holding (MiB),
# KiB per connection. Loopback only; stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${COUNT:-5000}
rounds=${ROUNDS:-1}
cases=${CASES:-plain tls}
# Seconds from the last answer to reading the RSS: parking waits 1 s of idleness, and the
# heap is trimmed at most every 10 s after parks.
settle=${SETTLE:-12}
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
if [ -n "${PORTCULLIS_BIN:-}" ]; then
  bins=()
  for b in $PORTCULLIS_BIN; do bins+=("$(realpath "$b")"); done
else
  cargo build --release --quiet
  bins=("$PWD/target/release/portcullis")
fi
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

bin=${bins[0]}
"$bin" dev-certs --out "$dir" >/dev/null
"$bin" keygen --alg EdDSA --kid bench --out "$dir" >/dev/null
# Timeouts far beyond the time it takes to open every connection (hyper's header timeout also
# runs while an HTTP/1.1 connection waits for its next request).
sed -e 's#"../certs/dev-signing.pem"#"bench.pem"#' -e 's#"../certs/#"#' -e 's#signing_kid = "dev"#signing_kid = "bench"#' \
    -e 's#kid = "dev"#kid = "bench"#' -e 's#127.0.0.1:8443"#127.0.0.1:18443"\nplain_addr = "127.0.0.1:18090"#' \
    -e 's#127.0.0.1:9091#127.0.0.1:19091#' -e 's#max_connections = 10000#max_connections = 20000#' \
    -e 's#idle_timeout = "60s"#idle_timeout = "600s"#' -e 's#header_timeout = "10s"#header_timeout = "600s"#' \
    -e 's#shutdown_grace = "30s"#shutdown_grace = "1s"#' \
    config/gateway.toml > "$dir/gateway.toml"
grep -q 'header_timeout = "600s"' "$dir/gateway.toml" && grep -q plain_addr "$dir/gateway.toml" \
  || { echo "config/gateway.toml changed shape" >&2; exit 1; }
sed -e 's#127.0.0.1:8080#127.0.0.1:18080#' config/routes.toml > "$dir/routes.toml"
"$bin" echo --listen 127.0.0.1:18080 >/dev/null 2>&1 &
pids+=($!)
token=$("$bin" token --config "$dir/gateway.toml" --sub bench --role admin --ttl 2h)

for round in $(seq "$rounds"); do
  for bin in "${bins[@]}"; do
    for case in $cases; do
      PORTCULLIS_LOG=warn "$bin" run --config "$dir/gateway.toml" >"$dir/gw.log" 2>&1 &
      gw=$!
      pids+=("$gw")
      for _ in $(seq 100); do curl -sf http://127.0.0.1:19091/readyz >/dev/null 2>&1 && break; sleep 0.1; done
      case "$case" in
        plain) args=(--plain --port 18090) ;;
        tls) args=(--port 18443) ;;
        h2) args=(--mode h2 --port 18443) ;;
        ws) args=(--mode ws --port 18443) ;;
        ws-plain) args=(--mode ws --plain --port 18090) ;;
        *) echo "unknown case $case" >&2; exit 1 ;;
      esac
      row=$(python3 benches/idle_conns.py --count "$count" --pid "$gw" "${args[@]}" --path /api/x \
        --token "$token" --name "$case" --settle "$settle")
      kill "$gw"; wait "$gw" 2>/dev/null || true
      # row: idle, name, held, holding MiB, before MiB
      read -r _ name held holding before _ <<<"$row"
      kib=$(python3 -c "print(f'{($holding - $before) * 1024 / $held:.1f}')")
      echo "round $round $(basename "$bin") $name held $held rss_before $before rss_holding $holding kib_per_conn $kib"
    done
  done
done
