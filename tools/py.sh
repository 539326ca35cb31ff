#!/usr/bin/env bash
# Runs the project's Python: $CPWC_PYTHON if set, else the project venv's (.venv, made by
# tools/setup-venv.sh). The npm scripts (export, convert, train, dataset:shapes, test:py, bench:torch) use it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${CPWC_PYTHON:-$ROOT/.venv/bin/python}
if [ ! -x "$PY" ] && ! command -v "$PY" >/dev/null; then
  echo "No Python at $PY. Create the project venv with: bash tools/setup-venv.sh (or set CPWC_PYTHON)" >&2
  exit 1
fi
exec "$PY" "$@"
