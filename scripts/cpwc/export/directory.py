"""The whole export: a model to a self-describing model directory, checked before it is written."""

from __future__ import annotations

import copy
import datetime
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torchvision
from torchvision.models.detection import FasterRCNN

from ..graph_forms import apply_graph_forms, graph_forms_record
from ..models import build_detector, class_names
from .errors import ExportError
from .folding import fold_norms
from .graphs import OPSET, check_onnx, export_backbone_rpn, export_box_head, roi_align_modes, roi_levels, roi_strides
from .manifest import git_commit, model_description, reference_entry, sha256_file
from .runtime import REPO_ROOT, decode_image
from .self_check import SelfCheck, self_check
from .torchvision_run import run_torchvision


@dataclass
class ExportResult:
    model_json: dict[str, Any]
    check: SelfCheck
    seconds: dict[str, float]


def load_model(
    checkpoint: Path | None,
    seed: int | None,
    arch: str,
    width: float,
    num_classes: int | None,
    min_size: int | None,
    max_size: int | None,
) -> tuple[FasterRCNN, list[str], dict[str, Any]]:
    """The model to export, its class names and the checkpoint's extra fields."""
    overrides: dict[str, Any] = {}
    if min_size is not None:
        overrides["min_size"] = min_size
    if max_size is not None:
        overrides["max_size"] = max_size
    if checkpoint is not None:
        ckpt = torch.load(checkpoint, map_location="cpu", weights_only=True)
        if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
            raise ExportError(f"{checkpoint}: expected a dict with 'model' (state dict) and 'config' (detector_config)")
        config = {**ckpt["config"], **overrides}
        if num_classes is not None and num_classes != config["num_classes"]:
            raise ExportError(f"--num-classes {num_classes} contradicts the checkpoint's {config['num_classes']}")
        model = build_detector(**config)
        model.load_state_dict(ckpt["model"])
        classes = class_names(config["num_classes"], ckpt.get("classes"))
        extra = {k: v for k, v in ckpt.items() if k not in ("model", "optimizer")}
    else:
        assert seed is not None
        torch.manual_seed(seed)
        config = {"arch": arch, "width": width, "num_classes": num_classes or 91, **overrides}
        model = build_detector(**config)
        classes = class_names(config["num_classes"])
        extra = {}
    return model.eval(), classes, extra


def export_model_directory(
    model: FasterRCNN,
    out: Path,
    classes: list[str],
    name: str,
    check_image: Path,
    reference_images: Sequence[Path] = (),
    checkpoint: Path | None = None,
    checkpoint_extra: dict[str, Any] | None = None,
    seed: int | None = None,
    export_command: str = "",
    threads: int = 2,
    fold: bool = True,
    graph_forms: str | None = None,
) -> ExportResult:
    """Writes backbone_rpn.onnx, box_head.onnx, model.json (and reference.json) into `out`; fails loudly."""
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    gate_image = decode_image(check_image)
    decoded_references = [decode_image(p) for p in reference_images]
    # torchvision's MultiScaleRoIAlign infers its scales on the first call: make that the full-size check image.
    started = time.perf_counter()
    gate_run = run_torchvision(model, gate_image.tensor())
    seconds["torchvision_forward"] = time.perf_counter() - started
    expected_scales = [1.0 / s for s in roi_strides(model).values()]
    if [float(s) for s in model.roi_heads.box_roi_pool.scales] != expected_scales:
        raise ExportError(f"RoIAlign scales {model.roi_heads.box_roi_pool.scales} are not 1/stride {expected_scales}")

    export_model = copy.deepcopy(model)
    if fold:
        fold_norms(export_model)
    unit_forms = apply_graph_forms(export_model, graph_forms) if graph_forms is not None else None
    started = time.perf_counter()
    spec_a = export_backbone_rpn(export_model, out / "backbone_rpn.onnx")
    spec_b = export_box_head(export_model, out / "box_head.onnx")
    check_onnx(out / "backbone_rpn.onnx", spec_a)
    check_onnx(out / "box_head.onnx", spec_b)
    seconds["onnx_export"] = time.perf_counter() - started
    if roi_align_modes(out / "box_head.onnx") != ["output_half_pixel"] * len(roi_levels(model)):
        raise ExportError(f"box_head.onnx RoiAlign modes are {roi_align_modes(out / 'box_head.onnx')}")

    started = time.perf_counter()
    check = self_check(model, out, gate_image, threads, gate_run)
    seconds["self_check"] = time.perf_counter() - started

    description = model_description(model, name, classes)
    if unit_forms is not None:
        description["graph_forms"] = graph_forms_record(graph_forms, unit_forms)
    graphs = {}
    for key, spec in (("backbone_rpn", spec_a), ("box_head", spec_b)):
        file = f"{key}.onnx"
        graphs[key] = {"file": file, "sha256": sha256_file(out / file), "opset": OPSET, **spec}
    extra = checkpoint_extra or {}
    description["graphs"] = graphs
    description["provenance"] = {
        "exported_at": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "checkpoint": checkpoint.name if checkpoint is not None else None,
        "checkpoint_sha256": sha256_file(checkpoint) if checkpoint is not None else None,
        "seed": seed if seed is not None else extra.get("seed"),
        "training_data": extra.get("training_data"),
        "export_command": export_command,
        "self_check": {
            "max_rel_error_graph_a": check.max_a,
            "max_rel_error_graph_b": check.max_b,
            "image": os.path.relpath(Path(check.image).resolve(), REPO_ROOT)
            if Path(check.image).resolve().is_relative_to(REPO_ROOT)
            else check.image,
            "input_size": list(check.input_size),
            "proposals": check.proposals,
            "rois_per_level": check.rois_per_level,
            "per_output": {**check.errors_graph_a, **check.errors_graph_b},
            "batch_norms_folded": fold,
        },
    }
    (out / "model.json").write_text(json.dumps(description, indent=2) + "\n")

    if decoded_references:
        started = time.perf_counter()
        reference = {
            "model": name,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "images": [reference_entry(model, image, classes, out) for image in decoded_references],
        }
        (out / "reference.json").write_text(json.dumps(reference) + "\n")
        seconds["reference"] = time.perf_counter() - started
    return ExportResult(description, check, seconds)
