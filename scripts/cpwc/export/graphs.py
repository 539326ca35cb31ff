"""The two exported graphs (backbone + RPN head, RoIAlign + box head) and their ONNX export.

The export uses torch.onnx's torch.export-based (dynamo) exporter, the default and the supported one since
torch 2.9 (the TorchScript exporter, `dynamo=False`, is deprecated). Its dimensions are dynamic only where
`dynamic_shapes` says so: image H/W, feature map sizes and the RoI count of every level (K = 0 included).
"""

from __future__ import annotations

import warnings
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
import torchvision
from torch import Tensor, nn
from torch.export import Dim
from torchvision.models.detection import FasterRCNN

from .errors import ExportError

OPSET = 18


@dataclass(frozen=True)
class RpnLevel:
    name: str
    stride: int
    anchor_sizes: list[int]
    aspect_ratios: list[float]


def rpn_levels(model: FasterRCNN) -> list[RpnLevel]:
    generator = model.rpn.anchor_generator
    if len(generator.sizes) == 5:
        names, strides = ["0", "1", "2", "3", "pool"], [4, 8, 16, 32, 64]
    else:
        names, strides = ["0"], [16]
    return [
        RpnLevel(name, stride, [int(s) for s in sizes], [float(r) for r in ratios])
        for name, stride, sizes, ratios in zip(names, strides, generator.sizes, generator.aspect_ratios)
    ]


def roi_levels(model: FasterRCNN) -> list[str]:
    return list(model.roi_heads.box_roi_pool.featmap_names)


def roi_strides(model: FasterRCNN) -> dict[str, int]:
    return {level.name: level.stride for level in rpn_levels(model) if level.name in roi_levels(model)}


class BackboneRpnGraph(nn.Module):
    """Graph A: image -> (feature_<l> for RoI levels, objectness_<l>, bbox_deltas_<l> for RPN levels)."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.rpn_head = model.rpn.head
        self.rpn_level_names = [level.name for level in rpn_levels(model)]
        self.roi_level_names = roi_levels(model)

    def output_names(self) -> list[str]:
        return (
            [f"feature_{n}" for n in self.roi_level_names]
            + [f"objectness_{n}" for n in self.rpn_level_names]
            + [f"bbox_deltas_{n}" for n in self.rpn_level_names]
        )

    def forward(self, image: Tensor) -> tuple[Tensor, ...]:
        features = self.backbone(image)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        objectness, deltas = self.rpn_head([features[n] for n in self.rpn_level_names])
        return tuple([features[n] for n in self.roi_level_names] + list(objectness) + list(deltas))


class BoxHeadGraph(nn.Module):
    """Graph B: (feature_<l>…, rois_<l>…) -> (class_logits, box_regression), rows in level order.

    RoIAlign is torchvision's own op with aligned=False; torch.onnx's translation of torchvision::roi_align
    writes ONNX RoiAlign with coordinate_transformation_mode="output_half_pixel" for it (no half-pixel shift),
    which `roi_align_modes` verifies on every export."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        pooler = model.roi_heads.box_roi_pool
        self.level_names = roi_levels(model)
        strides = roi_strides(model)
        self.spatial_scales = [1.0 / strides[n] for n in self.level_names]
        self.output_size = int(pooler.output_size[0])
        self.sampling_ratio = int(pooler.sampling_ratio)
        self.box_head = model.roi_heads.box_head
        self.box_predictor = model.roi_heads.box_predictor

    def input_names(self) -> list[str]:
        return [f"feature_{n}" for n in self.level_names] + [f"rois_{n}" for n in self.level_names]

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        n = len(self.level_names)
        features, rois = inputs[:n], inputs[n:]
        pooled = []
        for feature, level_rois, scale in zip(features, rois, self.spatial_scales):
            boxes = torch.cat([torch.zeros_like(level_rois[:, :1]), level_rois], dim=1)
            pooled.append(
                torchvision.ops.roi_align(feature, boxes, self.output_size, scale, self.sampling_ratio, aligned=False)
            )
        box_features = self.box_head(torch.cat(pooled, dim=0) if n > 1 else pooled[0])
        return self.box_predictor(box_features)


def level_dim(axis: str, stride: int) -> str:
    return axis if stride == 1 else (f"{axis}/{stride}" if stride <= 32 else f"ceil({axis}/{stride})")


