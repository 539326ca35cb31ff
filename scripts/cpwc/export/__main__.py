"""Export a CPWC Faster R-CNN to a model directory (docs/model-format.md) and check it in onnxruntime.

    npm run export -- --arch cpwc_r50_fpn --seed 0 --out models/cpwc-random
    npm run export -- --checkpoint runs/shapes/checkpoint.pt --out models/shapes \\
        --reference-images test/fixtures/images/*.jpg

Writes backbone_rpn.onnx, box_head.onnx, model.json and, with --reference-images, reference.json
(torchvision's own outputs on those images, decoded by the project's decoder). The self-check runs both
graphs in onnxruntime on a real image and exits non-zero if any output differs from PyTorch by more than
1e-4 (max |ort - torch| / max |torch|). Also `python -m cpwc.export` or `cpwc-export`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ..graph_forms import parse_choice
from ..models import ARCHITECTURES
from ..quantize import DEFAULT_METHOD, METHODS, quantize_model_directory
from .directory import export_model_directory, load_model
from .errors import ExportError
from .runtime import REPO_ROOT

DEFAULT_CHECK_IMAGE = REPO_ROOT / "test" / "fixtures" / "images" / "landscape.jpg"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="npm run export --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--arch",
        choices=ARCHITECTURES,
        default="cpwc_r50_fpn",
        help="architecture for --seed (a checkpoint carries its own)",
    )
    parser.add_argument("--width", type=float, default=1.0, help="ResNet width multiplier for --seed (default 1.0)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        type=Path,
        help="torch.save({'model': state_dict, 'config': detector_config(model), 'classes': [...]})",
    )
    source.add_argument("--seed", type=int, help="export randomly initialised weights from this seed")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--name", help="model name in model.json (default: the --out directory's name)")
    parser.add_argument(
        "--reference-images",
        type=Path,
        nargs="+",
        default=[],
        metavar="IMG",
        help="write reference.json with torchvision's outputs on these images",
    )
    parser.add_argument("--num-classes", type=int, help="classes including background for --seed (default 91, COCO)")
    parser.add_argument(
        "--min-size", type=int, help="override the transform's min_size (default 800 or the checkpoint's)"
    )
    parser.add_argument(
        "--max-size", type=int, help="override the transform's max_size (default 1333 or the checkpoint's)"
    )
    parser.add_argument(
        "--check-image",
        type=Path,
        default=None,
        help=f"self-check image (default: the first reference image, else {DEFAULT_CHECK_IMAGE.name})",
    )
    parser.add_argument("--no-fold", action="store_true", help="do not fold batch norms into the convolutions")
    parser.add_argument(
        "--graph-forms",
        metavar="CHOICE",
        help="rewrite every CPWC unit into an exact form for ONNX Runtime's NCHWc path: 'fast' "
        "(the default; measured per channel case, docs/performance.md), 'reference', a form name, "
        "'lt=FORM,eq=FORM,gt=FORM', or 'none' (the graph as the PyTorch modules are written; "
        "the default with --no-fold). Recorded in model.json",
    )
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        help="write the int8 twin instead (graph A statically quantized; python -m cpwc.quantize)",
    )
    parser.add_argument("--calibration-images", type=Path, metavar="DIR", help="--quantize: calibration images")
    parser.add_argument("--calibration-count", type=int, metavar="N", help="--quantize: use the first N images")
    parser.add_argument(
        "--calibration-method",
        choices=METHODS,
        default=DEFAULT_METHOD,
        help=f"--quantize: calibration method (default {DEFAULT_METHOD})",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (default 2)")
    args = parser.parse_args(argv)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file")
    for image in args.reference_images + ([args.check_image] if args.check_image else []):
        if not image.is_file():
            parser.error(f"image {image}: no such file")
    if args.graph_forms is None:
        args.graph_forms = "none" if args.no_fold else "fast"
    if args.graph_forms != "none":
        if args.no_fold:
            parser.error("--graph-forms needs folded batch norms (drop --no-fold)")
        try:
            parse_choice(args.graph_forms)
        except ValueError as error:
            parser.error(f"--graph-forms: {error}")
    if (args.quantize is None) != (args.calibration_images is None):
        parser.error("--quantize and --calibration-images go together")
    if args.calibration_count is not None and args.calibration_count < 1:
        parser.error("--calibration-count must be at least 1")
    if args.num_classes is not None and args.num_classes < 2:
        parser.error("--num-classes must be at least 2 (background + one class)")
    return args


def export_quantized(
    args: argparse.Namespace,
    argv: list[str],
    model: torch.nn.Module,
    classes: list[str],
    extra: dict[str, Any],
    check_image: Path,
) -> int:
    """--quantize int8: the fp32 export into a staging directory, then its int8 twin into --out."""
    args.out.resolve().parent.mkdir(parents=True, exist_ok=True)
    command = "npm run export -- " + " ".join(shlex.quote(a) for a in argv)
    with tempfile.TemporaryDirectory(prefix="cpwc-fp32-", dir=args.out.resolve().parent) as tmp:
        fp32 = Path(tmp) / (args.name or args.out.resolve().name)
        export_model_directory(
            model,
            fp32,
            classes,
            fp32.name,
            check_image,
            [],
            checkpoint=args.checkpoint,
            checkpoint_extra=extra,
            seed=args.seed,
            export_command=command,
            threads=args.threads,
            fold=not args.no_fold,
            graph_forms=None if args.graph_forms == "none" else args.graph_forms,
        )
        model_json = quantize_model_directory(
            fp32,
            args.out,
            args.calibration_images,
            check_image,
            args.calibration_count,
            args.calibration_method,
            args.name,
            command,
            source_label="the fp32 export of this command",
        )
    check = model_json["calibration"]["self_check"]
    print(
        f"wrote {args.out} (int8 graph A, {model_json['calibration']['count']} calibration images, "
        f"{args.calibration_method}); int8 self-check on {check['image']}: {check['detections_int8']} vs "
        f"{check['detections_fp32']} fp32 detections, min IoU {check['min_iou']:.4f}"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        model, classes, extra = load_model(
            args.checkpoint, args.seed, args.arch, args.width, args.num_classes, args.min_size, args.max_size
        )
        check_image = args.check_image or (args.reference_images[0] if args.reference_images else DEFAULT_CHECK_IMAGE)
        if args.quantize is not None:
            return export_quantized(args, argv, model, classes, extra, check_image)
        result = export_model_directory(
            model,
            args.out,
            classes,
            args.name or args.out.resolve().name,
            check_image,
            args.reference_images,
            checkpoint=args.checkpoint,
            checkpoint_extra=extra,
            seed=args.seed,
            export_command="npm run export -- " + " ".join(shlex.quote(a) for a in argv),
            threads=args.threads,
            fold=not args.no_fold,
            graph_forms=None if args.graph_forms == "none" else args.graph_forms,
        )
    except ExportError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    check = result.check
    print(
        f"wrote {args.out} ({result.model_json['parameters']:,d} parameters) in {time.perf_counter() - started:.1f} s "
        + ", ".join(f"{k} {v:.1f} s" for k, v in result.seconds.items())
    )
    print(
        f"self-check on {check.image} ({check.input_size[1]}x{check.input_size[0]} input, {check.proposals} proposals "
        f"{check.rois_per_level}): max relative error graph A {check.max_a:.2e}, graph B {check.max_b:.2e}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
