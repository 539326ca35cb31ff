"""Convert a torchvision Faster R-CNN R50-FPN checkpoint into a served CPWC model directory, in one command.

    npm run convert -- --torchvision fasterrcnn_resnet50_fpn_coco-258fb6c6.pth --out models/coco
    npm start -- --model models/coco

The checkpoint is a state dict of torchvision's `fasterrcnn_resnet50_fpn` (as `torch.save(model.state_dict())`
writes it, or torchvision's downloadable COCO weights, FasterRCNN_ResNet50_FPN_Weights.COCO_V1:
https://download.pytorch.org/models/fasterrcnn_resnet50_fpn_coco-258fb6c6.pth). The conversion

  1. builds `cpwc_r50_fpn` with torchvision's inference setup for trained weights (FrozenBatchNorm2d,
     eps 1e-5) and the function-preserving init (cpwc.init_plain: every CPWC's stage 1 zeroed);
  2. checks that the CPWC model computes what torchvision's own model computes from the same file on the
     check image (backbone features and final detections, at most MAX_INIT_ERROR apart);
  3. exports it (cpwc.export): both ONNX graphs, model.json with COCO's 91-index labels ('N/A' placeholders
     included) when the checkpoint has 91 classes, reference.json, and the onnxruntime self-check gate.

Exits 1 with a message when the file is not such a state dict or a check fails; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.backbone_utils import _resnet_fpn_extractor
from torchvision.ops.misc import FrozenBatchNorm2d

from .export import ExportError, decode_image, export_model_directory, relative_error
from .export.runtime import REPO_ROOT
from .init_plain import load_plain_into_cpwc
from .models import build_detector, class_names

DEFAULT_CHECK_IMAGE = REPO_ROOT / "test" / "fixtures" / "images" / "landscape.jpg"
MAX_INIT_ERROR = 1e-5
CLASSIFIER_KEY = "roi_heads.box_predictor.cls_score.weight"


def read_state_dict(path: Path) -> dict[str, Tensor]:
    """The tensors of a torchvision Faster R-CNN state dict at `path` (a {"model": state_dict} wrapper too)."""
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises pickle, zip and runtime errors alike
        raise ExportError(f"--torchvision {path}: not a torch.save file ({error})") from error
    if isinstance(loaded, Mapping) and isinstance(loaded.get("model"), Mapping):
        loaded = loaded["model"]
    if not isinstance(loaded, Mapping) or not all(isinstance(v, Tensor) for v in loaded.values()):
        raise ExportError(f"--torchvision {path}: expected a state dict (names -> tensors)")
    if CLASSIFIER_KEY not in loaded:
        raise ExportError(f"--torchvision {path}: no {CLASSIFIER_KEY}; not a torchvision Faster R-CNN state dict")
    return dict(loaded)


def torchvision_reference(
    state_dict: Mapping[str, Tensor], num_classes: int, min_size: int, max_size: int
) -> nn.Module:
    """torchvision's own fasterrcnn_resnet50_fpn as `fasterrcnn_resnet50_fpn(weights=...)` builds it for
    trained weights (FrozenBatchNorm2d), holding `state_dict`."""
    body = torchvision.models.resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    model = FasterRCNN(_resnet_fpn_extractor(body, 3), num_classes, min_size=min_size, max_size=max_size)
    plain = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
    model.load_state_dict(plain, strict=True)
    return model.eval()


@torch.no_grad()
def init_errors(cpwc: nn.Module, reference: nn.Module, image: Tensor) -> dict[str, float]:
    """Relative errors between the CPWC model and torchvision's on `image`: every FPN level and the detections."""
    batch, _ = reference.transform([image])
    expected = reference.backbone(batch.tensors)
    got = cpwc.backbone(batch.tensors)
    errors = {f"feature_{k}": relative_error(got[k].numpy(), expected[k].numpy()) for k in expected}
    want, have = reference([image])[0], cpwc([image])[0]
    if len(want["boxes"]) != len(have["boxes"]) or not torch.equal(want["labels"], have["labels"]):
        errors["detections"] = float("inf")
    else:
        errors["detection_boxes"] = relative_error(have["boxes"].numpy(), want["boxes"].numpy())
        errors["detection_scores"] = relative_error(have["scores"].numpy(), want["scores"].numpy())
    return errors


