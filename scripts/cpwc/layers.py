"""The contextual pointwise convolution (CPWC) layer of Mazumder, Singh & Namboodiri (paper section 2).

    out = PWC(x) + S1(x) + S2(S1(x))

PWC is the original 1x1 convolution (stride s). S1 ("stage 1") is Z 3x3 filters (stride s, padding 1),
filter i seeing only its input-channel group i. S2 ("stage 2") is a depthwise 3x3 convolution (stride 1,
padding 1) on S1's output. No biases anywhere (in ResNet a norm layer follows).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

CONTEXTS = ("cpwc", "cpwc_no_stage2", "pwc")


@dataclass(frozen=True)
class GroupRun:
    """A run of stage-1 filters that share one regular grouping, i.e. one grouped convolution:
    input channels [in_start, in_start + in_channels) split into `groups` equal groups, each group
    feeding `out_channels // groups` consecutive filters."""

    in_start: int
    in_channels: int
    out_channels: int
    groups: int


def stage1_runs(in_channels: int, out_channels: int) -> list[GroupRun]:
    """The paper's channel groups for stage 1, as at most two regular grouped convolutions.

    With C input and Z output channels (q = floor, r = remainder):

    * Z == C: filter i sees channel i.
    * Z < C: filter i sees a contiguous group of channels; groups are in channel order and the first
      C mod Z groups hold floor(C/Z) + 1 channels, the others floor(C/Z). So filters 0..r-1 see
      channels [i(q+1), (i+1)(q+1)) and filter i >= r sees [r(q+1) + (i-r)q, r(q+1) + (i-r+1)q).
    * Z > C: every filter sees one channel; channel j is shared by n_j consecutive filters, where
      n_j = floor(Z/C) + 1 for the first Z mod C channels and floor(Z/C) for the rest. So filter i sees
      channel j with sum(n_0..n_{j-1}) <= i < sum(n_0..n_j).
    """
    c, z = in_channels, out_channels
    if z <= c:
        q, r = divmod(c, z)
        runs = [GroupRun(0, r * (q + 1), r, r)] if r else []
        runs.append(GroupRun(r * (q + 1), (z - r) * q, z - r, z - r))
    else:
        q, r = divmod(z, c)
        runs = [GroupRun(0, r, r * (q + 1), r)] if r else []
        runs.append(GroupRun(r, c - r, (c - r) * q, c - r))
    return runs


class StageOne(nn.Module):
    """Stage 1 of CPWC: Z 3x3 filters over the paper's channel groups (see `stage1_runs`).

    Irregular groupings (C not a multiple of Z or vice versa) are two grouped convolutions on two
    channel slices whose outputs are concatenated, so every weight is a real parameter (9 * max(C, Z)
    in total) and the ONNX graph is Slice + Conv + Concat."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.runs = stage1_runs(in_channels, out_channels)
        self.convs = nn.ModuleList(
            nn.Conv2d(run.in_channels, run.out_channels, 3, stride, 1, groups=run.groups, bias=False)
            for run in self.runs
        )

    def forward(self, x: Tensor) -> Tensor:
        if len(self.convs) == 1:
            return self.convs[0](x)
        outputs = [
            conv(x[:, run.in_start : run.in_start + run.in_channels]) for run, conv in zip(self.runs, self.convs)
        ]
        return torch.cat(outputs, dim=1)

    def filter_assignment(self) -> list[tuple[list[int], Tensor]]:
        """(input channels, weight [len(channels), 3, 3]) of every filter, in output-channel order."""
        filters: list[tuple[list[int], Tensor]] = []
        for run, conv in zip(self.runs, self.convs):
            in_per_group = run.in_channels // run.groups
            out_per_group = run.out_channels // run.groups
            for o in range(run.out_channels):
                first = run.in_start + (o // out_per_group) * in_per_group
                filters.append((list(range(first, first + in_per_group)), conv.weight[o]))
        return filters


class CPWC(nn.Module):
    """Contextual pointwise convolution: a drop-in replacement for a bias-free 1x1 `nn.Conv2d`.

    Args:
        in_channels: C.
        out_channels: Z.
        stride: stride of the 1x1 convolution and of stage 1 (stage 2 always has stride 1).
        context: "cpwc" (PWC + S1 + S2·S1), "cpwc_no_stage2" (PWC + S1, the paper's ablation) or
            "pwc" (the plain 1x1 convolution).

    Parameters: C·Z (PWC) + 9·max(C, Z) (stage 1) + 9·Z (stage 2); 256 -> 64 is 16,384 + 2,304 + 576 = 19,264.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, context: str = "cpwc") -> None:
        super().__init__()
        if context not in CONTEXTS:
            raise ValueError(f"context must be one of {CONTEXTS}, got {context!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.stride = stride
        self.context = context
        self.pwc = nn.Conv2d(in_channels, out_channels, 1, stride, bias=False)
        self.stage1 = StageOne(in_channels, out_channels, stride) if context != "pwc" else None
        self.stage2 = (
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, groups=out_channels, bias=False)
            if context == "cpwc"
            else None
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.pwc(x)
        if self.stage1 is None:
            return out
        context = self.stage1(x)
        out = out + context
        if self.stage2 is not None:
            out = out + self.stage2(context)
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, stride={self.stride}, context={self.context!r}"


class FoldedCPWC(nn.Module):
    """Inference-only CPWC with a following affine norm (scale s, shift b) folded in:

        s·(Px + S1x + S2·S1x) + b = (sP)x + b + (S2 + I)((s·S1)x)

    S2 is depthwise, so the per-channel scale moves through it. One bias on the PWC carries b."""

    def __init__(self, cpwc: CPWC, scale: Tensor, shift: Tensor) -> None:
        super().__init__()
        self.context = cpwc.context
        self.pwc = nn.Conv2d(cpwc.in_channels, cpwc.out_channels, 1, cpwc.stride, bias=True)
        with torch.no_grad():
            self.pwc.weight.copy_(cpwc.pwc.weight * scale.reshape(-1, 1, 1, 1))
            self.pwc.bias.copy_(shift)
        self.stage1 = None
        self.stage2 = None
        if cpwc.stage1 is not None:
            self.stage1 = StageOne(cpwc.in_channels, cpwc.out_channels, cpwc.stride)
            offset = 0
            with torch.no_grad():
                for src, dst in zip(cpwc.stage1.convs, self.stage1.convs):
                    n = src.weight.shape[0]
                    dst.weight.copy_(src.weight * scale[offset : offset + n].reshape(-1, 1, 1, 1))
                    offset += n
        if cpwc.stage2 is not None:
            self.stage2 = nn.Conv2d(cpwc.out_channels, cpwc.out_channels, 3, 1, 1, groups=cpwc.out_channels, bias=False)
            with torch.no_grad():
                identity = torch.zeros_like(cpwc.stage2.weight)
                identity[:, 0, 1, 1] = 1.0
                self.stage2.weight.copy_(cpwc.stage2.weight + identity)

    def forward(self, x: Tensor) -> Tensor:
        out = self.pwc(x)
        if self.stage1 is None:
            return out
        context = self.stage1(x)
        if self.stage2 is None:
            return out + context
        return out + self.stage2(context)
