"""Export to a model directory: the onnxruntime self-check gate, model.json, empty RoI levels, the RoIAlign
coordinate mode, checkpoints, and the full-size cpwc_r50_fpn."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from cpwc.export import (
    OPSET,
    ExportError,
    decode_image,
    export_box_head,
    relative_error,
    roi_align_modes,
    run_ort,
    run_torchvision,
    self_check,
    sha256_file,
    split_by_level,
    torchvision_box_head,
)
from cpwc.models import build_detector, count_parameters, detector_config

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "test" / "fixtures" / "images"
TINY_ARGS = [
    "--arch",
    "cpwc_r50_fpn",
    "--width",
    "0.125",
    "--num-classes",
    "6",
    "--min-size",
    "320",
    "--max-size",
    "512",
]
MODEL_JSON_KEYS = {
    "format",
    "format_version",
    "name",
    "architecture",
    "width",
    "context",
    "parameters",
    "classes",
    "transform",
    "coordinates",
    "box_coder",
    "rpn",
    "roi_heads",
    "graphs",
    "provenance",
    "graph_forms",
}


def export_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cpwc.export", *args], cwd=REPO, capture_output=True, text=True)


def tiny_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_detector("cpwc_r50_fpn", width=0.125, num_classes=6, min_size=320, max_size=512).eval()


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory, built_dist: Path) -> Path:
    out = tmp_path_factory.mktemp("tiny") / "tiny-fpn"
    result = export_cli(
        *TINY_ARGS,
        "--seed",
        "0",
        "--out",
        str(out),
        "--reference-images",
        str(IMAGES / "portrait.jpg"),
        str(IMAGES / "tiny.png"),
        "--check-image",
        str(IMAGES / "landscape.jpg"),
    )
    assert result.returncode == 0, result.stderr
    assert "self-check on" in result.stdout
    return out


def test_tiny_export_writes_a_model_directory_that_passes_the_gate(tiny_export: Path) -> None:
    model_json = json.loads((tiny_export / "model.json").read_text())
    assert set(model_json) == MODEL_JSON_KEYS
    assert model_json["format"] == "cpwc-detect-model" and model_json["format_version"] == 1
    assert (
        model_json["architecture"] == "cpwc_r50_fpn"
        and model_json["context"] == "cpwc"
        and model_json["width"] == 0.125
    )
    assert model_json["parameters"] == count_parameters(tiny_model()) == 719_221
    assert model_json["classes"] == ["__background__", "class_1", "class_2", "class_3", "class_4", "class_5"]
    assert model_json["transform"]["min_size"] == 320 and model_json["transform"]["max_size"] == 512
    assert [level["name"] for level in model_json["rpn"]["levels"]] == ["0", "1", "2", "3", "pool"]
    assert [level["stride"] for level in model_json["rpn"]["levels"]] == [4, 8, 16, 32, 64]
    assert model_json["rpn"]["levels"][2]["anchor_sizes"] == [128]
    assert model_json["roi_heads"]["level_mapper"] == {
        "k_min": 2,
        "k_max": 5,
        "canonical_scale": 224,
        "canonical_level": 4,
        "eps": 1e-6,
    }
    assert model_json["coordinates"]["roi_align"]["onnx_coordinate_transformation_mode"] == "output_half_pixel"
    check = model_json["provenance"]["self_check"]
    assert 0 < check["max_rel_error_graph_a"] <= 1e-4 and 0 < check["max_rel_error_graph_b"] <= 1e-4
    assert check["image"] == "test/fixtures/images/landscape.jpg"
    assert model_json["provenance"]["seed"] == 0 and model_json["provenance"]["checkpoint"] is None
    assert model_json["provenance"]["export_command"].startswith("npm run export -- --arch cpwc_r50_fpn")
    for graph in model_json["graphs"].values():
        path = tiny_export / graph["file"]
        assert graph["sha256"] == sha256_file(path)
        assert graph["opset"] == OPSET == 18
        onnx_model = onnx.load(str(path))
        onnx.checker.check_model(onnx_model, full_check=True)
        assert [i.name for i in onnx_model.graph.input] == [i["name"] for i in graph["inputs"]]
        assert [o.name for o in onnx_model.graph.output] == [o["name"] for o in graph["outputs"]]
        assert max(op.version for op in onnx_model.opset_import if op.domain in ("", "ai.onnx")) == 18
    outputs_a = [o["name"] for o in model_json["graphs"]["backbone_rpn"]["outputs"]]
    assert outputs_a == [f"feature_{n}" for n in "0123"] + [f"objectness_{n}" for n in ["0", "1", "2", "3", "pool"]] + [
        f"bbox_deltas_{n}" for n in ["0", "1", "2", "3", "pool"]
    ]


def test_reference_json_holds_torchvision_outputs_on_the_decoded_pixels(tiny_export: Path) -> None:
    reference = json.loads((tiny_export / "reference.json").read_text())
    assert reference["model"] == "tiny-fpn" and len(reference["images"]) == 2
    portrait, tiny = reference["images"]
    assert Path(tiny_export / portrait["file"]).resolve() == (IMAGES / "portrait.jpg").resolve()
    assert (portrait["width"], portrait["height"]) == (384, 512)
    # torchvision floors: 512 * (320 / 384) = 426.67 -> 426; 40 * (320 / 30) = 426.67 -> 426
    assert portrait["resized"] == {"width": 320, "height": 426}
    assert (tiny["width"], tiny["height"]) == (40, 30) and tiny["resized"] == {"width": 426, "height": 320}
    model = tiny_model()
    run = run_torchvision(model, decode_image(IMAGES / "portrait.jpg").tensor())
    assert np.array_equal(np.array(portrait["proposals"], dtype=np.float32), run.proposals.numpy())
    assert [d["score"] for d in portrait["detections"]] == [
        float(np.float32(s)) for s in run.detections["scores"].tolist()
    ]
    assert [d["class_id"] for d in portrait["detections"]] == run.detections["labels"].tolist()


def test_graph_b_accepts_empty_levels_in_onnxruntime(tiny_export: Path, built_dist: Path) -> None:
    model = tiny_model()
    run = run_torchvision(model, decode_image(IMAGES / "landscape.jpg").tensor())
    by_level, order = split_by_level(model, run.proposals)
    logits, _ = torchvision_box_head(model, run, run.proposals)
    logits = logits[order]
    feeds = {f"feature_{n}": run.features[n].numpy() for n in "0123"}
    feeds.update({f"rois_{n}": by_level[n].numpy() for n in "0123"})
    for empty in ["1", "3"]:
        feeds[f"rois_{empty}"] = np.zeros((0, 4), np.float32)
    got = run_ort(tiny_export / "box_head.onnx", feeds)
    expected_rows = torch.cat(
        [
            logits[: len(by_level["0"])],
            logits[
                len(by_level["0"]) + len(by_level["1"]) : len(by_level["0"]) + len(by_level["1"]) + len(by_level["2"])
            ],
        ]
    )
    assert len(by_level["0"]) > 0 and len(by_level["1"]) > 0  # the emptied level really had RoIs
    assert got["class_logits"].shape == (len(expected_rows), 6)
    assert relative_error(got["class_logits"], expected_rows.numpy()) < 1e-5


def landscape_box_head_feeds(model: torch.nn.Module) -> tuple:
    run = run_torchvision(model, decode_image(IMAGES / "landscape.jpg").tensor())
    by_level, order = split_by_level(model, run.proposals)
    logits, _ = torchvision_box_head(model, run, run.proposals)
    feeds = {f"feature_{n}": run.features[n].numpy() for n in "0123"}
    feeds.update({f"rois_{n}": by_level[n].numpy() for n in "0123"})
    return feeds, logits[order].numpy()


def test_roi_align_is_exported_with_output_half_pixel_because_half_pixel_would_fail_the_gate(
    tiny_export: Path, tmp_path: Path, built_dist: Path
) -> None:
    assert roi_align_modes(tiny_export / "box_head.onnx") == ["output_half_pixel"] * 4
    shifted_model = onnx.load(str(tiny_export / "box_head.onnx"))
    for node in shifted_model.graph.node:
        if node.op_type == "RoiAlign":
            for attribute in node.attribute:
                if attribute.name == "coordinate_transformation_mode":
                    attribute.s = b"half_pixel"  # what torchvision 0.14's symbolic produced (aligned=True)
    shifted_path = tmp_path / "box_head_half_pixel.onnx"
    onnx.save(shifted_model, str(shifted_path))
    assert roi_align_modes(shifted_path) == ["half_pixel"] * 4
    feeds, expected = landscape_box_head_feeds(tiny_model())
    assert relative_error(run_ort(tiny_export / "box_head.onnx", feeds)["class_logits"], expected) < 1e-5
    assert relative_error(run_ort(shifted_path, feeds)["class_logits"], expected) > 1e-3  # far outside the 1e-4 gate


def test_static_roi_counts_fail_the_gate(tiny_export: Path, tmp_path: Path, built_dist: Path) -> None:
    """The torch.export-based exporter specializes every dimension that dynamic_shapes does not name (the
    TorchScript exporter's dynamic_axes are not converted for graph B's *inputs): without the RoI counts
    declared dynamic, graph B only takes the example's 2 RoIs per level, and the gate refuses it."""
    model = tiny_model()
    (tmp_path / "backbone_rpn.onnx").write_bytes((tiny_export / "backbone_rpn.onnx").read_bytes())
    spec = export_box_head(model, tmp_path / "box_head.onnx", dynamic_rois=False)
    assert [i["name"] for i in spec["inputs"]][4:] == ["rois_0", "rois_1", "rois_2", "rois_3"]
    static = onnx.load(str(tmp_path / "box_head.onnx"))
    rois_dims = [
        [d.dim_value for d in i.type.tensor_type.shape.dim] for i in static.graph.input if i.name.startswith("rois_")
    ]
    assert rois_dims == [[2, 4]] * 4
    with pytest.raises(ExportError, match="onnxruntime failed on box_head.onnx"):
        self_check(model, tmp_path, decode_image(IMAGES / "landscape.jpg"))
    dynamic = onnx.load(str(tiny_export / "box_head.onnx"))
    assert [i.type.tensor_type.shape.dim[0].dim_param for i in dynamic.graph.input if i.name.startswith("rois_")] == [
        "K_0",
        "K_1",
        "K_2",
        "K_3",
    ]


