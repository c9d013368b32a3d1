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
#   4. whole batches, as the stack runs them (BATCHES=1, the default): the template's MemorySize, Timeout and
#      BatchSize of the Inbound function are read from template.yaml; BatchSize copies of the 40 MB message are
#      handed to the binary as one SQS batch of SES notifications (the default wiring), with
#      AWS_LAMBDA_FUNCTION_MEMORY_SIZE and a deadline Timeout seconds away, once per route kind: JSON inline,
#      multipart, raw, `attachments: s3`, and a forward through (moto's) SES. Peak RSS is set against
#      MemorySize (target: under 90 %). Then the cost: batches of BatchSize small (bench/data/small), ~200 KB
#      (bench/data/medium) and 40 MB messages to a JSON route; GB-seconds per message = the invocation's wall
#      time x MemorySize in GB / BatchSize, and a CPU-bound estimate for Lambda (CPU seconds x 1769 /
#      MemorySize: Lambda gives a function one vCPU at 1,769 MB, a share below that).
#   Figures land in bench/results/inbound-<time>/ (git-ignored) and on stdout.
#
# Usage: bench/inbound.sh        Environment: ATTACHMENTS (inline | s3; inline), READY_RUNS (20 inline, 0 s3;
#                                0 skips start-to-ready), MESSAGE (bench/data/xl/ses_max_40mb.eml), BATCHES
#                                (1; 0 skips the batches), SINGLE (1; 0 skips the single message),
#                                KINDS (the batches' route kinds: "json multipart raw s3 forward"; any
#                                format name, e.g. "postmark-raw mailgun sendgrid"), COST (1; 0 skips the
#                                cost batches, which need json among KINDS),
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
# The Inbound function's MemorySize, Timeout and BatchSize, as template.yaml deploys it.
read -r MEMORY_MB TIMEOUT_S BATCH_SIZE < <(python3 - <<'EOF'
import re
text = open("template.yaml").read()
inbound = text[text.index("\n  Inbound:\n") + 1:]
inbound = inbound[: re.search(r"\n  [A-Za-z]", inbound).start()]
memory = re.search(r"\n      MemorySize: (\d+)", inbound).group(1)
timeout = re.search(r"\n      Timeout: (\d+)", inbound).group(1)
batch = re.search(r"\n            BatchSize: (\d+)", inbound).group(1)
print(memory, timeout, batch)
EOF
)
EXE="${CARGO_TARGET_DIR:-target}/release/inbound"
CLI="${CARGO_TARGET_DIR:-target}/release/mailroom"
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
# The whole workspace, so the feature set (and the AWS SDK) is the one every other build of it shares.
locked cargo build --release --workspace --bins
# The lock may be held for minutes by other builds; the tree can change meanwhile, so record what the inbound
# binary was built from.
echo "built from: $(git rev-parse --short HEAD 2>/dev/null || echo none)$(git diff --quiet HEAD -- shared functions 2>/dev/null || echo ' + uncommitted changes in shared/ or functions/') at $(date -u +%H:%M:%SZ)" \
    | tee -a "$OUT/machine.txt"
ls -l "$EXE" | tee "$OUT/binary.txt"

if ((READY_RUNS > 0)); then
    say "start-to-ready ($READY_RUNS runs, no network at init)"
    (
        unset MAILROOM_DEFAULT_WEBHOOK_SECRET_ARN AWS_ENDPOINT_URL
        export AWS_LAMBDA_FUNCTION_NAME=inbound AWS_LAMBDA_FUNCTION_MEMORY_SIZE=$MEMORY_MB AWS_LAMBDA_FUNCTION_VERSION=1 \
            AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test MAILROOM_TABLE=t
        locked python3 "$HARNESS" ready "$EXE" --runs "$READY_RUNS"
    ) | tee "$OUT/ready.txt"
else
    say "start-to-ready skipped (READY_RUNS=0)"
fi

[[ -f "$MESSAGE" && -d bench/data/small && -d bench/data/medium ]] || python3 bench/gen_corpus.py
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
BATCHES="${BATCHES:-1}"
KINDS="${KINDS:-json multipart raw s3 forward}"
COST="${COST:-1}"
SINGLE="${SINGLE:-1}"
if [[ "$SINGLE" == 1 ]]; then
say "peak memory delivering $MESSAGE (attachments: $ATTACHMENTS)"
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
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE=$MEMORY_MB AWS_LAMBDA_FUNCTION_VERSION=1
locked python3 "$HARNESS" invoke "$EXE" --bucket "$MAILROOM_BUCKET" --key "inbound/$ID" --size "$SIZE" \
    --stderr "$OUT/inbound.log" | tee "$OUT/invoke.txt"
