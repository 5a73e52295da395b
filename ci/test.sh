#!/usr/bin/env bash
# The README's test command: every check chunkring has, in order, each stage timed.
# Needs only the Rust toolchain and Python 3.11; installs pytest and maturin into ./.venv
# itself. The Python suite runs against target/release/chunkring (CHUNKRING_WORKER); its
# packaging test builds the wheel from this tree and installs it into a fresh venv.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

stage() {
    local name=$1
    shift
    local t0=$SECONDS
    echo "==> $name"
    "$@"
    echo "<== $name: $((SECONDS - t0)) s"
}

# The Tk recipe's test needs an X server: Xvfb from Debian's packages. Installed here when we
# may (root with apt-get, as on CI); elsewhere that test is skipped and pytest says why (-rs).
test_tools() {
    if command -v Xvfb >/dev/null 2>&1; then
        echo "Xvfb: $(command -v Xvfb)"
    elif [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        (apt-get install -y -q xvfb >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q xvfb >/dev/null 2>&1; }) ||
            echo "NOT RUN: installing Xvfb (apt-get failed); the Tk recipe test will be skipped"
    else
        echo "NOT RUN: installing Xvfb (needs root and apt-get); the Tk recipe test will be skipped"
    fi
}

python_tests() {
    if [ ! -x .venv/bin/python ]; then
        python3 -m venv .venv
    fi
    .venv/bin/python -m pip install --quiet --disable-pip-version-check \
        -r python/requirements-test.txt -r python/requirements-build.txt
    PATH="$PWD/.venv/bin:$PATH" CHUNKRING_WORKER="$PWD/target/release/chunkring" \
        .venv/bin/python -m pytest python/tests -q -rs -p no:cacheprovider
}

stage "cargo fmt" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets -- -D warnings
stage "cargo build --release" cargo build --release --bins
stage "cargo test" cargo test --workspace
stage "cargo test --benches (benches run once as tests)" cargo test --benches
stage "test tools (Xvfb)" test_tools
stage "pytest" python_tests
stage "docs (API reference, pdoc)" bash ci/docs.sh
stage "loom" bash ci/loom.sh
stage "miri" bash ci/miri.sh
stage "fuzz (each target FUZZ_SECONDS, default 8 s)" bash ci/fuzz.sh
if command -v cargo-deny >/dev/null 2>&1; then
    stage "cargo deny" cargo deny check
else
    echo "NOT RUN: cargo deny (cargo-deny is not installed)"
fi
echo "all stages passed"
