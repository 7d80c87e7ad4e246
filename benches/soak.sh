#!/usr/bin/env bash
# Soak run (not part of CI): a release gateway with the Redis store in front of
# `portcullis echo`, under mixed load for SECS seconds (default 600):
#   - proxied requests: wrk with benches/soak.lua, restarted every 10 s so each sample has
#     its own status counts (SOAK_CONNS connections, default 8; SOAK_DELAY_MS pause per
#     request, default 2);
#   - sessions: SOAK_SESSIONS curl loops (default 2), each login -> proxied request ->
#     3 refreshes -> logout -> the logged-out token (401 expected); every 5th session instead
#     replays a spent refresh token after the reuse grace (set to 1 s here): 401, and the
#     family's live access token is then refused (401);
#   - a SIGHUP reload every 30 s; redis-server stopped at SECS/2 and started again 5 s later.
# Every 10 s: gateway RSS (VmRSS) and open fds, mid-way through a wrk segment.
# Usage: benches/soak.sh [SECS] [OUTDIR]   (OUTDIR default target/soak-<time>)
# Output in OUTDIR: samples.csv, sessions.log, summary.txt; exit 1 when the run fails:
#   a 5xx (or a connection error) outside the Redis outage, an unexpected status, RSS of
#   the last minute > 10% above the first minute after warm-up (medians of 6 samples: a
#   sample taken during a login holds argon2's 19 MiB block, freed right after), or fds
#   last > first after warm-up + 8.
# Needs wrk, curl, jq, redis-server, redis-cli, python3 (free ports). Loopback only; it stops only the
# processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
out=${2:-target/soak-$(date -u +%Y%m%dT%H%M%S)}
conns=${SOAK_CONNS:-8}
sessions=${SOAK_SESSIONS:-2}
export SOAK_DELAY_MS=${SOAK_DELAY_MS:-2}
warmup=$((secs / 10 < 60 ? secs / 10 : 60))
for tool in wrk curl jq redis-server redis-cli python3; do
  command -v "$tool" >/dev/null || { echo "$tool not found" >&2; exit 1; }
done

cargo build --release --quiet
bin=$PWD/target/release/portcullis
mkdir -p "$out"
out=$(cd "$out" && pwd)
dir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
https=$(free_port) admin=$(free_port) echo_port=$(free_port) redis_port=$(free_port)

start_redis() {
  redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly yes \
    --appendfsync everysec --dir "$dir" >>"$out/redis.log" 2>&1 &
  redis_pid=$!
  pids+=("$redis_pid")
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return; sleep 0.1; done
  echo "redis-server did not start" >&2; exit 1
}

"$bin" dev-certs --out "$dir" >/dev/null
"$bin" keygen --alg EdDSA --kid soak --out "$dir" >/dev/null
sed -e 's#"../certs/dev-signing.pem"#"soak.pem"#' -e 's#"../certs/#"#' \
    -e 's#signing_kid = "dev"#signing_kid = "soak"#' -e 's#kid = "dev"#kid = "soak"#' \
    -e "s#127.0.0.1:8443#127.0.0.1:$https#" -e "s#127.0.0.1:9091#127.0.0.1:$admin#" \
    -e 's#^refresh_reuse_grace = .*#refresh_reuse_grace = "1s"#' \
    -e "s#^backend = \"memory\".*#backend = \"redis\"\nredis_url = \"redis://127.0.0.1:$redis_port/0\"#" \
    config/gateway.toml >"$dir/gateway.toml"
sed -e "s#127.0.0.1:8080#127.0.0.1:$echo_port#" config/routes.toml >"$dir/routes.toml"
password=load-$RANDOM-$RANDOM-test-password
echo "$password" | "$bin" user add --config "$dir/gateway.toml" soak --role admin >/dev/null

start_redis
"$bin" echo --listen "127.0.0.1:$echo_port" >/dev/null 2>&1 &
pids+=($!)
PORTCULLIS_LOG=${PORTCULLIS_LOG:-warn} "$bin" run --config "$dir/gateway.toml" >"$out/gateway.log" 2>&1 &
gw=$!
pids+=("$gw")
ready() { curl -sf "http://127.0.0.1:$admin/readyz" >/dev/null 2>&1; }
for _ in $(seq 100); do ready && break; sleep 0.1; done
ready || { echo "gateway not ready" >&2; cat "$out/gateway.log" >&2; exit 1; }
export SOAK_TOKEN=$("$bin" token --config "$dir/gateway.toml" --sub soak --role admin --ttl "$((secs + 3600))s")

