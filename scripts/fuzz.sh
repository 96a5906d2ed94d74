#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time (default 20 s each).
# Usage: scripts/fuzz.sh [SECONDS]
# Needs cargo-fuzz (installed here if missing) and uses RUSTC_BOOTSTRAP=1 so
# the stable toolchain accepts the sanitizer flags. A crash stops the run
# and leaves its input in fuzz/artifacts/<target>/: commit it as a
# regression test.
set -euo pipefail
seconds="${1:-20}"
cd "$(dirname "$0")/../fuzz"
export RUSTC_BOOTSTRAP=1
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=$(cargo fuzz list)
cargo fuzz build -O
for t in $targets; do
  mkdir -p "corpus/$t"
  cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  echo "fuzz: $t for ${seconds}s"
  cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -max_len=4096 -print_final_stats=1 2>&1 \
    | grep -E '^(stat::number_of_executed_units|stat::new_units_added)|ERROR|panicked|SUMMARY' || true
  if [ -n "$(ls -A "artifacts/$t" 2>/dev/null)" ]; then
    echo "fuzz: $t found a crash: fuzz/artifacts/$t" >&2
    exit 1
  fi
done
echo "fuzz: all targets clean"
