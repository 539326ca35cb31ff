"""Export a CPWC Faster R-CNN to a self-describing model directory (docs/model-format.md).

    graph A  backbone_rpn.onnx  image -> feature_<l> (RoI levels), objectness_<l>, bbox_deltas_<l> (RPN levels)
    graph B  box_head.onnx      feature_<l>, rois_<l> -> class_logits, box_regression
    model.json                  everything else the TypeScript pipeline needs
    reference.json              torchvision's own outputs on reference images (optional)

Frozen (or eval-mode) batch norms are folded into the convolutions before export. Every export is
checked: both graphs run in onnxruntime (tools/node/ort-run.mjs) on a real image and must match PyTorch
within MAX_RELATIVE_ERROR, or the export fails.
"""
from __future__ import annotations

import copy
import datetime
import hashlib
import json
import math
import os
import subprocess
import tempfile
import time
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import onnx
import torch
import torchvision
from torch import Tensor, nn
from torchvision.models.detection import FasterRCNN
from torchvision.ops.misc import FrozenBatchNorm2d

from .graph_forms import apply_graph_forms, graph_forms_record
from .layers import CPWC, FoldedCPWC
from .models import build_detector, class_names, count_parameters, detector_config, resolved_context
from .resnet import Bottleneck

REPO_ROOT = Path(__file__).resolve().parents[2]
DECODE_IMAGE = REPO_ROOT / "tools" / "node" / "decode-image.mjs"
ORT_RUN = REPO_ROOT / "tools" / "node" / "ort-run.mjs"
OPSET = 17
MAX_RELATIVE_ERROR = 1e-4
FORMAT = "cpwc-detect-model"
FORMAT_VERSION = 1
ROI_HEADS_MIN_SIZE = 1e-2  # torchvision's RoIHeads.postprocess_detections hard-codes remove_small_boxes(…, 1e-2)


class ExportError(RuntimeError):
    """The export or its self-check failed; the message says which output and by how much."""


# ---------------------------------------------------------------------------------------------- norm folding


def norm_affine(norm: nn.Module) -> Optional[Tuple[Tensor, Tensor]]:
    """(scale, shift) of a frozen or eval-mode batch norm, or None for norms that are not affine maps."""
    if isinstance(norm, FrozenBatchNorm2d):
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        return scale, norm.bias - norm.running_mean * scale
    if isinstance(norm, nn.BatchNorm2d) and not norm.training and norm.track_running_stats:
        scale = norm.weight * (norm.running_var + norm.eps).rsqrt()
        return scale, norm.bias - norm.running_mean * scale
    return None


def fold_conv(conv: nn.Module, scale: Tensor, shift: Tensor) -> nn.Module:
    if isinstance(conv, CPWC):
        return FoldedCPWC(conv, scale, shift)
    assert isinstance(conv, nn.Conv2d) and conv.bias is None
    folded = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                       conv.dilation, conv.groups, bias=True)
    with torch.no_grad():
        folded.weight.copy_(conv.weight * scale.reshape(-1, 1, 1, 1))
        folded.bias.copy_(shift)
    return folded


def fold_pair(parent: nn.Module, conv_name: str, norm_name: str) -> bool:
    affine = norm_affine(getattr(parent, norm_name))
    if affine is None:
        return False
    setattr(parent, conv_name, fold_conv(getattr(parent, conv_name), *affine))
    setattr(parent, norm_name, nn.Identity())
    return True


@torch.no_grad()
def fold_norms(module: nn.Module) -> int:
    """Folds every (convolution, frozen/eval batch norm) pair of the ResNet parts of `module` in place;
    returns how many were folded."""
    folded = 0
    for m in list(module.modules()):
        if isinstance(m, Bottleneck):
            for conv, norm in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
                folded += fold_pair(m, conv, norm)
            if m.downsample is not None:
                folded += fold_pair(m.downsample, "0", "1")
        elif isinstance(getattr(m, "conv1", None), nn.Conv2d) and isinstance(getattr(m, "bn1", None), nn.Module):
            folded += fold_pair(m, "conv1", "bn1")  # the stem
    return folded


