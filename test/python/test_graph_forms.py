"""Every graph form of a CPWC unit computes the folded unit's function, in PyTorch and in onnxruntime, for
every channel case (Z < C divisible and not, Z == C, Z > C divisible and not) at strides 1 and 2."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path

import onnx
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn

from cpwc.export import fold_norms
from cpwc.graph_forms import (
    FAST_FORMS,
    FastBottleneck,
    FastCPWC,
    aligned_groups,
    apply_graph_forms,
    channel_case,
    forms_for_case,
    parse_choice,
)
from cpwc.layers import CPWC, FoldedCPWC
from cpwc.models import build_detector

# (C, Z): Z < C divisible, Z < C not divisible, Z == C, Z > C divisible, Z > C not divisible
CHANNEL_CASES = [(64, 32), (40, 16), (48, 48), (16, 64), (16, 40)]
UNIT_CASES = [(c, z, s, form) for c, z in CHANNEL_CASES for s in (1, 2) for form in forms_for_case(channel_case(c, z))]


def folded_unit(c: int, z: int, stride: int, context: str = "cpwc") -> FoldedCPWC:
    unit = CPWC(c, z, stride, context).eval()
    with torch.no_grad():
        for p in unit.parameters():
            p.normal_()
    return FoldedCPWC(unit, torch.rand(z) + 0.5, torch.randn(z)).eval()


def relative(got: Tensor, expected: Tensor) -> float:
    return float((got - expected).abs().max() / expected.abs().max())


class UnitGraph(nn.Module):
    def __init__(self, unit: FastCPWC) -> None:
        super().__init__()
        self.unit = unit

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return torch.relu(self.unit(x, residual))


class BottleneckTail(nn.Module):
    """relu(unit(x) + a convolution's output), as a bottleneck's conv3 with its (downsample) residual."""

    def __init__(self, unit: FastCPWC, channels: int) -> None:
        super().__init__()
        self.unit = unit
        self.residual = nn.Conv2d(channels, channels, 1)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        return torch.relu(self.unit(x, self.residual(residual)))


def test_channel_cases_cover_every_form() -> None:
    assert [channel_case(c, z) for c, z in CHANNEL_CASES] == ["lt", "lt", "eq", "gt", "gt"]
    assert {form for *_, form in UNIT_CASES} == {
        "grouped",
        "dw_blocksum",
        "dw_reducesum",
        "depthwise",
        "expand_dw",
        "convexpand_dw",
        "block_grouped",
    }


@pytest.mark.parametrize(("c", "z", "stride", "form"), UNIT_CASES)
@torch.no_grad()
def test_every_form_computes_the_folded_unit_plus_residual(c: int, z: int, stride: int, form: str) -> None:
    folded = folded_unit(c, z, stride)
    x = torch.randn(1, c, 13, 18)
    expected = folded(x)
    residual = torch.randn_like(expected)
    fast = FastCPWC(folded, form).eval()
    assert relative(fast(x), expected) < 1e-6
    assert relative(fast(x, residual), expected + residual) < 1e-6


@pytest.mark.parametrize(
    ("c", "z", "form"), [(64, 32, "dw_blocksum"), (16, 40, "convexpand_dw"), (48, 48, "depthwise")]
)
@torch.no_grad()
def test_forms_of_the_no_stage2_ablation_compute_it_too(c: int, z: int, form: str) -> None:
    folded = folded_unit(c, z, 2, "cpwc_no_stage2")
    x = torch.randn(1, c, 13, 18)
    expected = folded(x)
    residual = torch.randn_like(expected)
    assert relative(FastCPWC(folded, form)(x, residual), expected + residual) < 1e-6


@pytest.mark.parametrize(("c", "z", "stride", "form"), UNIT_CASES)
@torch.no_grad()
def test_every_form_exports_and_matches_in_onnxruntime(c: int, z: int, stride: int, form: str, tmp_path: Path) -> None:
    folded = folded_unit(c, z, stride)
    x = torch.randn(1, c, 17, 22)
    expected = folded(x)
    residual = torch.randn_like(expected)
    path = tmp_path / "unit.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            UnitGraph(FastCPWC(folded, form)).eval(),
            (x, residual),
            str(path),
            opset_version=17,
            input_names=["x", "residual"],
            output_names=["y"],
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"x": x.numpy(), "residual": residual.numpy()})
    assert relative(torch.from_numpy(got), torch.relu(expected + residual)) < 1e-5


def test_aligned_groups_finds_the_block_diagonal_with_aligned_sides() -> None:
    sums = torch.zeros(64, 256)  # filter i sums channels 4i..4i+3
    for i in range(64):
        sums[i, 4 * i : 4 * i + 4] = 1.0
    assert aligned_groups(sums, 16) == 4  # 16 filters x 64 channels per group
    assert aligned_groups(sums, 8) == 8
    ragged = torch.zeros(16, 40)  # 40 -> 16: the first 8 filters see 3 channels, the others 2
    assert aligned_groups(ragged + 1.0, 16) == 1


@pytest.mark.parametrize(("c", "z"), [(256, 64), (64, 256)])
def test_fast_forms_keep_the_unit_on_onnxruntime_s_nchwc_path(c: int, z: int, tmp_path: Path) -> None:
    """In ORT's optimized graph (NCHWc on AVX2/AVX-512 CPUs) the fast forms of Z < C and Z > C leave no plain
    Conv, and the residual and context sums and the ReLU are fused into convolutions (no Add, Relu, Expand)."""
    folded = folded_unit(c, z, 1)
    x = torch.randn(1, c, 32, 32)
    residual = torch.randn(1, z, 32, 32)
    fast = FAST_FORMS[channel_case(c, z)]
    kinds = {}
    for form in ("grouped", fast):
        path, optimized = tmp_path / f"{form}.onnx", tmp_path / f"{form}.opt.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                BottleneckTail(FastCPWC(folded, form), z).eval(),
                (x, residual),
                str(path),
                opset_version=17,
                input_names=["x", "residual"],
                output_names=["y"],
                dynamo=False,
            )
        options = ort.SessionOptions()
        options.optimized_model_filepath = str(optimized)
        options.log_severity_level = 3
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        kinds[form] = {(n.domain, n.op_type) for n in onnx.load(str(optimized)).graph.node}
    if ("com.microsoft.nchwc", "Conv") not in kinds["grouped"]:
        pytest.skip("this CPU has no NCHWc kernels in onnxruntime")
    assert ("", "Conv") in kinds["grouped"]  # the grouped stage 1 stays NCHW
    assert kinds[fast] == {
        ("com.microsoft.nchwc", "Conv"),
        ("com.microsoft.nchwc", "ReorderInput"),
        ("com.microsoft.nchwc", "ReorderOutput"),
    }


@torch.no_grad()
def test_apply_graph_forms_rewrites_every_bottleneck_of_a_folded_detector_exactly() -> None:
    model = build_detector("cpwc_r50_fpn", width=0.25, num_classes=6, min_size=256, max_size=320).eval()
    fold_norms(model)
    image = torch.rand(1, 3, 96, 128)
    expected = model.backbone(image)
    forms = apply_graph_forms(model, "fast")
    got = model.backbone(image)
    assert all(isinstance(m, FastBottleneck) for m in model.backbone.body.layer1)
    assert len(forms) == 2 * (3 + 4 + 6 + 3) + 4  # conv1 and conv3 of 16 blocks, 4 downsamples
    assert set(forms.values()) == {"dw_blocksum", "depthwise", "convexpand_dw"}
    assert forms["backbone.body.layer1.0.conv1"] == "depthwise"  # 16 -> 16
    for name in expected:
        assert relative(got[name], expected[name]) < 1e-5


def test_bad_choices_and_unfolded_models_are_refused() -> None:
    assert parse_choice("lt=dw_reducesum") == {"lt": "dw_reducesum", "eq": "depthwise", "gt": FAST_FORMS["gt"]}
    with pytest.raises(ValueError, match="graph forms 'gt=dw_blocksum'"):
        parse_choice("gt=dw_blocksum")
    with pytest.raises(ValueError, match="does not apply to stage 1 16->64"):
        FastCPWC(folded_unit(16, 64, 1), "dw_blocksum")
    model = build_detector("cpwc_r50_fpn", width=0.125, num_classes=3, min_size=256, max_size=320).eval()
    with pytest.raises(TypeError, match="need folded batch norms"):
        apply_graph_forms(model, "fast")


def test_export_cli_refuses_bad_graph_forms_before_writing_anything(
    tmp_path: Path, seed_export_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    cli = seed_export_cli
    wrong_case = cli("--graph-forms", "gt=dw_blocksum")
    assert wrong_case.returncode == 2 and "--graph-forms: graph forms 'gt=dw_blocksum'" in wrong_case.stderr
    unfolded = cli("--graph-forms", "fast", "--no-fold")
    assert unfolded.returncode == 2 and "--graph-forms needs folded batch norms" in unfolded.stderr
    assert not (tmp_path / "x").exists()
