#!/usr/bin/env bash
# Fuzzes the engine's parsers: runs every cargo-fuzz target under fuzz/ for SECONDS each (default 60), one at a
# time, at low priority. Installs cargo-fuzz when it is missing. Not part of CI or scripts/test.sh.
#
#   scripts/fuzz.sh [SECONDS]
#
# libFuzzer needs nightly compiler features; on a stable toolchain they are unlocked with RUSTC_BOOTSTRAP=1.
# Set FUZZ_SANITIZER=none when the address sanitizer does not work on the machine. A crash stops the run with
# the input under fuzz/artifacts/<target>/; keep it as a regression test (see fuzz/README.md).
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

secs="${1:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi

# -a: debug assertions, so arithmetic overflow panics instead of wrapping silently.
cargo fuzz build -a -s "$sanitizer"
for target in $(cargo fuzz list); do
  echo "==> $target (${secs}s)" >&2
  mkdir -p "corpus/$target"
  nice -n 10 cargo fuzz run -a -s "$sanitizer" "$target" "corpus/$target" -- \
    -max_total_time="$secs" -rss_limit_mb=2048 -malloc_limit_mb=512 -timeout=10 -print_final_stats=1
done
