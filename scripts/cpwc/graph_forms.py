"""Exact graph forms of a folded CPWC unit, for ONNX Runtime's fast (NCHWc) CPU path.

A folded unit (layers.FoldedCPWC) computes ``y = P x + b + D(S1 x)`` with ``D = S2 + identity`` (a
depthwise 3x3). Exported as written, ONNX Runtime leaves the grouped stage-1 convolution in plain NCHW
(its NCHWc path takes depthwise and block-aligned groups only), with layout reorders around it, and the
sums with the residual and the ReLU of a bottleneck stay unfused. The forms here compute the same
function (up to float rounding) with ops ORT keeps on its NCHWc path:

stage 1 (``S1 x``), by channel case (C inputs, Z outputs):

* ``grouped``      the reference: S1 as the paper's grouped convolution(s) (layers.StageOne).
* ``dw_blocksum``  Z < C: a depthwise 3x3 over all C channels (each channel's tap of its filter), then a
                   grouped 1x1 convolution with 0/1 weights that sums each filter's channels; its groups
                   are as many as keep every group block-aligned (``BLOCK`` channels), so both are NCHWc.
* ``dw_reducesum`` Z < C: the same depthwise, then Reshape + ReduceSum over each filter's channels.
* ``expand_dw``    Z > C: every input channel repeated for the filters that share it (Expand or Gather),
                   then one depthwise 3x3 over Z channels.
* ``convexpand_dw`` Z > C: the same, the repeat being a block-aligned grouped 1x1 convolution with 0/1
                   weights (NCHWc, no layout reorders; 16 MACs per output element).
* ``block_grouped`` Z > C: one grouped 3x3 convolution whose groups are block-aligned, the weights of
                   the channels a filter does not see being zero (more MACs, all NCHWc).
* ``depthwise``    Z == C: S1 is already a depthwise convolution.

unit (``FastCPWC``): ``c = D(S1 x) [+ residual]`` then ``y = P x + b + c`` (+ ReLU in a bottleneck), the
order ORT's Conv + Sum + activation fusion recognises: the residual becomes the depthwise D's Sum input
and ``c`` the 1x1 convolution's Sum input, with the ReLU fused after it.

``apply_graph_forms(model, choice)`` swaps these into a folded model in place (the export's hook) and
returns every unit's form, which ``graph_forms_record`` puts in model.json.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .layers import FoldedCPWC, StageOne
from .resnet import Bottleneck

BLOCK = 16  # ORT's NCHWc block on AVX-512 (8 on AVX2): channel counts of aligned groups are multiples of it
STAGE1_FORMS = ("grouped", "dw_blocksum", "dw_reducesum", "expand_dw", "convexpand_dw", "block_grouped", "depthwise")
# The form per channel case when `choice` is "fast": the fastest graph A of full-size cpwc_r50_fpn in the
# measurements of docs/performance.md (per unit: npm run bench:layers).
FAST_FORMS = {"lt": "dw_blocksum", "eq": "depthwise", "gt": "convexpand_dw"}


def channel_case(in_channels: int, out_channels: int) -> str:
    """ "lt" (Z < C), "eq" (Z == C) or "gt" (Z > C)."""
    if out_channels < in_channels:
        return "lt"
    return "eq" if out_channels == in_channels else "gt"


def forms_for_case(case: str) -> tuple[str, ...]:
    """The stage-1 forms that apply to a channel case."""
    return {
        "lt": ("grouped", "dw_blocksum", "dw_reducesum"),
        "eq": ("grouped", "depthwise"),
        "gt": ("grouped", "expand_dw", "convexpand_dw", "block_grouped"),
    }[case]


def filter_owners(stage1: StageOne) -> tuple[list[list[int]], list[Tensor]]:
    """(input channels, weight [len(channels), 3, 3]) of every stage-1 filter, in output order."""
    assignment = stage1.filter_assignment()
    return [channels for channels, _ in assignment], [weight.detach() for _, weight in assignment]


def aligned_groups(connections: Tensor, block: int = BLOCK) -> int:
    """The most groups G for which the 0/1 matrix `connections` [Z, C] is block diagonal with G equal
    blocks whose sides are multiples of `block`; 1 when none is (a dense convolution)."""
    z, c = connections.shape
    best = 1
    for g in range(2, min(z, c) + 1):
        if z % g or c % g or (z // g) % block or (c // g) % block:
            continue
        zb, cb = z // g, c // g
        mask = torch.zeros_like(connections, dtype=torch.bool)
        for i in range(g):
            mask[i * zb : (i + 1) * zb, i * cb : (i + 1) * cb] = True
        if not bool(connections.bool()[~mask].any()):
            best = g
    return best


class DepthwiseBlockSum(nn.Module):
    """Z < C: depthwise 3x3 over C channels, then a block-aligned grouped 1x1 0/1 convolution summing
    each filter's channels."""

    def __init__(self, stage1: StageOne, block: int = BLOCK, reduce: str = "blocksum") -> None:
        super().__init__()
        owners, weights = filter_owners(stage1)
        c, z = stage1.in_channels, stage1.out_channels
        self.depthwise = nn.Conv2d(c, c, 3, stage1.stride, 1, groups=c, bias=False)
        dw = torch.zeros(c, 1, 3, 3)
        connections = torch.zeros(z, c)
        for o, (channels, weight) in enumerate(zip(owners, weights)):
            for k, ch in enumerate(channels):
                dw[ch, 0] = weight[k]
                connections[o, ch] = 1.0
        with torch.no_grad():
            self.depthwise.weight.copy_(dw)
        self.reduce = reduce
        self.sizes = [len(ch) for ch in owners]
        groups = aligned_groups(connections, block)
        self.sum = nn.Conv2d(c, z, 1, 1, 0, groups=groups, bias=False)
        zb, cb = z // groups, c // groups
        with torch.no_grad():
            self.sum.weight.copy_(
                torch.stack([connections[i, (i // zb) * cb : (i // zb + 1) * cb] for i in range(z)]).reshape(
                    z, cb, 1, 1
                )
            )
        self.runs = [(run.in_start, run.in_channels, run.out_channels) for run in stage1.runs]

    def forward(self, x: Tensor) -> Tensor:
        t = self.depthwise(x)
        if self.reduce == "blocksum":
            return self.sum(t)
        parts = []
        for start, channels, filters in self.runs:
            part = t[:, start : start + channels] if len(self.runs) > 1 else t
            n, _, h, w = part.shape
            parts.append(part.reshape(n, filters, channels // filters, h, w).sum(dim=2))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


class ExpandDepthwise(nn.Module):
    """Z > C: each input channel repeated for the filters that share it (Expand/Gather, or with
    `by_conv` a block-aligned grouped 1x1 convolution with 0/1 weights), then one depthwise 3x3."""

    def __init__(self, stage1: StageOne, by_conv: bool = False, block: int = BLOCK) -> None:
        super().__init__()
        owners, weights = filter_owners(stage1)
        c, z = stage1.in_channels, stage1.out_channels
        self.repeat = z // c if z % c == 0 else 0
        self.register_buffer("index", torch.tensor([ch[0] for ch in owners], dtype=torch.int64), persistent=False)
        self.depthwise = nn.Conv2d(z, z, 3, stage1.stride, 1, groups=z, bias=False)
        with torch.no_grad():
            self.depthwise.weight.copy_(torch.stack(weights).reshape(z, 1, 3, 3))
        self.expand: nn.Module | None = None
        if by_conv:
            connections = torch.zeros(z, c)
            for o, channels in enumerate(owners):
                connections[o, channels[0]] = 1.0
            groups = aligned_groups(connections, block)
            zb, cb = z // groups, c // groups
            self.expand = nn.Conv2d(c, z, 1, 1, 0, groups=groups, bias=False)
            with torch.no_grad():
                self.expand.weight.copy_(
                    torch.stack([connections[o, (o // zb) * cb : (o // zb + 1) * cb] for o in range(z)]).reshape(
                        z, cb, 1, 1
                    )
                )

    def forward(self, x: Tensor) -> Tensor:
        n, c, h, w = x.shape
        if self.expand is not None:
            x = self.expand(x)
        elif self.repeat:
            x = x.unsqueeze(2).expand(n, c, self.repeat, h, w).reshape(n, c * self.repeat, h, w)
        else:
            x = x.index_select(1, self.index)
        return self.depthwise(x)


class BlockGrouped(nn.Module):
    """Z > C (or any case): one grouped 3x3 convolution with block-aligned groups, zero weights where a
    filter does not see a channel."""

    def __init__(self, stage1: StageOne, block: int = BLOCK) -> None:
        super().__init__()
        owners, weights = filter_owners(stage1)
        c, z = stage1.in_channels, stage1.out_channels
        connections = torch.zeros(z, c)
        for o, channels in enumerate(owners):
            connections[o, channels] = 1.0
        groups = aligned_groups(connections, block)
        zb, cb = z // groups, c // groups
        self.conv = nn.Conv2d(c, z, 3, stage1.stride, 1, groups=groups, bias=False)
        weight = torch.zeros(z, cb, 3, 3)
        for o, (channels, w) in enumerate(zip(owners, weights)):
            base = (o // zb) * cb
            for k, ch in enumerate(channels):
                weight[o, ch - base] = w[k]
        with torch.no_grad():
            self.conv.weight.copy_(weight)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


def stage1_form(stage1: StageOne, form: str, block: int = BLOCK) -> nn.Module:
    """`stage1` rewritten in `form` (one of STAGE1_FORMS valid for its channel case)."""
    case = channel_case(stage1.in_channels, stage1.out_channels)
    if form not in forms_for_case(case):
        raise ValueError(
            f"form {form!r} does not apply to stage 1 {stage1.in_channels}->{stage1.out_channels} "
            f"(channel case {case!r}: {forms_for_case(case)})"
        )
    if form in ("grouped", "depthwise"):
        return stage1
    if form in ("dw_blocksum", "dw_reducesum"):
        return DepthwiseBlockSum(stage1, block, "blocksum" if form == "dw_blocksum" else "reducesum")
    if form in ("expand_dw", "convexpand_dw"):
        return ExpandDepthwise(stage1, by_conv=form == "convexpand_dw", block=block)
    return BlockGrouped(stage1, block)


class FastCPWC(nn.Module):
    """A FoldedCPWC as ``P x + b + (D(S1 x) + residual)``: the residual is D's Sum input, the context the
    1x1 convolution's, so ORT fuses every add (and a following ReLU) into a convolution."""

    def __init__(self, folded: FoldedCPWC, form: str, block: int = BLOCK) -> None:
        super().__init__()
        self.form = form
        self.pwc = folded.pwc
        self.stage1 = stage1_form(folded.stage1, form, block) if folded.stage1 is not None else None
        self.stage2 = folded.stage2

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if self.stage1 is None:
            context = residual
        else:
            context = self.stage1(x)
            if self.stage2 is not None:
                context = self.stage2(context)
            if residual is not None:
                context = context + residual
        out = self.pwc(x)
        return out if context is None else out + context


class FastBottleneck(nn.Module):
    """A folded Bottleneck whose conv3 takes the residual: relu(P3 x + b + (D3(S1 x) + identity))."""

    def __init__(self, block: Bottleneck, forms: dict[str, str], prefix: str, channel_block: int = BLOCK) -> None:
        super().__init__()
        self.conv1 = as_fast(block.conv1, forms, f"{prefix}.conv1", channel_block)
        self.conv2 = block.conv2
        self.conv3 = as_fast(block.conv3, forms, f"{prefix}.conv3", channel_block)
        self.downsample: nn.Module | None = None
        if block.downsample is not None:
            self.downsample = as_fast(block.downsample[0], forms, f"{prefix}.downsample.0", channel_block)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv1(x))
        out = self.relu(self.conv2(out))
        return self.relu(self.conv3(out, identity))


def as_fast(module: nn.Module, forms: dict[str, str], name: str, block: int) -> nn.Module:
    if not isinstance(module, FoldedCPWC):
        raise TypeError(f"{name}: graph forms need folded batch norms (found {type(module).__name__})")
    if module.stage1 is None:
        return FastCPWC(module, "pwc", block)
    return FastCPWC(module, forms[name], block)


def parse_choice(choice: str) -> dict[str, str]:
    """Form per channel case from "fast" (FAST_FORMS), "reference" (the grouped convolutions), a form name
    (where it applies; FAST_FORMS elsewhere) or "lt=FORM,eq=FORM,gt=FORM" (unnamed cases: FAST_FORMS)."""
    if choice == "fast":
        return dict(FAST_FORMS)
    if choice == "reference":
        return {"lt": "grouped", "eq": "depthwise", "gt": "grouped"}
    if choice in STAGE1_FORMS:
        return {case: choice if choice in forms_for_case(case) else FAST_FORMS[case] for case in FAST_FORMS}
    forms = dict(FAST_FORMS)
    for item in choice.split(","):
        case, _, form = item.partition("=")
        if case not in FAST_FORMS or form not in forms_for_case(case):
            raise ValueError(
                f"graph forms {choice!r}: expected 'fast', 'reference', one of {STAGE1_FORMS} or "
                f"'lt=FORM,eq=FORM,gt=FORM' with forms {[forms_for_case(c) for c in FAST_FORMS]}"
            )
        forms[case] = form
    return forms


def choose_forms(model: nn.Module, choice: str = "fast") -> dict[str, str]:
    """Stage-1 form of every CPWC unit of a folded model, by `parse_choice(choice)`."""
    by_case = parse_choice(choice)
    forms: dict[str, str] = {}
    for name, module in model.named_modules():
        if isinstance(module, FoldedCPWC) and module.stage1 is not None:
            forms[name] = by_case[channel_case(module.stage1.in_channels, module.stage1.out_channels)]
    return forms


@torch.no_grad()
def apply_graph_forms(model: nn.Module, choice: str = "fast", block: int = BLOCK) -> dict[str, str]:
    """Replaces every folded Bottleneck of `model` by a FastBottleneck in the chosen forms, in place;
    returns {unit name: form} (prefix-free names as in the model's state dict)."""
    forms = choose_forms(model, choice)
    for parent_name, parent in list(model.named_modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, Bottleneck):
                prefix = f"{parent_name}.{child_name}" if parent_name else child_name
                setattr(parent, child_name, FastBottleneck(child, forms, prefix, block))
    return forms


def graph_forms_record(choice: str, unit_forms: dict[str, str]) -> dict[str, object]:
    """model.json's "graph_forms": the choice, the form per channel case it resolved to, and every unit's form."""
    return {"choice": choice, "by_case": parse_choice(choice), "block": BLOCK, "units": dict(unit_forms)}