start=$EPOCHSECONDS
end=$((start + secs))
base=https://127.0.0.1:$https
# Session loops: every request appends "t kind status" to the loop's own log.
rec() { echo "$((EPOCHSECONDS - start)) $2 $3" >>"$out/sessions.$1.log"; }
call() { curl -sk -o "$dir/body.$1" -w '%{http_code}' --max-time 10 "${@:2}" || true; }
field() { jq -r ".$2" "$dir/body.$1" 2>/dev/null || true; }
post_json() { call "$1" -X POST -H 'Content-Type: application/json' "${@:2}"; }
session_loop() {
  local i=$1 n=0 access refresh spent status
  while [ "$EPOCHSECONDS" -lt "$end" ]; do
    n=$((n + 1)) spent=
    status=$(post_json "$i" -d "{\"username\":\"soak\",\"password\":\"$password\"}" "$base/auth/login")
    rec "$i" login "$status"
    if [ "$status" != 200 ]; then sleep 0.5; continue; fi
    access=$(field "$i" access_token) refresh=$(field "$i" refresh_token)
    rec "$i" proxied "$(call "$i" -H "Authorization: Bearer $access" "$base/api/session/$n")"
    for _ in 1 2 3; do
      status=$(post_json "$i" -d "{\"refresh_token\":\"$refresh\"}" "$base/auth/refresh")
      rec "$i" refresh "$status"
      if [ "$status" = 200 ]; then
        spent=$refresh access=$(field "$i" access_token) refresh=$(field "$i" refresh_token)
      fi
    done
    if [ $((n % 5)) = 0 ] && [ -n "$spent" ]; then
      # Reuse after the grace: 401, and the whole family (the live access token) is revoked.
      sleep 1.2
      rec "$i" reuse "$(post_json "$i" -d "{\"refresh_token\":\"$spent\"}" "$base/auth/refresh")"
      rec "$i" revoked "$(call "$i" -H "Authorization: Bearer $access" "$base/api/x")"
      continue
    fi
    status=$(call "$i" -X POST -H "Authorization: Bearer $access" -H 'Content-Type: application/json' \
      -d "{\"refresh_token\":\"$refresh\"}" "$base/auth/logout")
    rec "$i" logout "$status"
    if [ "$status" = 204 ]; then
      rec "$i" revoked "$(call "$i" -H "Authorization: Bearer $access" "$base/api/x")"
    fi
    sleep 0.2
  done
}
session_pids=()
for s in $(seq "$sessions"); do session_loop "$s" & session_pids+=($!); done
pids+=("${session_pids[@]}")

echo "t,rss_kb,fds,revocations,wrk_statuses,wrk_errors,wrk_p99_us" >"$out/samples.csv"
: >"$out/events.log"
outage_start= outage_end= next_hup=30 restarted=
while [ "$EPOCHSECONDS" -lt "$end" ]; do
  t0=$((EPOCHSECONDS - start))
  wrk -t1 -c"$conns" -d10s -s benches/soak.lua "$base" >"$dir/wrk.out" 2>&1 &
  wrk_pid=$!
  sleep 5
  rss=$(awk '/^VmRSS/ {print $2}' "/proc/$gw/status")
  fds=$(ls "/proc/$gw/fd" | wc -l)
  revs=$(curl -s "http://127.0.0.1:$admin/metrics" | awk '$1 == "portcullis_revocations" {print $2}' || true)
  if [ -z "$restarted" ] && [ "$t0" -ge $((secs / 2)) ]; then
    outage_start=$((EPOCHSECONDS - start))
    echo "$outage_start redis stopped" >>"$out/events.log"
    kill "$redis_pid"; wait "$redis_pid" 2>/dev/null || true
    sleep 5
    start_redis
    echo "$((EPOCHSECONDS - start)) redis started" >>"$out/events.log"
    for _ in $(seq 200); do ready && break; sleep 0.1; done
    outage_end=$((EPOCHSECONDS - start))
    echo "$outage_end gateway ready again" >>"$out/events.log"
    restarted=1
  fi
  wait "$wrk_pid" || true
  line=$(grep '^STATUS' "$dir/wrk.out" || echo "STATUS none ERRORS wrk-failed P99_US 0")
  statuses=$(sed -e 's/^STATUS \(.*\) ERRORS.*/\1/' <<<"$line")
  errors=$(sed -e 's/.* ERRORS \(.*\) P99_US.*/\1/' <<<"$line")
  echo "$t0,$rss,$fds,$revs,$statuses,$errors,${line##* }" >>"$out/samples.csv"
  if [ $((EPOCHSECONDS - start)) -ge "$next_hup" ]; then
    kill -HUP "$gw"
    echo "$((EPOCHSECONDS - start)) SIGHUP" >>"$out/events.log"
    next_hup=$((next_hup + 30))
  fi
