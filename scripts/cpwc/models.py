"""Faster R-CNN detectors with a CPWC ResNet-50 body.

    model = build_detector("cpwc_r50_fpn", num_classes=3, width=0.25, norm="bn")
    torch.save({"model": model.state_dict(), "config": detector_config(model)}, "ckpt.pt")
    rebuilt = build_detector(**torch.load("ckpt.pt")["config"])

* ``*_r50_fpn``: torchvision's ``fasterrcnn_resnet50_fpn`` topology (layers 1-4 + FPN + LastLevelMaxPool,
  five RPN levels, MultiScaleRoIAlign on '0'..'3', TwoMLPHead, FastRCNNPredictor). At width 1 it is
  exactly torchvision's model with CPWC 1x1 convolutions.
* ``*_r50_c4``: the paper's detector: layers 1-3 (stride 16) give one feature map '0'; 15 anchors per
  location; RoIAlign 7x7 on '0'; the box head is layer4 with stride 1 followed by global average pooling.

``cpwc_*`` architectures use context "cpwc", ``pwc_*`` the plain 1x1 convolution; ``context`` overrides.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor, nn
from torchvision.models._utils import IntermediateLayerGetter
from torchvision.models.detection import FasterRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RPNHead
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from .layers import CONTEXTS
from .resnet import NORMS, CPWCResNet

ARCHITECTURES = ("cpwc_r50_fpn", "cpwc_r50_c4", "pwc_r50_fpn", "pwc_r50_c4")

CONFIG_ATTRIBUTE = "cpwc_config"

# torchvision's COCO category list: index = label id of the 91-way COCO detectors.
COCO_91_CLASSES = [
    "__background__",
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "N/A",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "N/A",
    "backpack",
    "umbrella",
    "N/A",
    "N/A",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "N/A",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "N/A",
    "dining table",
    "N/A",
    "N/A",
    "toilet",
    "N/A",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "N/A",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
]

FPN_ANCHOR_SIZES = ((32,), (64,), (128,), (256,), (512,))
C4_ANCHOR_SIZES = ((32, 64, 128, 256, 512),)
ASPECT_RATIOS = (0.5, 1.0, 2.0)


class C4Body(nn.Module):
    """Stem + layers 1-3 of a ResNet: one stride-16 feature map named '0'."""

    def __init__(self, resnet: CPWCResNet) -> None:
        super().__init__()
        self.body = IntermediateLayerGetter(resnet, return_layers={"layer3": "0"})
        self.out_channels = resnet.stage_out_channels[2]

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.body(x)


class C4BoxHead(nn.Module):
    """layer4 (first block stride 1) on the pooled RoIs, then global average pooling: [K, 2048k]."""

    def __init__(self, layer4: nn.Module, out_channels: int) -> None:
        super().__init__()
        self.layer4 = layer4
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Tensor:
        return self.layer4(x).mean(dim=(2, 3))


def default_context(arch: str) -> str:
    return "pwc" if arch.startswith("pwc_") else "cpwc"


def build_detector(
    arch: str = "cpwc_r50_fpn",
    num_classes: int = 91,
    width: float = 1.0,
    norm: str = "frozen_bn",
    min_size: int = 800,
    max_size: int = 1333,
    context: str | None = None,
    fpn_channels: int | None = None,
    representation_size: int | None = None,
    trainable_layers: int | None = None,
    bn_eps: float = 1e-5,
    **faster_rcnn_kwargs: Any,
) -> FasterRCNN:
    """Builds a Faster R-CNN with a CPWC ResNet-50 body (random weights; see the module docstring).

    Args:
        arch: one of ARCHITECTURES.
        num_classes: including background (COCO: 91, labels index COCO_91_CLASSES).
        width: ResNet width multiplier (channel counts rounded, at least 8).
        norm: "frozen_bn" (torchvision's detection default), "bn" or "gn" for the ResNet body.
        min_size, max_size: GeneralizedRCNNTransform's resize.
        context: overrides the architecture's 1x1 convolution: "cpwc", "cpwc_no_stage2" or "pwc".
        fpn_channels: FPN width (FPN only); default 256, or round(256·width) (>= 32) when width < 1.
        representation_size: TwoMLPHead width (FPN only); default 1024, or round(1024·width) (>= 128) when width < 1.
        trainable_layers: how many ResNet stages from the top train (torchvision's trainable_backbone_layers,
            0..5); default 3 with frozen_bn (torchvision's default), 5 otherwise. The C4 box head (layer4)
            always trains.
        bn_eps: epsilon of the batch norms (torchvision's COCO weights use 0.0 with FrozenBatchNorm2d).
        faster_rcnn_kwargs: passed to torchvision's FasterRCNN (rpn_*, box_* settings); must be JSON values.
    """
    if arch not in ARCHITECTURES:
        raise ValueError(f"arch must be one of {ARCHITECTURES}, got {arch!r}")
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if context is not None and context not in CONTEXTS:
        raise ValueError(f"context must be one of {CONTEXTS} or None, got {context!r}")
    if not num_classes >= 2:
        raise ValueError(f"num_classes must be >= 2 (background + at least one class), got {num_classes}")
    if not width > 0:
        raise ValueError(f"width must be positive, got {width}")
    if trainable_layers is None:
        trainable_layers = 3 if norm == "frozen_bn" else 5
    if not 0 <= trainable_layers <= 5:
        raise ValueError(f"trainable_layers must be in [0, 5], got {trainable_layers}")
    config: dict[str, Any] = dict(
        arch=arch,
        num_classes=num_classes,
        width=width,
        norm=norm,
        min_size=min_size,
        max_size=max_size,
        context=context,
        fpn_channels=fpn_channels,
        representation_size=representation_size,
        trainable_layers=trainable_layers,
        bn_eps=bn_eps,
        **faster_rcnn_kwargs,
    )
    resolved_context = context if context is not None else default_context(arch)
    common = dict(num_classes=num_classes, min_size=min_size, max_size=max_size, **faster_rcnn_kwargs)
    if arch.endswith("_fpn"):
        model = _build_fpn(
            width, norm, resolved_context, fpn_channels, representation_size, trainable_layers, bn_eps, common
        )
    else:
        if fpn_channels is not None or representation_size is not None:
            raise ValueError("fpn_channels and representation_size apply to the FPN architectures only")
        model = _build_c4(width, norm, resolved_context, trainable_layers, bn_eps, common)
    setattr(model, CONFIG_ATTRIBUTE, config)
    return model


def detector_config(model: nn.Module) -> dict[str, Any]:
    """The keyword arguments of `build_detector` that rebuild `model` (store as ckpt["config"])."""
    config = getattr(model, CONFIG_ATTRIBUTE, None)
    if config is None:
        raise ValueError("the model was not built by build_detector (it has no cpwc_config)")
    return copy.deepcopy(config)


def resolved_context(model: nn.Module) -> str:
    config = detector_config(model)
    return config["context"] if config["context"] is not None else default_context(config["arch"])


def _freeze_body(resnet: nn.Module, trainable_layers: int) -> None:
    """torchvision's rule: only the top `trainable_layers` of layer4, layer3, layer2, layer1, conv1 (+bn1) train."""
    layers_to_train = ["layer4", "layer3", "layer2", "layer1", "conv1"][:trainable_layers]
    if trainable_layers == 5:
        layers_to_train.append("bn1")
    for name, parameter in resnet.named_parameters():
        if not any(name.startswith(layer) for layer in layers_to_train):
            parameter.requires_grad_(False)


def _build_fpn(
    width: float,
    norm: str,
    context: str,
    fpn_channels: int | None,
    representation_size: int | None,
    trainable_layers: int,
    bn_eps: float,
    common: dict[str, Any],
) -> FasterRCNN:
    if fpn_channels is None:
        fpn_channels = 256 if width >= 1 else max(32, int(round(256 * width)))
    if representation_size is None:
        representation_size = 1024 if width >= 1 else max(128, int(round(1024 * width)))
    resnet = CPWCResNet(width=width, context=context, norm=norm, num_classes=None, bn_eps=bn_eps)
    _freeze_body(resnet, trainable_layers)
    backbone = BackboneWithFPN(
        resnet,
        return_layers={f"layer{i + 1}": str(i) for i in range(4)},
        in_channels_list=list(resnet.stage_out_channels),
        out_channels=fpn_channels,
        extra_blocks=LastLevelMaxPool(),
    )
    anchor_generator = AnchorGenerator(FPN_ANCHOR_SIZES, (ASPECT_RATIOS,) * len(FPN_ANCHOR_SIZES))
    rpn_head = RPNHead(fpn_channels, anchor_generator.num_anchors_per_location()[0])
    roi_pool = MultiScaleRoIAlign(featmap_names=["0", "1", "2", "3"], output_size=7, sampling_ratio=2)
    box_head = TwoMLPHead(fpn_channels * 7 * 7, representation_size)
    return _faster_rcnn(backbone, anchor_generator, rpn_head, roi_pool, box_head, representation_size, common)


def _build_c4(
    width: float, norm: str, context: str, trainable_layers: int, bn_eps: float, common: dict[str, Any]
) -> FasterRCNN:
    resnet = CPWCResNet(width=width, context=context, norm=norm, num_classes=None, layer4_stride=1, bn_eps=bn_eps)
    _freeze_body(resnet, trainable_layers)
    layer4 = resnet.layer4
    head_channels = resnet.stage_out_channels[3]
    backbone = C4Body(resnet)  # IntermediateLayerGetter keeps only the modules up to layer3
    anchor_generator = AnchorGenerator(C4_ANCHOR_SIZES, (ASPECT_RATIOS,))
    rpn_head = RPNHead(backbone.out_channels, anchor_generator.num_anchors_per_location()[0])
    roi_pool = MultiScaleRoIAlign(featmap_names=["0"], output_size=7, sampling_ratio=2)
    box_head = C4BoxHead(layer4, head_channels)
    for parameter in box_head.parameters():
        parameter.requires_grad_(True)
    return _faster_rcnn(backbone, anchor_generator, rpn_head, roi_pool, box_head, head_channels, common)


def _faster_rcnn(
    backbone: nn.Module,
    anchor_generator: AnchorGenerator,
    rpn_head: RPNHead,
    roi_pool: MultiScaleRoIAlign,
    box_head: nn.Module,
    box_head_channels: int,
    common: dict[str, Any],
) -> FasterRCNN:
    common = dict(common)
    predictor = FastRCNNPredictor(box_head_channels, common.pop("num_classes"))
    return FasterRCNN(
        backbone,
        num_classes=None,
        rpn_anchor_generator=anchor_generator,
        rpn_head=rpn_head,
        box_roi_pool=roi_pool,
        box_head=box_head,
        box_predictor=predictor,
        **common,
    )


def count_parameters(model: nn.Module) -> int:
    """All parameters, trainable or frozen, counting FrozenBatchNorm2d's weight and bias (buffers there,
    parameters in BatchNorm2d) so that the count does not depend on the norm layer."""
    total = sum(p.numel() for p in model.parameters())
    for m in model.modules():
        if isinstance(m, FrozenBatchNorm2d):
            total += m.weight.numel() + m.bias.numel()
    return total


def class_names(num_classes: int, names: list[str] | None = None) -> list[str]:
    """`names` if given (index 0 must be "__background__"), COCO's for 91 classes, else class_1..class_{n-1}."""
    if names is not None:
        if len(names) != num_classes or names[0] != "__background__":
            raise ValueError(f"expected {num_classes} class names starting with '__background__', got {names[:3]}…")
        return list(names)
    if num_classes == len(COCO_91_CLASSES):
        return list(COCO_91_CLASSES)
    return ["__background__"] + [f"class_{i}" for i in range(1, num_classes)]


__all__ = [
    "ARCHITECTURES",
    "COCO_91_CLASSES",
    "build_detector",
    "detector_config",
    "count_parameters",
    "class_names",
    "resolved_context",
]
