#!/usr/bin/env bash
# Where the time of one criterion benchmark goes: `bench/profile.sh convert/small [SECONDS]`.
# Records the criterion binary with perf (DWARF call graphs; release has line tables) for SECONDS (default 6)
# of --profile-time, then splits the samples spent in the timed loop into the pieces of parse + render.
# Needs perf (Debian: linux-perf) and the data (bench/gen_corpus.py); runs under flock like run.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BENCH="${1:?usage: bench/profile.sh GROUP/SET [SECONDS], e.g. convert/small}"
SECS="${2:-6}"
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }

locked cargo bench -p mailroom-bench --bench render --no-run >/dev/null 2>&1
EXE="$(ls -t target/release/deps/render-* | grep -v '\.d$' | head -1)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
locked perf record -q -F 999 --call-graph dwarf,16384 -o "$WORK/perf.data" \
    "$EXE" --bench --profile-time "$SECS" "^${BENCH}\$" >/dev/null 2>&1
perf script -i "$WORK/perf.data" 2>/dev/null > "$WORK/perf.txt"
python3 - "$WORK/perf.txt" "$BENCH" <<'EOF'
import collections, sys
# (label, any of these substrings in the stack); the first that matches takes the sample, so specific first
BUCKETS = [
    ("parse: limits::bound, boundary parameters (declared_boundaries, regex)", ["declared_boundaries"]),
    ("parse: limits::bound, the pre-scan of every line", ["mailroom::mail::limits::"]),
    # quoted_printable is mostly inlined into decode, so base64 and QP share one bucket
    ("parse: transfer::decode (base64 by SIMD in 64 KiB chunks; quoted-printable line by line)",
     ["mailroom::mail::transfer::"]),
    ("parse: top-level header values (top_level_headers / decode_header_value)",
     ["top_level_headers", "decode_header_value", "mailroom::mail::headers::"]),
    ("parse: body text to UTF-8 (recover::decode_text, charsets)", ["mailroom::mail::recover::"]),
    ("parse: mail-parser (MIME structure, part headers)", ["mail_parser::"]),
    ("parse: mailroom, the rest (model, attachments, drops of mail-parser's parts)", ["mailroom::mail::parse"]),
    ("Envelope::recover", ["Envelope::recover", "mailroom::mail::envelope::"]),
    ("render: reply_plain (reply::strip_reply)", ["reply_plain", "strip_reply", "mailroom::mail::reply::"]),
    ("render: base64 encode of attachments", ["write_base64", "internal_encode", "base64::engine"]),
    ("render: header grouping (group_headers)", ["group_headers"]),
    ("render: JSON string escaping (format::json::write_str)", ["format::json::write_str"]),
    ("render: the rest of the JSON writer", ["mailroom::format::"]),
    ("dropping the Email", ["drop_in_place<mailroom::mail::Email", "drop_in_place<mailroom"]),
]
text = open(sys.argv[1]).read()
counts, total = collections.Counter(), 0
for sample in text.split("\n\n"):
    stack = sample.strip().split("\n")[1:]
    joined = "\n".join(stack)
    if "Bencher<M>::iter" not in joined:
        continue  # loading the files, criterion's own analysis
    total += 1
    for label, needles in BUCKETS:
        if any(n in joined for n in needles):
            counts[label] += 1
            break
    else:
        counts["other (loop, allocator, kernel page faults outside the above)"] += 1
print(f"{sys.argv[2]}: {total} samples in the timed loop (warm-up included)")
for label, n in counts.most_common():
    print(f"  {100 * n / max(total, 1):5.1f}%  {label}")
EOF
