#!/usr/bin/env bash
# The README's first command: install the package (the stdlib-only client and the worker
# binary, compiled by maturin + cargo in release mode) into ./.venv, then run `chunkring demo`
# on the sample project bundled in the package. Arguments go to `chunkring demo`
# (e.g. `bash ci/demo.sh ~/my-project`).
set -euo pipefail
cd "$(dirname "$0")/.."
t0=$SECONDS
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
pip_install() { .venv/bin/python -m pip install --quiet --disable-pip-version-check "$@"; }
pip_install -r python/requirements-build.txt
echo "==> pip install . (compiles the worker in release mode: a minute or two on a fresh clone)"
# maturin's build backend runs the `maturin` it finds on PATH: the one in .venv.
PATH="$PWD/.venv/bin:$PATH" pip_install --no-build-isolation .
echo "<== installed $(.venv/bin/chunkring --version) into .venv in $((SECONDS - t0)) s"
exec .venv/bin/chunkring demo --out target/demo "$@"
