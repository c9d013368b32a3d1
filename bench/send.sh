#!/usr/bin/env bash
# The send Lambda binary at its largest request, outside Lambda: the release `send` binary is handed, by the
# fake Runtime API (bench/lambda_harness.py), a Function URL event whose JSON body is just under the 6 MB a
# Function URL passes on (one attachment of BODY_ATTACHMENT bytes, base64 in the JSON), with moto's server
# standing in for DynamoDB, S3 and SES. It records the function's peak RSS (VmHWM, read just before it is
# stopped) against the template's MemorySize for Send, the invocation's wall time, and checks the 202, the
# stored copy and the message in moto's SES.
#   Figures land in bench/results/send-<time>/ (git-ignored) and on stdout.
#
# Usage: bench/send.sh     Environment: BODY_ATTACHMENT (4400000 bytes), RUNS (3), MOTO_PORT (a free port);
#                          EXE and CLI name other builds of `send` and `mailroom` (e.g. the `lambda` profile's
#                          binary cargo-lambda made for `sam build`), and then nothing is built
# Every cargo command runs under `flock $CARGO_LOCK` (default /tmp/cargo.lock).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
MOTO_PORT="${MOTO_PORT:-$(free_port)}"
BODY_ATTACHMENT="${BODY_ATTACHMENT:-4400000}"
RUNS="${RUNS:-3}"
OUT="bench/results/send-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
HARNESS="bench/lambda_harness.py"
read -r MEMORY_MB TIMEOUT_S < <(python3 - <<'EOF'
import re
text = open("template.yaml").read()
send = text[text.index("\n  Send:\n") + 1:]
send = send[: re.search(r"\n  [A-Za-z]", send).start()]
print(re.search(r"\n      MemorySize: (\d+)", send).group(1), re.search(r"\n      Timeout: (\d+)", send).group(1))
EOF
)
BUILD=1
[ -n "${EXE:-}" ] && [ -n "${CLI:-}" ] && BUILD=0
EXE="${EXE:-${CARGO_TARGET_DIR:-target}/release/send}"
CLI="${CLI:-${CARGO_TARGET_DIR:-target}/release/mailroom}"

PIDS=()
cleanup() { for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

if ((BUILD)); then
    echo "== build"
    locked cargo build --release -p send -p mailroom-cli
fi
{
    echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "nproc: $(nproc)"
    echo "commit: $(git rev-parse --short HEAD)"
    echo "binary: $EXE ($(stat -c %s "$EXE") bytes)"
    echo "MemorySize: $MEMORY_MB MB, Timeout: $TIMEOUT_S s"
} | tee "$OUT/machine.txt"

echo "== moto on $MOTO_PORT"
python3 -m moto.server -H 127.0.0.1 -p "$MOTO_PORT" >"$OUT/moto.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$MOTO_PORT") 2>/dev/null && break; sleep 0.1; done
export AWS_ENDPOINT_URL="http://127.0.0.1:$MOTO_PORT" AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
eval "$("$CLI" setup emulator)"
python3 -c "
import boto3, os
boto3.client('sesv2', endpoint_url=os.environ['AWS_ENDPOINT_URL'], region_name='eu-west-1').create_email_identity(EmailIdentity='bench.example.com')"
MAILROOM_DOMAINS=bench.example.com "$CLI" keys create --name bench --table "$MAILROOM_TABLE" >"$OUT/key.txt"

echo "== the event: a body just under 6 MB"
python3 - "$OUT/key.txt" "$BODY_ATTACHMENT" "$OUT/event.json" <<'EOF'
import base64, json, os, sys
printed = dict(line.split(": ", 1) for line in open(sys.argv[1]).read().splitlines() if ": " in line)
attachment = os.urandom(int(sys.argv[2]))
body = json.dumps({
    "from": "Bench <bench@bench.example.com>", "to": ["ana@example.net"], "subject": "The largest request",
    "plain": "A file is attached.", "html": "<p>A file is attached.</p>",
    "attachments": [{"file_name": "data.bin", "content": base64.b64encode(attachment).decode(),
                     "content_type": "application/octet-stream"}],
})
if len(body) > 6 * 1024 * 1024:
    sys.exit(f"the body is {len(body)} bytes: over the Function URL's 6 MB")
path = f"/api/v0.1/{printed['username']}/messages"
event = {
    "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
    "headers": {"authorization": f"Bearer {printed['key']}", "content-type": "application/json"},
    "requestContext": {"http": {"method": "POST", "path": path, "sourceIp": "127.0.0.1"}},
    "body": body, "isBase64Encoded": False,
}
json.dump(event, open(sys.argv[3], "w"))
print(f"body_bytes={len(body)} attachment_bytes={len(attachment)}")
EOF

echo "== $RUNS invocations, each a fresh process"
for run in $(seq 1 "$RUNS"); do
    MAILROOM_DOMAINS=bench.example.com MAILROOM_CONFIGURATION_SET=bench-sending \
        MAILROOM_TRACKED_CONFIGURATION_SET=bench-tracked AWS_LAMBDA_FUNCTION_NAME=send \
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE="$MEMORY_MB" AWS_LAMBDA_FUNCTION_VERSION=1 \
        python3 "$HARNESS" invoke "$EXE" --event "$OUT/event.json" --deadline-s "$TIMEOUT_S" \
        --timeout "$((TIMEOUT_S + 30))" --stderr "$OUT/send-$run.log" | tee "$OUT/invoke-$run.txt"
    # The harness prints the answer's first 300 characters: the body comes first, its `status` within them.
    grep -q 'status\\":\\"sent' "$OUT/invoke-$run.txt" || { echo "run $run: not sent" >&2; exit 1; }
done

echo "== checks"
python3 - "$AWS_ENDPOINT_URL" "$MAILROOM_BUCKET" "$RUNS" <<'EOF' | tee "$OUT/checks.txt"
import json, os, sys, urllib.request
import boto3
sent = json.load(urllib.request.urlopen(sys.argv[1] + "/moto-api/data.json"))["ses"]["RawMessage"]
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="eu-west-1")
stored = s3.list_objects_v2(Bucket=sys.argv[2], Prefix="outbound/").get("Contents", [])
print(f"ses_messages={len(sent)} stored_copies={len(stored)} stored_bytes={[o['Size'] for o in stored]}")
sys.exit(0 if len(sent) == len(stored) == int(sys.argv[3]) else 1)
EOF

echo "== summary"
python3 - "$OUT" "$MEMORY_MB" "$RUNS" <<'EOF' | tee "$OUT/summary.md"
import re, sys
from pathlib import Path
out, memory_mb, runs = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rows = []
for run in range(1, runs + 1):
    text = (out / f"invoke-{run}.txt").read_text()
    hwm = int(re.search(r"vm_hwm_kb=(\d+)", text).group(1))
    invoke = float(re.search(r"invoke_s=([\d.]+)", text).group(1))
    rows.append((hwm, invoke))
peak = max(h for h, _ in rows)
print(f"| run | peak RSS | of MemorySize ({memory_mb} MB) | invocation |")
print("|---|---|---|---|")
for i, (hwm, invoke) in enumerate(rows, 1):
    print(f"| {i} | {hwm / 1024:.1f} MiB | {hwm * 1024 / (memory_mb * 1e6) * 100:.0f} % | {invoke * 1000:.0f} ms |")
print(f"\nlargest peak: {peak / 1024:.1f} MiB = {peak * 1024 / (memory_mb * 1e6) * 100:.0f} % of MemorySize")
EOF
