"""Write the INT8 twin of an fp32 model directory (graph A statically quantized, QDQ, per-channel int8
weights, uint8 activations; graph B fp32 unless --box-head), calibrated on your images, checked against the fp32 model's
detections through the TypeScript pipeline; nothing is written if the check fails.

    npm run quantize -- --model models/shapes-cpwc-r50-fpn --out models/shapes-cpwc-r50-fpn-int8 \\
        --calibration-images data/shapes-calib/images [--calibration-count 32] [--method Percentile]

Needs dist/ (npm run build). The check image should not be a calibration image; by default it is the
fp32 model's own self-check image. Also `python -m cpwc.quantize`.

--speed-only (benchmarks of random-weight models, tools/bench/make-bench-models.sh): seed-initialised
weights give no confident detection, so the check cannot apply; this flag skips it, marks the twin in
model.json as never checked, and is refused for a model exported from a checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from ..export import REPO_ROOT, ExportError
from . import (
    CHECK_BOUNDS,
    DEFAULT_METHOD,
    METHODS,
    quantize_model_directory,
)

FALLBACK_CHECK_IMAGE = REPO_ROOT / "test" / "fixtures" / "images" / "landscape.jpg"


def default_check_image(model: Path) -> Path:
    image = json.loads((model / "model.json").read_text()).get("provenance", {}).get("self_check", {}).get("image")
    if image and (REPO_ROOT / image).is_file():
        return REPO_ROOT / image
    return FALLBACK_CHECK_IMAGE


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="npm run quantize --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", type=Path, required=True, help="fp32 model directory (model.json, graphs)")
    parser.add_argument("--out", type=Path, required=True, help="int8 model directory to write (replaced)")
    parser.add_argument(
        "--calibration-images",
        type=Path,
        required=True,
        metavar="DIR",
        help="directory of calibration images (.jpg/.png/.webp, taken in name order)",
    )
    parser.add_argument("--calibration-count", type=int, metavar="N", help="use the first N images (default: all)")
    parser.add_argument(
        "--method", choices=METHODS, default=DEFAULT_METHOD, help=f"calibration method (default {DEFAULT_METHOD})"
    )
    parser.add_argument(
        "--check-image",
        type=Path,
        help=f"self-check image (default: the fp32 model's self-check image); bounds: {CHECK_BOUNDS}",
    )
    parser.add_argument("--name", help="model name in model.json (default: the --out directory's name)")
    parser.add_argument(
        "--box-head",
        action="store_true",
        help="quantize graph B's box head (Gemm) too: ~2.8x faster Gemms, RoIAlign stays float; AP "
        "0.8452 -> 0.8431 on datasets/shapes-test for the shipped model (docs/performance.md). Needs the "
        "PyTorch weights (checkpoint next to model.json, or a seed export)",
    )
    parser.add_argument(
        "--speed-only",
        action="store_true",
        help="skip the detection check (random-weight seed exports only, refused otherwise); model.json marks "
        "the twin as unchecked. For benchmarks, never for detection",
    )
    args = parser.parse_args(argv)
    if not (args.model / "model.json").is_file():
        parser.error(f"--model {args.model}: no model.json")
    if args.calibration_count is not None and args.calibration_count < 1:
        parser.error("--calibration-count must be at least 1")
    if args.check_image is not None and not args.check_image.is_file():
        parser.error(f"--check-image {args.check_image}: no such file")
    if args.out.resolve() == args.model.resolve():
        parser.error("--out must differ from --model")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    check_image = args.check_image or default_check_image(args.model)
    try:
        model_json = quantize_model_directory(
            args.model,
            args.out,
            args.calibration_images,
            check_image,
            args.calibration_count,
            args.method,
            args.name,
            "npm run quantize -- " + " ".join(shlex.quote(a) for a in argv),
            speed_only=args.speed_only,
            box_head=args.box_head,
        )
    except ExportError as error:
        print(f"quantize failed: {error}", file=sys.stderr)
        return 1
    check = model_json["calibration"]["self_check"]
    if args.speed_only:
        print(
            f"WARNING: wrote {args.out} WITHOUT the int8 detection check (--speed-only, random weights): "
            "for speed measurements only; model.json says so (calibration.speed_only)",
            file=sys.stderr,
        )
        return 0
    print(
        f"wrote {args.out} (int8 graph A, {model_json['calibration']['count']} calibration images, "
        f"{args.method}); self-check on {check_image}: {check['detections_int8']} int8 vs "
        f"{check['detections_fp32']} fp32 detections, min IoU {check['min_iou']:.4f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