done
for pid in "${session_pids[@]}"; do wait "$pid" || true; done
cat "$out"/sessions.*.log | sort -n >"$out/sessions.log" && rm -f "$out"/sessions.*.log
curl -s "http://127.0.0.1:$admin/metrics" >"$out/metrics.txt"
kill -0 "$gw" || { echo "gateway died" >&2; exit 1; }

# Verdict. A status is an error when it is a 5xx or 000 (no answer) outside the outage
# window (stop .. ready again + 2 s), or not the one expected for its kind.
{
  echo "duration ${secs}s, warm-up ${warmup}s, wrk -c$conns delay ${SOAK_DELAY_MS}ms, $sessions session loops"
  echo "redis outage: ${outage_start:-none}..${outage_end:-none} s"
  echo "SIGHUP reloads: $(grep -c SIGHUP "$out/events.log");" \
    "$(grep '^portcullis_config_reloads_total' "$out/metrics.txt" | tr '\n' ' ')"
  awk -F, -v w="$warmup" 'NR > 1 && $1 >= w { if (!f) { f = $2; ff = $3 } if ($2 > m) m = $2;
      if ($3 > mf) mf = $3; l = $2; lf = $3 }
    END { printf "rss_kb first-after-warmup %d max %d last %d\nfds first-after-warmup %d max %d last %d\n",
      f, m, l, ff, mf, lf }' "$out/samples.csv"
  echo "wrk statuses (total):"
  awk -F, 'NR > 1 { n = split($5, p, " "); for (i = 1; i <= n; i++) { split(p[i], kv, ":"); c[kv[1]] += kv[2] } }
    END { for (s in c) printf "  %s %d\n", s, c[s] }' "$out/samples.csv" | sort
  echo "session requests by kind and status:"
  awk '{ c[$2 " " $3]++ } END { for (k in c) printf "  %s %d\n", k, c[k] }' "$out/sessions.log" | sort
} >"$out/summary.txt"
# Median of six RSS samples: the first six after warm-up, and the last six.
median6() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
rss_after=$(awk -F, -v w="$warmup" 'NR > 1 && $1 >= w { print $2 }' "$out/samples.csv")
rss_start=$(head -n 6 <<<"$rss_after" | median6) rss_end=$(tail -n 6 <<<"$rss_after" | median6)
echo "rss_kb median of 6: first minute after warm-up $rss_start, last minute $rss_end" >>"$out/summary.txt"
os=${outage_start:--1000} oe=$((${outage_end:--1000} + 2))
fail=$(
  awk -F, -v os="$os" -v oe="$oe" 'NR > 1 {
      if ($6 !~ /connect:0 read:0 write:0 timeout:0/) print "wrk socket errors at t=" $1 ": " $6
      n = split($5, p, " "); for (i = 1; i <= n; i++) { split(p[i], kv, ":");
        if (kv[1] !~ /^(200|401)$/ && !(kv[1] == 503 && $1 + 10 >= os && $1 <= oe))
          print "wrk status " kv[1] " x" kv[2] " at t=" $1 } }' "$out/samples.csv"
  awk -v os="$os" -v oe="$oe" '{
      inout = $1 >= os && $1 <= oe
      want = ($2 == "logout") ? "204" : ($2 == "reuse" || $2 == "revoked") ? "401" : "200"
      if ($3 != want && !($3 == "503" && inout)) print "session " $2 " got " $3 " at t=" $1 }' "$out/sessions.log"
  awk -v f="$rss_start" -v l="$rss_end" 'BEGIN { if (l > f * 1.10) print "RSS grew: " f " -> " l " kB" }'
  awk -F, -v w="$warmup" 'NR > 1 && $1 >= w { if (!ff) ff = $3; lf = $3 }
    END { if (lf > ff + 8) print "fds grew: " ff " -> " lf }' "$out/samples.csv"
)
if [ -n "$fail" ]; then
  { echo "FAIL"; echo "$fail" | sort | uniq -c | sort -rn | head -50; } >>"$out/summary.txt"
else
  echo "PASS" >>"$out/summary.txt"
fi
cat "$out/summary.txt"
echo "(details in $out)"
[ -z "$fail" ]
