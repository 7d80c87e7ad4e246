#!/usr/bin/env bash
# portcullis against nginx and HAProxy on loopback, same token, same connections, same time.
#
# Usage: [SECS=10] [CONNS=32] [RUNS=3] [WRK_THREADS=1] [H2_STREAMS=1] [IDLE=10000] [IDLE_SETTLE=12]
#        [PHASES="h1 h2 tls idle"] [SERVER_CPUS=0] [LOAD_CPUS=1] [PORTCULLIS_BIN=path] [ONLY=regex]
#        [PORTCULLIS_LOG=info] [LOG_SINK=file|pipe] [LATENCY_PCTS="50 80"] [LATENCY_PEAK=req/s]
#        benches/compare.sh
#
# Upstream: nginx `return 200` (plain HTTP/1.1 on 18080, h2c on 18081), or `portcullis echo`
# when nginx is not installed. In front of it, each terminating TLS with one certificate made
# at run time by `portcullis dev-certs` (ECDSA P-256), each forwarding HTTP/1.1 to the upstream:
#   nginx      proxy_pass with upstream keep-alive, no auth                      :18444
#   haproxy    2.6 jwt_verify HS256 (:18445) / ES256 (:18446), plus alg, exp, iss
#              and role (roles[0] == "admin") checks
#   portcullis memory store :18443, Redis store :18447 (own redis-server on :16379); both
#              verify HS256 and ES256 tokens (pinned per kid) on a roles_any = ["admin"] route
# Phases: h1 = wrk (HTTP/1.1, keep-alive); h2 = h2load (HTTP/2 over TLS, ALPN h2; the floor is
# h2c); tls = wrk with `Connection: close`, so every request is a new TCP + full TLS handshake;
# idle = RSS of each proxy while it holds $IDLE idle keep-alive TLS connections
# (benches/idle_conns.py, RSS read IDLE_SETTLE s after the last answer: portcullis parks idle
# HTTP/1.1 connections after 1 s and trims its heap at most every 10 s; IDLE_MODE=h2 holds HTTP/2
# connections instead, portcullis and HAProxy only); profile (not in the
# default PHASES) = `perf record` of the memory gateway under the HS256 wrk load, top symbols to
# stdout or $PROFILE_OUT (PROFILE_LOAD=h2: h2load instead of wrk; without PORTCULLIS_BIN it builds and runs `--profile profiling`). Runs alternate between cases; the table shows the median of $RUNS.
# malloc_sites (not in the default PHASES) = the stacks of the memory gateway's mallocs under
# the HS256 wrk load (perf, uprobe on libc's malloc; needs root).
# counts (not in the default PHASES) = mallocs, system calls and context switches per request of
# the memory gateway and HAProxy (perf stat with a uprobe on libc's malloc; needs root);
# latency (not in the default PHASES) = open-loop HTTP/1.1 load at fixed rates, LATENCY_PCTS per
# cent of HAProxy jwt_verify HS256's peak (LATENCY_PEAK, else measured here with wrk first): `oha`
# with -q RATE and --latency-correction, so a request waiting behind a slow one counts from when
# it was due (coordinated omission corrected); p50/p99/p99.9 per case. oha comes from crates.io
# (`cargo install --locked oha`, done here when missing).
# The h1 and tls tables carry the server's CPU time per request (user + system, all its threads
# or processes, from /proc/PID/stat): on 2 shared cores it is steadier than req/s.
# The gateways run as shipped: PORTCULLIS_LOG=info, the access log on, written to a file
# (PORTCULLIS_LOG=warn turns it off, as the figures before issue 19 had it). The case
# "portcullis log-off HS256" is the memory gateway with the log off whatever PORTCULLIS_LOG
# says, so that the log's cost is measured beside the rest in every run. LOG_SINK=pipe: each
# gateway writes to a pipe whose reader (`cat`, on LOAD_CPUS) writes the file, as journald or a
# container runtime reads a service's stderr; the default (file) has the gateway write the file.
# SERVER_CPUS / LOAD_CPUS pin the servers and the load generators with taskset (unset: no pinning).
# Missing nginx, haproxy, wrk, h2load are installed from Debian's packages (as root).
# Loopback only; stops exactly the processes it started.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${SECS:-10}
conns=${CONNS:-32}
runs=${RUNS:-3}
threads=${WRK_THREADS:-1}
streams=${H2_STREAMS:-1}
idle=${IDLE:-10000}
idle_settle=${IDLE_SETTLE:-12}
gw_log=${PORTCULLIS_LOG:-info}
phases=${PHASES:-h1 h2 tls idle}

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing+=(haproxy)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing+=(nginx)
command -v redis-server >/dev/null || missing+=(redis-server)
if [[ " $phases " == *" latency "* ]] && ! command -v oha >/dev/null; then
  echo "installing oha from crates.io" >&2
  cargo install --locked --quiet oha
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}" >&2
  [ "$(id -u)" = 0 ] || { echo "not root: apt-get install -y ${missing[*]}" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH=$PATH:/usr/sbin
# Debian's nginx package is optional: without it the upstream is `portcullis echo`.
have_nginx=$(command -v nginx >/dev/null && echo 1 || echo 0)
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# PORTCULLIS_BIN measures a binary built elsewhere (e.g. the commit before a change).
if [ -n "${PORTCULLIS_BIN:-}" ]; then
  bin=$(realpath "$PORTCULLIS_BIN")
elif [[ " $phases " == *" profile "* ]]; then
  # Cargo.toml's profiling profile: the release code plus line tables, for perf report.
  cargo build --profile profiling --quiet
  bin=$PWD/target/profiling/portcullis
else
  cargo build --release --quiet
  bin=$PWD/target/release/portcullis
fi
dir=$(mktemp -d)
chmod 755 "$dir"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT
server() { # server CMD...: start in the background, pinned to SERVER_CPUS if set
  if [ -n "${SERVER_CPUS:-}" ]; then taskset -c "$SERVER_CPUS" "$@" & else "$@" & fi
  pids+=($!)
}
load() { # load CMD...: run in the foreground, pinned to LOAD_CPUS if set
  if [ -n "${LOAD_CPUS:-}" ]; then taskset -c "$LOAD_CPUS" "$@"; else "$@"; fi
}
gw_sink() { # gw_sink NAME: sets $sink to where gateway NAME's output goes (LOG_SINK above)
  sink=$dir/$1.log
  if [ "${LOG_SINK:-file}" = pipe ]; then
    mkfifo "$dir/$1.pipe"
    if [ -n "${LOAD_CPUS:-}" ]; then taskset -c "$LOAD_CPUS" cat "$dir/$1.pipe" >"$sink" & else cat "$dir/$1.pipe" >"$sink" & fi
    pids+=($!)
    sink=$dir/$1.pipe
  fi
}
wait_port() {
  for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done
  echo "nothing listens on 127.0.0.1:$1; logs in $dir:" >&2; tail -n 5 "$dir"/*.log >&2; exit 1
}

# --- keys, certificate, tokens --------------------------------------------------------------
"$bin" dev-certs --out "$dir" >/dev/null
cat "$dir/dev-cert.pem" "$dir/dev-key.pem" > "$dir/haproxy.pem"
"$bin" keygen --alg ES256 --kid es --out "$dir" >/dev/null
secret=$(openssl rand -hex 32)
export PORTCULLIS_BENCH_HS256=$secret
python3 - "$dir" <<'PY'
import re, sys
d = sys.argv[1]
gw = open("config/gateway.toml").read()
keys = '''[[keys]]
kid = "hs"
alg = "HS256"
secret_env = "PORTCULLIS_BENCH_HS256"

[[keys]]
kid = "es"
alg = "ES256"
private_key = "es.pem"
'''
gw = re.sub(r'\[\[keys\]\]\nkid = "dev"\nalg = "EdDSA"\nprivate_key = "[^"]*"\n', keys, gw)
gw = gw.replace('"../certs/', '"').replace('signing_kid = "dev"', 'signing_kid = "hs"')
gw = gw.replace('max_connections = 10000', 'max_connections = 20000')
gw = gw.replace('idle_timeout = "60s"', 'idle_timeout = "600s"')
# hyper's header timeout also runs while an HTTP/1.1 connection waits for its next request:
# at 10 s, the idle phase's first connections would be closed before all 10,000 are open.
gw = gw.replace('header_timeout = "10s"', 'header_timeout = "600s"')
gw = gw.replace('shutdown_grace = "30s"', 'shutdown_grace = "1s"')
assert 'kid = "hs"' in gw and 'dev-signing' not in gw and 'header_timeout = "600s"' in gw, \
    "config/gateway.toml changed shape"
def port(text, listen, admin):
    return text.replace("127.0.0.1:8443", listen).replace("127.0.0.1:9091", admin)
open(f"{d}/memory.toml", "w").write(port(gw, "127.0.0.1:18443", "127.0.0.1:19091"))
redis = gw.replace('backend = "memory"', 'backend = "redis"\nredis_url = "redis://127.0.0.1:16379/0"', 1)
open(f"{d}/redis.toml", "w").write(port(redis, "127.0.0.1:18447", "127.0.0.1:19092"))
open(f"{d}/log-off.toml", "w").write(port(gw, "127.0.0.1:18448", "127.0.0.1:19093"))
open(f"{d}/mint-es.toml", "w").write(gw.replace('signing_kid = "hs"', 'signing_kid = "es"'))
routes = open("config/routes.toml").read().replace("127.0.0.1:8080", "127.0.0.1:18080")
open(f"{d}/routes.toml", "w").write(routes)
PY
openssl ec -in "$dir/es.pem" -pubout -out "$dir/es.pub" 2>/dev/null
hs_token=$("$bin" token --config "$dir/memory.toml" --sub bench --role admin --ttl 2h)
es_token=$("$bin" token --config "$dir/mint-es.toml" --sub bench --role admin --ttl 2h)

# --- upstream ---------------------------------------------------------------------------------
nginx_conf() { # nginx_conf NAME SERVER-BLOCK
  mkdir -p "$dir/$1"
  cat > "$dir/$1/nginx.conf" <<EOF
worker_processes auto;
pid $dir/$1/nginx.pid;
error_log $dir/$1.log warn;
daemon off;
worker_rlimit_nofile 20000;
events { worker_connections 19000; }
http {
  access_log off;
  client_body_temp_path $dir/$1/body;
  proxy_temp_path $dir/$1/proxy;
  keepalive_requests 10000000;
  keepalive_timeout 600s;
  $2
}
EOF
}
if [ "$have_nginx" = 1 ]; then
  nginx_conf upstream 'server { listen 127.0.0.1:18080; listen 127.0.0.1:18081 http2;
    location / { return 200 "ok\n"; } }'
  server nginx -p "$dir/upstream" -c "$dir/upstream/nginx.conf"
  upstream="nginx return 200"
else
  server "$bin" echo --listen 127.0.0.1:18080 >"$dir/echo.log" 2>&1
  upstream="portcullis echo (nginx not installed)"
fi
wait_port 18080

# --- the proxies ------------------------------------------------------------------------------
if [ "$have_nginx" = 1 ]; then
  nginx_conf proxy "upstream up { server 127.0.0.1:18080; keepalive 128; }
  server { listen 127.0.0.1:18444 ssl http2;
    ssl_certificate $dir/dev-cert.pem; ssl_certificate_key $dir/dev-key.pem;
    location / { proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection \"\"; } }"
  server nginx -p "$dir/proxy" -c "$dir/proxy/nginx.conf"
fi

jwt_frontend() { # jwt_frontend NAME PORT ALG KEY
  cat <<EOF
frontend $1
  bind 127.0.0.1:$2 ssl crt $dir/haproxy.pem alpn h2,http/1.1
  http-request set-var(txn.bearer) http_auth_bearer
  http-request set-var(txn.alg) var(txn.bearer),jwt_header_query('\$.alg')
  http-request set-var(txn.now) date()
  http-request set-var(txn.exp) var(txn.bearer),jwt_payload_query('\$.exp','int')
  http-request deny deny_status 401 unless { var(txn.alg) -m str $3 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_verify(txn.alg,"$4") -m int 1 }
  http-request deny deny_status 401 unless { var(txn.exp),sub(txn.now) -m int gt 0 }
  http-request deny deny_status 401 unless { var(txn.bearer),jwt_payload_query('\$.iss') -m str portcullis }
  http-request deny deny_status 403 unless { var(txn.bearer),jwt_payload_query('\$.roles[0]') -m str admin }
  default_backend upstream
EOF
}
fd_limit=$(ulimit -n)
ha_idle=$(( idle < fd_limit / 2 - 100 ? idle : fd_limit / 2 - 100 ))
cat > "$dir/haproxy.cfg" <<EOF
global
  # HAProxy reserves 2 fds per connection and refuses to start beyond the fd limit (20,000
  # hard here), so it holds at most $ha_idle of the idle phase's connections.
  maxconn $((ha_idle + 90))
  log stderr local0 err
defaults
  mode http
  timeout connect 2s
  timeout client 600s
  timeout server 30s
  timeout http-keep-alive 600s
  http-reuse always
$(jwt_frontend hs256 18445 HS256 "$secret")
$(jwt_frontend es256 18446 ES256 "$dir/es.pub")
backend upstream
  server up 127.0.0.1:18080
EOF
server haproxy -db -f "$dir/haproxy.cfg" >"$dir/haproxy.log" 2>&1

server redis-server --port 16379 --bind 127.0.0.1 --save "" --appendonly no --dir "$dir" >"$dir/redis-server.log" 2>&1
wait_port 16379
gw_sink gw-memory
PORTCULLIS_LOG=$gw_log server "$bin" run --config "$dir/memory.toml" >"$sink" 2>&1
gw_sink gw-redis
PORTCULLIS_LOG=$gw_log server "$bin" run --config "$dir/redis.toml" >"$sink" 2>&1
# The memory gateway once more with the access log off: the log's cost, measured in the same
# run as everything else (the case "portcullis log-off HS256").
PORTCULLIS_LOG=warn server "$bin" run --config "$dir/log-off.toml" >"$dir/gw-log-off.log" 2>&1
for port in 18443 18445 18446 18447 18448; do wait_port $port; done
[ "$have_nginx" = 1 ] && wait_port 18444

# case name | URL | token   (the floor gets the token too, so every request is the same size)
cases=("floor|http://127.0.0.1:18080/admin/x|$hs_token")
[ "$have_nginx" = 1 ] && cases+=("nginx proxy_pass (no auth)|https://127.0.0.1:18444/admin/x|$hs_token")
cases+=(
  "haproxy jwt_verify HS256|https://127.0.0.1:18445/admin/x|$hs_token"
  "haproxy jwt_verify ES256|https://127.0.0.1:18446/admin/x|$es_token"
  "portcullis memory HS256|https://127.0.0.1:18443/admin/x|$hs_token"
  "portcullis redis HS256|https://127.0.0.1:18447/admin/x|$hs_token"
  "portcullis log-off HS256|https://127.0.0.1:18448/admin/x|$hs_token"
  "portcullis memory ES256|https://127.0.0.1:18443/admin/x|$es_token"
  "portcullis redis ES256|https://127.0.0.1:18447/admin/x|$es_token"
)

# ONLY (an extended regex) keeps the cases whose name matches, e.g. ONLY='HS256$'.
if [ -n "${ONLY:-}" ]; then
  kept=()
  for c in "${cases[@]}"; do [[ "${c%%|*}" =~ $ONLY ]] && kept+=("$c"); done
  cases=("${kept[@]}")
fi

# Every case must answer 200 before anything is measured: a 401 would be a fast lie.
for c in "${cases[@]}"; do
  IFS='|' read -r name url token <<<"$c"
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $token" "$url")
  [ "$code" = 200 ] || { echo "$name: $url answered $code, expected 200" >&2; tail -n 5 "$dir"/*.log >&2; exit 1; }
  # ...and refuse a forged token, so no case is measured without its check.
  [ "$name" = floor ] || [[ "$name" == nginx* ]] && continue
  # A character inside the signature: the last one also carries padding bits, and HAProxy's
  # base64 decoder ignores them, so A <-> B there can leave the signature unchanged.
  c=${token: -5:1}; [ "$c" = A ] && swap=B || swap=A
  forged=${token:0:${#token}-5}$swap${token: -4}
  code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $forged" "$url")
  [ "$code" = 401 ] || { echo "$name: a bad signature answered $code, expected 401" >&2; exit 1; }
done

results=$dir/results.tsv
case_pids() { # case_pids NAME: the processes that serve a case (all of nginx's workers)
  case "$1" in
    floor) pgrep -f "nginx: .*$dir/upstream/nginx.conf"; pgrep -P "$(cat "$dir/upstream/nginx.pid")" ;;
    nginx*) pgrep -f "nginx: .*$dir/proxy/nginx.conf"; pgrep -P "$(cat "$dir/proxy/nginx.pid")" ;;
    haproxy*) pgrep -f "haproxy -db -f $dir/haproxy.cfg" ;;
    "portcullis memory"*) pgrep -f "run --config $dir/memory.toml" ;;
    "portcullis redis"*) pgrep -f "run --config $dir/redis.toml" ;;
    "portcullis log-off"*) pgrep -f "run --config $dir/log-off.toml" ;;
  esac
}
cpu_ticks() { # cpu_ticks PID...: user + system clock ticks used so far, summed
  local total=0 pid fields
  for pid in "$@"; do
    read -ra fields < <(sed 's/^.*) //' "/proc/$pid/stat")
    total=$(( total + fields[11] + fields[12] ))
  done
  echo "$total"
}
wrk_case() { # wrk_case PHASE NAME URL TOKEN [extra wrk args]
  local phase=$1 name=$2 url=$3 token=$4 out pids before after
  shift 4
  pids=$(case_pids "$name" 2>/dev/null || true)
  [ "$have_nginx" = 1 ] || [ "$name" != floor ] || pids=$(pgrep -f "echo --listen 127.0.0.1:18080")
  # shellcheck disable=SC2086 # one word per pid
  before=$(cpu_ticks $pids)
  out=$(load wrk -t"$threads" -c"$conns" -d"${secs}s" --latency -H "Authorization: Bearer $token" "$@" "$url")
  # shellcheck disable=SC2086
  after=$(cpu_ticks $pids)
  if grep -q "Non-2xx" <<<"$out"; then echo "$name: non-2xx answers:" >&2; echo "$out" >&2; exit 1; fi
  python3 benches/compare_table.py wrk "$phase" "$name" "$(( after - before ))" "$(getconf CLK_TCK)" \
    <<<"$out" >> "$results"
}
h2_case() { # h2_case NAME URL TOKEN
  local name=$1 url=$2 token=$3 out
  rm -f "$dir/h2.log"
  url=${url/18080/18081}
  out=$(load h2load -c"$conns" -m"$streams" -t"$threads" -D"$secs" --warm-up-time=1 \
    --log-file="$dir/h2.log" -H "Authorization: Bearer $token" "$url")
  grep -q " 0 failed, 0 errored" <<<"$out" || { echo "$name: h2load errors:" >&2; echo "$out" >&2; exit 1; }
  python3 benches/compare_table.py h2load h2 "$name" "$dir/h2.log" <<<"$out" >> "$results"
}

latency_case() { # latency_case PHASE NAME URL TOKEN RATE
  local phase=$1 name=$2 url=$3 token=$4 rate=$5
  load oha -z "${secs}s" -w -c "$conns" -q "$rate" --latency-correction --no-tui --insecure \
    --output-format json -H "Authorization: Bearer $token" "$url" > "$dir/oha.json"
  python3 benches/compare_table.py oha "$phase" "$name" "$rate" < "$dir/oha.json" >> "$results"
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo);" \
  "load average before: $(cut -d' ' -f1-3 /proc/loadavg); upstream: $upstream"
echo "wrk/h2load: ${conns} connections, ${secs}s, ${threads} thread(s); runs: $runs;" \
  "pinning: servers ${SERVER_CPUS:-none}, load ${LOAD_CPUS:-none}; PORTCULLIS_LOG=$gw_log"
for run in $(seq "$runs"); do
  for c in "${cases[@]}"; do
    IFS='|' read -r name url token <<<"$c"
    case " $phases " in *" h1 "*) wrk_case h1 "$name" "$url" "$token" ;; esac
    case " $phases " in *" h2 "*) h2_case "$name" "$url" "$token" ;; esac
    # Handshakes: the floor has no TLS, and one auth algorithm per proxy is enough.
    case "$name" in floor | *ES256) continue ;; esac
    case " $phases " in *" tls "*) wrk_case tls "$name" "$url" "$token" -H "Connection: close" ;; esac
  done
  echo "run $run done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
done

if [[ " $phases " == *" latency "* ]]; then
  peak=${LATENCY_PEAK:-}
  if [ -z "$peak" ]; then
    # HAProxy's closed-loop peak, the same wrk run as the h1 phase.
    peak=$(load wrk -t"$threads" -c"$conns" -d"${secs}s" -H "Authorization: Bearer $hs_token" \
      https://127.0.0.1:18445/admin/x | awk '/Requests\/sec/ {printf "%.0f", $2}')
  fi
  echo "latency: HAProxy jwt_verify HS256 peak $peak req/s; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for run in $(seq "$runs"); do
    for pct in ${LATENCY_PCTS:-50 80}; do
      for c in "${cases[@]}"; do
        IFS='|' read -r name url token <<<"$c"
        case "$name" in floor | nginx* | *ES256 | *log-off*) continue ;; esac
        latency_case "lat$pct" "$name" "$url" "$token" $(( peak * pct / 100 ))
      done
    done
    echo "latency run $run done; load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  done
fi
if [[ " $phases " == *" counts "* ]]; then
  # Events per request, which the machine's load does not change: libc malloc calls (uprobes),
  # system calls and context switches of the HS256 gateway (memory store) and of HAProxy, over
  # one wrk (HTTP/1.1) and one h2load run each.
  libc=$(ldd "$bin" | awk '/libc.so.6/ {print $3}')
  perf probe -q -x "$libc" malloc 2>/dev/null || true
  gw_pid=$(pgrep -f "run --config $dir/memory.toml" | head -1)
  ha_pid=$(pgrep -f "haproxy -db -f $dir/haproxy.cfg" | head -1)
  for target in "portcullis memory HS256|$gw_pid|18443" "haproxy jwt_verify HS256|$ha_pid|18445"; do
    IFS='|' read -r name pid port <<<"$target"
    for proto in h1 h2; do
      perf stat -x, -e probe_libc:malloc,raw_syscalls:sys_enter,context-switches -p "$pid" \
        -o "$dir/counts.csv" &
      stat_pid=$!
      sleep 0.5
      if [ "$proto" = h2 ]; then
        done_reqs=$(load h2load -c"$conns" -m"$streams" -t"$threads" -D"$secs" \
          -H "Authorization: Bearer $hs_token" "https://127.0.0.1:$port/admin/x" |
          awk '/^requests:/ {print $8}')
      else
        done_reqs=$(load wrk -t"$threads" -c"$conns" -d"${secs}s" -H "Authorization: Bearer $hs_token" \
          "https://127.0.0.1:$port/admin/x" | awk '/requests in/ {print $1}')
      fi
      sleep 0.5
      kill -INT "$stat_pid"; wait "$stat_pid" || true
      awk -F, -v name="$name" -v proto="$proto" -v n="$done_reqs" \
        '$3 ~ /malloc|sys_enter|context/ { v[$3] = $1 }
         END { printf "counts %s %s: %d requests, per request: %.1f mallocs, %.2f system calls, %.2f context switches\n",
               name, proto, n, v["probe_libc:malloc"] / n, v["raw_syscalls:sys_enter"] / n, v["context-switches"] / n }' \
        "$dir/counts.csv"
    done
  done
fi
if [[ " $phases " == *" malloc_sites "* ]]; then
  # Where the memory gateway's mallocs come from under the HS256 wrk load: each libc malloc
  # call sampled with its stack (DWARF unwinding, so the release binary needs no frame
  # pointers), reported by caller; MALLOC_SITES_OUT keeps the full report. perf loses most
  # samples at this rate ("Lost Samples" in the report): read shares, not counts (counts:
  # PHASES=counts).
  libc=$(ldd "$bin" | awk '/libc.so.6/ {print $3}')
  perf probe -q -x "$libc" malloc 2>/dev/null || true
  gw_pid=$(pgrep -f "run --config $dir/memory.toml" | head -1)
  perf record -e probe_libc:malloc --call-graph dwarf,16384 -p "$gw_pid" -o "$dir/malloc.data" \
    -- sleep 2 2>"$dir/perf.log" &
  load wrk -t1 -c"$conns" -d2s -H "Authorization: Bearer $hs_token" \
    https://127.0.0.1:18443/admin/x | awk '/requests in/ {print "malloc_sites: " $1 " requests"}'
  wait $!
  perf report -i "$dir/malloc.data" --no-children --stdio -G --percent-limit 0.5 \
    2>/dev/null > "${MALLOC_SITES_OUT:-$dir/malloc_sites.txt}"
  head -150 "${MALLOC_SITES_OUT:-$dir/malloc_sites.txt}"
fi
if [[ " $phases " == *" profile "* ]]; then
  # perf of the gateway under the HS256 load: where a proxied request's CPU goes.
  gw_pid=$(pgrep -f "run --config $dir/memory.toml" | head -1)
  perf record -F 499 -g -p "$gw_pid" -o "$dir/perf.data" -- sleep "$secs" 2>"$dir/perf.log" &
  if [ "${PROFILE_LOAD:-h1}" = h2 ]; then
    load h2load -c"$conns" -m"$streams" -t"$threads" -D"$secs" \
      -H "Authorization: Bearer $hs_token" https://127.0.0.1:18443/admin/x >/dev/null
  else
    load wrk -t"$threads" -c"$conns" -d"${secs}s" -H "Authorization: Bearer $hs_token" \
      https://127.0.0.1:18443/admin/x >/dev/null
  fi
  wait $!
  perf report -i "$dir/perf.data" --no-children --percent-limit 0.7 --stdio -g none \
    --sort dso,symbol 2>/dev/null | grep -v "^$" | head -60 > "${PROFILE_OUT:-/dev/stdout}"
  [ -z "${PROFILE_OUT:-}" ] || cp "$dir/perf.data" "$PROFILE_OUT.data"
fi
if [[ " $phases " == *" idle "* ]]; then
  gw_pid=$(pgrep -f "run --config $dir/memory.toml" | head -1)
  ha_pid=$(pgrep -f "haproxy -db -f $dir/haproxy.cfg" | head -1)
  # IDLE_MODE=h2: the connections speak HTTP/2 (ALPN h2) instead of HTTP/1.1. One mode per run:
  # memory a proxy freed from closed connections would serve the next ones and hide their cost.
  mode=${IDLE_MODE:-h1}
  suffix=$([ "$mode" = h1 ] || echo " $mode")
  load python3 benches/idle_conns.py --mode "$mode" --count "$idle" --pid "$gw_pid" --port 18443 --token "$hs_token" \
    --settle "$idle_settle" --name "portcullis memory$suffix" >> "$results"
  load python3 benches/idle_conns.py --mode "$mode" --count "$ha_idle" --pid "$ha_pid" --port 18445 --token "$hs_token" \
    --settle "$idle_settle" --name "haproxy jwt_verify HS256$suffix" >> "$results"
  if [ "$have_nginx" = 1 ] && [ "$mode" = h1 ]; then
    # nginx's memory is spread over its master and workers: their sum is what counts.
    ng_pids=$(pgrep -f "nginx: .*$dir/proxy/nginx.conf"; pgrep -P "$(cat "$dir/proxy/nginx.pid")")
    load python3 benches/idle_conns.py --count "$idle" --pid $ng_pids --port 18444 --token "$hs_token" --settle "$idle_settle" \
      --name "nginx proxy_pass (no auth)" >> "$results"
  fi
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
if [ -s "$results" ]; then python3 benches/compare_table.py table < "$results"; fi
