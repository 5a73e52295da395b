#!/usr/bin/env bash
# loom stage of ci/test.sh: every interleaving of the ring and park/wake models within the
# preemption bound (layout.md §16). Own target folder so the normal build cache stays warm.
# Prints each model's iterations and wall time, then the stage's wall time.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s.%N)
export RUSTFLAGS="${RUSTFLAGS:-} --cfg chunkring_loom"
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
# loom prints a backtrace for every failure it finds; the teeth tests provoke failures on
# purpose, so keep the log readable unless the caller asks for backtraces.
export RUST_BACKTRACE="${LOOM_BACKTRACE:-0}"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test -p chunkring-loom-tests --release --target-dir target/loom -- --nocapture --test-threads=2 \
    >"$log" 2>&1 || status=$?
# The models' own lines, then the harness verdicts; the full log only on failure.
grep -E '^(test |)loom model|^loom model' "$log" | sed -E 's/^test [^ ]+ \.\.\. //' || true
grep -E '^test result:' "$log" || true
if [ "$status" -ne 0 ]; then
    echo "--- loom log (failed) ---"
    grep -vE 'panicked at .*loom-0\.[0-9.]+/src/rt/(location|execution)\.rs|^note: run with' "$log" | tail -200
fi
end=$(date +%s.%N)
printf 'loom: %s, wall time %.1f s (LOOM_MAX_PREEMPTIONS=%s)\n' \
    "$([ "$status" -eq 0 ] && echo passed || echo FAILED)" "$(echo "$end - $start" | bc)" "$LOOM_MAX_PREEMPTIONS"
exit "$status"
