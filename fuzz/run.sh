#!/usr/bin/env bash
# Fuzzes mail::parse + Envelope::recover + all three POST formats (and strip_reply) with cargo-fuzz/libFuzzer.
#
#   fuzz/run.sh [SECONDS]      # default 1200 (20 minutes); one job, niced
#
# Setup it does: installs cargo-fuzz if missing, seeds fuzz/Cargo.lock from the workspace's (same dependency
# versions), copies tests/corpus/*.eml into fuzz/corpus/parse_render/ (git-ignored), builds the target under
# `flock $CARGO_LOCK` (default /tmp/cargo.lock) and then runs the fuzzer binary directly, outside the lock, so a
# long run does not hold up other builds.
#
# The toolchain is stable; cargo-fuzz needs nightly-only flags (-Zsanitizer), so RUSTC_BOOTSTRAP=1 is set.
# Environment: SANITIZER (address; `none` builds faster and runs ~2x faster), FUZZ_ARGS (extra libFuzzer
# flags), JOBS (1), DEBUG_ASSERTIONS (`profile`, the default: `cargo fuzz build -O`, with debug assertions and
# overflow checks from fuzz/Cargo.toml's release profile, i.e. on everywhere except mail-parser's debug
# assertions, one of which fires on a known input; `all`: cargo-fuzz's default -Cdebug-assertions for every
# crate, mail-parser included). Crashes land in fuzz/artifacts/parse_render/; reproduce with
#   fuzz/target/x86_64-unknown-linux-gnu/release/parse_render fuzz/artifacts/parse_render/crash-...
# and minimise with (the fuzzer binary itself, no rebuild)
#   fuzz/target/x86_64-unknown-linux-gnu/release/parse_render -minimize_crash=1 -max_total_time=120 \
#       -exact_artifact_path=/tmp/min.eml fuzz/artifacts/parse_render/crash-...
set -euo pipefail
FUZZ="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(dirname "$FUZZ")"
SECONDS_TO_RUN="${1:-1200}"
SANITIZER="${SANITIZER:-address}"
JOBS="${JOBS:-1}"
DEBUG_ASSERTIONS="${DEBUG_ASSERTIONS:-profile}"
case "$DEBUG_ASSERTIONS" in
    profile) BUILD_MODE=(-O) ;;
    all) BUILD_MODE=(-a) ;;
    *) echo "DEBUG_ASSERTIONS is 'profile' or 'all'" >&2; exit 2 ;;
esac
LOCK="${CARGO_LOCK:-/tmp/cargo.lock}"
locked() { if command -v flock >/dev/null; then flock "$LOCK" "$@"; else "$@"; fi; }
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
    locked cargo install cargo-fuzz --locked
fi
[[ -f "$FUZZ/Cargo.lock" ]] || cp "$ROOT/Cargo.lock" "$FUZZ/Cargo.lock"

CORPUS="$FUZZ/corpus/parse_render"
mkdir -p "$CORPUS" "$FUZZ/artifacts/parse_render"
cp -n "$ROOT"/tests/corpus/*.eml "$CORPUS"/ 2>/dev/null || true
echo "corpus: $(find "$CORPUS" -type f | wc -l) files"

cd "$FUZZ"
locked cargo fuzz build "${BUILD_MODE[@]}" -s "$SANITIZER" parse_render
EXE="$FUZZ/target/x86_64-unknown-linux-gnu/release/parse_render"

LOG="$FUZZ/artifacts/run-$(date +%Y%m%d-%H%M%S).log"
echo "fuzzing for ${SECONDS_TO_RUN}s with $JOBS job(s); libFuzzer's output: $LOG"
start=$(date +%s)
# -jobs=1 keeps one process on one core; -rss_limit_mb bounds memory per input (a bug, not a limit, if hit);
# -timeout flags any input slower than 10 s.
set +e
nice -n 10 "$EXE" "$CORPUS" \
    -dict="$FUZZ/mime.dict" \
    -artifact_prefix="$FUZZ/artifacts/parse_render/" \
    -max_total_time="$SECONDS_TO_RUN" \
    -max_len=200000 -rss_limit_mb=2048 -timeout=10 \
    -print_final_stats=1 \
    ${JOBS:+$( ((JOBS > 1)) && echo "-jobs=$JOBS -workers=$JOBS")} \
    ${FUZZ_ARGS:-} 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
echo "wall time: $(( $(date +%s) - start )) s, exit status $status, corpus now $(find "$CORPUS" -type f | wc -l) files"
ls "$FUZZ/artifacts/parse_render/" | sed 's/^/artifact: /'
exit "$status"
