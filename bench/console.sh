#!/usr/bin/env bash
# The console on a table of COUNT (default 100,000) records in moto's server, as an operator uses it:
# fills a fresh table through the DynamoDB adapter (bench/src/bin/seed_records.rs), starts
# `mailroom console --table … --bucket …` (release build), then times the messages page (first page,
# filtered pages, the next page) with curl and a message page's first paint in headless Chromium.
# Results are printed; bench/README.md ("The console") keeps the figures.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT="${COUNT:-100000}"
RUNS="${RUNS:-20}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/mailroom/target}"
cargo build --release --quiet -p mailroom-cli --bin mailroom
cargo build --release --quiet -p mailroom-bench --bin seed_records
bin="$CARGO_TARGET_DIR/release"

moto=""
console=""
trap 'kill $moto $console 2>/dev/null || true' EXIT
if [ -n "${MAILROOM_TABLE:-}" ] && [ -n "${AWS_ENDPOINT_URL:-}" ]; then
  # A table seeded by an earlier run (seeding 100,000 records takes moto about 6 minutes): measure again.
  echo "== the table $MAILROOM_TABLE at $AWS_ENDPOINT_URL, as it is"
else
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  python3 -m moto.server -H 127.0.0.1 -p "$port" >"${TMPDIR:-/tmp}/mailroom-bench-moto.log" 2>&1 &
  moto=$!
  for _ in $(seq 1 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),1)" 2>/dev/null && break
    sleep 0.1
  done
  export AWS_ENDPOINT_URL="http://127.0.0.1:$port" AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  eval "$("$bin/mailroom" setup emulator --prefix "bench$$")"
  echo "== seeding $COUNT records"
  "$bin/seed_records" "$MAILROOM_TABLE" "$MAILROOM_BUCKET" "$COUNT" tests/corpus >/dev/null
fi

log="${TMPDIR:-/tmp}/mailroom-bench-console.log"
"$bin/mailroom" console --http 127.0.0.1:0 >"$log" 2>&1 &
console=$!
for _ in $(seq 1 100); do grep -q "console: " "$log" && break; sleep 0.1; done
url=$(grep -o 'http://[^ ]*token=[0-9a-f]*' "$log")
token=${url##*token=}
origin=${url%%/?token=*}

# Times RUNS GETs of a path after two warm-ups: median, p95 and max of curl's total time, in ms.
timed() {
  local path="$1" times=()
  for i in $(seq 1 $((RUNS + 2))); do
    t=$(curl -s -o /dev/null -w '%{http_code} %{time_total}' -H "Authorization: Bearer $token" "$origin$path")
    [ "${t%% *}" = 200 ] || { echo "$path answered ${t%% *}" >&2; exit 1; }
    [ "$i" -gt 2 ] && times+=("${t##* }")
  done
  printf '%s\n' "${times[@]}" | python3 -c "
import sys; xs = sorted(float(x) * 1000 for x in sys.stdin)
p = lambda q: xs[min(len(xs) - 1, int(q * len(xs)))]
print(f'{sys.argv[1]:<60} median {p(0.5):7.1f} ms  p95 {p(0.95):7.1f} ms  max {xs[-1]:7.1f} ms')" "$path"
}

# The counts of the overview (a pass over every record of 60 days) first: the pages are timed with the
# console otherwise idle, as an operator browses it once it has counted.
# (moto's server answers each index query by reading the whole table: 100,000 records take it minutes.)
counted=""
for _ in $(seq 1 5400); do
  if curl -s -H "Authorization: Bearer $token" "$origin/api/stats" | grep -q '"counting": false'; then
    counted=yes
    break
  fi
  sleep 0.5
done
[ -n "$counted" ] || { echo "the console did not finish counting in 45 minutes" >&2; exit 1; }
grep "counted" "$log"
ps -o rss= -p "$console" | awk '{printf "console RSS after counting: %.1f MiB\n", $1 / 1024}'

echo "== $COUNT records, $RUNS runs each (curl, total time)"
timed "/messages"
next=$(curl -s -H "Authorization: Bearer $token" "$origin/api/messages" -D - -o /dev/null | tr -d '\r' | sed -n 's/^x-next-page: //p')
timed "/messages?after=$next"
timed "/messages?status=failed"
timed "/messages?recipient=billing%40mail.example.com"
timed "/messages?sender=customer7%40sender7.example"
timed "/messages?since=$(date -u -d '-20 days' +%F)&until=$(date -u -d '-19 days' +%F)"
timed "/messages?subject=invoice"
timed "/api/messages"
timed "/messages/seed0000000"
timed "/overview"
echo "== a message page in Chromium"
node bench/console-paint.mjs "$url" /messages/seed0000000 10 | tail -1
node bench/console-paint.mjs "$url" /messages 10 | tail -1
