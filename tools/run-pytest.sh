#!/usr/bin/env bash
# Runs the Python (model-side) tests in the project venv, which it creates or updates first
# (tools/setup-venv.sh: quick when up to date). With $CPWC_PYTHON set, that Python runs them as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${CPWC_PYTHON:-}" ] || bash tools/setup-venv.sh
exec bash tools/py.sh -m pytest -q test/python "$@"
