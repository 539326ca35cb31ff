"""Graph B's calibration inputs, for quantizing the box head's Gemms (`--box-head`).

Graph B takes the FPN features and the RPN's proposals split by RoI level; its calibration needs those for
each calibration image, so they come from torchvision's own forward pass of the PyTorch weights behind the
model directory (its checkpoint next to model.json, or its seed). RoIAlign stays float; only Gemm is
quantized (docs/performance.md: RoIAlign is most of graph B's time, the Gemms ~2.8x faster in int8).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torchvision.models.detection import FasterRCNN

from ..export import ExportError, decode_image, load_model
from ..export.self_check import split_by_level
from ..export.torchvision_run import run_torchvision

BOX_HEAD_OPS = ("Gemm",)


def rebuild_model(model_dir: Path) -> FasterRCNN:
    """The PyTorch model of a model directory: its checkpoint next to model.json, else its seed."""
    manifest = json.loads((model_dir / "model.json").read_text())
    provenance = manifest.get("provenance") or {}
    transform = manifest["transform"]
    checkpoint = model_dir / provenance["checkpoint"] if provenance.get("checkpoint") else None
    if checkpoint is not None and not checkpoint.is_file():
        raise ExportError(
            f"--box-head: {model_dir} was exported from {provenance['checkpoint']}, which is not next to its "
            "model.json; graph B's calibration needs the PyTorch weights (copy the checkpoint there)"
        )
    if checkpoint is None and provenance.get("seed") is None:
        raise ExportError(f"--box-head: {model_dir}: model.json provenance has neither a checkpoint nor a seed")
    model, _, _ = load_model(
        checkpoint,
        None if checkpoint is not None else int(provenance["seed"]),
        manifest["architecture"],
        manifest.get("width", 1.0),
        None if checkpoint is not None else len(manifest["classes"]),
        transform["min_size"],
        transform["max_size"],
    )
    return model.eval()


def graph_b_feeds(model: FasterRCNN, image: Path) -> dict[str, np.ndarray]:
    """Graph B's inputs for one image: the FPN features it reads and the RPN's proposals per RoI level."""
    run = run_torchvision(model, decode_image(image).tensor())
    by_level, _ = split_by_level(model, run.proposals)
    feeds = {f"feature_{name}": run.features[name].numpy() for name in by_level}
    feeds.update({f"rois_{name}": boxes.numpy().astype(np.float32) for name, boxes in by_level.items()})
    return feeds


def box_head_feeds(model_dir: Path, images: list[Path]) -> list[dict[str, np.ndarray]]:
    model = rebuild_model(model_dir)
    with torch.no_grad():
        return [graph_b_feeds(model, image) for image in images]
