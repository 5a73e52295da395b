#!/usr/bin/env bash
# Miri stage of ci/test.sh: the unsafe core under Miri with strict provenance and symbolic
# alignment checks — the library's unsafe-core unit tests (heap-backed regions, frame codec, fragment
# reassembly, futex wait/wake), the heap-ring tests of tests/ring_miri.rs (wrap and padding,
# park/wake between two threads, a hostile producer) and tests/ring_threads.rs.
# Tests that need shm, mmap of files or kill(2) are #[cfg_attr(miri, ignore)].
# Prints "NOT RUN: <why>" instead of passing silently when Miri cannot run, and its wall time.
set -uo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
finish() { echo "miri: $1, wall time $((SECONDS - start)) s"; }

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "NOT RUN: miri (no nightly toolchain: rustup toolchain install nightly)"
    finish "not run"
    exit 0
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    echo "miri component missing: rustup +nightly component add miri rust-src"
    if ! out=$(rustup +nightly component add miri rust-src 2>&1); then
        echo "NOT RUN: miri (component download refused: $(echo "$out" | tail -1))"
        finish "not run"
        exit 0
    fi
fi
# Miri builds its own sysroot on first use; a failure there is also "not run", not a pass.
if ! out=$(cargo +nightly miri setup 2>&1); then
    echo "NOT RUN: miri (sysroot setup failed: $(echo "$out" | tail -1))"
    finish "not run"
    exit 0
fi

export MIRIFLAGS="${MIRIFLAGS:--Zmiri-strict-provenance -Zmiri-symbolic-alignment-check}"
echo "MIRIFLAGS=$MIRIFLAGS"
status=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# The library's unsafe core only: ops/ and worker/ are #![forbid(unsafe_code)] and their
# tests do file I/O Miri's isolation refuses.
for target in "--lib -- ring:: frame:: region:: wait:: liveness:: barrier:: error::" "--test ring_miri" "--test ring_threads"; do
    t0=$SECONDS
    # shellcheck disable=SC2086
    cargo +nightly miri test $target >"$log" 2>&1
    rc=$?
    grep -E '^test |^test result|^error|Undefined Behavior|^ *--> |^help: ' "$log" || true
    echo "miri $target: $([ "$rc" -eq 0 ] && echo passed || echo FAILED) in $((SECONDS - t0)) s"
    [ "$rc" -eq 0 ] || status=1
done
finish "$([ "$status" -eq 0 ] && echo passed || echo FAILED)"
exit "$status"
