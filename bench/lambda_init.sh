#!/usr/bin/env bash
# Cold-start figure of Lambda builds: for each folder holding Inbound/bootstrap, Feedback/bootstrap and
# Links/bootstrap (what `sam build` leaves in .aws-sam/build), the time from spawning each function to its
# first `GET /2018-06-01/runtime/invocation/next` on a fake Runtime API (bench/lambda_harness.py ready), RUNS
# times with the binary in the page cache and RUNS times with it dropped from the cache before each start
# (--evict: read from disk, as in a fresh sandbox). Settings as the stack gives them, with no ARN to read, so
# init makes no network call. The binaries must run here: build them for this machine's architecture.
#
#   bench/lambda_init.sh DIR...        e.g. bench/lambda_init.sh /tmp/before/.aws-sam/build .aws-sam/build
#
# Environment: RUNS (20). Each timed step runs under `flock $CARGO_LOCK` (default /tmp/cargo.lock), so that
# builds by other people on a shared machine that take that lock do not overlap the measurement.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUNS="${RUNS:-20}"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock > /dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
[ $# -ge 1 ] || { echo "usage: bench/lambda_init.sh DIR..." >&2; exit 2; }
KEY=$(python3 -c 'import base64, os; print(base64.b64encode(os.urandom(48)).decode())')

echo "load: $(cut -d' ' -f1-3 /proc/loadavg); runs: $RUNS"
for dir in "$@"; do
    for f in Inbound Feedback Links; do
        exe="$dir/$f/bootstrap"
        [ -x "$exe" ] || { echo "no $exe" >&2; exit 1; }
        case $f in
            Inbound) vars=(MAILROOM_TABLE=bench-table MAILROOM_BUCKET=bench-mail MAILROOM_DOMAINS=mail.example.com) ;;
            Feedback) vars=(MAILROOM_TABLE=bench-table) ;;
            Links) vars=(MAILROOM_BUCKET=bench-mail "MAILROOM_LINK_KEY=$KEY") ;;
        esac
        name=$(echo "$f" | tr 'A-Z' 'a-z')
        for mode in cached evicted; do
            flag=(); [ $mode = evicted ] && flag=(--evict)
            line=$(locked env -u AWS_ENDPOINT_URL -u MAILROOM_ENDPOINT_URL "${vars[@]}" AWS_LAMBDA_FUNCTION_NAME="$name" \
                python3 "$ROOT"/bench/lambda_harness.py ready "$exe" --runs "$RUNS" "${flag[@]}" | tail -n 1)
            printf '%s\t%s\t%s\t%s bytes\t%s\n' "$dir" "$f" "$mode" "$(stat -c %s "$exe")" "$line"
        done
    done
done