# ------------------------------------------------------------------------------------------- graph modules


@dataclass(frozen=True)
class RpnLevel:
    name: str
    stride: int
    anchor_sizes: List[int]
    aspect_ratios: List[float]


def rpn_levels(model: FasterRCNN) -> List[RpnLevel]:
    generator = model.rpn.anchor_generator
    if len(generator.sizes) == 5:
        names, strides = ["0", "1", "2", "3", "pool"], [4, 8, 16, 32, 64]
    else:
        names, strides = ["0"], [16]
    return [
        RpnLevel(name, stride, [int(s) for s in sizes], [float(r) for r in ratios])
        for name, stride, sizes, ratios in zip(names, strides, generator.sizes, generator.aspect_ratios)
    ]


def roi_levels(model: FasterRCNN) -> List[str]:
    return list(model.roi_heads.box_roi_pool.featmap_names)


def roi_strides(model: FasterRCNN) -> Dict[str, int]:
    return {level.name: level.stride for level in rpn_levels(model) if level.name in roi_levels(model)}


class BackboneRpnGraph(nn.Module):
    """Graph A: image -> (feature_<l> for RoI levels, objectness_<l>, bbox_deltas_<l> for RPN levels)."""

    def __init__(self, model: FasterRCNN) -> None:
        super().__init__()
        self.backbone = model.backbone
        self.rpn_head = model.rpn.head
        self.rpn_level_names = [level.name for level in rpn_levels(model)]
        self.roi_level_names = roi_levels(model)

    def output_names(self) -> List[str]:
        return ([f"feature_{n}" for n in self.roi_level_names] + [f"objectness_{n}" for n in self.rpn_level_names]
                + [f"bbox_deltas_{n}" for n in self.rpn_level_names])

    def forward(self, image: Tensor) -> Tuple[Tensor, ...]:
        features = self.backbone(image)
        if isinstance(features, Tensor):
            features = OrderedDict([("0", features)])
        objectness, deltas = self.rpn_head([features[n] for n in self.rpn_level_names])
        return tuple([features[n] for n in self.roi_level_names] + list(objectness) + list(deltas))


class RoIAlignOutputHalfPixel(torch.autograd.Function):
    """torchvision's roi_align with aligned=False, exported as ONNX RoiAlign (opset 16+) with
    coordinate_transformation_mode="output_half_pixel". torchvision 0.14's own symbolic leaves the
    attribute unset, which means "half_pixel" (aligned=True) from opset 16 on: a half-pixel shift."""

    @staticmethod
    def forward(ctx, feature: Tensor, rois: Tensor, batch_indices: Tensor, spatial_scale: float,  # type: ignore[override]
                output_size: int, sampling_ratio: int) -> Tensor:
        boxes = torch.cat([batch_indices.to(rois.dtype)[:, None], rois], dim=1)
        return torchvision.ops.roi_align(feature, boxes, output_size, spatial_scale, sampling_ratio, aligned=False)

    @staticmethod
    def symbolic(g, feature, rois, batch_indices, spatial_scale: float, output_size: int, sampling_ratio: int):  # type: ignore[no-untyped-def]
        return g.op("RoiAlign", feature, rois, batch_indices, spatial_scale_f=spatial_scale,
                    output_height_i=output_size, output_width_i=output_size, sampling_ratio_i=sampling_ratio,
                    mode_s="avg", coordinate_transformation_mode_s="output_half_pixel")


def torchvision_roi_align(feature: Tensor, rois: Tensor, batch_indices: Tensor, spatial_scale: float,
                          output_size: int, sampling_ratio: int) -> Tensor:
    """The same RoIAlign through torchvision's registered ONNX symbolic (kept to show why it is not used)."""
    boxes = torch.cat([batch_indices.to(rois.dtype)[:, None], rois], dim=1)
    return torchvision.ops.roi_align(feature, boxes, output_size, spatial_scale, sampling_ratio, aligned=False)