def test_self_check_fails_loudly_when_the_graphs_do_not_match_the_model(tiny_export: Path) -> None:
    model = tiny_model()
    with torch.no_grad():
        model.backbone.body.layer2[0].conv1.stage1.convs[0].weight.mul_(1.01)
    with pytest.raises(ExportError, match="self-check failed"):
        self_check(model, tiny_export, decode_image(IMAGES / "landscape.jpg"))


def test_checkpoint_export_rebuilds_from_its_config(tmp_path: Path, built_dist: Path) -> None:
    torch.manual_seed(3)
    model = build_detector("cpwc_r50_c4", width=0.125, num_classes=3, min_size=256, max_size=320, norm="bn")
    checkpoint = tmp_path / "checkpoint.pt"
    torch.save(
        {
            "model": model.state_dict(),
            "config": detector_config(model),
            "classes": ["__background__", "circle", "square"],
            "training_data": "shapes train split, seed 0",
        },
        checkpoint,
    )
    out = tmp_path / "c4"
    result = export_cli(
        "--checkpoint", str(checkpoint), "--out", str(out), "--check-image", str(IMAGES / "rocket.webp")
    )
    assert result.returncode == 0, result.stderr
    model_json = json.loads((out / "model.json").read_text())
    assert model_json["architecture"] == "cpwc_r50_c4"
    assert model_json["classes"] == ["__background__", "circle", "square"]
    assert model_json["rpn"]["levels"] == [
        {"name": "0", "stride": 16, "anchor_sizes": [32, 64, 128, 256, 512], "aspect_ratios": [0.5, 1.0, 2.0]}
    ]
    assert model_json["rpn"]["num_anchors_per_location"] == 15
    assert model_json["roi_heads"]["featmap_names"] == ["0"]
    assert model_json["roi_heads"]["level_mapper"]["k_min"] == model_json["roi_heads"]["level_mapper"]["k_max"] == 4
    provenance = model_json["provenance"]
    assert provenance["checkpoint"] == "checkpoint.pt" and provenance["checkpoint_sha256"] == sha256_file(checkpoint)
    assert provenance["training_data"] == "shapes train split, seed 0" and provenance["seed"] is None
    assert roi_align_modes(out / "box_head.onnx") == ["output_half_pixel"]


