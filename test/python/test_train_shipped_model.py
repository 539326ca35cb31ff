"""The shipped default model (models/shapes-cpwc-r50-fpn): its checkpoint is the one the graphs were
exported from, and both PyTorch and the TypeScript pipeline reach the model card's accuracy on the
committed test split, scored by cpwc-detect's evaluator."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import torch

from cpwc.models import build_detector, count_parameters
from cpwc_references.detection import engine
from cpwc_references.detection.data import CocoDetectionDataset

REPO = Path(__file__).resolve().parents[2]

MODEL_DIR = REPO / "models" / "shapes-cpwc-r50-fpn"
TEST_SPLIT = REPO / "datasets" / "shapes-test"
CARD_AP, CARD_AP50 = 0.846, 0.982  # models/shapes-cpwc-r50-fpn/README.md


@pytest.fixture(scope="module")
def model_json() -> dict:
    return json.loads((MODEL_DIR / "model.json").read_text())


def test_checkpoint_is_the_one_the_graphs_were_exported_from(model_json: dict) -> None:
    digest = hashlib.sha256((MODEL_DIR / "checkpoint.pt").read_bytes()).hexdigest()
    assert model_json["provenance"]["checkpoint_sha256"] == digest
    checkpoint = torch.load(MODEL_DIR / "checkpoint.pt")
    assert "optimizer" not in checkpoint and "rng" not in checkpoint
    assert (
        checkpoint["classes"]
        == model_json["classes"]
        == ["__background__", "circle", "square", "triangle", "star", "ring"]
    )
    model = build_detector(**checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    assert count_parameters(model) == model_json["parameters"] == 2_728_125
    assert checkpoint["config"]["arch"] == model_json["architecture"] == "cpwc_r50_fpn"
    assert checkpoint["config"]["width"] == model_json["width"] == 0.25
    assert model_json["provenance"]["seed"] == 1


def test_model_directory_stays_small() -> None:
    total = sum(p.stat().st_size for p in MODEL_DIR.iterdir())
    assert total < 18_000_000


def test_pytorch_reaches_the_model_cards_accuracy_on_the_test_split(tmp_path: Path) -> None:
    torch.set_num_threads(2)
    checkpoint = torch.load(MODEL_DIR / "checkpoint.pt")
    model = build_detector(**checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    dataset = CocoDetectionDataset(str(TEST_SPLIT / "annotations.json"), str(TEST_SPLIT / "images"))
    engine.write_json(engine.predict_coco_results(model, dataset, torch.device("cpu")), str(tmp_path / "dets.json"))
    stats = engine.run_coco_eval(str(TEST_SPLIT / "annotations.json"), str(tmp_path / "dets.json"))["stats"]
    assert stats[0] == pytest.approx(CARD_AP, abs=0.001)
    assert stats[1] == pytest.approx(CARD_AP50, abs=0.001)


def test_typescript_pipeline_reaches_the_model_cards_accuracy(tmp_path: Path) -> None:
    command = [
        "node",
        str(engine.EVAL_CLI),
        "eval",
        "--annotations",
        str(TEST_SPLIT / "annotations.json"),
        "--images",
        str(TEST_SPLIT / "images"),
        "--model",
        str(MODEL_DIR),
        "--out",
        str(tmp_path / "run"),
        "--json",
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)
    assert completed.returncode == 0, completed.stderr[-2000:]
    result = json.loads(completed.stdout)
    assert result["counts"]["images"] == 150 and result["counts"]["gt_annotations"] == 709
    assert result["stats"][0] == pytest.approx(CARD_AP, abs=0.001)
    assert result["stats"][1] == pytest.approx(CARD_AP50, abs=0.001)
