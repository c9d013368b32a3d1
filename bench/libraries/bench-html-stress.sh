#!/bin/bash
# Synthetic worst cases: each impl x case in its own process, 120 s limit, 2 MiB thread stack.
# Run from anywhere: bench/libraries/bench-html-stress.sh (~20 min; CASES="div100k" IMPLS="ours h2t80" to narrow).
# Builds html_stress and dump_html, and runs dump_html first (newsletter10mb reads target-data/html/).
set -e
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q --bin html_stress --bin dump_html
"$CARGO_TARGET_DIR/release/dump_html"
set +e
BIN="$CARGO_TARGET_DIR/release/html_stress"
STACK=${STACK:-2m}
for c in ${CASES:-div10k div30k div100k div100k-open blockquote100k ul100k span100k table100 table1000 p10mb newsletter10mb text10mb lt4m amp4m}; do
  for i in ${IMPLS:-ours h2traw h2t80 h2tparse}; do
    out=$( { /usr/bin/time -f "rss=%MkB wall=%es" timeout 120 "$BIN" "$i" "$c" "$STACK"; echo "exit=$?"; } 2>&1 | tr '\n' ' ')
    echo "$c $i [$STACK]: $out"
  done
done