def onnx_export(
    graph: nn.Module,
    args: tuple[Tensor, ...],
    path: Path,
    input_names: Sequence[str],
    output_names: Sequence[str],
    dynamic_shapes: Any,
) -> None:
    """torch.onnx.export with the torch.export-based exporter: one self-contained .onnx file (no external
    data), ONNX opset OPSET, quiet unless it fails."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", category=UserWarning, module="torch")
        warnings.filterwarnings("ignore", category=FutureWarning)
        program = torch.onnx.export(
            graph,
            args,
            dynamo=True,
            opset_version=OPSET,
            input_names=list(input_names),
            output_names=list(output_names),
            dynamic_shapes=dynamic_shapes,
            optimize=True,
            verbose=False,
        )
    if program is None:
        raise ExportError(f"{path.name}: torch.onnx.export returned no program")
    program.save(str(path), external_data=False)


def export_backbone_rpn(model: FasterRCNN, path: Path, example_size: tuple[int, int] = (320, 448)) -> dict[str, Any]:
    graph = BackboneRpnGraph(model).eval()
    outputs = graph.output_names()
    dynamic = {"image": {2: Dim("H"), 3: Dim("W")}}
    onnx_export(graph, (torch.zeros(1, 3, *example_size),), path, ["image"], outputs, dynamic)
    strides = {level.name: level.stride for level in rpn_levels(model)}
    channels = model.backbone.out_channels
    anchors = model.rpn.anchor_generator.num_anchors_per_location()[0]

    def shape(name: str) -> list[Any]:
        kind, _, level = name.rpartition("_")
        c = {"feature": channels, "objectness": anchors, "bbox_deltas": 4 * anchors}[kind]
        return [1, c, level_dim("H", strides[level]), level_dim("W", strides[level])]

    return {
        "inputs": [{"name": "image", "shape": [1, 3, "H", "W"], "dtype": "float32"}],
        "outputs": [{"name": n, "shape": shape(n), "dtype": "float32"} for n in outputs],
    }


def box_head_dynamic_shapes(level_names: Sequence[str], dynamic_rois: bool) -> tuple[tuple[Any, ...]]:
    """dynamic_shapes for BoxHeadGraph.forward(*inputs): feature sizes and, unless `dynamic_rois` is False,
    every level's RoI count (0 allowed). The exporter specializes every dimension not named here to the
    example's size."""
    features = [{2: Dim(f"h_{n}"), 3: Dim(f"w_{n}")} for n in level_names]
    rois = [{0: Dim(f"K_{n}", min=0)} if dynamic_rois else {} for n in level_names]
    return (tuple(features + rois),)


def export_box_head(model: FasterRCNN, path: Path, dynamic_rois: bool = True) -> dict[str, Any]:
    """Exports graph B. `dynamic_rois=False` keeps the example's RoI counts static: the exporter's
    failure mode that the self-check has to catch (tested)."""
    graph = BoxHeadGraph(model).eval()
    strides = roi_strides(model)
    channels = model.backbone.out_channels
    example_features = [
        torch.zeros(1, channels, max(2, 256 // strides[n]), max(2, 320 // strides[n])) for n in graph.level_names
    ]
    example_rois = [torch.tensor([[4.0, 4.0, 60.0, 50.0], [10.0, 20.0, 200.0, 100.0]]) for _ in graph.level_names]
    onnx_export(
        graph,
        tuple(example_features + example_rois),
        path,
        graph.input_names(),
        ["class_logits", "box_regression"],
        box_head_dynamic_shapes(graph.level_names, dynamic_rois),
    )
    num_classes = model.roi_heads.box_predictor.cls_score.out_features
    return {
        "inputs": [
            {
                "name": f"feature_{n}",
                "shape": [1, channels, level_dim("H", strides[n]), level_dim("W", strides[n])],
                "dtype": "float32",
            }
            for n in graph.level_names
        ]
        + [{"name": f"rois_{n}", "shape": [f"K_{n}", 4], "dtype": "float32"} for n in graph.level_names],
        "outputs": [
            {"name": "class_logits", "shape": ["K", num_classes], "dtype": "float32"},
            {"name": "box_regression", "shape": ["K", 4 * num_classes], "dtype": "float32"},
        ],
    }


def check_onnx(path: Path, spec: dict[str, Any]) -> None:
    onnx_model = onnx.load(str(path))
    onnx.checker.check_model(onnx_model, full_check=True)
    inputs = [i.name for i in onnx_model.graph.input]
    outputs = [o.name for o in onnx_model.graph.output]
    if inputs != [i["name"] for i in spec["inputs"]] or outputs != [o["name"] for o in spec["outputs"]]:
        raise ExportError(f"{path.name}: graph I/O {inputs} -> {outputs} differs from the model.json description")


def roi_align_modes(path: Path) -> list[str]:
    """coordinate_transformation_mode of every RoiAlign node ("half_pixel" where unset, ONNX's default)."""
    modes = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "RoiAlign":
            attributes = {a.name: a for a in node.attribute}
            mode = attributes.get("coordinate_transformation_mode")
            modes.append(mode.s.decode() if mode is not None else "half_pixel")
    return modes
