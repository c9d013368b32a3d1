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
#   With ATTACHMENTS=s3 the route is added with `--attachments s3` and the function gets MAILROOM_LINK_BASE_URL
#   (LINK_BASE_URL, default https://links.bench.test) and MAILROOM_LINK_KEY_ARN (from `mailroom setup
#   emulator`): it stores each attachment under attachments/<message id>/<n> and posts links. The summary then
#   also gives the POST body's size (target < 64 KB = 64,000 bytes), whether its attachments carry `url` and no
#   `content`, and the objects under attachments/ in the bucket afterwards. Start-to-ready is skipped in that
#   mode unless READY_RUNS is set.
#   Figures land in bench/results/inbound-<time>/ (git-ignored) and on stdout.
#
# Usage: bench/inbound.sh        Environment: ATTACHMENTS (inline | s3; inline), READY_RUNS (20 inline, 0 s3;
#                                0 skips start-to-ready), MESSAGE (bench/data/xl/ses_max_40mb.eml),
#                                LINK_BASE_URL (s3 mode), MOTO_PORT and RECEIVER_PORT (default: free ports
#                                picked at start)
# Every cargo command and each timed step runs under `flock $CARGO_LOCK` (default /tmp/cargo.lock).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
ATTACHMENTS="${ATTACHMENTS:-inline}"
case "$ATTACHMENTS" in
    inline) READY_RUNS="${READY_RUNS:-20}" ;;
    s3) READY_RUNS="${READY_RUNS:-0}" ;;
    *) echo "ATTACHMENTS must be inline or s3, not '$ATTACHMENTS'" >&2; exit 2 ;;
esac
LINK_BASE_URL="${LINK_BASE_URL:-https://links.bench.test}"
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
    echo "attachments: $ATTACHMENTS"
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

if ((READY_RUNS > 0)); then
    say "start-to-ready ($READY_RUNS runs, no network at init)"
    (
        unset MAILROOM_DEFAULT_WEBHOOK_SECRET_ARN AWS_ENDPOINT_URL
        export AWS_LAMBDA_FUNCTION_NAME=inbound AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION=1 \
            AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test MAILROOM_TABLE=t
        locked python3 "$HARNESS" ready "$EXE" --runs "$READY_RUNS"
    ) | tee "$OUT/ready.txt"
else
    say "start-to-ready skipped (READY_RUNS=0)"
fi

say "peak memory delivering $MESSAGE (attachments: $ATTACHMENTS)"
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
if [[ "$ATTACHMENTS" == s3 ]]; then
    : "${MAILROOM_LINK_KEY_ARN:?mailroom setup emulator printed no MAILROOM_LINK_KEY_ARN}"
    "$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" --attachments s3 | tee "$OUT/route.txt"
    export MAILROOM_LINK_BASE_URL="$LINK_BASE_URL" MAILROOM_LINK_KEY_ARN
    echo "inbound gets MAILROOM_LINK_BASE_URL=$MAILROOM_LINK_BASE_URL MAILROOM_LINK_KEY_ARN=$MAILROOM_LINK_KEY_ARN"
else
    "$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" | tee "$OUT/route.txt"
fi

export MAILROOM_ALLOW_PRIVATE_TARGETS=true MAILROOM_ALLOW_HTTP_TARGETS=true AWS_LAMBDA_FUNCTION_NAME=inbound \
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256 AWS_LAMBDA_FUNCTION_VERSION=1
locked python3 "$HARNESS" invoke "$EXE" --bucket "$MAILROOM_BUCKET" --key "inbound/$ID" --size "$SIZE" \
    --stderr "$OUT/inbound.log" | tee "$OUT/invoke.txt"
sleep 0.5
echo "receiver:"
sed 's/^/  /' "$OUT/receiver.log"
python3 "$HARNESS" records --table "$MAILROOM_TABLE" | tee "$OUT/records.txt"
python3 "$HARNESS" objects --bucket "$MAILROOM_BUCKET" --prefix attachments/ | tee "$OUT/objects.txt"

say "summary"
python3 - "$OUT" "$SIZE" "$ATTACHMENTS" <<'EOF' | tee "$OUT/summary.md"
import json, re, sys
from pathlib import Path
out, size, mode = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ready_file = out / "ready.txt"
ready = dict(re.findall(r"(\w+)=(\S+)", ready_file.read_text().splitlines()[-1])) if ready_file.exists() else None
inv = dict(re.findall(r"(\w+)=(\S+)", (out / "invoke.txt").read_text().splitlines()[-1]))
posts = (out / "receiver.log").read_text().splitlines()
records = [json.loads(l) for l in (out / "records.txt").read_text().splitlines() if l.strip()]
hwm = int(inv["vm_hwm_kb"]) * 1024
maxrss = int(inv["ru_maxrss_kb"]) * 1024
limit = 256 * 2**20
print(f"attachments: {mode}")
if ready is None:
    print("start-to-ready: skipped (READY_RUNS=0)")
else:
    print(f"start-to-ready over {ready['runs']} runs: min {ready['min']} ms, median {ready['median']} ms, "
          f"max {ready['max']} ms (target <= 20 ms: {'pass' if float(ready['median']) <= 20 else 'FAIL'} on the "
          f"median, {'pass' if float(ready['max']) <= 20 else 'FAIL'} on the max)")
print(f"40 MB message ({size} bytes): peak RSS {hwm / 2**20:.1f} MiB (VmHWM), {maxrss / 2**20:.1f} MiB (ru_maxrss), "
      f"{hwm / size:.2f}x the message; limit 256 MiB: {'pass' if max(hwm, maxrss) <= limit else 'FAIL'}; "
      f"invocation {inv['invoke_s']} s, outcome {inv['outcome']}")
print(f"receiver: {len(posts)} POST(s): {'; '.join(posts)}")
print(f"records: {', '.join(r['status'] + ' (' + str(r.get('response_status')) + ')' for r in records)}")
objects = (out / "objects.txt").read_text().splitlines()
count, total = (int(v) for v in re.findall(r"count=(\d+) total_bytes=(\d+)", objects[-1])[0])
print(f"objects under attachments/ afterwards: {count}, {total} bytes"
      + "".join(f"\n  {json.loads(l)['key']} {json.loads(l)['size']} bytes" for l in objects[:-1][:10]))
if mode == "s3":
    fields = [dict(re.findall(r"(\w+)=(\S*)", p)) for p in posts]
    body = int(fields[0]["bytes"]) if len(fields) == 1 else None
    links = (len(fields) == 1 and int(fields[0].get("attachments", 0)) > 0
             and fields[0].get("with_url") == fields[0].get("attachments") and fields[0].get("with_content") == "0")
    print(f"s3 mode: POST body {body} bytes (target < 64 KB = 64,000 bytes: "
          f"{'pass' if body is not None and body < 64_000 else 'FAIL'}); "
          f"attachments carry url and no content: {'yes' if links else 'NO'} "
          f"({fields[0].get('attachments')} attachment(s), {fields[0].get('with_url')} with url, "
          f"{fields[0].get('with_content')} with content, hosts {fields[0].get('url_hosts')})" if fields else
          "s3 mode: no POST received: FAIL")
    print(f"s3 mode: peak {hwm / 2**20:.1f} MiB (target <= 256 MiB: {'pass' if max(hwm, maxrss) <= limit else 'FAIL'}), "
          f"invocation {inv['invoke_s']} s; {count} object(s) under attachments/, {total} bytes")
EOF
echo "all figures: $OUT"
