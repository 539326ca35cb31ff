#!/usr/bin/env bash
# Builds the full-size model directories `npm run bench` and tools/bench/readme-rows.mjs measure (not in git:
# ~170 MB each fp32, ~45 MB int8). Idempotent: a directory whose model.json exists is skipped (delete it to
# rebuild). Not a test.
#
#   bash tools/bench/make-bench-models.sh [DIR]      (DIR default: $CPWC_BENCH_MODELS, else /tmp/cpwc-bench-models)
#
# Writes, seed-0 random weights, default --graph-forms fast:
#   DIR/cpwc_r50_fpn-800, DIR/pwc_r50_fpn-800   min_size 800 (graph input 1216x800 for the bench's 1824x1216 photo)
#   DIR/cpwc_r50_fpn-480, DIR/pwc_r50_fpn-480   --min-size 480 --max-size 800 (736x480)
#   DIR/<each>-int8                             the int8 twin (npm run quantize, Percentile, 2 calibration images)
# The int8 twins are made with `--speed-only`: random weights give no detection scoring >= 0.7, so the int8
# detection check cannot apply ("would prove nothing"); model.json marks them calibration.speed_only. They are
# for speed only. Calibration: two test photographs (portrait.jpg, rocket.webp), not the check image.
# Time on the 2-vCPU machine: ~15 s per fp32 export, ~1-2 min per int8 twin.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DIR=${1:-${CPWC_BENCH_MODELS:-/tmp/cpwc-bench-models}}
PY=${CPWC_PYTHON:-$ROOT/.venv/bin/python}
# This checkout's `cpwc` package, whichever checkout the venv was installed from.
export PYTHONPATH="$ROOT/scripts${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$DIR/calibration"
for image in portrait.jpg rocket.webp; do
  [ -f "$DIR/calibration/$image" ] || cp "$ROOT/test/fixtures/images/$image" "$DIR/calibration/$image"
done
[ -f "$ROOT/dist/cli/index.js" ] || (cd "$ROOT" && npm run build)

for arch in cpwc_r50_fpn pwc_r50_fpn; do
  for size in 800 480; do
    out="$DIR/$arch-$size"
    if [ -f "$out/model.json" ]; then
      echo "skip $out (exists)"
    else
      sizes=()
      [ "$size" = 480 ] && sizes=(--min-size 480 --max-size 800)
      echo "+ npm run export -- --arch $arch --seed 0 ${sizes[*]} --out $out"
      "$PY" -m cpwc.export --arch "$arch" --seed 0 "${sizes[@]}" --out "$out"
    fi
    if [ -f "$out-int8/model.json" ]; then
      echo "skip $out-int8 (exists)"
    else
      echo "+ npm run quantize -- --model $out --out $out-int8 --calibration-images $DIR/calibration --speed-only"
      "$PY" -m cpwc.quantize --model "$out" --out "$out-int8" --calibration-images "$DIR/calibration" --speed-only
    fi
  done
done
