"""The committed model fixtures (test/fixtures/models/tiny-fpn, tiny-c4) are self-consistent: driving their
ONNX graphs in onnxruntime with torchvision's own pre/post-processing, configured only from model.json,
reproduces reference.json on every fixture photograph. This is the parity the TypeScript pipeline must reach."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor, nn
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops.poolers import LevelMapper

from cpwc.export import decode_image, run_ort, sha256_file

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "test" / "fixtures" / "models"
IMAGE_FILES = sorted(p.name for p in (REPO / "test" / "fixtures" / "images").iterdir() if p.suffix != ".md")
MODELS = ["tiny-fpn", "tiny-c4"]


class PrecomputedRpnHead(nn.Module):
    """Stands in for the RPN head: returns graph A's objectness and deltas."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: tuple[list[Tensor], list[Tensor]] = ([], [])

    def forward(self, _features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        return self.outputs


class ModelDirectory:
    """A detector built from model.json + the two graphs, with torchvision's own processing stages."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.spec = json.loads((directory / "model.json").read_text())
        t, rpn, heads = self.spec["transform"], self.spec["rpn"], self.spec["roi_heads"]
        self.transform = GeneralizedRCNNTransform(
            t["min_size"], t["max_size"], t["image_mean"], t["image_std"], size_divisible=t["size_divisible"]
        ).eval()
        self.levels = [level["name"] for level in rpn["levels"]]
        generator = AnchorGenerator(
            tuple(tuple(level["anchor_sizes"]) for level in rpn["levels"]),
            tuple(tuple(level["aspect_ratios"]) for level in rpn["levels"]),
        )
        self.head = PrecomputedRpnHead()
        self.rpn = RegionProposalNetwork(
            generator,
            self.head,
            0.7,
            0.3,
            256,
            0.5,
            dict(training=0, testing=rpn["pre_nms_top_n"]),
            dict(training=0, testing=rpn["post_nms_top_n"]),
            rpn["nms_thresh"],
            score_thresh=rpn["score_thresh"],
        ).eval()
        assert self.rpn.min_size == rpn["min_size"] and list(self.rpn.box_coder.weights) == rpn["box_coder_weights"]
        self.roi_heads = RoIHeads(
            None,
            None,
            None,
            0.5,
            0.5,
            512,
            0.25,
            tuple(heads["box_coder_weights"]),
            heads["score_thresh"],
            heads["nms_thresh"],
            heads["detections_per_img"],
        ).eval()
        mapper = heads["level_mapper"]
        self.level_mapper = LevelMapper(
            mapper["k_min"], mapper["k_max"], mapper["canonical_scale"], mapper["canonical_level"], mapper["eps"]
        )
        self.roi_levels = heads["featmap_names"]

    @torch.no_grad()
    def __call__(self, image: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        images, _ = self.transform([image])
        a = run_ort(self.directory / "backbone_rpn.onnx", {"image": images.tensors.numpy()})
        self.head.outputs = (
            [torch.from_numpy(a[f"objectness_{n}"]) for n in self.levels],
            [torch.from_numpy(a[f"bbox_deltas_{n}"]) for n in self.levels],
        )
        shapes_only = {n: torch.from_numpy(a[f"objectness_{n}"]) for n in self.levels}
        proposals = self.rpn(images, shapes_only)[0][0]
        levels = (
            self.level_mapper([proposals])
            if len(self.roi_levels) > 1
            else torch.zeros(len(proposals), dtype=torch.int64)
        )
        feeds = {f"feature_{n}": a[f"feature_{n}"] for n in self.roi_levels}
        feeds.update({f"rois_{n}": proposals[levels == i].numpy() for i, n in enumerate(self.roi_levels)})
        b = run_ort(self.directory / "box_head.onnx", feeds)
        level_ordered = torch.cat([proposals[levels == i] for i in range(len(self.roi_levels))])
        boxes, scores, labels = self.roi_heads.postprocess_detections(
            torch.from_numpy(b["class_logits"]),
            torch.from_numpy(b["box_regression"]),
            [level_ordered],
            images.image_sizes,
        )
        detections = self.transform.postprocess(
            [{"boxes": boxes[0], "scores": scores[0], "labels": labels[0]}],
            images.image_sizes,
            [tuple(image.shape[-2:])],
        )
        return proposals, detections[0]


@pytest.fixture(scope="module", params=MODELS)
def fixture_model(request: pytest.FixtureRequest) -> tuple[Path, dict, dict]:
    directory = FIXTURES / request.param
    return (
        directory,
        json.loads((directory / "model.json").read_text()),
        json.loads((directory / "reference.json").read_text()),
    )


def test_fixture_directories_are_complete_and_small(fixture_model) -> None:
    directory, model_json, reference = fixture_model
    for graph in model_json["graphs"].values():
        assert graph["sha256"] == sha256_file(directory / graph["file"])
    # torch 2.15's exporter (opset 18) writes ~30 % larger graphs than 1.13's: measured 3.97 MB (tiny-fpn)
    assert sum(p.stat().st_size for p in directory.iterdir()) < 4.5e6
    assert model_json["width"] == 0.125 and len(model_json["classes"]) == 6
    assert [Path(image["file"]).name for image in reference["images"]] == IMAGE_FILES
    for image in reference["images"]:
        assert (directory / image["file"]).resolve().is_file()
    assert model_json["provenance"]["self_check"]["max_rel_error_graph_a"] <= 1e-4


def test_fixture_outputs_are_well_separated(fixture_model) -> None:
    _, model_json, reference = fixture_model
    counts = [len(image["detections"]) for image in reference["images"]]
    assert sum(c >= 5 for c in counts) >= 6 and max(counts) < model_json["roi_heads"]["detections_per_img"]
    for image in reference["images"]:
        scores = [d["score"] for d in image["detections"]]
        assert scores == sorted(scores, reverse=True)
        assert all(a - b >= 5e-5 for a, b in zip(scores, scores[1:])), image["file"]  # measured: >= 8.9e-5
        assert all(s > model_json["roi_heads"]["score_thresh"] + 1e-4 for s in scores)
        proposals = np.array(image["proposals"], dtype=np.float32)
        assert len(proposals) > 100 and len(np.unique(proposals, axis=0)) == len(proposals)


@pytest.mark.parametrize("image_name", IMAGE_FILES)
def test_onnx_graphs_with_torchvision_processing_reproduce_reference(
    fixture_model, image_name: str, built_dist: Path
) -> None:
    directory, _, reference = fixture_model
    entry = next(image for image in reference["images"] if Path(image["file"]).name == image_name)
    decoded = decode_image(directory / entry["file"])
    assert (decoded.width, decoded.height) == (entry["width"], entry["height"])
    proposals, detections = ModelDirectory(directory)(decoded.tensor())
    expected_proposals = torch.tensor(entry["proposals"], dtype=torch.float32)
    assert proposals.shape == expected_proposals.shape
    assert_same_up_to_near_tie_swaps(proposals, expected_proposals)
    expected = entry["detections"]
    assert [int(label) for label in detections["labels"]] == [d["class_id"] for d in expected]
    torch.testing.assert_close(detections["scores"], torch.tensor([d["score"] for d in expected]), rtol=0, atol=1e-4)
    expected_boxes = torch.tensor([[d["box"][k] for k in ("xmin", "ymin", "xmax", "ymax")] for d in expected]).reshape(
        -1, 4
    )
    torch.testing.assert_close(detections["boxes"], expected_boxes, rtol=0, atol=1e-2)


def assert_same_up_to_near_tie_swaps(got: Tensor, expected: Tensor, window: int = 8, atol: float = 1e-2) -> None:
    """Proposals equal row by row, except a few rows (< 1%) that sit a few places away: objectness
    scores of 1000 proposals are spaced ~1e-7 apart, below the float32 noise between PyTorch and onnxruntime."""
    close = (got - expected).abs().amax(dim=1) <= atol
    moved = torch.where(~close)[0].tolist()
    assert len(moved) <= len(got) // 100, f"{len(moved)} proposals out of order"
    for i in moved:
        lo, hi = max(0, i - window), min(len(got), i + window + 1)
        assert ((expected[lo:hi] - got[i]).abs().amax(dim=1) <= atol).any(), (
            f"proposal {i} {got[i].tolist()} not in reference"
        )
