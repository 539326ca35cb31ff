"""CPWC ResNet-50: torchvision's module names and parameter count when plain, the paper's Table 2
parameter counts and MACs with CPWC, width multiplier and norm choices."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.ops.misc import FrozenBatchNorm2d

from cpwc.flops import count_macs
from cpwc.layers import CPWC
from cpwc.resnet import CPWCResNet, resnet50_cpwc


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_plain_variant_is_torchvision_resnet50_with_renamed_1x1_weights() -> None:
    ours = resnet50_cpwc(context="pwc")
    reference = torchvision.models.resnet50()
    assert n_params(ours) == n_params(reference) == 25_557_032
    renamed = {k.replace(".pwc.weight", ".weight"): v.shape for k, v in ours.state_dict().items()}
    assert renamed == {k: v.shape for k, v in reference.state_dict().items()}


def test_plain_variant_computes_what_torchvision_computes() -> None:
    ours = resnet50_cpwc(context="pwc").eval()
    reference = torchvision.models.resnet50().eval()
    ours.load_state_dict(
        {
            k.replace(".weight", ".pwc.weight") if k in _one_by_one_keys(reference) else k: v
            for k, v in reference.state_dict().items()
        }
    )
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-5)


def _one_by_one_keys(reference: torch.nn.Module) -> set:
    return {
        f"{name}.weight"
        for name, m in reference.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)
    }


@pytest.mark.parametrize(
    "context,params,macs_224,paper_millions,paper_gflops",
    [
        ("pwc", 25_557_032, 4_089_184_256, "25.56M", 4.0),
        ("cpwc_no_stage2", 25_845_608, 4_202_983_424, "25.84M", 4.2),
        ("cpwc", 26_050_088, 4_283_365_376, "26.05M", 4.3),
    ],
)
def test_imagenet_classifier_parameters_and_macs_match_paper_table_2(
    context: str, params: int, macs_224: int, paper_millions: str, paper_gflops: float
) -> None:
    model = resnet50_cpwc(context=context)
    macs, _ = count_macs(model, (224, 224))
    print(
        f"{context}: {n_params(model):,d} parameters (paper {paper_millions}), "
        f"{macs:,d} MACs = {macs / 1e9:.3f} G (paper {paper_gflops}G)"
    )
    assert n_params(model) == params
    assert macs == macs_224
    # The paper's rounding is loose (25.8456M printed as 25.84M, 4.089 GMACs as 4.0G, 4.283 as 4.3G).
    assert abs(params / 1e6 - float(paper_millions[:-1])) < 0.01
    assert abs(macs / 1e9 - paper_gflops) < 0.1


def test_mac_counts_are_exact_for_a_known_model() -> None:
    # torchvision's resnet50 at 224x224 is 4,089,184,256 multiply-accumulates (4.09 GMACs).
    macs, per_module = count_macs(torchvision.models.resnet50(), (224, 224))
    assert macs == 4_089_184_256
    assert per_module["fc"] == 2048 * 1000
    assert per_module["conv1"] == 112 * 112 * 64 * 3 * 7 * 7


def test_every_1x1_convolution_is_a_cpwc() -> None:
    model = resnet50_cpwc(context="cpwc")
    cpwc_names = {name for name, m in model.named_modules() if isinstance(m, CPWC)}
    assert len(cpwc_names) == 16 * 2 + 4  # conv1 and conv3 of 16 bottlenecks, 4 downsamples
    assert "layer1.0.downsample.0" in cpwc_names and "layer4.2.conv3" in cpwc_names
    plain_1x1 = [
        name
        for name, m in model.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1) and ".pwc" not in name
    ]
    assert plain_1x1 == []


def test_width_multiplier_scales_and_rounds_channels() -> None:
    model = CPWCResNet(width=0.125, num_classes=None)
    assert model.conv1.out_channels == 8
    assert [getattr(model, f"layer{i}")[0].conv2.out_channels for i in range(1, 5)] == [8, 16, 32, 64]
    assert model.stage_out_channels == [32, 64, 128, 256]
    tiny = CPWCResNet(width=0.05, num_classes=None)
    assert tiny.conv1.out_channels == 8 and tiny.layer1[0].conv2.out_channels == 8
    assert CPWCResNet(width=0.3, num_classes=None).stage_out_channels == [77, 154, 307, 614]
    assert tuple(model(torch.randn(1, 3, 64, 64)).shape) == (1, 256, 2, 2)


@pytest.mark.parametrize(
    "norm,cls", [("frozen_bn", FrozenBatchNorm2d), ("bn", torch.nn.BatchNorm2d), ("gn", torch.nn.GroupNorm)]
)
def test_norm_layer_is_pluggable(norm: str, cls: type) -> None:
    model = CPWCResNet(width=0.125, norm=norm, num_classes=10)
    assert isinstance(model.bn1, cls) and isinstance(model.layer3[0].downsample[1], cls)
    assert tuple(model(torch.randn(2, 3, 64, 64)).shape) == (2, 10)
    with pytest.raises(ValueError, match="norm must be one of"):
        CPWCResNet(norm="layernorm")
