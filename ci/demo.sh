#!/usr/bin/env bash
# The README's first command: build everything, then run the main job on sample/.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins
CHUNKRING_WORKER="$PWD/target/release/chunkring" python3 demo/main_job.py