def convert(
    state_dict: Mapping[str, Tensor], min_size: int, max_size: int, check_image: Path
) -> tuple[nn.Module, dict]:
    """The CPWC model for `state_dict`, after the init check; raises ExportError when they differ."""
    num_classes = int(state_dict[CLASSIFIER_KEY].shape[0])
    model = build_detector("cpwc_r50_fpn", num_classes=num_classes, min_size=min_size, max_size=max_size)
    try:
        load_plain_into_cpwc(model, state_dict)
    except ValueError as error:
        raise ExportError(f"the state dict does not fit cpwc_r50_fpn: {error}") from error
    model.eval()
    reference = torchvision_reference(state_dict, num_classes, min_size, max_size)
    errors = init_errors(model, reference, decode_image(check_image).tensor())
    failures = {k: v for k, v in errors.items() if not v <= MAX_INIT_ERROR}
    if failures:
        raise ExportError(f"the CPWC model does not reproduce torchvision's (max {MAX_INIT_ERROR:g}): {failures}")
    return model, errors


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="npm run convert --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--torchvision",
        type=Path,
        required=True,
        metavar="FILE.pth",
        help="torchvision fasterrcnn_resnet50_fpn state dict",
    )
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--name", help="model name in model.json (default: the --out directory's name)")
    parser.add_argument("--min-size", type=int, default=800, help="transform min_size (torchvision's 800)")
    parser.add_argument("--max-size", type=int, default=1333, help="transform max_size (torchvision's 1333)")
    parser.add_argument(
        "--check-image",
        type=Path,
        default=DEFAULT_CHECK_IMAGE,
        help=f"init check and self-check image (default {DEFAULT_CHECK_IMAGE.name})",
    )
    parser.add_argument(
        "--reference-images",
        type=Path,
        nargs="+",
        metavar="IMG",
        help="images for reference.json (default: the check image)",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch and onnxruntime threads (default 2)")
    args = parser.parse_args(argv)
    if not args.torchvision.is_file():
        parser.error(f"--torchvision {args.torchvision}: no such file")
    for image in [args.check_image, *(args.reference_images or [])]:
        if not image.is_file():
            parser.error(f"image {image}: no such file")
    if args.min_size < 32 or args.max_size < args.min_size:
        parser.error(f"--min-size {args.min_size} / --max-size {args.max_size}: need 32 <= min-size <= max-size")
    if args.threads < 1:
        parser.error(f"--threads {args.threads}: must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()
    try:
        state_dict = read_state_dict(args.torchvision)
        model, errors = convert(state_dict, args.min_size, args.max_size, args.check_image)
        num_classes = int(state_dict[CLASSIFIER_KEY].shape[0])
        result = export_model_directory(
            model,
            args.out,
            class_names(num_classes),
            args.name or args.out.resolve().name,
            args.check_image,
            args.reference_images or [args.check_image],
            checkpoint=args.torchvision,
            checkpoint_extra={
                "training_data": f"torchvision fasterrcnn_resnet50_fpn state dict {args.torchvision.name}, "
                "made CPWC by the function-preserving init (cpwc.init_plain)"
            },
            export_command="npm run convert -- " + " ".join(shlex.quote(a) for a in argv),
            threads=args.threads,
        )
    except ExportError as error:
        print(f"convert failed: {error}", file=sys.stderr)
        return 1
    check = result.check
    print(f"init check: CPWC vs torchvision max relative error {max(errors.values()):.2e} ({len(errors)} outputs)")
    print(
        f"wrote {args.out} ({result.model_json['parameters']:,d} parameters, {num_classes} classes) "
        f"in {time.perf_counter() - started:.1f} s; self-check max relative error graph A {check.max_a:.2e}, "
        f"graph B {check.max_b:.2e}"
    )
    print(f"serve it: npm start -- --model {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
