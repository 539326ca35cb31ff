"""The CPWC layer: the paper's parameter counts, its channel groups (checked against a per-filter
reference written from paper section 2), the stride, and the ablation switches."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from cpwc.layers import CPWC, FoldedCPWC


def paper_groups(c: int, z: int) -> list[list[int]]:
    """Input channels of each stage-1 filter, straight from the paper's three cases."""
    if z == c:
        return [[i] for i in range(c)]
    if z < c:
        q, r = divmod(c, z)
        sizes = [q + 1 if i < r else q for i in range(z)]
        groups, start = [], 0
        for size in sizes:
            groups.append(list(range(start, start + size)))
            start += size
        return groups
    q, r = divmod(z, c)
    shares = [q + 1 if j < r else q for j in range(c)]  # channel j feeds shares[j] consecutive filters
    return [[j] for j in range(c) for _ in range(shares[j])]


def naive_cpwc(layer: CPWC, x: torch.Tensor) -> torch.Tensor:
    """PWC + S1 + S2(S1), S1 one filter at a time on its paper group."""
    out = F.conv2d(x, layer.pwc.weight, stride=layer.stride)
    if layer.stage1 is None:
        return out
    filters = layer.stage1.filter_assignment()
    s1 = torch.cat(
        [F.conv2d(x[:, channels], w.unsqueeze(0), stride=layer.stride, padding=1) for channels, w in filters], dim=1
    )
    out = out + s1
    if layer.stage2 is not None:
        z = layer.out_channels
        s2 = torch.cat([F.conv2d(s1[:, i : i + 1], layer.stage2.weight[i : i + 1], padding=1) for i in range(z)], dim=1)
        out = out + s2
    return out


def test_paper_example_256_to_64_has_19264_parameters() -> None:
    layer = CPWC(256, 64)
    assert sum(p.numel() for p in layer.parameters()) == 19_264
    assert sum(p.numel() for p in layer.pwc.parameters()) == 16_384
    assert sum(p.numel() for p in layer.stage1.parameters()) == 3 * 3 * 4 * 64
    assert sum(p.numel() for p in layer.stage2.parameters()) == 3 * 3 * 1 * 64


@pytest.mark.parametrize(
    "c,z,expected",
    [
        (64, 64, 64 * 64 + 9 * 64 + 9 * 64),
        (10, 4, 40 + 9 * 10 + 9 * 4),  # every input channel is in exactly one group
        (4, 10, 40 + 9 * 10 + 9 * 10),  # every filter sees exactly one channel
    ],
)
def test_parameter_count_is_pwc_plus_nine_per_group_channel_plus_nine_per_output(c: int, z: int, expected: int) -> None:
    assert sum(p.numel() for p in CPWC(c, z).parameters()) == expected


@pytest.mark.parametrize(
    "c,z,case",
    [
        (12, 12, "Z == C"),
        (12, 4, "Z < C, divisible"),
        (11, 4, "Z < C, remainder 3: groups of 3, 3, 3, 2"),
        (13, 5, "Z < C, remainder 3: groups of 3, 3, 3, 2, 2"),
        (4, 12, "Z > C, divisible"),
        (4, 11, "Z > C, remainder 3: channels shared 3, 3, 3, 2 times"),
        (5, 13, "Z > C, remainder 3"),
    ],
)
@pytest.mark.parametrize("stride", [1, 2])
def test_stage1_groups_follow_the_paper_and_match_a_per_filter_reference(
    c: int, z: int, case: str, stride: int
) -> None:
    layer = CPWC(c, z, stride=stride)
    assert [channels for channels, _ in layer.stage1.filter_assignment()] == paper_groups(c, z), case
    x = torch.randn(2, c, 13, 10)
    with torch.no_grad():
        got = layer(x)
        expected = naive_cpwc(layer, x)
    assert got.shape == (2, z, (13 - 1) // stride + 1, (10 - 1) // stride + 1)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_every_input_channel_reaches_stage1() -> None:
    for c, z in [(11, 4), (4, 11), (256, 64), (64, 256), (1024, 2048)]:
        groups = CPWC(c, z).stage1.filter_assignment()
        assert sorted({ch for channels, _ in groups for ch in channels}) == list(range(c))
        assert len(groups) == z


def test_ablation_switches() -> None:
    x = torch.randn(1, 16, 9, 9)
    full = CPWC(16, 8, context="cpwc")
    no_stage2 = CPWC(16, 8, context="cpwc_no_stage2")
    plain = CPWC(16, 8, context="pwc")
    no_stage2.load_state_dict({k: v for k, v in full.state_dict().items() if not k.startswith("stage2")})
    plain.load_state_dict({"pwc.weight": full.pwc.weight})
    assert no_stage2.stage2 is None and plain.stage1 is None
    assert sum(p.numel() for p in no_stage2.parameters()) == 16 * 8 + 9 * 16
    assert sum(p.numel() for p in plain.parameters()) == 16 * 8
    with torch.no_grad():
        s1 = full.stage1(x)
        torch.testing.assert_close(plain(x), F.conv2d(x, full.pwc.weight))
        torch.testing.assert_close(no_stage2(x), plain(x) + s1)
        torch.testing.assert_close(full(x), no_stage2(x) + full.stage2(s1))
        torch.testing.assert_close(full(x), naive_cpwc(full, x))
    with pytest.raises(ValueError, match="context must be one of"):
        CPWC(16, 8, context="conv3x3")


@pytest.mark.parametrize("context", ["cpwc", "cpwc_no_stage2", "pwc"])
def test_folding_an_affine_norm_into_cpwc_is_exact(context: str) -> None:
    layer = CPWC(11, 4, stride=2, context=context)
    scale, shift = torch.rand(4) + 0.5, torch.randn(4)
    x = torch.randn(1, 11, 15, 14)
    with torch.no_grad():
        expected = layer(x) * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
        torch.testing.assert_close(FoldedCPWC(layer, scale, shift)(x), expected, rtol=1e-5, atol=1e-5)


def test_cpwc_exports_to_onnx(tmp_path) -> None:
    import onnx

    layer = CPWC(11, 4, stride=2).eval()
    path = tmp_path / "cpwc.onnx"
    program = torch.onnx.export(
        layer,
        (torch.randn(1, 11, 16, 16),),
        dynamo=True,
        opset_version=18,
        input_names=["x"],
        output_names=["y"],
        dynamic_shapes=({2: torch.export.Dim("H"), 3: torch.export.Dim("W")},),
        verbose=False,
    )
    program.save(str(path), external_data=False)
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    assert {"Conv", "Slice", "Concat", "Add"} <= ops
