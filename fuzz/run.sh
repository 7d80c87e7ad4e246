#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) for SECONDS each, JOBS at a time, and prints one
# line per target: duration, executions, corpus size, findings.
#
#   fuzz/run.sh 60                 # every target, 60 s each, one after the other
#   JOBS=2 fuzz/run.sh 600 path    # only `path`, 10 minutes
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). The working corpus
# grows in fuzz/corpus/<target>/ (gitignored) from the committed seeds in fuzz/seeds/<target>/;
# crashes land in fuzz/artifacts/<target>/ and make the script exit 1.
set -euo pipefail
cd "$(dirname "$0")"

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(path route token headers config)
fi
jobs="${JOBS:-1}"

if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: no nightly toolchain (rustup toolchain install nightly)" >&2
  exit 2
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "fuzz/run.sh: cargo-fuzz is not installed (cargo install cargo-fuzz)" >&2
  exit 2
fi

cargo +nightly fuzz build -O >/dev/null
mkdir -p logs

run_one() {
  local target="$1"
  mkdir -p "corpus/$target" "artifacts/$target"
  local start=$SECONDS
  # -timeout: a single input taking 10 s is a hang, reported like a crash.
  cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -print_final_stats=1 >"logs/$target.log" 2>&1 || true
  local execs corpus findings
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$target.log" | grep -o '[0-9]*$' || echo "?")
  corpus=$(find "corpus/$target" -type f | wc -l)
  findings=$(find "artifacts/$target" -type f | wc -l)
  printf '%-8s %6ss %12s execs %6s corpus %3s findings\n' \
    "$target" "$((SECONDS - start))" "$execs" "$corpus" "$findings"
}

pids=()
for target in "${targets[@]}"; do
  run_one "$target" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$jobs" ]; then
    wait "${pids[0]}"
    pids=("${pids[@]:1}")
  fi
done
wait

found=0
for target in "${targets[@]}"; do
  if [ -n "$(find "artifacts/$target" -type f 2>/dev/null)" ]; then
    echo "finding(s) in fuzz/artifacts/$target/ (log: fuzz/logs/$target.log)" >&2
    found=1
  fi
done
exit "$found"
