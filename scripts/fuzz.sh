#!/usr/bin/env bash
# Runs every fuzz target of fuzz/ (or the ones named) for SECONDS each (default 300), starting
# from the committed seeds in fuzz/corpus/<target>/ and growing a scratch corpus under the
# target dir (the committed one never changes). Installs cargo-fuzz when missing; cargo-fuzz
# needs nightly features, which RUSTC_BOOTSTRAP=1 unlocks on the stable toolchain.
# Exits non-zero only when a target crashes, leaks past the memory limit or hangs (the input
# is kept in fuzz/artifacts/<target>/), or when the targets do not build.
# Usage: scripts/fuzz.sh [SECONDS] [TARGET...]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-300}
shift || true
export RUSTC_BOOTSTRAP=1
target_dir=${CARGO_TARGET_DIR:-$root/target}/fuzz
# Safe Rust: the sanitizer buys nothing but time. Without -O, cargo-fuzz builds with
# optimisations plus debug assertions and overflow checks, which is what we want.
flags=(--sanitizer none --target-dir "$target_dir")

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
cd "$root/fuzz"
mapfile -t targets < <(if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cargo fuzz list; fi)
cargo fuzz build "${flags[@]}"

summary=()
status=0
for t in "${targets[@]}"; do
  work=$target_dir/corpus/$t
  mkdir -p "$work" "artifacts/$t"
  log=$target_dir/$t.log
  # -timeout: one input taking longer is a hang; -rss_limit_mb: the reader's memory bound.
  if cargo fuzz run "${flags[@]}" "$t" "$work" "corpus/$t" -- \
      -max_total_time="$secs" -timeout=20 -rss_limit_mb=1024 -print_final_stats=1 \
      >"$log" 2>&1; then
    line=$(grep -E '^Done [0-9]+ runs' "$log" | tail -n 1)
    summary+=("$t: ${line:-no stats}")
  else
    status=1
    summary+=("$t: FAILED (see $log and fuzz/artifacts/$t/)")
    grep -E 'panicked|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
  fi
done
printf '%s\n' "${summary[@]}"
exit $status
