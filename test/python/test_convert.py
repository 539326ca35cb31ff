"""`npm run convert`: a torchvision fasterrcnn_resnet50_fpn state dict, saved by the current torchvision,
becomes a served CPWC model directory whose outputs are torchvision's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from cpwc.convert import convert, read_state_dict, torchvision_reference
from cpwc.export import ExportError, decode_image, sha256_file
from cpwc.models import COCO_91_CLASSES

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "test" / "fixtures" / "images"


def convert_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpwc.convert", *args], cwd=REPO, capture_output=True, text=True)


@pytest.fixture(scope="module")
def torchvision_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weights fasterrcnn_resnet50_fpn state dict as the current torchvision saves it, with batch
    norm statistics made non-trivial (a fresh model's are mean 0, variance 1)."""
    torch.manual_seed(0)
    model = torchvision.models.detection.fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    path = tmp_path_factory.mktemp("torchvision") / "fasterrcnn_resnet50_fpn_random.pth"
    torch.save(model.state_dict(), path)
    return path


@torch.no_grad()
def test_cpwc_model_outputs_equal_torchvisions_own_model(torchvision_checkpoint: Path, built_dist: Path) -> None:
    state_dict = read_state_dict(torchvision_checkpoint)
    assert any(k.endswith("num_batches_tracked") for k in state_dict)  # BatchNorm2d keys, as saved
    model, errors = convert(state_dict, 320, 512, IMAGES / "landscape.jpg")
    assert set(errors) == {
        "feature_0",
        "feature_1",
        "feature_2",
        "feature_3",
        "feature_pool",
        "detection_boxes",
        "detection_scores",
    }
    assert all(not p.any() for n, p in model.named_parameters() if ".stage1." in n)
    reference = torchvision_reference(state_dict, 91, 320, 512)
    image = decode_image(IMAGES / "portrait.jpg").tensor()
    expected, got = reference([image])[0], model([image])[0]
    assert len(expected["boxes"]) > 0
    for key in ("boxes", "scores", "labels"):
        torch.testing.assert_close(got[key], expected[key], rtol=0, atol=0)


def test_converted_directory_is_a_served_coco_model(
    torchvision_checkpoint: Path, tmp_path: Path, built_dist: Path
) -> None:
    out = tmp_path / "coco"
    result = convert_cli("--torchvision", str(torchvision_checkpoint), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "init check: CPWC vs torchvision max relative error 0.00e+00" in result.stdout
    assert f"serve it: npm start -- --model {out}" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [
        "backbone_rpn.onnx",
        "box_head.onnx",
        "model.json",
        "reference.json",
    ]
    model_json = json.loads((out / "model.json").read_text())
    assert model_json["classes"] == COCO_91_CLASSES and len(model_json["classes"]) == 91
    assert model_json["classes"][1] == "person" and model_json["classes"][3] == "car"
    assert model_json["classes"][12] == "N/A"
    assert model_json["architecture"] == "cpwc_r50_fpn" and model_json["parameters"] == 42_301_462
    assert model_json["transform"]["min_size"] == 800 and model_json["transform"]["max_size"] == 1333
    provenance = model_json["provenance"]
    assert provenance["checkpoint"] == torchvision_checkpoint.name
    assert provenance["checkpoint_sha256"] == sha256_file(torchvision_checkpoint)
    assert provenance["export_command"].startswith("npm run convert -- --torchvision ")
    check = provenance["self_check"]
    assert check["max_rel_error_graph_a"] <= 1e-4 and check["max_rel_error_graph_b"] <= 1e-4
    assert check["input_size"] == [800, 1216]
    reference = json.loads((out / "reference.json").read_text())
    assert [Path(out / image["file"]).resolve() for image in reference["images"]] == [
        (IMAGES / "landscape.jpg").resolve()
    ]


def test_files_that_are_not_torchvision_state_dicts_are_refused(tmp_path: Path) -> None:
    missing = convert_cli("--torchvision", str(tmp_path / "nope.pth"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "--torchvision" in missing.stderr and "no such file" in missing.stderr
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    not_torch = convert_cli("--torchvision", str(text), "--out", str(tmp_path / "x"))
    assert not_torch.returncode == 1 and "not a torch.save file" in not_torch.stderr
    other = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    not_rcnn = convert_cli("--torchvision", str(other), "--out", str(tmp_path / "x"))
    assert not_rcnn.returncode == 1 and "not a torchvision Faster R-CNN state dict" in not_rcnn.stderr
    assert not (tmp_path / "x").exists()


def test_a_state_dict_of_another_architecture_is_an_error(tmp_path: Path) -> None:
    torch.manual_seed(0)
    mobilenet = torchvision.models.detection.fasterrcnn_mobilenet_v3_large_fpn(weights=None, weights_backbone=None)
    with pytest.raises(ExportError, match="does not fit cpwc_r50_fpn"):
        convert(mobilenet.state_dict(), 320, 512, IMAGES / "landscape.jpg")
