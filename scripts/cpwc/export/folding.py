"""Folding frozen or eval-mode batch norms into the preceding convolutions (plain and CPWC)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torchvision.ops.misc import FrozenBatchNorm2d

from ..layers import CPWC, FoldedCPWC
from ..resnet import Bottleneck


def norm_affine(norm: nn.Module) -> tuple[Tensor, Tensor] | None:
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
    folded = nn.Conv2d(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        bias=True,
    )
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
