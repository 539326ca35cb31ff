"""torchvision's own forward pass, step by step, as the reference the export is checked against."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import Tensor
from torchvision.models.detection import FasterRCNN


@dataclass
class TorchvisionRun:
    padded: Tensor  # graph A input [1, 3, H, W]
    resized: tuple[int, int]  # (height, width) before padding
    features: OrderedDict[str, Tensor]
    proposals: Tensor  # [P, 4] graph-A input pixels
    detections: dict[str, Tensor]  # original pixels


@torch.no_grad()
def run_torchvision(model: FasterRCNN, image: Tensor) -> TorchvisionRun:
    """GeneralizedRCNN.forward in eval mode, step by step, keeping the intermediate results."""
    assert not model.training
    original_size = [(image.shape[-2], image.shape[-1])]
    images, _ = model.transform([image])
    features = model.backbone(images.tensors)
    if isinstance(features, Tensor):
        features = OrderedDict([("0", features)])
    proposals, _ = model.rpn(images, features)
    detections, _ = model.roi_heads(features, proposals, images.image_sizes)
    detections = model.transform.postprocess(detections, images.image_sizes, original_size)
    return TorchvisionRun(images.tensors, tuple(images.image_sizes[0]), features, proposals[0], detections[0])
