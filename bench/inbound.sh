#!/usr/bin/env bash
# Benchmarks the inbound Lambda binary itself, outside Lambda, end to end:
#   1. builds it (release) and the mailroom CLI
#   2. start-to-ready: a fake Runtime API (bench/lambda_harness.py) times process spawn -> first
#      `GET /2018-06-01/runtime/invocation/next`, READY_RUNS times (20); no secret ARN is set, so init makes no
#      network call
#   3. peak memory delivering the 40 MB message: moto's server (S3, DynamoDB, SQS...), `mailroom setup emulator`,
#      the message uploaded to inbound/<id>, a catch-all route to a local receiver that reads and discards the
#      body; the binary is handed one S3 ObjectCreated event by the fake Runtime API, and its VmHWM (read from
#      /proc just before it is stopped) and ru_maxrss are recorded; the receiver's log and the delivery record
#      are checked
#   Figures land in bench/results/inbound-<time>/ (git-ignored) and on stdout.
#
# Usage: bench/inbound.sh        Environment: READY_RUNS (20), MESSAGE (bench/data/xl/ses_max_40mb.eml),
#                                MOTO_PORT and RECEIVER_PORT (default: free ports picked at start)
# Every cargo command and each timed step runs under `flock $CARGO_LOCK` (default /tmp/cargo.lock).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
READY_RUNS="${READY_RUNS:-20}"
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOTO_PORT="${MOTO_PORT:-$(free_port)}"
RECEIVER_PORT="${RECEIVER_PORT:-$(free_port)}"
MESSAGE="${MESSAGE:-bench/data/xl/ses_max_40mb.eml}"
OUT="bench/results/inbound-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
HARNESS="bench/lambda_harness.py"
EXE="target/release/inbound"
CLI="target/release/mailroom"
say() { printf '\n== %s\n' "$*"; }

PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

wait_port() {
    for _ in $(seq 1 300); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1" >&2
    return 1
}

say "machine"
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "rustc: $(rustc --version)"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- shared functions 2>/dev/null || echo ' + uncommitted changes in shared/ or functions/')"
    echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt"

say "build"
locked cargo build --release -p inbound
# The lock may be held for minutes by other builds; the tree can change meanwhile, so record what the inbound
# binary was built from.
echo "built from: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- shared functions 2>/dev/null || echo ' + uncommitted changes in shared/ or functions/') at $(date -u +%H:%M:%SZ)" \
    | tee -a "$OUT/machine.txt"
# The CLI only sets the emulator up; an existing binary will do if the CLI does not build at the moment.
if ! locked cargo build --release -p mailroom-cli; then
    [[ -x "$CLI" ]] || exit 1
    echo "warning: mailroom-cli did not build; using the existing $CLI" >&2
fi
ls -l "$EXE" | tee "$OUT/binary.txt"

say "start-to-ready ($READY_RUNS runs, no network at init)"
(
    unset MAILROOM_DEFAULT_WEBHOOK_SECRET_ARN AWS_ENDPOINT_URL
    export AWS_LAMBDA_FUNCTION_NAME=inbound AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION=1 \
        AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test MAILROOM_TABLE=t
    locked python3 "$HARNESS" ready "$EXE" --runs "$READY_RUNS"
) | tee "$OUT/ready.txt"

say "peak memory delivering $MESSAGE"
[[ -f "$MESSAGE" ]] || python3 bench/gen_corpus.py
SIZE=$(stat -c %s "$MESSAGE")
python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
PIDS+=($!)
: >"$OUT/receiver.log"
python3 "$HARNESS" receiver "$RECEIVER_PORT" "$OUT/receiver.log" >/dev/null 2>&1 &
PIDS+=($!)
wait_port "$MOTO_PORT"
wait_port "$RECEIVER_PORT"

export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test \
    AWS_SECRET_ACCESS_KEY=test
"$CLI" setup emulator --prefix bench >"$OUT/exports.sh"
# shellcheck disable=SC1091
source "$OUT/exports.sh"
cat "$OUT/exports.sh"
ID="bench$(date +%s)xl40mb"
python3 "$HARNESS" upload "$MESSAGE" --bucket "$MAILROOM_BUCKET" --key "inbound/$ID"
"$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" | tee "$OUT/route.txt"

export MAILROOM_ALLOW_PRIVATE_TARGETS=true AWS_LAMBDA_FUNCTION_NAME=inbound \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION=1
locked python3 "$HARNESS" invoke "$EXE" --bucket "$MAILROOM_BUCKET" --key "inbound/$ID" --size "$SIZE" \
    --stderr "$OUT/inbound.log" | tee "$OUT/invoke.txt"
sleep 0.5
echo "receiver:"
sed 's/^/  /' "$OUT/receiver.log"
python3 "$HARNESS" records --table "$MAILROOM_TABLE" | tee "$OUT/records.txt"

say "summary"
python3 - "$OUT" "$SIZE" <<'EOF' | tee "$OUT/summary.md"
import json, re, sys
from pathlib import Path
out, size = Path(sys.argv[1]), int(sys.argv[2])
ready = dict(re.findall(r"(\w+)=(\S+)", (out / "ready.txt").read_text().splitlines()[-1]))
inv = dict(re.findall(r"(\w+)=(\S+)", (out / "invoke.txt").read_text().splitlines()[-1]))
posts = (out / "receiver.log").read_text().splitlines()
records = [json.loads(l) for l in (out / "records.txt").read_text().splitlines() if l.strip()]
hwm = int(inv["vm_hwm_kb"]) * 1024
maxrss = int(inv["ru_maxrss_kb"]) * 1024
limit = 256 * 2**20
print(f"start-to-ready over {ready['runs']} runs: min {ready['min']} ms, median {ready['median']} ms, "
      f"max {ready['max']} ms (target <= 20 ms: {'pass' if float(ready['median']) <= 20 else 'FAIL'} on the median, "
      f"{'pass' if float(ready['max']) <= 20 else 'FAIL'} on the max)")
print(f"40 MB message ({size} bytes): peak RSS {hwm / 2**20:.1f} MiB (VmHWM), {maxrss / 2**20:.1f} MiB (ru_maxrss), "
      f"{hwm / size:.2f}x the message; limit 256 MiB: {'pass' if max(hwm, maxrss) <= limit else 'FAIL'}; "
      f"invocation {inv['invoke_s']} s, outcome {inv['outcome']}")
print(f"receiver: {len(posts)} POST(s): {'; '.join(posts)}")
print(f"records: {', '.join(r['status'] + ' (' + str(r.get('response_status')) + ')' for r in records)}")
EOF
echo "all figures: $OUT"