sleep 0.5
echo "receiver:"
sed 's/^/  /' "$OUT/receiver.log"
python3 "$HARNESS" records --table "$MAILROOM_TABLE" | tee "$OUT/records.txt"
python3 "$HARNESS" objects --bucket "$MAILROOM_BUCKET" --prefix attachments/ | tee "$OUT/objects.txt"

say "summary"
python3 - "$OUT" "$SIZE" "$ATTACHMENTS" "$MEMORY_MB" <<'EOF' | tee "$OUT/summary.md"
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
limit = int(sys.argv[4]) * 2**20
print(f"attachments: {mode}")
if ready is None:
    print("start-to-ready: skipped (READY_RUNS=0)")
else:
    print(f"start-to-ready over {ready['runs']} runs: min {ready['min']} ms, median {ready['median']} ms, "
          f"max {ready['max']} ms (target <= 20 ms: {'pass' if float(ready['median']) <= 20 else 'FAIL'} on the "
          f"median, {'pass' if float(ready['max']) <= 20 else 'FAIL'} on the max)")
print(f"40 MB message ({size} bytes): peak RSS {hwm / 2**20:.1f} MiB (VmHWM), {maxrss / 2**20:.1f} MiB (ru_maxrss), "
      f"{hwm / size:.2f}x the message; limit {limit >> 20} MiB (MemorySize): {'pass' if max(hwm, maxrss) <= limit else 'FAIL'}; "
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
    print(f"s3 mode: peak {hwm / 2**20:.1f} MiB (target <= {limit >> 20} MiB: {'pass' if max(hwm, maxrss) <= limit else 'FAIL'}), "
          f"invocation {inv['invoke_s']} s; {count} object(s) under attachments/, {total} bytes")
EOF
fi

if [[ "$BATCHES" == 1 ]]; then
    say "whole batches, as the stack runs them"
    echo "template.yaml: Inbound MemorySize $MEMORY_MB MB, Timeout $TIMEOUT_S s, BatchSize $BATCH_SIZE" \
        | tee "$OUT/batch-template.txt"
    FORWARD_DOMAIN="forward.bench.test"
    python3 - "$FORWARD_DOMAIN" <<'EOF'
import os, sys, boto3
boto3.client("sesv2", endpoint_url=os.environ["AWS_ENDPOINT_URL"],
             region_name=os.environ["AWS_REGION"]).create_email_identity(EmailIdentity=sys.argv[1])
EOF
    # One batch: upload the files, hand them over as one SQS batch, record the figures under NAME.
    run_batch() {
        local name=$1; shift
        local keys=() i=0 file key
        for file in "$@"; do
            key="inbound/batch-$name-$i-$(date +%s%N)"
            python3 "$HARNESS" upload "$file" --bucket "$MAILROOM_BUCKET" --key "$key"
            keys+=("$key")
            i=$((i + 1))
        done
        python3 "$HARNESS" sqs-event --bucket "$MAILROOM_BUCKET" "${keys[@]}" >"$OUT/batch-$name.event.json"
        : >"$OUT/receiver.log"
        env AWS_LAMBDA_FUNCTION_MEMORY_SIZE="$MEMORY_MB" MAILROOM_FORWARD_FROM="mailroom@$FORWARD_DOMAIN" \
            MAILROOM_CONFIGURATION_SET="$MAILROOM_CONFIGURATION_SET" \
            MAILROOM_LINK_BASE_URL="$LINK_BASE_URL" MAILROOM_LINK_KEY_ARN="$MAILROOM_LINK_KEY_ARN" \
            MAILROOM_QUEUE_URL="$MAILROOM_QUEUE_URL" MAILROOM_DLQ_URL="$MAILROOM_DLQ_URL" \
            MAILROOM_ALLOW_PRIVATE_TARGETS=true MAILROOM_ALLOW_HTTP_TARGETS=true \
            flock "$LOCK" python3 "$HARNESS" invoke "$EXE" --event "$OUT/batch-$name.event.json" \
            --deadline-s "$TIMEOUT_S" --timeout "$((TIMEOUT_S + 30))" --stderr "$OUT/batch-$name.log" \
            | tee "$OUT/batch-$name.txt"
        sleep 0.5
        echo "posts=$(wc -l <"$OUT/receiver.log")" >>"$OUT/batch-$name.txt"
    }
    XL=()
    for _ in $(seq "$BATCH_SIZE"); do XL+=("$MESSAGE"); done
    for kind in $KINDS; do
        "$CLI" routes remove '*' >/dev/null 2>&1 || true
        case "$kind" in
            json | multipart | raw)
                "$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" --format "$kind" >/dev/null ;;
            postmark* | mailgun* | sendgrid*)
                # Basic auth in the URL and a secret (Mailgun's signature), as such a route is set up.
                "$CLI" routes add '*' --webhook "http://app:pass@127.0.0.1:$RECEIVER_PORT/mail" --format "$kind" \
                    --generate-secret >/dev/null ;;
            s3)
                "$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" --attachments s3 >/dev/null ;;
            forward)
                "$CLI" routes add '*' --forward "someone@elsewhere.bench.test" \
                    --forward-from "mailroom@$FORWARD_DOMAIN" >/dev/null ;;
        esac
        say "batch of $BATCH_SIZE x $(basename "$MESSAGE") to a $kind route"
        run_batch "xl-$kind" "${XL[@]}"
    done
    if [[ "$COST" == 1 ]]; then
        "$CLI" routes remove '*' >/dev/null 2>&1 || true
        "$CLI" routes add '*' --webhook "http://127.0.0.1:$RECEIVER_PORT/mail" >/dev/null
        mapfile -t SMALL < <(ls bench/data/small/*.eml | head -n "$BATCH_SIZE")
        mapfile -t MEDIUM < <(ls bench/data/medium/*.eml | head -n "$BATCH_SIZE")
        say "cost: a batch of $BATCH_SIZE small messages to a JSON route"
        run_batch "cost-small" "${SMALL[@]}"
        say "cost: a batch of $BATCH_SIZE ~200 KB messages to a JSON route"
        run_batch "cost-medium" "${MEDIUM[@]}"
    fi
    python3 "$HARNESS" records --table "$MAILROOM_TABLE" >"$OUT/batch-records.txt"

    say "batch summary"
    python3 - "$OUT" "$MEMORY_MB" "$BATCH_SIZE" "$KINDS" <<'EOF' | tee "$OUT/batches.md"
import json, re, sys
from collections import Counter
from pathlib import Path
out, memory_mb, batch = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
kinds = sys.argv[4].split()
limit = memory_mb * 2**20
def figures(name):
    lines = (out / f"batch-{name}.txt").read_text().splitlines()
    inv = dict(re.findall(r"(\w+)=(\S+)", lines[-2]))
    posts = int(re.search(r"posts=(\d+)", lines[-1]).group(1))
    return inv, posts
records = [json.loads(l) for l in (out / "batch-records.txt").read_text().splitlines() if l.strip()]
def statuses(name):
    # `MSG#batch-<name>-<n>-<ns>`: exactly this kind (`xl-mailgun` is a prefix of `xl-mailgun-mime`).
    own = re.compile(rf"MSG#batch-{re.escape(name)}-\d+-\d+$")
    found = Counter(r["status"] for r in records if own.match(r.get("pk", "")))
    return ", ".join(f"{n} {s}" for s, n in sorted(found.items())) or "none"
print(f"| route kind ({batch} x 40 MB, one SQS batch) | peak RSS | of MemorySize {memory_mb} MB | POSTs | records | answer | wall s | CPU s |")
print("|---|---|---|---|---|---|---|---|")
for kind in kinds:
    inv, posts = figures(f"xl-{kind}")
    peak = max(int(inv["vm_hwm_kb"]), int(inv["ru_maxrss_kb"])) * 1024
    verdict = "pass" if peak < 0.9 * limit else "FAIL"
    print(f"| {kind} | {peak / 2**20:.1f} MiB | {100 * peak / limit:.0f} % ({verdict}: under 90 %) | {posts} | "
          f"{statuses('xl-' + kind)} | {inv['outcome'][:48]} | {inv['invoke_s']} | {inv['cpu_s']} |")
if (out / "batch-cost-small.txt").exists() and "json" in kinds:
    print()
    print(f"| set ({batch} messages, JSON route) | wall s | CPU s | GB-s per message (wall here) | GB-s per message (CPU-bound on Lambda) | $ per million messages (wall / CPU-bound) |")
    print("|---|---|---|---|---|---|")
    price_gbs, price_request = 0.0000133334, 0.20 / 1e6  # arm64 first tier, per GB-s; per request (one per batch)
    for name, label in [("cost-small", "small"), ("cost-medium", "~200 KB"), ("xl-json", "40 MB")]:
        inv, posts = figures(name)
        wall, cpu = float(inv["invoke_s"]), float(inv["cpu_s"])
        gbs_wall = wall * memory_mb / 1024 / batch
        gbs_cpu = max(wall, cpu * 1769 / memory_mb) * memory_mb / 1024 / batch
        cost = lambda gbs: (gbs * price_gbs + price_request / batch) * 1e6
        print(f"| {label} | {wall:.3f} | {cpu:.3f} | {gbs_wall:.5f} | {gbs_cpu:.5f} | {cost(gbs_wall):.2f} / {cost(gbs_cpu):.2f} |")
EOF
fi
echo "all figures: $OUT"
