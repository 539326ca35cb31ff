"""The int8 twin: ONNX Runtime's static QDQ quantization of graph A, calibrated on real images, checked
against the fp32 model's detections through the TypeScript pipeline, refused when the check fails."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import onnx
import pytest

from cpwc.export import ExportError
from cpwc.quantize import (
    CHECK_BOUNDS,
    calibration_files,
    check_detections,
    graph_a_inputs,
    quantize_model_directory,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SHAPES = REPO_ROOT / "models" / "shapes-cpwc-r50-fpn"
SHAPES_INT8 = REPO_ROOT / "models" / "shapes-cpwc-r50-fpn-int8"
TEST_IMAGES = REPO_ROOT / "datasets" / "shapes-test" / "images"


def detection(class_id: int, score: float, box: tuple[float, float, float, float]) -> dict:
    return {
        "label": str(class_id),
        "class_id": class_id,
        "score": score,
        "box": dict(zip(("xmin", "ymin", "xmax", "ymax"), box)),
    }


def test_the_check_accepts_matching_detections_and_refuses_moved_lost_or_relabelled_ones() -> None:
    fp32 = [detection(1, 0.95, (10, 10, 50, 50)), detection(2, 0.8, (60, 60, 100, 90)), detection(3, 0.3, (0, 0, 5, 5))]
    near = [detection(1, 0.93, (11, 10, 50, 51)), detection(2, 0.75, (60, 61, 100, 90))]  # low-score one may go
    result = check_detections(fp32, near)
    assert result["detections_fp32"] == 2 and result["detections_int8"] == 2 and result["min_iou"] > 0.95
    with pytest.raises(ExportError, match="fp32 detections without an int8 match: \\['2 0.800"):
        check_detections(fp32, near[:1])
    with pytest.raises(ExportError, match="best IoU 0.3"):
        check_detections(fp32, [near[0], detection(2, 0.8, (80, 60, 120, 90))])
    with pytest.raises(ExportError, match="int8 detections without an fp32 match: \\['1 0.900"):
        check_detections(fp32, [*near, detection(1, 0.9, (200, 200, 240, 240))])
    with pytest.raises(ExportError, match="prove nothing"):
        check_detections([detection(1, CHECK_BOUNDS.min_score - 0.01, (0, 0, 9, 9))], [])


def test_calibration_files_are_taken_in_name_order_and_bad_directories_refused(tmp_path: Path) -> None:
    assert [p.name for p in calibration_files(TEST_IMAGES, 2)] == ["test_000000.jpg", "test_000001.jpg"]
    with pytest.raises(ExportError, match="not a directory"):
        calibration_files(tmp_path / "nope", None)
    with pytest.raises(ExportError, match="no .jpg/.png/.webp images"):
        calibration_files(tmp_path, None)
    with pytest.raises(ExportError, match="--calibration-count must be at least 1"):
        calibration_files(TEST_IMAGES, 0)


def test_quantizing_the_shapes_model_writes_a_checked_int8_directory(tmp_path: Path, built_dist: Path) -> None:
    out = tmp_path / "int8"
    model_json = quantize_model_directory(
        # checked on an image of the model's own domain, not among the first 8 it is calibrated on
        SHAPES,
        out,
        TEST_IMAGES,
        TEST_IMAGES / "test_000148.jpg",
        count=8,
        method="Percentile",
    )
    assert model_json == json.loads((out / "model.json").read_text())
    assert model_json["precision"] == "int8" and model_json["name"] == "int8"
    calibration = model_json["calibration"]
    assert calibration["method"] == "Percentile" and calibration["count"] == 8 and calibration["format"] == "QDQ"
    assert calibration["self_check"]["detections_fp32"] >= 1
    assert calibration["self_check"]["min_iou"] >= CHECK_BOUNDS.min_iou
    graph = onnx.load(str(out / "backbone_rpn.onnx")).graph
    kinds = {n.op_type for n in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= kinds
    weight_scales = [n for n in graph.node if n.op_type == "DequantizeLinear" and n.input[0].endswith("_quantized")]
    assert weight_scales and all(any(a.name == "axis" for a in n.attribute) for n in weight_scales)  # per channel
    assert (out / "box_head.onnx").read_bytes() == (SHAPES / "box_head.onnx").read_bytes()
    assert not (out / "checkpoint.pt").exists()


def test_a_failing_check_leaves_the_output_untouched(tmp_path: Path, built_dist: Path) -> None:
    out = tmp_path / "int8"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    tiny = REPO_ROOT / "test" / "fixtures" / "images" / "tiny.png"
    with pytest.raises(ExportError, match="prove nothing"):
        quantize_model_directory(SHAPES, out, TEST_IMAGES, tiny, count=2)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["int8"]  # no staging directory left behind


def test_the_shipped_int8_twin_records_its_calibration_and_check() -> None:
    model_json = json.loads((SHAPES_INT8 / "model.json").read_text())
    assert model_json["precision"] == "int8"
    assert model_json["calibration"]["method"] == "Percentile" and model_json["calibration"]["count"] == 32
    assert model_json["calibration"]["self_check"]["min_iou"] >= CHECK_BOUNDS.min_iou
    size = sum(p.stat().st_size for p in SHAPES_INT8.iterdir())
    assert size < 15 * 2**20


def test_the_export_cli_refuses_half_given_quantization_flags_and_checking_on_a_calibration_image(
    tmp_path: Path, built_dist: Path, seed_export_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    cli = seed_export_cli
    alone = cli("--quantize", "int8")
    assert alone.returncode == 2 and "--quantize and --calibration-images go together" in alone.stderr
    stray = cli("--calibration-images", str(TEST_IMAGES))
    assert stray.returncode == 2 and "go together" in stray.stderr
    assert not (tmp_path / "x").exists()
    with pytest.raises(ExportError, match="is a calibration image"):
        quantize_model_directory(SHAPES, tmp_path / "y", TEST_IMAGES, TEST_IMAGES / "test_000000.jpg", count=3)
    assert not (tmp_path / "y").exists()


def test_speed_only_twins_of_seed_models_are_written_unchecked_and_marked(
    tmp_path: Path, built_dist: Path, seed_export_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    exported = seed_export_cli(
        "--arch", "pwc_r50_fpn", "--width", "0.25", "--num-classes", "3", "--min-size", "128", "--max-size", "192"
    )
    assert exported.returncode == 0, exported.stderr
    seed_model = tmp_path / "x"
    calibration = REPO_ROOT / "test" / "fixtures" / "images"
    model_json = quantize_model_directory(
        seed_model, tmp_path / "int8", calibration, calibration / "landscape.jpg", count=2, speed_only=True
    )
    assert model_json == json.loads((tmp_path / "int8" / "model.json").read_text())
    assert model_json["precision"] == "int8" and model_json["calibration"]["speed_only"] is True
    assert "no detection check was run" in model_json["calibration"]["self_check"]["skipped"]
    assert "min_iou" not in model_json["calibration"]["self_check"]
    # without the flag the check runs on the same random-weight model, and its arbitrary detections fail it
    with pytest.raises(ExportError, match="int8 self-check"):
        quantize_model_directory(seed_model, tmp_path / "checked", calibration, calibration / "landscape.jpg", count=2)
    assert not (tmp_path / "checked").exists()


def test_speed_only_is_refused_for_a_model_exported_from_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="--speed-only: .* was not exported from a seed alone"):
        quantize_model_directory(
            SHAPES, tmp_path / "int8", TEST_IMAGES, TEST_IMAGES / "test_000148.jpg", count=2, speed_only=True
        )
    assert not (tmp_path / "int8").exists()


def test_calibration_inputs_of_mixed_sizes_are_padded_like_the_pipeline_to_the_largest(tmp_path: Path) -> None:
    images = REPO_ROOT / "test" / "fixtures" / "images"
    model_json = json.loads((SHAPES / "model.json").read_text())
    alone = [graph_a_inputs(model_json, [images / name])[0]["image"] for name in ("portrait.jpg", "landscape.jpg")]
    together = [
        feed["image"] for feed in graph_a_inputs(model_json, [images / "portrait.jpg", images / "landscape.jpg"])
    ]
    assert alone[0].shape != alone[1].shape
    height = max(a.shape[2] for a in alone)
    width = max(a.shape[3] for a in alone)
    for single, padded in zip(alone, together):
        assert padded.shape == (1, 3, height, width)
        h, w = single.shape[2:]
        assert (padded[:, :, :h, :w] == single).all()
        assert not padded[:, :, h:, :].any() and not padded[:, :, :, w:].any()


def test_the_quantize_cli_help_names_speed_only_and_box_head() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cpwc.quantize", "--help"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and "--speed-only" in result.stdout and "--box-head" in result.stdout


def test_the_box_head_option_quantizes_graph_b_gemms_and_the_twin_passes_the_check(
    tmp_path: Path, built_dist: Path
) -> None:
    out = tmp_path / "int8"
    model_json = quantize_model_directory(
        SHAPES, out, TEST_IMAGES, TEST_IMAGES / "test_000148.jpg", count=4, method="Percentile", box_head=True
    )
    assert model_json["calibration"]["float_graphs"] == [] and model_json["calibration"]["box_head_quantized_ops"] == [
        "Gemm"
    ]
    assert model_json["calibration"]["self_check"]["min_iou"] >= CHECK_BOUNDS.min_iou
    nodes = onnx.load(str(out / "box_head.onnx")).graph.node
    kinds = [n.op_type for n in nodes]
    assert kinds.count("Gemm") == 4 and "QuantizeLinear" in kinds and kinds.count("RoiAlign") == 4
    gemm_inputs = {i for n in nodes if n.op_type == "Gemm" for i in n.input}
    dequantized = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    assert all(n.input[0] in dequantized and n.input[1] in dequantized for n in nodes if n.op_type == "Gemm")
    assert gemm_inputs & dequantized
    assert (
        model_json["graphs"]["box_head"]["sha256"]
        != json.loads((SHAPES / "model.json").read_text())["graphs"]["box_head"]["sha256"]
    )


def test_the_box_head_option_needs_the_pytorch_weights(tmp_path: Path) -> None:
    without_checkpoint = tmp_path / "no-checkpoint"
    without_checkpoint.mkdir()
    for name in ("model.json", "backbone_rpn.onnx", "box_head.onnx"):
        (without_checkpoint / name).write_bytes((SHAPES / name).read_bytes())
    with pytest.raises(ExportError, match="--box-head: .* not next to its model.json"):
        quantize_model_directory(
            without_checkpoint, tmp_path / "int8", TEST_IMAGES, TEST_IMAGES / "test_000148.jpg", count=2, box_head=True
        )
    assert not (tmp_path / "int8").exists()
