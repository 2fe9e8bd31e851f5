#!/usr/bin/env bash
# Builds and runs the whole test suite, twice: an optimised build, then the
# same suite under AddressSanitizer + UndefinedBehaviorSanitizer (any report
# fails the run); then (mode all) every libFuzzer target briefly
# (scripts/fuzz.sh, FUZZ_SECONDS each, default 30). Installs missing Debian
# packages first.
#
#   scripts/test.sh            # both builds + the fuzz targets (CI)
#   scripts/test.sh release    # optimised build only
#   scripts/test.sh asan       # sanitizer build only
#   scripts/test.sh fuzz       # the fuzz targets only
# Extra arguments after the mode go to ctest (e.g. -R redis).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh

mode="${1:-all}"
shift || true
jobs="$(nproc)"
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/ccache}"

suite() {
  local dir="$1" type="$2" sanitize="$3"
  shift 3
  echo "=== ${dir}: configure (${type}, sanitize=${sanitize})"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DJEWELER_SANITIZE="$sanitize" >/dev/null
  echo "=== ${dir}: build"
  cmake --build "$dir" -j"$jobs"
  echo "=== ${dir}: test"
  (cd "$dir" && ctest --output-on-failure --timeout 900 -j2 "$@")
}

case "$mode" in
  all | release | asan | fuzz) ;;
  *) echo "usage: scripts/test.sh [all|release|asan|fuzz] [ctest args...]" >&2; exit 2 ;;
esac

if [[ "$mode" == all || "$mode" == release ]]; then
  suite build Release OFF "$@"
fi
if [[ "$mode" == all || "$mode" == asan ]]; then
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  export JEWELER_SANITIZED=1
  suite build-asan RelWithDebInfo ON "$@"
fi
if [[ "$mode" == all || "$mode" == fuzz ]]; then
  scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
fi
echo "=== all test suites passed"