class BoxHeadGraph(nn.Module):
    """Graph B: (feature_<l>…, rois_<l>…) -> (class_logits, box_regression), rows in level order."""

    def __init__(self, model: FasterRCNN, use_torchvision_symbolic: bool = False) -> None:
        super().__init__()
        pooler = model.roi_heads.box_roi_pool
        self.level_names = roi_levels(model)
        strides = roi_strides(model)
        self.spatial_scales = [1.0 / strides[n] for n in self.level_names]
        self.output_size = int(pooler.output_size[0])
        self.sampling_ratio = int(pooler.sampling_ratio)
        self.box_head = model.roi_heads.box_head
        self.box_predictor = model.roi_heads.box_predictor
        self.use_torchvision_symbolic = use_torchvision_symbolic

    def input_names(self) -> List[str]:
        return [f"feature_{n}" for n in self.level_names] + [f"rois_{n}" for n in self.level_names]

    def forward(self, *inputs: Tensor) -> Tuple[Tensor, Tensor]:
        n = len(self.level_names)
        features, rois = inputs[:n], inputs[n:]
        pooled = []
        for feature, level_rois, scale in zip(features, rois, self.spatial_scales):
            batch_indices = torch.zeros_like(level_rois[:, 0], dtype=torch.int64)
            if self.use_torchvision_symbolic:
                pooled.append(torchvision_roi_align(feature, level_rois, batch_indices, scale, self.output_size,
                                                    self.sampling_ratio))
            else:
                pooled.append(RoIAlignOutputHalfPixel.apply(feature, level_rois, batch_indices, scale,
                                                            self.output_size, self.sampling_ratio))
        box_features = self.box_head(torch.cat(pooled, dim=0) if n > 1 else pooled[0])
        return self.box_predictor(box_features)


# ----------------------------------------------------------------------------------------------- ONNX export


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def level_dim(axis: str, stride: int) -> str:
    return axis if stride == 1 else (f"{axis}/{stride}" if stride <= 32 else f"ceil({axis}/{stride})")


