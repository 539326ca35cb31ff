"""Export a CPWC Faster R-CNN to a self-describing model directory (docs/model-format.md).

    graph A  backbone_rpn.onnx  image -> feature_<l> (RoI levels), objectness_<l>, bbox_deltas_<l> (RPN levels)
    graph B  box_head.onnx      feature_<l>, rois_<l> -> class_logits, box_regression
    model.json                  everything else the TypeScript pipeline needs
    reference.json              torchvision's own outputs on reference images (optional)

Frozen (or eval-mode) batch norms are folded into the convolutions before export (folding). Both graphs
(graphs) are exported with torch.onnx's torch.export-based exporter. Every export is checked (self_check):
both graphs run in onnxruntime (tools/node/ort-run.mjs, runtime) on a real image and must match PyTorch
within MAX_RELATIVE_ERROR, or the export fails. The command line is `python -m cpwc.export`.
"""

from .directory import ExportResult, export_model_directory, load_model
from .errors import ExportError
from .folding import fold_norms
from .graphs import (
    OPSET,
    BackboneRpnGraph,
    BoxHeadGraph,
    export_backbone_rpn,
    export_box_head,
    roi_align_modes,
    roi_levels,
    roi_strides,
    rpn_levels,
)
from .manifest import model_description, sha256_file
from .runtime import REPO_ROOT, DecodedImage, decode_image, relative_error, run_ort
from .self_check import MAX_RELATIVE_ERROR, SelfCheck, self_check, split_by_level, torchvision_box_head
from .torchvision_run import TorchvisionRun, run_torchvision

__all__ = [
    "REPO_ROOT",
    "MAX_RELATIVE_ERROR",
    "OPSET",
    "BackboneRpnGraph",
    "BoxHeadGraph",
    "DecodedImage",
    "ExportError",
    "ExportResult",
    "SelfCheck",
    "TorchvisionRun",
    "decode_image",
    "export_backbone_rpn",
    "export_box_head",
    "export_model_directory",
    "fold_norms",
    "load_model",
    "model_description",
    "relative_error",
    "roi_align_modes",
    "roi_levels",
    "roi_strides",
    "rpn_levels",
    "run_ort",
    "run_torchvision",
    "self_check",
    "sha256_file",
    "split_by_level",
    "torchvision_box_head",
]
