#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (a virtualenv with the package and its test
# dependencies, the JS client from npm), then run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
# The dreadnode SDK's API client drives the org-listing tests. The package's own dependency tree
# (litellm, pandas, pyarrow, datasets, ...) is not needed for that client, so install it without,
# plus the four modules the client imports. pip names the missing ones; that warning is expected.
.venv/bin/python -m pip install --quiet --no-deps 'dreadnode==2.0.52'
.venv/bin/python -m pip install --quiet httpx loguru 'logfire>=3.5.3,<5' truststore
if [ -f tests/js/package.json ]; then
  (cd tests/js && npm ci --silent --no-audit --no-fund)
fi
exec .venv/bin/python -m pytest "$@"