def test_bad_arguments_are_refused_with_a_message(tmp_path: Path) -> None:
    missing = export_cli("--checkpoint", str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x"))
    assert missing.returncode == 2 and "no such file" in missing.stderr
    both = export_cli("--checkpoint", "a.pt", "--seed", "1", "--out", str(tmp_path / "x"))
    assert both.returncode == 2 and "not allowed with" in both.stderr
    not_a_checkpoint = tmp_path / "weights.pt"
    torch.save({"weights": torch.zeros(1)}, not_a_checkpoint)
    bad = export_cli("--checkpoint", str(not_a_checkpoint), "--out", str(tmp_path / "x"))
    assert bad.returncode == 1 and "expected a dict with 'model'" in bad.stderr
    assert not (tmp_path / "x").exists()


def test_full_size_cpwc_r50_fpn_exports_and_passes_the_gate(tmp_path: Path, built_dist: Path) -> None:
    out = tmp_path / "cpwc_r50_fpn"
    started = time.perf_counter()
    result = export_cli("--arch", "cpwc_r50_fpn", "--seed", "0", "--out", str(out))
    seconds = time.perf_counter() - started
    print(f"full-size export: {seconds:.1f} s; {result.stdout.strip()}")
    assert result.returncode == 0, result.stderr
    model_json = json.loads((out / "model.json").read_text())
    assert model_json["parameters"] == 42_301_462
    assert model_json["transform"]["min_size"] == 800 and model_json["transform"]["max_size"] == 1333
    assert len(model_json["classes"]) == 91 and model_json["classes"][12] == "N/A"
    check = model_json["provenance"]["self_check"]
    assert check["input_size"] == [800, 1216]
    assert check["max_rel_error_graph_a"] <= 1e-4 and check["max_rel_error_graph_b"] <= 1e-4
    assert all(count > 0 for count in check["rois_per_level"].values())  # every RoIAlign scale was checked
    onnx_bytes = sum((out / name).stat().st_size for name in ("backbone_rpn.onnx", "box_head.onnx"))
    # float32 weights, folded norms; the fast graph forms add their 0/1 block-sum and channel-repeat weights
    # (measured: +1.6 % of the bytes on torch 2.15)
    assert 4 * 42_301_462 * 0.99 < onnx_bytes < 4 * 42_301_462 * 1.03
