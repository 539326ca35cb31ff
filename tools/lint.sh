#!/usr/bin/env bash
# `npm run lint`: every linter of the project, each on its whole tree. Python: ruff check and ruff format
# --check (config in scripts/pyproject.toml), from the project venv. Add a TypeScript linter as another line.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -n "${CPWC_PYTHON:-}" ] || bash tools/setup-venv.sh
bash tools/py.sh -m ruff check --config scripts/pyproject.toml scripts test/python tools
bash tools/py.sh -m ruff format --check --config scripts/pyproject.toml scripts test/python tools
