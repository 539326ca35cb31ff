"""INT8 twin of an fp32 model directory: graph A statically quantized with ONNX Runtime's own quantizer.

    quantize_model_directory(fp32_dir, out_dir, calibration_images, check_image)

QDQ format, per-channel int8 weights, uint8 activations, calibrated on the user's images preprocessed as
the pipeline does (decode with the project's decoder, torchvision's GeneralizedRCNNTransform from
model.json). Graph B (RoIAlign + the box head's Gemms) stays fp32 unless `box_head=True` (`--box-head`):
then its Gemms are quantized too (RoIAlign stays float; box_head.py). The result is checked against the fp32
model's detections on a check image through the TypeScript pipeline (`cpwc-detect detect`), and not
written if the check fails (CHECK_BOUNDS).

`speed_only=True` (`--speed-only`) is for benchmarks of random-weight models only: such weights give no
confident detection, so the check cannot apply. It is refused for a model exported from a checkpoint (whose
twin must pass the check), skips the check and marks the twin in model.json (`calibration.speed_only`,
`calibration.self_check.skipped`) as never checked.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from ..export import REPO_ROOT, ExportError, decode_image
from .box_head import BOX_HEAD_OPS, box_head_feeds

CLI = REPO_ROOT / "dist" / "cli" / "index.js"
METHODS = ("MinMax", "Entropy", "Percentile")
DEFAULT_METHOD = "Percentile"  # best AP of the three on datasets/shapes-test (docs/performance.md)
QUANTIZED_OPS = ("Conv", "Add")  # every convolution, CPWC context included, and the residual/FPN adds
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


@dataclass(frozen=True)
class CheckBounds:
    """Every fp32 detection scoring >= min_score must have an int8 detection of its class with IoU >=
    min_iou and |score difference| <= max_score_delta, and every int8 detection scoring >= min_score one
    in fp32 alike. (The shipped shapes model's int8 twin: min IoU 0.82, |score difference| <= 0.02 on its
    check image, AP loss 0.0008 on datasets/shapes-test; docs/performance.md.)"""

    min_score: float = 0.7
    min_iou: float = 0.75
    max_score_delta: float = 0.15


CHECK_BOUNDS = CheckBounds()


def calibration_files(directory: Path, count: int | None) -> list[Path]:
    """The first `count` images of `directory` in name order (all when count is None)."""
    if not directory.is_dir():
        raise ExportError(f"--calibration-images {directory}: not a directory")
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if count is not None:
        if count < 1:
            raise ExportError(f"--calibration-count must be at least 1, got {count}")
        files = files[:count]
    if not files:
        raise ExportError(f"--calibration-images {directory}: no .jpg/.png/.webp images")
    return files


def pipeline_transform(model_json: dict[str, object]) -> GeneralizedRCNNTransform:
    spec = model_json["transform"]
    assert isinstance(spec, dict)
    return GeneralizedRCNNTransform(
        spec["min_size"], spec["max_size"], spec["image_mean"], spec["image_std"], size_divisible=spec["size_divisible"]
    ).eval()


def graph_a_inputs(model_json: dict[str, object], images: list[Path]) -> list[dict[str, np.ndarray]]:
    """Graph A's input for each image, exactly as the pipeline builds it, then zero-padded (bottom and
    right, as the pipeline pads) to the largest height and width among them: ONNX Runtime's histogram
    calibrators (Percentile, Entropy) stack each tensor over the images and fail on mixed sizes."""
    transform = pipeline_transform(model_json)
    tensors = []
    with torch.no_grad():
        for path in images:
            tensors.append(transform([decode_image(path).tensor()])[0].tensors.numpy())
    height = max(t.shape[2] for t in tensors)
    width = max(t.shape[3] for t in tensors)
    pad = [((0, 0), (0, 0), (0, height - t.shape[2]), (0, width - t.shape[3])) for t in tensors]
    return [{"image": np.pad(t, p)} for t, p in zip(tensors, pad)]


def quantize_graph(
    source: Path, target: Path, feeds: list[dict[str, np.ndarray]], method: str, ops: tuple[str, ...] = QUANTIZED_OPS
) -> None:
    """Static QDQ quantization of `ops` in one graph (graph A by default; graph B with --box-head)."""
    # Imported here so that the fp32 export does not need onnxruntime's Python package.
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class FeedReader(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds = iter(feeds)

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.feeds, None)

    if method not in METHODS:
        raise ExportError(f"calibration method must be one of {METHODS}, got {method!r}")
    quantize_static(
        str(source),
        str(target),
        FeedReader(),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=list(ops),
        calibrate_method=getattr(CalibrationMethod, method),
    )
    onnx.checker.check_model(str(target))


def detect(model_dir: Path, image: Path) -> list[dict[str, object]]:
    """The pipeline's detections (`cpwc-detect detect --json`) of one image."""
    result = subprocess.run(
        ["node", str(CLI), "detect", "--model", str(model_dir), "--json", str(image)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ExportError(f"cpwc-detect detect failed on {model_dir}: {result.stderr.strip()}")
    return json.loads(result.stdout)[0]["detections"]


def iou(a: dict[str, float], b: dict[str, float]) -> float:
    w = max(0.0, min(a["xmax"], b["xmax"]) - max(a["xmin"], b["xmin"]))
    h = max(0.0, min(a["ymax"], b["ymax"]) - max(a["ymin"], b["ymin"]))
    inter = w * h
    union = (
        (a["xmax"] - a["xmin"]) * (a["ymax"] - a["ymin"]) + (b["xmax"] - b["xmin"]) * (b["ymax"] - b["ymin"]) - inter
    )
    return inter / union if union > 0 else 0.0


def unmatched(reference: list[dict], candidate: list[dict], bounds: CheckBounds) -> list[str]:
    """Detections of `reference` scoring >= min_score with no counterpart in `candidate` within bounds."""
    misses = []
    for det in reference:
        if det["score"] < bounds.min_score:
            continue
        best = max(
            (
                iou(det["box"], other["box"])
                for other in candidate
                if other["class_id"] == det["class_id"] and abs(other["score"] - det["score"]) <= bounds.max_score_delta
            ),
            default=0.0,
        )
        if best < bounds.min_iou:
            misses.append(f"{det['label']} {det['score']:.3f} (best IoU {best:.3f})")
    return misses


def check_detections(fp32: list[dict], int8: list[dict], bounds: CheckBounds = CHECK_BOUNDS) -> dict[str, object]:
    """The int8 self-check; raises ExportError naming the detections outside `bounds`."""
    if not any(d["score"] >= bounds.min_score for d in fp32):
        raise ExportError(
            f"int8 self-check: the fp32 model has no detection scoring >= {bounds.min_score} on the "
            "check image, so the check would prove nothing; pass a --check-image with objects"
        )
    lost, extra = unmatched(fp32, int8, bounds), unmatched(int8, fp32, bounds)
    if lost or extra:
        raise ExportError(
            f"int8 self-check failed (bounds {bounds}): fp32 detections without an int8 match: "
            f"{lost}; int8 detections without an fp32 match: {extra}"
        )
    ious = [
        max((iou(d["box"], o["box"]) for o in int8 if o["class_id"] == d["class_id"]), default=0.0)
        for d in fp32
        if d["score"] >= bounds.min_score
    ]
    return {
        "detections_fp32": sum(d["score"] >= bounds.min_score for d in fp32),
        "detections_int8": sum(d["score"] >= bounds.min_score for d in int8),
        "min_iou": min(ious, default=1.0),
        "bounds": bounds.__dict__,
    }


def refuse_speed_only(source: Path, model_json: dict[str, object]) -> None:
    """Raises unless `source` holds randomly initialised weights (a seed export, no checkpoint)."""
    provenance = model_json.get("provenance") or {}
    assert isinstance(provenance, dict)
    if provenance.get("checkpoint") or provenance.get("seed") is None:
        raise ExportError(
            f"--speed-only: {source} was not exported from a seed alone (provenance checkpoint "
            f"{provenance.get('checkpoint')!r}, seed {provenance.get('seed')!r}); only random-weight models, which "
            "no detection check can apply to, may skip it: drop --speed-only"
        )


def skipped_check(model_json: dict[str, object]) -> dict[str, object]:
    provenance = model_json.get("provenance") or {}
    assert isinstance(provenance, dict)
    return {
        "skipped": f"--speed-only: random seed-{provenance.get('seed')} weights; no detection check was run. "
        "For speed measurements only: its detections are not checked against fp32."
    }


def repo_relative(path: Path) -> str:
    resolved = path.resolve()
    return str(resolved.relative_to(REPO_ROOT)) if resolved.is_relative_to(REPO_ROOT) else str(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def quantize_model_directory(
    source: Path,
    out: Path,
    calibration_dir: Path,
    check_image: Path,
    count: int | None = None,
    method: str = DEFAULT_METHOD,
    name: str | None = None,
    command: str = "",
    source_label: str | None = None,
    speed_only: bool = False,
    box_head: bool = False,
) -> dict[str, object]:
    """Writes the int8 twin of `source` to `out` (replaced) and returns its model.json; `out` is left
    untouched when anything, the detection check included, fails. `speed_only`: see the module doc.
    `box_head`: graph B's Gemms quantized too (calibrated on graph B's inputs for the same images)."""
    model_json = json.loads((source / "model.json").read_text())
    if model_json.get("precision", "fp32") != "fp32":
        raise ExportError(f"{source}: model.json precision is {model_json['precision']!r}; quantize an fp32 model")
    if speed_only:
        refuse_speed_only(source, model_json)
    images = calibration_files(calibration_dir, count)
    if check_image.resolve() in {p.resolve() for p in images}:
        raise ExportError(f"check image {check_image} is a calibration image; the check must not depend on them")
    feeds_b = box_head_feeds(source, images) if box_head else []  # first: it fails without the PyTorch weights
    with tempfile.TemporaryDirectory(prefix="cpwc-int8-", dir=out.resolve().parent) as tmp:
        staged = Path(tmp) / "model"
        shutil.copytree(source, staged, ignore=shutil.ignore_patterns("checkpoint.pt", "reference.json", "README.md"))
        graph_a = model_json["graphs"]["backbone_rpn"]["file"]
        quantize_graph(source / graph_a, staged / graph_a, graph_a_inputs(model_json, images), method)
        model_json["graphs"]["backbone_rpn"]["sha256"] = sha256(staged / graph_a)
        graph_b = model_json["graphs"]["box_head"]["file"]
        if box_head:
            quantize_graph(source / graph_b, staged / graph_b, feeds_b, method, BOX_HEAD_OPS)
            model_json["graphs"]["box_head"]["sha256"] = sha256(staged / graph_b)
        model_json["name"] = name or out.resolve().name
        model_json["precision"] = "int8"
        model_json["calibration"] = {
            "method": method,
            "format": "QDQ",
            "weights": "int8 per channel",
            "activations": "uint8 per tensor",
            "quantized_ops": list(QUANTIZED_OPS),
            "float_graphs": [] if box_head else ["box_head"],
            **({"box_head_quantized_ops": list(BOX_HEAD_OPS)} if box_head else {}),
            "images": str(calibration_dir),
            "count": len(images),
            "files_sha256": hashlib.sha256("".join(sha256(p) for p in images).encode()).hexdigest(),
            "source_model": source_label or str(source),
            "source_graph_sha256": sha256(source / graph_a),
            "command": command,
        }
        if speed_only:
            model_json["calibration"]["speed_only"] = True
            model_json["calibration"]["self_check"] = skipped_check(model_json)
        else:
            (staged / "model.json").write_text(json.dumps(model_json, indent=2) + "\n")
            check = check_detections(detect(source, check_image), detect(staged, check_image))
            model_json["calibration"]["self_check"] = {"image": repo_relative(check_image), **check}
        (staged / "model.json").write_text(json.dumps(model_json, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        staged.rename(out)
    return model_json
