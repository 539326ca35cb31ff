"""Initialise a CPWC detector from a plain (1x1-convolution) Faster R-CNN state dict.

Every 1x1 weight `<name>.weight` goes to the CPWC's `<name>.pwc.weight`; stage 1 is zeroed, so stage 2
sees zeros too and the CPWC detector computes exactly what the plain one does (stage 2 keeps its random
initialisation so that gradients reach stage 1 once training starts). All other weights copy by name;
every key of the plain state dict must be consumed.

    python -m cpwc.init_plain --plain fasterrcnn_resnet50_fpn_coco-258fb6c6.pth --out ckpt.pt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from cpwc.layers import CPWC


def cpwc_names(model: nn.Module) -> list[str]:
    return [name for name, m in model.named_modules() if isinstance(m, CPWC)]


def plain_to_cpwc_state_dict(model: nn.Module, plain: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """`model`'s state dict with the plain weights in place and every stage 1 zeroed.

    Raises ValueError naming the keys that are left over on either side or whose shapes differ."""
    target = model.state_dict()
    renamed: dict[str, Tensor] = {}
    cpwc_prefixes = set(cpwc_names(model))
    for key, value in plain.items():
        module_name, _, leaf = key.rpartition(".")
        new_key = f"{module_name}.pwc.{leaf}" if module_name in cpwc_prefixes else key
        if new_key.endswith("num_batches_tracked") and new_key not in target:
            continue  # FrozenBatchNorm2d has no counter
        renamed[new_key] = value
    unexpected = sorted(set(renamed) - set(target))
    if unexpected:
        raise ValueError(f"{len(unexpected)} plain keys have no place in the CPWC model, e.g. {unexpected[:5]}")
    mismatched = [k for k, v in renamed.items() if tuple(v.shape) != tuple(target[k].shape)]
    if mismatched:
        k = mismatched[0]
        raise ValueError(
            f"{len(mismatched)} shape mismatches, e.g. {k}: plain {tuple(renamed[k].shape)} vs {tuple(target[k].shape)}"
        )
    context_keys = {k for k in target if ".stage1." in k or ".stage2." in k}
    missing = sorted(set(target) - set(renamed) - context_keys)
    if missing:
        raise ValueError(f"{len(missing)} CPWC model keys are missing from the plain state dict, e.g. {missing[:5]}")
    result = dict(target)
    result.update(renamed)
    for key in context_keys:
        if ".stage1." in key:
            result[key] = torch.zeros_like(target[key])
    return result


def load_plain_into_cpwc(model: nn.Module, plain: Mapping[str, Tensor]) -> nn.Module:
    """Loads `plain` (a torchvision-named Faster R-CNN state dict) into the CPWC `model`, in place."""
    model.load_state_dict(plain_to_cpwc_state_dict(model, plain), strict=True)
    return model


def main(argv: list[str] | None = None) -> int:
    from cpwc.models import build_detector, class_names, detector_config

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--plain", required=True, type=Path, help="torchvision fasterrcnn_resnet50_fpn state dict (.pth)"
    )
    parser.add_argument("--out", required=True, type=Path, help="checkpoint to write: {model, config, classes}")
    parser.add_argument("--num-classes", type=int, default=91)
    parser.add_argument("--context", default="cpwc", choices=["cpwc", "cpwc_no_stage2"])
    parser.add_argument(
        "--bn-eps",
        type=float,
        default=0.0,
        help="FrozenBatchNorm2d epsilon (torchvision's COCO weights: 0.0; a randomly built torchvision model: 1e-5)",
    )
    args = parser.parse_args(argv)
    plain = torch.load(args.plain, map_location="cpu", weights_only=True)
    if isinstance(plain, dict) and "model" in plain and isinstance(plain["model"], dict):
        plain = plain["model"]
    model = build_detector("cpwc_r50_fpn", num_classes=args.num_classes, context=args.context, bn_eps=args.bn_eps)
    load_plain_into_cpwc(model, plain)
    torch.save(
        {
            "model": model.state_dict(),
            "config": detector_config(model),
            "classes": class_names(args.num_classes),
            "initialised_from": str(args.plain),
        },
        args.out,
    )
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
