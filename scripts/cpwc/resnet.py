"""ResNet-50 whose every 1x1 convolution is a CPWC, with torchvision's module names.

Module names follow `torchvision.models.resnet.ResNet` (conv1, bn1, layer1..layer4, Bottleneck
conv1/bn1/conv2/bn2/conv3/bn3/downsample.0/.1, avgpool, fc), so detection code written for torchvision
(IntermediateLayerGetter, BackboneWithFPN, trainable-layer freezing) works unchanged. The 1x1
convolutions (bottleneck conv1 and conv3, downsample.0) are `CPWC` modules; their weights live at
`<name>.pwc.weight`, `<name>.stage1.convs.<n>.weight` and `<name>.stage2.weight`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from .layers import CPWC

NormFactory = Callable[[int], nn.Module]
NORMS = ("frozen_bn", "bn", "gn")

BOTTLENECK_EXPANSION = 4
RESNET50_BLOCKS = (3, 4, 6, 3)


def scaled_channels(channels: int, width: float) -> int:
    """`channels * width` rounded to an integer, at least 8."""
    return max(8, int(round(channels * width)))


def norm_factory(norm: str, bn_eps: float = 1e-5) -> NormFactory:
    """frozen_bn: torchvision's FrozenBatchNorm2d; bn: BatchNorm2d; gn: GroupNorm with gcd(32, C) groups."""
    if norm == "frozen_bn":
        return lambda channels: FrozenBatchNorm2d(channels, eps=bn_eps)
    if norm == "bn":
        return lambda channels: nn.BatchNorm2d(channels, eps=bn_eps)
    if norm == "gn":
        return lambda channels: nn.GroupNorm(math.gcd(32, channels), channels)
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class Bottleneck(nn.Module):
    """torchvision's ResNet v1.5 bottleneck (stride on the 3x3 convolution) with CPWC 1x1 convolutions."""

    def __init__(
        self,
        in_channels: int,
        width: int,
        out_channels: int,
        stride: int,
        norm: NormFactory,
        context: str,
    ) -> None:
        super().__init__()
        self.conv1 = CPWC(in_channels, width, 1, context)
        self.bn1 = norm(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = norm(width)
        self.conv3 = CPWC(width, out_channels, 1, context)
        self.bn3 = norm(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(CPWC(in_channels, out_channels, stride, context), norm(out_channels))
        self.stride = stride

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


def make_stage(
    in_channels: int, width: int, out_channels: int, blocks: int, stride: int, norm: NormFactory, context: str
) -> nn.Sequential:
    layers: list[nn.Module] = [Bottleneck(in_channels, width, out_channels, stride, norm, context)]
    layers += [Bottleneck(out_channels, width, out_channels, 1, norm, context) for _ in range(blocks - 1)]
    return nn.Sequential(*layers)


class CPWCResNet(nn.Module):
    """ResNet-50 (blocks 3, 4, 6, 3) with CPWC 1x1 convolutions and a width multiplier.

    Args:
        width: multiplies the stem (64), the bottleneck widths (64..512) and the stage outputs (256..2048);
            each rounded to an integer >= 8.
        context: "cpwc", "cpwc_no_stage2" or "pwc" for every 1x1 convolution.
        norm: "frozen_bn", "bn" or "gn".
        num_classes: size of the final `fc`; None builds no avgpool/fc (a detection body).
        layer4_stride: stride of layer4's first block (1 for the C4 detector's box head).
    """

    def __init__(
        self,
        width: float = 1.0,
        context: str = "cpwc",
        norm: str = "bn",
        num_classes: int | None = 1000,
        layer4_stride: int = 2,
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        make_norm = norm_factory(norm, bn_eps)
        stem = scaled_channels(64, width)
        widths = [scaled_channels(64 * 2**i, width) for i in range(4)]
        self.stage_out_channels = [scaled_channels(64 * BOTTLENECK_EXPANSION * 2**i, width) for i in range(4)]
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3, bias=False)
        self.bn1 = make_norm(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        strides = (1, 2, 2, layer4_stride)
        in_channels = stem
        for i, (blocks, stride) in enumerate(zip(RESNET50_BLOCKS, strides)):
            out_channels = self.stage_out_channels[i]
            setattr(
                self,
                f"layer{i + 1}",
                make_stage(in_channels, widths[i], out_channels, blocks, stride, make_norm, context),
            )
            in_channels = out_channels
        self.num_classes = num_classes
        if num_classes is not None:
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(in_channels, num_classes)
        init_resnet_weights(self)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        if self.num_classes is None:
            return x
        return self.fc(self.avgpool(x).flatten(1))


def init_resnet_weights(module: nn.Module) -> None:
    """torchvision's ResNet initialisation: Kaiming-normal (fan_out, ReLU) convolutions, unit norms."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.constant_(m.weight, 1)
            nn.init.constant_(m.bias, 0)


def resnet50_cpwc(width: float = 1.0, context: str = "cpwc", norm: str = "bn", num_classes: int = 1000) -> CPWCResNet:
    """The ImageNet classifier of the paper's Table 3 (context="pwc" is torchvision's resnet50)."""
    return CPWCResNet(width=width, context=context, norm=norm, num_classes=num_classes)
