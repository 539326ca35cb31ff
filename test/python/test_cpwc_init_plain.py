"""Plain -> CPWC initialisation: the CPWC detector computes exactly what the plain one does."""

from __future__ import annotations

import pytest
import torch
import torchvision

from cpwc.init_plain import load_plain_into_cpwc, plain_to_cpwc_state_dict
from cpwc.models import build_detector


def torchvision_named(state_dict: dict) -> dict:
    return {k.replace(".pwc.", "."): v for k, v in state_dict.items()}


def randomize_norms(model: torch.nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, torchvision.ops.misc.FrozenBatchNorm2d):
            m.weight.uniform_(0.5, 1.5)
            m.bias.normal_(0, 0.1)
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)


@torch.no_grad()
def test_width_reduced_cpwc_detector_reproduces_the_plain_one() -> None:
    plain = build_detector("pwc_r50_fpn", num_classes=5, width=0.125, min_size=256, max_size=320).eval()
    randomize_norms(plain)
    cpwc = build_detector("cpwc_r50_fpn", num_classes=5, width=0.125, min_size=256, max_size=320).eval()
    load_plain_into_cpwc(cpwc, torchvision_named(plain.state_dict()))
    assert all(not p.any() for n, p in cpwc.named_parameters() if ".stage1." in n)
    images = [torch.rand(3, 200, 240)]
    plain_features = plain.backbone(plain.transform(images)[0].tensors)
    cpwc_features = cpwc.backbone(cpwc.transform(images)[0].tensors)
    for level in plain_features:
        torch.testing.assert_close(cpwc_features[level], plain_features[level], rtol=0, atol=0)
    expected, got = plain(images)[0], cpwc(images)[0]
    assert len(expected["boxes"]) > 0
    for key in ("boxes", "scores", "labels"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


@torch.no_grad()
def test_full_width_torchvision_state_dict_is_consumed_and_reproduced() -> None:
    reference = torchvision.models.detection.fasterrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, min_size=160, max_size=200
    ).eval()
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    cpwc = build_detector("cpwc_r50_fpn", min_size=160, max_size=200).eval()
    load_plain_into_cpwc(cpwc, reference.state_dict())
    x = torch.rand(1, 3, 160, 192)
    expected = reference.backbone(x)
    got = cpwc.backbone(x)
    assert set(got) == set(expected)
    for level in expected:
        # BatchNorm2d (x - mean) / sqrt(var + eps) and FrozenBatchNorm2d x * scale + shift round differently.
        relative_error = (got[level] - expected[level]).abs().max() / expected[level].abs().max()
        assert relative_error < 1e-5, (level, float(relative_error))


def test_leftover_or_missing_keys_are_errors() -> None:
    cpwc = build_detector("cpwc_r50_fpn", num_classes=5, width=0.125)
    plain = torchvision_named(build_detector("pwc_r50_fpn", num_classes=5, width=0.125).state_dict())
    with pytest.raises(ValueError, match="no place in the CPWC model"):
        plain_to_cpwc_state_dict(cpwc, {**plain, "backbone.extra.weight": torch.zeros(1)})
    del plain["rpn.head.conv.0.0.weight"]
    with pytest.raises(ValueError, match="missing from the plain state dict"):
        plain_to_cpwc_state_dict(cpwc, plain)
