#!/usr/bin/env bash
# Builds the API reference from the client's docstrings with pdoc: target/docs/index.html.
# Installs pdoc (docs/requirements.txt) into ./.venv first. If pdoc cannot be installed here
# (no network, no index), prints NOT RUN and exits 0, so ci/test.sh never counts a build that
# did not happen as passed; any other failure fails.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/docs
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
if ! .venv/bin/python -m pip install --quiet --disable-pip-version-check -r docs/requirements.txt; then
    echo "NOT RUN: API reference (pdoc could not be installed from docs/requirements.txt)"
    exit 0
fi
rm -rf "$out"
PYTHONPATH="$PWD/python" .venv/bin/python -m pdoc --docformat restructuredtext \
    --footer-text "chunkring $(.venv/bin/python -c 'import sys; sys.path.insert(0, "python"); import chunkring; print(chunkring.__version__)')" \
    -o "$out" chunkring chunkring.client chunkring.markdown chunkring.snapshots chunkring.errors
# A reference that lost the client or its errors is a broken build, not a thin one.
for page in index.html chunkring.html chunkring/client.html chunkring/markdown.html \
            chunkring/snapshots.html chunkring/errors.html; do
    [ -s "$out/$page" ] || { echo "ci/docs.sh: $out/$page was not written" >&2; exit 1; }
done
grep -q "UnsupportedPlatform" "$out/chunkring/errors.html"
grep -q "aggregate_request" "$out/chunkring/markdown.html"
echo "API reference: $out/index.html ($(find "$out" -name '*.html' | wc -l) pages)"
