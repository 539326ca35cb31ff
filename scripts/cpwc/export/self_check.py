"""The self-check gate: both exported graphs in onnxruntime against PyTorch on a real image."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection import FasterRCNN

from .errors import ExportError
from .graphs import BackboneRpnGraph, roi_levels, roi_strides
from .runtime import DecodedImage, relative_error, run_ort
from .torchvision_run import TorchvisionRun, run_torchvision

MAX_RELATIVE_ERROR = 1e-4


@dataclass
class SelfCheck:
    errors_graph_a: dict[str, float]
    errors_graph_b: dict[str, float]
    image: str
    input_size: tuple[int, int]
    proposals: int
    rois_per_level: dict[str, int]

    @property
    def max_a(self) -> float:
        return max(self.errors_graph_a.values())

    @property
    def max_b(self) -> float:
        return max(self.errors_graph_b.values())


def level_indices(model: FasterRCNN, boxes: Tensor) -> Tensor:
    """torchvision's LevelMapper level index of every box (all 0 with a single RoI level)."""
    if len(roi_levels(model)) == 1:
        return torch.zeros(len(boxes), dtype=torch.int64)
    return model.roi_heads.box_roi_pool.map_levels([boxes])


def split_by_level(model: FasterRCNN, proposals: Tensor) -> tuple[dict[str, Tensor], Tensor]:
    """Proposals per RoI level with torchvision's LevelMapper, and the permutation to level order."""
    names = roi_levels(model)
    levels = level_indices(model, proposals)
    order = torch.cat([torch.where(levels == i)[0] for i in range(len(names))])
    return {name: proposals[levels == i] for i, name in enumerate(names)}, order


def level_filling_rois(model: FasterRCNN, proposals: Tensor, image_size: tuple[int, int], per_level: int = 8) -> Tensor:
    """Extra in-image RoIs for RoI levels that the proposals leave (nearly) empty, so that the check
    covers every level's spatial scale: boxes of 1.2x the level's canonical size, centred on the first
    proposals and shifted inside the image. Levels no in-image box can reach stay empty."""
    height, width = image_size
    counts = torch.bincount(level_indices(model, proposals), minlength=len(roi_levels(model)))
    k_min = int(round(math.log2(roi_strides(model)[roi_levels(model)[0]])))
    extra: list[Tensor] = []
    for index, count in enumerate(counts.tolist()):
        if count >= per_level:
            continue
        side = 1.2 * 224 * 2.0 ** (k_min + index - 4)
        candidates = []
        for j in range(per_level):
            centre = (proposals[j % len(proposals), :2] + proposals[j % len(proposals), 2:]) / 2
            ratio = (0.8, 1.0, 1.25)[j % 3]
            w, h = min(side * ratio, width), min(side / ratio, height)
            x1 = float(torch.clamp(centre[0] - w / 2, 0, width - w))
            y1 = float(torch.clamp(centre[1] - h / 2, 0, height - h))
            candidates.append(torch.tensor([x1, y1, x1 + w, y1 + h]))
        boxes = torch.stack(candidates)
        extra.append(boxes[level_indices(model, boxes) == index])
    return torch.cat(extra) if extra else torch.zeros(0, 4)


@torch.no_grad()
def torchvision_box_head(model: FasterRCNN, run: TorchvisionRun, rois: Tensor) -> tuple[Tensor, Tensor]:
    """torchvision's own MultiScaleRoIAlign + box head + predictor on `rois` (rows in `rois` order)."""
    pooled = model.roi_heads.box_roi_pool(run.features, [rois], [run.resized])
    return model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))


def self_check(
    model: FasterRCNN, directory: Path, image: DecodedImage, threads: int = 2, run: TorchvisionRun | None = None
) -> SelfCheck:
    """Runs both exported graphs in onnxruntime on `image` and compares them with the PyTorch model.

    Graph A gets torchvision's padded input; graph B gets the PyTorch feature maps and torchvision's
    own RPN proposals for that image (plus `level_filling_rois` for levels they leave empty), split by
    LevelMapper. A second graph-B run leaves the first RoI level empty (K = 0) and must reproduce the
    other rows. Raises ExportError above MAX_RELATIVE_ERROR."""
    if run is None:
        run = run_torchvision(model, image.tensor())
    graph = BackboneRpnGraph(model)
    with torch.no_grad():
        expected_a = dict(zip(graph.output_names(), graph(run.padded)))
    got_a = run_ort(directory / "backbone_rpn.onnx", {"image": run.padded.numpy()}, threads)
    errors_a = {name: relative_error(got_a[name], expected_a[name].numpy()) for name in graph.output_names()}

    rois = torch.cat([run.proposals, level_filling_rois(model, run.proposals, run.resized)])
    by_level, order = split_by_level(model, rois)
    logits, regression = torchvision_box_head(model, run, rois)
    inputs_b: dict[str, np.ndarray] = {}
    for name in roi_levels(model):
        inputs_b[f"feature_{name}"] = run.features[name].numpy()
    for name in roi_levels(model):
        inputs_b[f"rois_{name}"] = by_level[name].numpy()
    got_b = run_ort(directory / "box_head.onnx", inputs_b, threads)
    errors_b = {
        "class_logits": relative_error(got_b["class_logits"], logits[order].numpy()),
        "box_regression": relative_error(got_b["box_regression"], regression[order].numpy()),
    }
    first = roi_levels(model)[0]
    kept = len(by_level[first])
    inputs_b[f"rois_{first}"] = np.zeros((0, 4), dtype=np.float32)
    got_empty = run_ort(directory / "box_head.onnx", inputs_b, threads)
    errors_b[f"class_logits with rois_{first} empty"] = relative_error(
        got_empty["class_logits"], logits[order][kept:].numpy()
    )
    errors_b[f"box_regression with rois_{first} empty"] = relative_error(
        got_empty["box_regression"], regression[order][kept:].numpy()
    )

    check = SelfCheck(
        errors_a,
        errors_b,
        str(image.path),
        (int(run.padded.shape[2]), int(run.padded.shape[3])),
        len(run.proposals),
        {n: len(t) for n, t in by_level.items()},
    )
    failures = {k: v for k, v in {**errors_a, **errors_b}.items() if not v <= MAX_RELATIVE_ERROR}
    if failures:
        raise ExportError(f"self-check failed (max relative error {MAX_RELATIVE_ERROR:g}): {failures}")
    return check
