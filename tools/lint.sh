#!/usr/bin/env bash
# `npm run lint`: every linter of the project, each on its whole tree. TypeScript/JavaScript: biome check
# (formatter + linter, config biome.json; fix with `npx biome check --write <files>`). Python: ruff check and
# ruff format --check (config in scripts/pyproject.toml), from the project venv. biome.json: recommended, plus
# import/const/template style rules; noNonNullAssertion off (with noUncheckedIndexedAccess a `!` is the
# in-bounds assertion); noRedundantUseStrict off for .js (biome reads .js as ESM, ours are CommonJS).
set -euo pipefail
cd "$(dirname "$0")/.."
# Every linter runs, so one pass shows every finding; the status is the first failure's.
status=0
npx --no-install biome check --error-on-warnings || status=$?
# biome wraps code at 140 columns but not string literals or comments, and has no max-line-length rule: this is
# it. Characters are counted in UTF-8 (bytes where that locale is missing, which is stricter).
long=$(git ls-files -z -- '*.ts' '*.js' '*.mjs' | grep -zE '^(src|test|tools|bin)/' |
  LC_ALL=C.UTF-8 xargs -0 -r grep -nHE '^.{141}' | cut -d: -f1,2) || true
if [ -n "$long" ]; then
  printf '%s: over 140 columns (wrap the string or comment)\n' $long >&2
  [ "$status" -ne 0 ] || status=1
fi
[ -n "${CPWC_PYTHON:-}" ] || bash tools/setup-venv.sh
bash tools/py.sh -m ruff check --config scripts/pyproject.toml scripts test/python tools || { s=$?; [ "$status" -ne 0 ] || status=$s; }
bash tools/py.sh -m ruff format --check --config scripts/pyproject.toml scripts test/python tools || { s=$?; [ "$status" -ne 0 ] || status=$s; }
exit "$status"
