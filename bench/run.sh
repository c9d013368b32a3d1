#!/usr/bin/env bash
# Runs Mailroom's benchmarks end to end and writes every figure under bench/results/<time>/ (git-ignored):
#   1. generates bench/data if missing (python3 bench/gen_corpus.py; deterministic)
#   2. builds the release binaries (mailroom CLI, peak, probe)
#   3. criterion: in-process parse + envelope + JSON render into io::sink() over each set
#   4. the Python `email` baseline over the same files
#   5. peak memory: the peak binary (VmHWM) and `mailroom render` under /usr/bin/time -v, on the 40 MB message
#   6. hostile inputs: in-process time + peak RSS, and the CLI under /usr/bin/time -v
#   7. probe: where the time of the large messages goes
#   8. the whole `mailroom render --out DIR` process over each set (hyperfine, or repeated timing without it)
#   9. summary.md: the table of figures, ratios to Python and pass/fail against the targets
#
# Every cargo command and every timed step runs under `flock $CARGO_LOCK` (default /tmp/cargo.lock) when
# flock exists, so builds of other people on a shared machine neither overlap nor disturb the timings.
# Environment: SKIP_CRITERION=1 skips step 3 (reusing target/criterion), PY_REPEAT (3), CLI_RUNS (5).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
if command -v flock >/dev/null; then
    locked() { flock "$LOCK" "$@"; }
else
    locked() { "$@"; }
fi
DATA="bench/data"
OUT="bench/results/$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
BIN="target/release"
PY_REPEAT="${PY_REPEAT:-3}"
CLI_RUNS="${CLI_RUNS:-5}"
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
say() { printf '\n== %s\n' "$*"; }

say "machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "ram: $(free -h | awk '/^Mem:/ {print $2}')"
    echo "rustc: $(rustc --version)"
    echo "python: $(python3 --version 2>&1)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- shared cli 2>/dev/null || echo ' + uncommitted changes in shared/ or cli/')"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

say "corpora"
python3 bench/gen_corpus.py --out "$DATA" | tee "$OUT/corpus.txt"

say "build"
locked cargo build --release -p mailroom-cli -p mailroom-bench

if [[ "${SKIP_CRITERION:-0}" != 1 ]]; then
    say "criterion (a few minutes)"
    locked cargo bench -p mailroom-bench --bench render 2>&1 | tee "$OUT/criterion.txt"
fi
# criterion keeps its estimates in target/criterion; copy the ones summary.md is made from
for group in convert parse; do
    for set in small medium large xl; do
        est="target/criterion/$group/$set/new/estimates.json"
        [[ -f "$est" ]] && mkdir -p "$OUT/criterion/$group/$set" \
            && cp "$est" "$(dirname "$est")/sample.json" "$OUT/criterion/$group/$set/"
    done
done

say "python baseline"
locked python3 bench/python_baseline.py --data "$DATA" --repeat "$PY_REPEAT" --json "$OUT/python.json" \
    | tee "$OUT/python.txt"

# the CLI rendering FILE under /usr/bin/time -v: prints "wall_s max_rss_kb" (the wall time is taken with
# nanosecond clocks around the process, since time -v reports it to 10 ms only)
cli_time() {
    local file="$1" dir wall_us
    dir="$(mktemp -d -p "$SCRATCH")"
    wall_us=$(locked bash -c 'start=$(date +%s%N)
        /usr/bin/time -v -o "$1" "$2" render --out "$3" "$4" >/dev/null
        echo $(( ($(date +%s%N) - start) / 1000 ))' _ "$dir/time.txt" "$BIN/mailroom" "$dir" "$file")
    awk -F': ' -v wall="$wall_us" '/Maximum resident set size/ {m=$2}
        END {printf "%.4f %s\n", wall / 1e6, m}' "$dir/time.txt"
    rm -rf "$dir"
}

say "peak memory"
: > "$OUT/peak.txt"
for f in "$DATA"/xl/*.eml "$DATA"/large/*.eml; do
    locked "$BIN/peak" "$f" | tee -a "$OUT/peak.txt"
done
: > "$OUT/cli_time.txt"
for f in "$DATA"/xl/*.eml "$DATA"/large/large_0.eml; do
    echo "file=$f size=$(stat -c %s "$f") cli_wall_s_max_rss_kb=$(cli_time "$f" | tr ' ' ,)" | tee -a "$OUT/cli_time.txt"
done

say "hostile inputs"
: > "$OUT/hostile.txt"
for f in "$DATA"/hostile/*.eml; do
    locked "$BIN/peak" "$f" --runs 3 | tee -a "$OUT/hostile.txt"
    echo "file=$f size=$(stat -c %s "$f") cli_wall_s_max_rss_kb=$(cli_time "$f" | tr ' ' ,)" | tee -a "$OUT/cli_time.txt"
done

say "probe"
: > "$OUT/probe.txt"
for f in "$DATA"/xl/*.eml "$DATA"/large/large_0.eml; do
    locked "$BIN/probe" "$f" --runs 5 | tee -a "$OUT/probe.txt"
done

say "whole CLI process: mailroom render --out DIR over each set"
for set in small medium large xl; do
    files=("$DATA/$set"/*.eml)
    dir="$SCRATCH/out-$set"
    if command -v hyperfine >/dev/null; then
        locked hyperfine -N --warmup 1 --runs "$CLI_RUNS" --export-json "$OUT/cli_$set.json" \
            --prepare "rm -rf $dir" "$BIN/mailroom render --out $dir ${files[*]}" | tee "$OUT/cli_$set.txt"
    else
        # without hyperfine: CLI_RUNS timed runs after one warm-up, recorded in the same JSON shape
        locked python3 - "$OUT/cli_$set.json" "$CLI_RUNS" "$dir" "$BIN/mailroom" "${files[@]}" <<'EOF'
import json, shutil, subprocess, sys, time
out, runs, folder, exe, files = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5:]
times = []
for i in range(runs + 1):
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run([exe, "render", "--out", folder, *files], check=True)
    if i:
        times.append(time.perf_counter() - start)
json.dump({"results": [{"mean": sum(times) / len(times), "min": min(times), "times": times}]}, open(out, "w"))
print(f"mean {sum(times) / len(times):.3f} s, min {min(times):.3f} s over {runs} runs")
EOF
    fi
    rm -rf "$dir"
done

say "summary"
python3 bench/summarize.py "$OUT" | tee "$OUT/summary.md"
echo
echo "all figures: $OUT"
