#!/bin/bash
# Cold release builds (fresh target dir each, -j2), timed, with --timings.
# Crates in cost/: base (mailroom only), base-h2t (+html2text), base-swh (+standardwebhooks),
# h2t-only, swh-only. Versions pinned by each crate's Cargo.lock.
# Run from anywhere: REPS=2 bench/libraries/bench-compile.sh (~10 min). CRATES="base base-h2t" to narrow.
# Each crate builds in $CARGO_TARGET_DIR/cost-<crate> (default bench/libraries/target/cost-<crate>), emptied first.
set -e
cd "$(dirname "$0")"
TARGET_ROOT="${CARGO_TARGET_DIR:-$PWD/target}"
unset CARGO_TARGET_DIR
TIMES=$(mktemp)
trap 'rm -f "$TIMES"' EXIT
cd cost
for rep in $(seq ${REPS:-1}); do
for c in ${CRATES:-h2t-only swh-only base base-h2t base-swh}; do
  T="$TARGET_ROOT/cost-$c"
  rm -rf "$T"
  ( cd "$c" && cargo fetch -q )
  ( cd "$c" && CARGO_TARGET_DIR="$T" /usr/bin/time -f "%e %U %S" -o "$TIMES" cargo build --release -j2 --timings -q )
  read wall user sys < "$TIMES"
  units=$(ls "$T"/release/deps/*.rlib "$T"/release/deps/*.so 2>/dev/null | wc -l)
  size=$(stat -c %s "$T/release/cost-$c")
  printf '%s: cold build wall %s s, CPU (user+sys) %s s, %s lib units, stripped binary %s B, loadavg %s\n' "$c" "$wall" "$(echo "$user + $sys" | bc)" "$units" "$size" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
done
