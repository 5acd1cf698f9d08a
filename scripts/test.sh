#!/usr/bin/env bash
# Set up everything the tests need on a fresh machine (a virtualenv with the package and its test
# dependencies, the JS client from npm), then run the whole suite. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'
if [ -f tests/js/package.json ]; then
  (cd tests/js && npm ci --silent --no-audit --no-fund)
fi
exec .venv/bin/python -m pytest "$@"
