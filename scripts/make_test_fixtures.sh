#!/usr/bin/env bash
# Regenerates the committed tiny model fixtures (test/fixtures/models/tiny-fpn, tiny-c4):
# random weights made well separated (scripts/cpwc/fixture_weights.py), exported with reference.json
# for every photograph in test/fixtures/images. Deterministic for a given torch build; takes a few
# minutes on 2 cores. Needs dist/ (npm run build) for the decoder.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=/usr/bin/python3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
[ -f dist/detection/image.js ] || npx tsc -p tsconfig.build.json
mapfile -t IMAGES < <(ls test/fixtures/images/* | grep -v README.md)

make_fixture() {  # name arch
  local name=$1 arch=$2
  "$PY" scripts/cpwc/fixture_weights.py --arch "$arch" --width 0.125 --num-classes 6 \
    --min-size 320 --max-size 512 --seed 0 --images "${IMAGES[@]}" --out "$WORK/$name.pt"
  rm -rf "test/fixtures/models/$name"
  "$PY" scripts/export.py --checkpoint "$WORK/$name.pt" --out "test/fixtures/models/$name" \
    --check-image test/fixtures/images/landscape.jpg --reference-images "${IMAGES[@]}"
}

make_fixture tiny-fpn cpwc_r50_fpn
make_fixture tiny-c4 cpwc_r50_c4
du -sh test/fixtures/models/*
