#!/bin/sh
# Peak RSS and time of signing a 40 MiB body, 5 runs per mode, each in its own process under /usr/bin/time -v.
# Run from anywhere: bench/libraries/bench-sign.sh (builds sign_mem first).
set -e
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q --bin sign_mem
BIN="$CARGO_TARGET_DIR/release/sign_mem"
TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
for mode in baseline ours-stream ours-slice theirs; do
  for run in 1 2 3 4 5; do
    /usr/bin/time -v "$BIN" "$mode" 2>"$TIMES" | tr '\n' ' '
    grep -E "Maximum resident|Elapsed" "$TIMES" | sed 's/^\s*//' | tr '\n' ' '
    echo
  done
done
