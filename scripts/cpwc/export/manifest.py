"""model.json (docs/model-format.md) and reference.json."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torchvision.models.detection import FasterRCNN

from ..models import count_parameters, detector_config, resolved_context
from .graphs import roi_levels, roi_strides, rpn_levels
from .runtime import REPO_ROOT, DecodedImage
from .torchvision_run import run_torchvision

FORMAT = "cpwc-detect-model"
FORMAT_VERSION = 1
ROI_HEADS_MIN_SIZE = 1e-2  # torchvision's RoIHeads.postprocess_detections hard-codes remove_small_boxes(…, 1e-2)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def git_commit() -> str | None:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def model_description(model: FasterRCNN, name: str, classes: list[str]) -> dict[str, Any]:
    """model.json without graphs and provenance."""
    config = detector_config(model)
    transform = model.transform
    rpn = model.rpn
    roi_heads = model.roi_heads
    mapper = roi_heads.box_roi_pool.map_levels
    strides = roi_strides(model)
    k_levels = [int(round(math.log2(strides[n]))) for n in roi_levels(model)]
    if mapper is not None:
        assert (mapper.k_min, mapper.k_max) == (k_levels[0], k_levels[-1]), "LevelMapper disagrees with the strides"
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "architecture": config["arch"],
        "width": config["width"],
        "context": resolved_context(model),
        "parameters": count_parameters(model),
        "classes": classes,
        "transform": {
            "min_size": int(transform.min_size[-1]),
            "max_size": int(transform.max_size),
            "image_mean": [float(v) for v in transform.image_mean],
            "image_std": [float(v) for v in transform.image_std],
            "size_divisible": int(transform.size_divisible),
            "resize": "bilinear, align_corners=false, antialias=false, recompute_scale_factor=true",
        },
        "coordinates": {
            "box_format": "xyxy",
            "pixel_convention": "continuous: pixel (i, j) covers [i, i+1) x [j, j+1); image spans [0, W] x [0, H]",
            "roi_align": {
                "aligned": False,
                "onnx_coordinate_transformation_mode": "output_half_pixel",
                "output_size": [int(s) for s in roi_heads.box_roi_pool.output_size],
                "sampling_ratio": int(roi_heads.box_roi_pool.sampling_ratio),
            },
        },
        "box_coder": {"bbox_xform_clip": float(rpn.box_coder.bbox_xform_clip)},
        "rpn": {
            "levels": [
                {"name": v.name, "stride": v.stride, "anchor_sizes": v.anchor_sizes, "aspect_ratios": v.aspect_ratios}
                for v in rpn_levels(model)
            ],
            "num_anchors_per_location": int(rpn.anchor_generator.num_anchors_per_location()[0]),
            "pre_nms_top_n": int(rpn._pre_nms_top_n["testing"]),
            "post_nms_top_n": int(rpn._post_nms_top_n["testing"]),
            "nms_thresh": float(rpn.nms_thresh),
            "score_thresh": float(rpn.score_thresh),
            "min_size": float(rpn.min_size),
            "box_coder_weights": [float(w) for w in rpn.box_coder.weights],
        },
        "roi_heads": {
            "featmap_names": roi_levels(model),
            "level_mapper": {
                "k_min": k_levels[0],
                "k_max": k_levels[-1],
                "canonical_scale": 224,
                "canonical_level": 4,
                "eps": 1e-6,
            },
            "score_thresh": float(roi_heads.score_thresh),
            "nms_thresh": float(roi_heads.nms_thresh),
            "detections_per_img": int(roi_heads.detections_per_img),
            "min_size": ROI_HEADS_MIN_SIZE,
            "box_coder_weights": [float(w) for w in roi_heads.box_coder.weights],
        },
    }


def float32_values(tensor: Tensor) -> Any:
    """Nested lists of the shortest decimals that parse back to exactly these float32 values."""
    array = tensor.detach().numpy().astype(np.float32)
    flat = [float(np.format_float_positional(v, unique=True, trim="-")) for v in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim > 1 else flat


def detection_records(detections: dict[str, Tensor], classes: list[str]) -> list[dict[str, Any]]:
    records = []
    boxes = float32_values(detections["boxes"])
    scores = float32_values(detections["scores"])
    for box, score, label in zip(boxes, scores, detections["labels"].tolist()):
        records.append(
            {
                "label": classes[label],
                "class_id": int(label),
                "score": score,
                "box": {"xmin": box[0], "ymin": box[1], "xmax": box[2], "ymax": box[3]},
            }
        )
    return records


def reference_entry(model: FasterRCNN, image: DecodedImage, classes: list[str], relative_to: Path) -> dict[str, Any]:
    run = run_torchvision(model, image.tensor())
    try:
        file = os.path.relpath(image.path.resolve(), relative_to.resolve())
    except ValueError:
        file = str(image.path)
    return {
        "file": file,
        "width": image.width,
        "height": image.height,
        "resized": {"width": int(run.resized[1]), "height": int(run.resized[0])},
        "proposals": float32_values(run.proposals),
        "detections": detection_records(run.detections, classes),
    }
