#!/usr/bin/env bash
# Fuzz stage of ci/test.sh: every target of fuzz/ for a bounded time (FUZZ_SECONDS each,
# default 8: 9 targets, 72 s of fuzzing in total), starting from the committed seed corpus in
# fuzz/seeds/<target> (new inputs go to target/fuzz-corpus/<target>, never into the repo).
# A crash fails the stage and leaves its input in fuzz/artifacts/<target>/.
# Installs cargo-fuzz when it is missing (`cargo install cargo-fuzz --locked`: measured 1 m 58 s
# of compiling once on 2 shared cores, cached in ~/.cargo/bin afterwards; FUZZ_INSTALL=0 skips
# it). The first run builds the targets with ASan (about 2 minutes), later runs reuse the build.
# Prints "NOT RUN: <why>" instead of passing silently when nightly or cargo-fuzz is missing.
# A long run: FUZZ_SECONDS=600 bash ci/fuzz.sh.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
seconds=${FUZZ_SECONDS:-8}
targets=(frame_header request_payload op_params json_codec marshal_codec history_file log_file process_batch history_pushes)

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "NOT RUN: fuzz (no nightly toolchain)"
    exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    if [ "${FUZZ_INSTALL:-1}" = 1 ]; then
        cargo install cargo-fuzz --locked || { echo "NOT RUN: fuzz (cargo install cargo-fuzz failed)"; exit 0; }
    else
        echo "NOT RUN: fuzz (cargo-fuzz is not installed and FUZZ_INSTALL=0)"
        exit 0
    fi
fi
status=0
for t in "${targets[@]}"; do
    corpus="target/fuzz-corpus/$t"
    mkdir -p "$corpus"
    t0=$SECONDS
    if out=$(cargo +nightly fuzz run --fuzz-dir fuzz "$t" "$corpus" "fuzz/seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -print_final_stats=1 2>&1); then
        runs=$(echo "$out" | sed -n 's/^stat::number_of_executed_units: *//p' | tail -1)
        echo "fuzz $t: ${runs:-?} executions, no crash ($((SECONDS - t0)) s)"
    else
        echo "$out" | tail -40
        echo "fuzz $t: FAILED (input in fuzz/artifacts/$t/)"
        status=1
    fi
done
echo "fuzz: wall time $((SECONDS - start)) s"
exit $status
