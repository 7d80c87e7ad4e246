#!/usr/bin/env bash
# Instruction counts (callgrind) of the first verification of an HS256 token against the bare
# HMAC (issue 19 target 4). Counts do not depend on what else runs on the machine, unlike times.
#
#   benches/callgrind_verify.sh            # builds the bench (cargo bench --no-run), runs each case
#   CASES="bare_hmac uncached" N1=500 N2=2500 benches/callgrind_verify.sh
#
# Each case runs at N1 and at N2 iterations (HOT_PATH_REPEAT in benches/hot_path/first.rs, same set-up
# both times); (Ir(N2) - Ir(N1)) / (N2 - N1) is the per-iteration count, set-up cancelled out.
set -euo pipefail
cd "$(dirname "$0")/.."

CASES=${CASES:-"bare_hmac uncached verify cached"}
N1=${N1:-500}
N2=${N2:-2500}
exe=$(cargo bench --bench hot_path --no-run --message-format=json 2>/dev/null |
  python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "hot_path" and m.get("executable"):
        print(m["executable"])')
[ -x "$exe" ] || { echo "no bench executable" >&2; exit 1; }
echo "bench: $exe; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# Total instructions (Ir) of one run of CASE at N iterations.
count() {
  local out
  out=$(mktemp)
  HOT_PATH_REPEAT="$1:$2" valgrind --tool=callgrind --callgrind-out-file="$out" "$exe" 2>/dev/null
  sed -n 's/^summary: //p' "$out"
  rm -f "$out"
}

base=""
for c in $CASES; do
  a=$(count "$c" "$N1")
  b=$(count "$c" "$N2")
  per=$(( (b - a) / (N2 - N1) ))
  [ -z "$base" ] && base=$per
  ratio=$(python3 -c "print(f'{$per / $base:.2f}')")
  printf '%-10s %10d instructions per iteration  %5sx the first case\n' "$c" "$per" "$ratio"
done
