#!/usr/bin/env bash
# Miri over the unsafe core (heap-backed rings, frame codec, fragments), strict provenance.
set -uo pipefail
cd "$(dirname "$0")/.."
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "NOT RUN: miri (no nightly toolchain)"
    exit 0
fi
if ! cargo +nightly miri --version >/dev/null 2>&1; then
    rustup +nightly component add miri >/dev/null 2>&1 || { echo "NOT RUN: miri (component unavailable)"; exit 0; }
fi
set -e
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check" \
    cargo +nightly miri test --lib -- ring:: frame:: region::tests
MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check" \
    cargo +nightly miri test --test ring_threads
