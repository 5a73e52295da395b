#!/usr/bin/env bash
# loom models of the ring protocol (loom-tests/), in a target folder of their own.
set -euo pipefail
cd "$(dirname "$0")/.."
RUSTFLAGS="--cfg chunkring_loom" LOOM_MAX_PREEMPTIONS=2 \
    cargo test -p chunkring-loom-tests --release --target-dir target/loom -- --test-threads=1