def quiet_onnx_export(*args: Any, **kwargs: Any) -> None:
    """torch.onnx.export without the warnings torch 1.13 always prints for these graphs (missing shape
    inference for prim::Constant, tracer asserts in torchvision's box checks, g.op deprecation)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The shape inference of prim::Constant")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message=".*_graph_op' is deprecated")
        torch.onnx.export(*args, **kwargs)


def export_backbone_rpn(model: FasterRCNN, path: Path, example_size: Tuple[int, int] = (320, 448)) -> Dict[str, Any]:
    graph = BackboneRpnGraph(model).eval()
    outputs = graph.output_names()
    dynamic = {"image": {2: "H", 3: "W"}}
    dynamic.update({name: {2: f"h_{name}", 3: f"w_{name}"} for name in outputs})
    with torch.no_grad():
        quiet_onnx_export(graph, (torch.zeros(1, 3, *example_size),), str(path), opset_version=OPSET,
                          input_names=["image"], output_names=outputs, dynamic_axes=dynamic, do_constant_folding=True)
    strides = {level.name: level.stride for level in rpn_levels(model)}
    channels = model.backbone.out_channels
    anchors = model.rpn.anchor_generator.num_anchors_per_location()[0]

    def shape(name: str) -> List[Any]:
        kind, _, level = name.rpartition("_")
        c = {"feature": channels, "objectness": anchors, "bbox_deltas": 4 * anchors}[kind]
        return [1, c, level_dim("H", strides[level]), level_dim("W", strides[level])]

    return {
        "inputs": [{"name": "image", "shape": [1, 3, "H", "W"], "dtype": "float32"}],
        "outputs": [{"name": n, "shape": shape(n), "dtype": "float32"} for n in outputs],
    }


def export_box_head(model: FasterRCNN, path: Path, use_torchvision_symbolic: bool = False) -> Dict[str, Any]:
    graph = BoxHeadGraph(model, use_torchvision_symbolic).eval()
    strides = roi_strides(model)
    channels = model.backbone.out_channels
    example_features = [torch.zeros(1, channels, max(2, 256 // strides[n]), max(2, 320 // strides[n])) for n in graph.level_names]
    example_rois = [torch.tensor([[4.0, 4.0, 60.0, 50.0], [10.0, 20.0, 200.0, 100.0]]) for _ in graph.level_names]
    inputs = graph.input_names()
    dynamic: Dict[str, Dict[int, str]] = {}
    for n in graph.level_names:
        dynamic[f"feature_{n}"] = {2: f"h_{n}", 3: f"w_{n}"}
        dynamic[f"rois_{n}"] = {0: f"K_{n}"}
    dynamic["class_logits"] = {0: "K"}
    dynamic["box_regression"] = {0: "K"}
    with torch.no_grad():
        quiet_onnx_export(graph, tuple(example_features + example_rois), str(path), opset_version=OPSET,
                          input_names=inputs, output_names=["class_logits", "box_regression"], dynamic_axes=dynamic,
                          do_constant_folding=True)
    num_classes = model.roi_heads.box_predictor.cls_score.out_features
    return {
        "inputs": [{"name": f"feature_{n}", "shape": [1, channels, level_dim("H", strides[n]), level_dim("W", strides[n])],
                    "dtype": "float32"} for n in graph.level_names]
        + [{"name": f"rois_{n}", "shape": [f"K_{n}", 4], "dtype": "float32"} for n in graph.level_names],
        "outputs": [{"name": "class_logits", "shape": ["K", num_classes], "dtype": "float32"},
                    {"name": "box_regression", "shape": ["K", 4 * num_classes], "dtype": "float32"}],
    }


def check_onnx(path: Path, spec: Dict[str, Any]) -> None:
    onnx_model = onnx.load(str(path))
    onnx.checker.check_model(onnx_model, full_check=True)
    inputs = [i.name for i in onnx_model.graph.input]
    outputs = [o.name for o in onnx_model.graph.output]
    if inputs != [i["name"] for i in spec["inputs"]] or outputs != [o["name"] for o in spec["outputs"]]:
        raise ExportError(f"{path.name}: graph I/O {inputs} -> {outputs} differs from the model.json description")


def roi_align_modes(path: Path) -> List[str]:
    """coordinate_transformation_mode of every RoiAlign node ("half_pixel" where unset, ONNX's default)."""
    modes = []
    for node in onnx.load(str(path)).graph.node:
        if node.op_type == "RoiAlign":
            attributes = {a.name: a for a in node.attribute}
            mode = attributes.get("coordinate_transformation_mode")
            modes.append(mode.s.decode() if mode is not None else "half_pixel")
    return modes


# ------------------------------------------------------------------------------- onnxruntime via node helper


def run_ort(model_path: Path, inputs: Dict[str, np.ndarray], threads: int = 2) -> Dict[str, np.ndarray]:
    """Runs one graph in onnxruntime-node (tools/node/ort-run.mjs) and returns its outputs by name."""
    with tempfile.TemporaryDirectory(prefix="cpwc-ort-") as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        in_dir.mkdir()
        manifest = []
        for i, (name, array) in enumerate(inputs.items()):
            array = np.ascontiguousarray(array, dtype="<f4")
            file = f"{i}.f32"
            array.tofile(in_dir / file)
            manifest.append({"name": name, "shape": list(array.shape), "file": file})
        (in_dir / "manifest.json").write_text(json.dumps({"inputs": manifest}))
        env = dict(os.environ, ORT_THREADS=str(threads))
        result = subprocess.run(["node", str(ORT_RUN), str(model_path), str(in_dir), str(out_dir)],
                                capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise ExportError(f"onnxruntime failed on {model_path.name}: {result.stderr.strip()}")
        out_manifest = json.loads((out_dir / "manifest.json").read_text())
        return {o["name"]: np.fromfile(out_dir / o["file"], dtype="<f4").reshape(o["shape"]) for o in out_manifest["outputs"]}


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """max|got - expected| / max|expected| (0 for two empty tensors)."""
    if got.shape != expected.shape:
        raise ExportError(f"shape mismatch: onnxruntime {got.shape} vs PyTorch {expected.shape}")
    if expected.size == 0:
        return 0.0
    scale = float(np.abs(expected).max())
    return float(np.abs(got.astype(np.float64) - expected).max() / (scale if scale > 0 else 1.0))


# ------------------------------------------------------------------------------------------ images, torchvision


@dataclass
class DecodedImage:
    path: Path
    width: int
    height: int
    rgb: np.ndarray  # uint8 [H, W, 3]

    def tensor(self) -> Tensor:
        """RGB/255, CHW: what torchvision's detection models take."""
        return torch.from_numpy(self.rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def decode_image(path: Path) -> DecodedImage:
    """Decodes through tools/node/decode-image.mjs (sharp, exactly as the TypeScript pipeline does)."""
    with tempfile.TemporaryDirectory(prefix="cpwc-decode-") as tmp:
        raw = Path(tmp) / "image.rgb"
        result = subprocess.run(["node", str(DECODE_IMAGE), str(path), str(raw)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ExportError(f"could not decode {path}: {result.stderr.strip()}")
        info = json.loads(result.stdout)
        rgb = np.fromfile(raw, dtype=np.uint8).reshape(info["height"], info["width"], 3)
    return DecodedImage(path, info["width"], info["height"], rgb)


@dataclass
class TorchvisionRun:
    padded: Tensor  # graph A input [1, 3, H, W]
    resized: Tuple[int, int]  # (height, width) before padding
    features: "OrderedDict[str, Tensor]"
    proposals: Tensor  # [P, 4] graph-A input pixels
    detections: Dict[str, Tensor]  # original pixels


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


# ------------------------------------------------------------------------------------------------ self-check


@dataclass
class SelfCheck:
    errors_graph_a: Dict[str, float]
    errors_graph_b: Dict[str, float]
    image: str
    input_size: Tuple[int, int]
    proposals: int
    rois_per_level: Dict[str, int]

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


def split_by_level(model: FasterRCNN, proposals: Tensor) -> Tuple[Dict[str, Tensor], Tensor]:
    """Proposals per RoI level with torchvision's LevelMapper, and the permutation to level order."""
    names = roi_levels(model)
    levels = level_indices(model, proposals)
    order = torch.cat([torch.where(levels == i)[0] for i in range(len(names))])
    return {name: proposals[levels == i] for i, name in enumerate(names)}, order


def level_filling_rois(model: FasterRCNN, proposals: Tensor, image_size: Tuple[int, int], per_level: int = 8) -> Tensor:
    """Extra in-image RoIs for RoI levels that the proposals leave (nearly) empty, so that the check
    covers every level's spatial scale: boxes of 1.2x the level's canonical size, centred on the first
    proposals and shifted inside the image. Levels no in-image box can reach stay empty."""
    height, width = image_size
    counts = torch.bincount(level_indices(model, proposals), minlength=len(roi_levels(model)))
    k_min = int(round(math.log2(roi_strides(model)[roi_levels(model)[0]])))
    extra: List[Tensor] = []
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
def torchvision_box_head(model: FasterRCNN, run: TorchvisionRun, rois: Tensor) -> Tuple[Tensor, Tensor]:
    """torchvision's own MultiScaleRoIAlign + box head + predictor on `rois` (rows in `rois` order)."""
    pooled = model.roi_heads.box_roi_pool(run.features, [rois], [run.resized])
    return model.roi_heads.box_predictor(model.roi_heads.box_head(pooled))


def self_check(model: FasterRCNN, directory: Path, image: DecodedImage, threads: int = 2,
               run: Optional[TorchvisionRun] = None) -> SelfCheck:
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
    inputs_b: Dict[str, np.ndarray] = {}
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
    errors_b[f"class_logits with rois_{first} empty"] = relative_error(got_empty["class_logits"], logits[order][kept:].numpy())
    errors_b[f"box_regression with rois_{first} empty"] = relative_error(got_empty["box_regression"], regression[order][kept:].numpy())

    check = SelfCheck(errors_a, errors_b, str(image.path), (int(run.padded.shape[2]), int(run.padded.shape[3])),
                      len(run.proposals), {n: len(t) for n, t in by_level.items()})
    failures = {k: v for k, v in {**errors_a, **errors_b}.items() if not v <= MAX_RELATIVE_ERROR}
    if failures:
        raise ExportError(f"self-check failed (max relative error {MAX_RELATIVE_ERROR:g}): {failures}")
    return check


# ------------------------------------------------------------------------------------------- model.json


def git_commit() -> Optional[str]:
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
        return result.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def model_description(model: FasterRCNN, name: str, classes: List[str]) -> Dict[str, Any]:
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
            "roi_align": {"aligned": False, "onnx_coordinate_transformation_mode": "output_half_pixel",
                          "output_size": [int(s) for s in roi_heads.box_roi_pool.output_size],
                          "sampling_ratio": int(roi_heads.box_roi_pool.sampling_ratio)},
        },
        "box_coder": {"bbox_xform_clip": float(rpn.box_coder.bbox_xform_clip)},
        "rpn": {
            "levels": [{"name": l.name, "stride": l.stride, "anchor_sizes": l.anchor_sizes, "aspect_ratios": l.aspect_ratios}
                       for l in rpn_levels(model)],
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
            "level_mapper": {"k_min": k_levels[0], "k_max": k_levels[-1], "canonical_scale": 224,
                             "canonical_level": 4, "eps": 1e-6},
            "score_thresh": float(roi_heads.score_thresh),
            "nms_thresh": float(roi_heads.nms_thresh),
            "detections_per_img": int(roi_heads.detections_per_img),
            "min_size": ROI_HEADS_MIN_SIZE,
            "box_coder_weights": [float(w) for w in roi_heads.box_coder.weights],
        },
    }


# -------------------------------------------------------------------------------------------- reference.json


def float32_values(tensor: Tensor) -> Any:
    """Nested lists of the shortest decimals that parse back to exactly these float32 values."""
    array = tensor.detach().numpy().astype(np.float32)
    flat = [float(np.format_float_positional(v, unique=True, trim="-")) for v in array.reshape(-1)]
    return np.array(flat, dtype=object).reshape(array.shape).tolist() if array.ndim > 1 else flat


def detection_records(detections: Dict[str, Tensor], classes: List[str]) -> List[Dict[str, Any]]:
    records = []
    boxes = float32_values(detections["boxes"])
    scores = float32_values(detections["scores"])
    for box, score, label in zip(boxes, scores, detections["labels"].tolist()):
        records.append({"label": classes[label], "class_id": int(label), "score": score,
                        "box": {"xmin": box[0], "ymin": box[1], "xmax": box[2], "ymax": box[3]}})
    return records


def reference_entry(model: FasterRCNN, image: DecodedImage, classes: List[str], relative_to: Path) -> Dict[str, Any]:
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


# ------------------------------------------------------------------------------------------------ top level


@dataclass
class ExportResult:
    model_json: Dict[str, Any]
    check: SelfCheck
    seconds: Dict[str, float]


def load_model(checkpoint: Optional[Path], seed: Optional[int], arch: str, width: float, num_classes: Optional[int],
               min_size: Optional[int], max_size: Optional[int]) -> Tuple[FasterRCNN, List[str], Dict[str, Any]]:
    """The model to export, its class names and the checkpoint's extra fields."""
    overrides: Dict[str, Any] = {}
    if min_size is not None:
        overrides["min_size"] = min_size
    if max_size is not None:
        overrides["max_size"] = max_size
    if checkpoint is not None:
        ckpt = torch.load(checkpoint, map_location="cpu")
        if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
            raise ExportError(f"{checkpoint}: expected a dict with 'model' (state dict) and 'config' (detector_config)")
        config = {**ckpt["config"], **overrides}
        if num_classes is not None and num_classes != config["num_classes"]:
            raise ExportError(f"--num-classes {num_classes} contradicts the checkpoint's {config['num_classes']}")
        model = build_detector(**config)
        model.load_state_dict(ckpt["model"])
        classes = class_names(config["num_classes"], ckpt.get("classes"))
        extra = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    else:
        assert seed is not None
        torch.manual_seed(seed)
        config = {"arch": arch, "width": width, "num_classes": num_classes or 91, **overrides}
        model = build_detector(**config)
        classes = class_names(config["num_classes"])
        extra = {}
    return model.eval(), classes, extra


def export_model_directory(
    model: FasterRCNN,
    out: Path,
    classes: List[str],
    name: str,
    check_image: Path,
    reference_images: Sequence[Path] = (),
    checkpoint: Optional[Path] = None,
    checkpoint_extra: Optional[Dict[str, Any]] = None,
    seed: Optional[int] = None,
    export_command: str = "",
    threads: int = 2,
    fold: bool = True,
    graph_forms: Optional[str] = None,
) -> ExportResult:
    """Writes backbone_rpn.onnx, box_head.onnx, model.json (and reference.json) into `out`; fails loudly."""
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    seconds: Dict[str, float] = {}
    gate_image = decode_image(check_image)
    decoded_references = [decode_image(p) for p in reference_images]
    # torchvision's MultiScaleRoIAlign infers its scales on the first call: make that the full-size check image.
    started = time.perf_counter()
    gate_run = run_torchvision(model, gate_image.tensor())
    seconds["torchvision_forward"] = time.perf_counter() - started
    expected_scales = [1.0 / s for s in roi_strides(model).values()]
    if [float(s) for s in model.roi_heads.box_roi_pool.scales] != expected_scales:
        raise ExportError(f"RoIAlign scales {model.roi_heads.box_roi_pool.scales} are not 1/stride {expected_scales}")

    export_model = copy.deepcopy(model)
    if fold:
        fold_norms(export_model)
    unit_forms = apply_graph_forms(export_model, graph_forms) if graph_forms is not None else None
    started = time.perf_counter()
    spec_a = export_backbone_rpn(export_model, out / "backbone_rpn.onnx")
    spec_b = export_box_head(export_model, out / "box_head.onnx")
    check_onnx(out / "backbone_rpn.onnx", spec_a)
    check_onnx(out / "box_head.onnx", spec_b)
    seconds["onnx_export"] = time.perf_counter() - started
    if roi_align_modes(out / "box_head.onnx") != ["output_half_pixel"] * len(roi_levels(model)):
        raise ExportError(f"box_head.onnx RoiAlign modes are {roi_align_modes(out / 'box_head.onnx')}")

    started = time.perf_counter()
    check = self_check(model, out, gate_image, threads, gate_run)
    seconds["self_check"] = time.perf_counter() - started

    description = model_description(model, name, classes)
    if unit_forms is not None:
        description["graph_forms"] = graph_forms_record(graph_forms, unit_forms)
    graphs = {}
    for key, spec in (("backbone_rpn", spec_a), ("box_head", spec_b)):
        file = f"{key}.onnx"
        graphs[key] = {"file": file, "sha256": sha256_file(out / file), "opset": OPSET, **spec}
    extra = checkpoint_extra or {}
    description["graphs"] = graphs
    description["provenance"] = {
        "exported_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "checkpoint": checkpoint.name if checkpoint is not None else None,
        "checkpoint_sha256": sha256_file(checkpoint) if checkpoint is not None else None,
        "seed": seed if seed is not None else extra.get("seed"),
        "training_data": extra.get("training_data"),
        "export_command": export_command,
        "self_check": {
            "max_rel_error_graph_a": check.max_a,
            "max_rel_error_graph_b": check.max_b,
            "image": os.path.relpath(Path(check.image).resolve(), REPO_ROOT) if Path(check.image).resolve().is_relative_to(REPO_ROOT) else check.image,
            "input_size": list(check.input_size),
            "proposals": check.proposals,
            "rois_per_level": check.rois_per_level,
            "per_output": {**check.errors_graph_a, **check.errors_graph_b},
            "batch_norms_folded": fold,
        },
    }
    (out / "model.json").write_text(json.dumps(description, indent=2) + "\n")

    if decoded_references:
        started = time.perf_counter()
        reference = {
            "model": name,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "images": [reference_entry(model, image, classes, out) for image in decoded_references],
        }
        (out / "reference.json").write_text(json.dumps(reference) + "\n")
        seconds["reference"] = time.perf_counter() - started
    return ExportResult(description, check, seconds)
