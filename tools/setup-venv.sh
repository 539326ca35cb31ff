#!/usr/bin/env bash
# Creates or updates the project's Python venv (model side, Python tests, client checks) from PyPI:
# every package at the version pinned in scripts/constraints.txt, then the model-side packages
# (cpwc, cpwc_references) from scripts/ as an editable install.
#
#   bash tools/setup-venv.sh            # .venv in the repository root
#   CPWC_VENV=/tmp/v1 bash tools/setup-venv.sh
#
# Idempotent: a stamp in the venv holds a hash of constraints.txt, pyproject.toml, the interpreter and the
# checkout's path; when it matches, nothing runs (milliseconds). pip's cache (~/.cache/pip) is used, so a
# rebuild after `rm -rf .venv` downloads nothing. Python: $CPWC_BASE_PYTHON, else python3 (>= 3.10).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${CPWC_VENV:-$ROOT/.venv}
BASE_PYTHON=${CPWC_BASE_PYTHON:-python3}

# a Python chosen by the user ($CPWC_PYTHON, as tools/py.sh runs it) replaces the project venv
if [ -n "${CPWC_PYTHON:-}" ] && [ -z "${CPWC_VENV:-}" ]; then
  echo "setup-venv: CPWC_PYTHON is set ($CPWC_PYTHON): using it as it is, no venv built" >&2
  exit 0
fi

if ! command -v "$BASE_PYTHON" >/dev/null; then
  echo "setup-venv: no $BASE_PYTHON; install Python >= 3.10 (Debian: apt-get install python3 python3-venv)" >&2
  exit 1
fi
stamp_of() {
  { cat "$ROOT/scripts/constraints.txt" "$ROOT/scripts/pyproject.toml"
    "$1" -c 'import sys; print(sys.version)'
    echo "$ROOT"; } | sha256sum | cut -d' ' -f1
}
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.cpwc-setup-stamp" ] \
   && [ "$(cat "$VENV/.cpwc-setup-stamp")" = "$(stamp_of "$VENV/bin/python")" ]; then
  exit 0
fi

started=$(date +%s)
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup-venv: creating $VENV with $("$BASE_PYTHON" --version)" >&2
  "$BASE_PYTHON" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
echo "setup-venv: installing scripts/constraints.txt and scripts/ (editable) into $VENV" >&2
"${PIP[@]}" install -q -r "$ROOT/scripts/constraints.txt"
"${PIP[@]}" install -q --no-deps -e "$ROOT/scripts"
"${PIP[@]}" check >&2
stamp_of "$VENV/bin/python" > "$VENV/.cpwc-setup-stamp"
echo "setup-venv: $VENV ready in $(( $(date +%s) - started )) s" >&2
