#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, docs/FUZZING.md) with clang-15 and
# ASan + UBSan in build-fuzz/, then runs each target for SECONDS (default
# 60). Fails when a target finds a crash, a sanitizer report, a leak, a
# timeout or a broken invariant; the input that did it is kept as
# build-fuzz/artifacts/<target>-crash-* (reproduce: build-fuzz/fuzz/<target> FILE).
#
#   scripts/fuzz.sh                 # every target, 60 s each
#   scripts/fuzz.sh 30              # 30 s each (CI: scripts/test.sh all)
#   scripts/fuzz.sh 900 http_fuzz   # one target, 15 min
#   FUZZ_NICE=10 scripts/fuzz.sh    # at a lower priority (shared machines)
#
# The corpus each run grows is kept in build-fuzz/corpus/<target>/ (not in
# git) and starts from the seeds in fuzz/corpus/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
  targets=(resp_parser_fuzz json_body_fuzz config_fuzz http_fuzz)
fi
[[ "$secs" =~ ^[0-9]+$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 2; }
command -v clang++-15 >/dev/null || { echo "fuzz: clang++-15 missing (scripts/deps.sh)" >&2; exit 1; }

export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"
nice_cmd=(nice -n "${FUZZ_NICE:-0}")
dir=build-fuzz
echo "=== ${dir}: configure (clang++-15, libFuzzer + ASan + UBSan)"
cmake -S . -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER=clang++-15 -DJEWELER_FUZZ=ON >/dev/null
echo "=== ${dir}: build ${targets[*]}"
"${nice_cmd[@]}" cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}"

export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" ]] && command -v llvm-symbolizer >/dev/null; then
  export ASAN_SYMBOLIZER_PATH="$(command -v llvm-symbolizer)"  # stacks with file:line
fi
mkdir -p "$dir/artifacts" "$dir/logs"
failed=()
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/${t%_fuzz}"
  corpus="$dir/corpus/$t"
  log="$dir/logs/$t.log"
  mkdir -p "$corpus"
  echo "=== fuzz: $t for ${secs}s (seeds $seeds, log $log)"
  set +e
  "${nice_cmd[@]}" "$dir/fuzz/$t" -max_total_time="$secs" -timeout=30 -rss_limit_mb=2560 \
    -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" "$corpus" "$seeds" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || true)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+ corp: [0-9]+' "$log" | tail -1 || true)
  if ((rc != 0)); then
    echo "--- $t FAILED (exit $rc); the end of its log:"
    tail -n 60 "$log"
    failed+=("$t")
  else
    echo "    $t: ${execs:-?} executions, ${cov:-no coverage line}"
  fi
done
if ((${#failed[@]})); then
  echo "=== fuzz: FAILED: ${failed[*]} (inputs in $dir/artifacts/)" >&2
  exit 1
fi
echo "=== fuzz: ${#targets[@]} targets, ${secs}s each, no failure"
