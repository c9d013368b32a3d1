#!/usr/bin/env bash
# Does the memory of deeply nested multipart grow with the input? Builds the hostile deep-nesting message
# (bench/gen_corpus.py's construction) at several depths and runs `peak --runs 3` on each, printing the
# in-process growth (peak RSS minus RSS after loading the file). MAX_PARTS (2,000) caps the parts kept, so
# growth should level off past ~2,000 levels whatever the size.
#   bench/deep_nesting.sh [DEPTH...]     (default: 500 1000 2000 5000 20000 50000)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
DEPTHS=("$@")
[[ ${#DEPTHS[@]} -gt 0 ]] || DEPTHS=(500 1000 2000 5000 20000 50000)
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
[[ -x target/release/peak ]] || locked cargo build --release -p mailroom-bench --bin peak
for depth in "${DEPTHS[@]}"; do
    python3 -c 'import sys; sys.path.insert(0, "bench"); import gen_corpus as g
sys.stdout.buffer.write(g.deep_nesting(int(sys.argv[1])))' "$depth" >"$WORK/deep_$depth.eml"
    line=$(locked target/release/peak "$WORK/deep_$depth.eml" --runs 3)
    python3 - "$depth" "$line" <<'PY'
import re, sys
depth, line = sys.argv[1], sys.argv[2]
kv = dict(re.findall(r"(\w+)=(\S+)", line))
size, peak, loaded = int(kv["size"]), int(kv["peak_rss_kb"]), int(kv["rss_loaded_kb"])
growth = (peak - loaded) / 1024
print(f"depth={depth} size_mb={size / 1e6:.2f} peak_mib={peak / 1024:.1f} growth_mib={growth:.1f} "
      f"growth_x_size={growth * 2**20 / size:.2f} first_ms={float(kv['total_ms']):.1f} "
      f"best_ms={float(kv['best_total_ms']):.1f} warnings={kv.get('warnings', '')}")
PY
done
