#!/usr/bin/python3
"""Write the expected values of the TypeScript pipeline's unit tests, computed by torchvision itself.

Every output file under test/fixtures/torchvision/ is produced by the torchvision code that the
TypeScript module reproduces (AnchorGenerator, BoxCoder, GeneralizedRCNNTransform, nms,
batched_nms, LevelMapper, RegionProposalNetwork.filter_proposals, RoIHeads.postprocess_detections).
Large inputs are not stored: they are generated on both sides by `hash_value` (a Knuth
multiplicative hash whose values are exact in float32), mirrored by test/detection/hash-values.ts.

Example:
  /usr/bin/python3 scripts/make_torchvision_unit_fixtures.py --out test/fixtures/torchvision \
      --photo /root/.rustup/toolchains/stable-x86_64-unknown-linux-gnu/share/doc/rust/html/embedded-book/assets/f3.jpg
"""
from __future__ import annotations

import argparse
import base64
import json
import math
import os
from typing import Any

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList
from torchvision.models.detection.roi_heads import RoIHeads
from torchvision.models.detection.rpn import RegionProposalNetwork, RPNHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import batched_nms, nms
from torchvision.ops.poolers import LevelMapper

BBOX_XFORM_CLIP = math.log(1000.0 / 16)


def hash24(index: int, salt: int) -> int:
    """24-bit hash of (index, salt); mirrored exactly by hash24() in test/detection/hash-values.ts."""
    return (((index + salt * 1000003) * 2654435761) % 2**32) >> 8


def hash_value(index: int, salt: int, low: float, high: float) -> float:
    """A float32-exact value in [low, high): low + hash24 * (high - low) / 2^24, with (high - low) a power of two."""
    span = high - low
    assert span > 0 and math.log2(span).is_integer(), "span must be a power of two for float32 exactness"
    return low + hash24(index, salt) * span / 2**24


def hash_tensor(count: int, salt: int, low: float, high: float) -> torch.Tensor:
    return torch.tensor([hash_value(i, salt, low, high) for i in range(count)], dtype=torch.float32)


def floats(t: torch.Tensor) -> list[float]:
    """float32 values as Python floats (exact: every float32 is a double)."""
    return [float(v) for v in t.reshape(-1).tolist()]


def float32_base64(t: torch.Tensor) -> str:
    """float32 values, little-endian, base64: exact and compact for large arrays."""
    return base64.b64encode(t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tobytes()).decode("ascii")


def hash_boxes(count: int, salt: int, extent: float, max_side: float) -> torch.Tensor:
    """Boxes in quarter pixels, some degenerate: x1,y1 in [0, extent), sides in [0, max_side)."""
    x1 = torch.floor(hash_tensor(count, salt, 0.0, extent) * 4) / 4
    y1 = torch.floor(hash_tensor(count, salt + 1, 0.0, extent) * 4) / 4
    w = torch.floor(hash_tensor(count, salt + 2, 0.0, max_side) * 4) / 4
    h = torch.floor(hash_tensor(count, salt + 3, 0.0, max_side) * 4) / 4
    return torch.stack([x1, y1, x1 + w, y1 + h], dim=1)


def float32_fixture() -> dict[str, Any]:
    """torch.exp (SLEEF on CPU, not always correctly rounded) and torch.round (half to even)."""
    edges = [-110.0, -104.5, -103.9, -87.5, -50.0, -10.0, -1.0, -1e-8, 0.0, 1e-8, 0.5, 1.0, 2.302585, 10.0,
             50.0, 88.0, 88.8, 99.9, 100.5]
    inputs = torch.tensor(edges, dtype=torch.float32)
    inputs = torch.cat([inputs, hash_tensor(4000, 800, -32.0, 32.0)])
    exp = torch.exp(inputs)
    halves = torch.tensor([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 22.5, 2.4999, -2.6, 1e7 + 1], dtype=torch.float32)
    return {"exp_inputs": float32_base64(inputs), "exp": float32_base64(exp),
            "round_inputs": floats(halves), "round": floats(torch.round(halves))}


def anchors_fixture() -> dict[str, Any]:
    cases = []
    configs = [
        # FPN: one size per level; padded 64x96 with the pool level at stride 64 -> grid 1x2.
        {"sizes": [[32], [64], [128], [256], [512]], "aspect_ratios": [[0.5, 1.0, 2.0]] * 5,
         "padded": [64, 96], "grids": [[16, 24], [8, 12], [4, 6], [2, 3], [1, 2]]},
        # Real FPN shape at 800x1216: pool grid 13x19 gives strides 61 (800 // 13) and 64.
        {"sizes": [[32], [64], [128], [256], [512]], "aspect_ratios": [[0.5, 1.0, 2.0]] * 5,
         "padded": [800, 1216], "grids": [[4, 5], [3, 4], [2, 3], [2, 2], [13, 19]]},
        # C4: five sizes, three ratios on one level; odd sizes exercise round-half-to-even.
        {"sizes": [[32, 45, 51, 128, 512]], "aspect_ratios": [[0.5, 1.0, 2.0]],
         "padded": [96, 64], "grids": [[6, 4]]},
    ]
    for config in configs:
        generator = AnchorGenerator(tuple(tuple(s) for s in config["sizes"]),
                                    tuple(tuple(a) for a in config["aspect_ratios"]))
        h, w = config["padded"]
        image_list = ImageList(torch.zeros(1, 3, h, w), [(h, w)])
        features = [torch.zeros(1, 1, gh, gw) for gh, gw in config["grids"]]
        anchors = generator(image_list, features)[0]
        per_level = []
        offset = 0
        for (gh, gw), cell in zip(config["grids"], generator.cell_anchors):
            n = gh * gw * cell.shape[0]
            per_level.append({"cell_anchors": floats(cell), "anchors": float32_base64(anchors[offset:offset + n])})
            offset += n
        cases.append({**config, "levels": per_level})
    return {"cases": cases}


def box_decode_fixture() -> dict[str, Any]:
    cases = []
    for weights, salt in (((1.0, 1.0, 1.0, 1.0), 10), ((10.0, 10.0, 5.0, 5.0), 20)):
        count, per_box = 64, 3
        boxes = hash_boxes(count, salt, 256.0, 128.0)
        deltas = hash_tensor(count * per_box * 4, salt + 5, -8.0, 8.0).reshape(count, per_box * 4)
        decoded = BoxCoder(weights, BBOX_XFORM_CLIP).decode_single(deltas, boxes)
        cases.append({"weights": list(weights), "bbox_xform_clip": BBOX_XFORM_CLIP, "count": count,
                      "per_box": per_box, "boxes_salt": salt, "boxes_extent": 256.0, "boxes_max_side": 128.0,
                      "deltas_salt": salt + 5, "deltas_range": [-8.0, 8.0], "decoded": float32_base64(decoded)})
    return {"cases": cases}


def transform_fixture(photo: str) -> dict[str, Any]:
    image = Image.open(photo).convert("RGB")
    pixels = np.asarray(image)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    cases = []
    # (crop y, crop x, height, width, min_size, max_size): upscale, downscale, max_size-bound, identity
    for y, x, h, w, min_size, max_size in ((200, 300, 13, 17, 20, 32), (150, 420, 45, 61, 24, 1333),
                                          (100, 100, 10, 26, 20, 30), (60, 500, 24, 30, 24, 1000)):
        patch = pixels[y:y + h, x:x + w].copy()
        tensor = torch.from_numpy(patch).permute(2, 0, 1).contiguous().to(torch.float32) / 255.0
        transform = GeneralizedRCNNTransform(min_size, max_size, mean, std, size_divisible=32).eval()
        image_list, _ = transform([tensor])
        rh, rw = image_list.image_sizes[0]
        cases.append({"width": w, "height": h, "min_size": min_size, "max_size": max_size,
                      "image_mean": mean, "image_std": std, "size_divisible": 32,
                      "pixels": base64.b64encode(patch.astype(np.uint8).tobytes()).decode("ascii"),
                      "resized": [rw, rh], "padded": [image_list.tensors.shape[-1], image_list.tensors.shape[-2]],
                      "tensor": float32_base64(image_list.tensors[0])})
    sizes = []
    for w, h in ((640, 480), (480, 640), (1, 1), (1, 1000), (1000, 1), (333, 500), (1216, 800), (1920, 1080),
                 (799, 601), (1000, 1000), (123, 457), (4032, 3024), (600, 800), (17, 23), (1333, 800),
                 (2000, 1199), (3, 2), (1600, 1201)):
        transform = GeneralizedRCNNTransform(800, 1333, mean, std, size_divisible=32).eval()
        image_list, _ = transform([torch.zeros(1, h, w)])
        rh, rw = image_list.image_sizes[0]
        sizes.append({"width": w, "height": h, "resized": [rw, rh],
                      "padded": [image_list.tensors.shape[-1], image_list.tensors.shape[-2]]})
    return {"photo": os.path.basename(photo), "cases": cases, "sizes_800_1333": sizes}


def nms_fixture() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []

    def add(name: str, boxes: torch.Tensor, scores: torch.Tensor, threshold: float,
            groups: torch.Tensor | None = None, generated: dict[str, Any] | None = None) -> None:
        keep = nms(boxes, scores, threshold) if groups is None else batched_nms(boxes, scores, groups, threshold)
        case: dict[str, Any] = {"name": name, "iou_threshold": threshold, "keep": keep.tolist()}
        if generated is None:
            case.update(boxes=floats(boxes), scores=floats(scores))
            if groups is not None:
                case["groups"] = groups.tolist()
        else:
            case["generated"] = generated
        cases.append(case)

    add("empty", torch.zeros(0, 4), torch.zeros(0), 0.5)
    add("single", torch.tensor([[1.0, 2.0, 3.0, 4.0]]), torch.tensor([0.3]), 0.5)
    add("ties keep input order", torch.tensor([[0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 10, 10.5],
                                               [40, 40, 50, 50], [1, 1, 11, 11]], dtype=torch.float32),
        torch.tensor([0.5, 0.5, 0.5, 0.5, 0.5]), 0.5)
    add("zero-area boxes never suppress or get suppressed",
        torch.tensor([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10], [2, 2, 2, 9], [0, 0, 10, 10]], dtype=torch.float32),
        torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]), 0.5)
    add("iou exactly at threshold is kept", torch.tensor([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=torch.float32),
        torch.tensor([0.9, 0.8]), 0.5)
    add("suppressed boxes do not suppress", torch.tensor([[0, 0, 10, 10], [3, 0, 13, 10], [6, 0, 16, 10]],
                                                         dtype=torch.float32),
        torch.tensor([0.9, 0.8, 0.7]), 0.5)
    for count, salt, threshold in ((3000, 100, 0.5), (1500, 200, 0.7)):
        boxes = hash_boxes(count, salt, 512.0, 64.0)
        scores = torch.floor(hash_tensor(count, salt + 7, 0.0, 1.0) * 64) / 64  # many ties
        add(f"{count} generated boxes with tied scores", boxes, scores, threshold,
            generated={"count": count, "boxes_salt": salt, "scores_salt": salt + 7, "extent": 512.0,
                       "max_side": 64.0, "score_levels": 64})
    groups = torch.tensor([0, 1, 0, 1, 2])
    add("batched: overlapping boxes of different groups both survive",
        torch.tensor([[0, 0, 10, 10], [0, 0, 10, 10], [1, 1, 10, 10], [1, 1, 10, 10], [100, 100, 110, 110]],
                     dtype=torch.float32), torch.tensor([0.9, 0.8, 0.7, 0.95, 0.1]), 0.5, groups)
    for count, salt in ((900, 300), (1200, 400)):  # coordinate-trick path (<= 1000 boxes) and per-group path
        boxes = hash_boxes(count, salt, 256.0, 64.0)
        scores = hash_tensor(count, salt + 7, 0.0, 1.0)
        groups = torch.tensor([hash24(i, salt + 9) % 5 for i in range(count)])
        add(f"batched: {count} generated boxes in 5 groups", boxes, scores, 0.5, groups,
            generated={"count": count, "boxes_salt": salt, "scores_salt": salt + 7, "extent": 256.0,
                       "max_side": 64.0, "groups_salt": salt + 9, "groups": 5})
    return {"cases": cases}


def level_mapper_fixture() -> dict[str, Any]:
    mapper = LevelMapper(2, 5, canonical_scale=224, canonical_level=4, eps=1e-6)
    sides = [1.0, 10.0, 55.9, 56.0, 111.9, 112.0, 112.1, 150.0, 223.99, 224.0, 224.01, 447.9, 448.0, 500.0,
             896.0, 1000.0, 3000.0]
    boxes = [[3.0, 5.0, 3.0 + s, 5.0 + s] for s in sides]
    boxes += [[0.0, 0.0, 112.0, 448.0], [0.0, 0.0, 0.5, 100000.0], [7.25, 1.5, 9.75, 400.5], [0, 0, 0, 0]]
    tensor = torch.tensor(boxes, dtype=torch.float32)
    levels = mapper([tensor])
    return {"k_min": 2, "k_max": 5, "canonical_scale": 224, "canonical_level": 4, "eps": 1e-6,
            "boxes": floats(tensor), "levels": levels.tolist()}


def rpn_fixture() -> dict[str, Any]:
    """filter_proposals on generated logits/deltas for a 64x96 padded image (resized 60x90)."""
    sizes = ((32,), (64,), (128,), (256,), (512,))
    ratios = ((0.5, 1.0, 2.0),) * 5
    grids = [[16, 24], [8, 12], [4, 6], [2, 3], [1, 2]]
    padded, resized = (64, 96), (60, 90)
    generator = AnchorGenerator(sizes, ratios)
    rpn = RegionProposalNetwork(generator, RPNHead(1, 3), 0.7, 0.3, 256, 0.5,
                                pre_nms_top_n={"training": 0, "testing": 300},
                                post_nms_top_n={"training": 0, "testing": 200}, nms_thresh=0.7, score_thresh=0.0).eval()
    image_list = ImageList(torch.zeros(1, 3, *padded), [resized])
    objectness, deltas = [], []
    for level, (gh, gw) in enumerate(grids):
        objectness.append(hash_tensor(3 * gh * gw, 500 + level, -8.0, 8.0).reshape(1, 3, gh, gw))
        deltas.append(hash_tensor(12 * gh * gw, 600 + level, -2.0, 2.0).reshape(1, 12, gh, gw))
    anchors = generator(image_list, [torch.zeros(1, 1, gh, gw) for gh, gw in grids])
    num_anchors_per_level = [o[0].numel() for o in objectness]
    from torchvision.models.detection.rpn import concat_box_prediction_layers
    flat_objectness, flat_deltas = concat_box_prediction_layers(objectness, deltas)
    proposals = rpn.box_coder.decode(flat_deltas, anchors).view(1, -1, 4)
    boxes, scores = rpn.filter_proposals(proposals, flat_objectness, image_list.image_sizes, num_anchors_per_level)
    return {"padded": [padded[1], padded[0]], "resized": [resized[1], resized[0]], "grids": grids,
            "sizes": sizes, "aspect_ratios": ratios, "pre_nms_top_n": 300, "post_nms_top_n": 200,
            "nms_thresh": 0.7, "score_thresh": 0.0, "min_size": 1e-3,
            "objectness_salt": 500, "objectness_range": [-8.0, 8.0], "deltas_salt": 600, "deltas_range": [-2.0, 2.0],
            "boxes": floats(boxes[0]), "scores": floats(scores[0])}


def roi_heads_fixture() -> dict[str, Any]:
    """postprocess_detections on generated logits/regression for 300 proposals, 5 classes, then resize_boxes."""
    count, num_classes = 300, 5
    resized, original = (60, 90), (41, 77)  # (h, w)
    proposals = hash_boxes(count, 700, 64.0, 32.0)
    class_logits = hash_tensor(count * num_classes, 710, -4.0, 4.0).reshape(count, num_classes)
    box_regression = hash_tensor(count * num_classes * 4, 720, -2.0, 2.0).reshape(count, num_classes * 4)
    heads = RoIHeads(None, None, None, 0.5, 0.5, 512, 0.25, None, 0.05, 0.5, 100)
    boxes, scores, labels = heads.postprocess_detections(class_logits, box_regression, [proposals], [resized])
    transform = GeneralizedRCNNTransform(800, 1333, [0.0] * 3, [1.0] * 3).eval()
    mapped = transform.postprocess([{"boxes": boxes[0]}], [resized], [original])[0]["boxes"]
    return {"count": count, "num_classes": num_classes, "resized": [resized[1], resized[0]],
            "original": [original[1], original[0]], "score_thresh": 0.05, "nms_thresh": 0.5, "detections_per_img": 100,
            "min_size": 1e-2, "box_coder_weights": [10.0, 10.0, 5.0, 5.0],
            "proposals_salt": 700, "proposals_extent": 64.0, "proposals_max_side": 32.0,
            "class_logits_salt": 710, "class_logits_range": [-4.0, 4.0],
            "box_regression_salt": 720, "box_regression_range": [-2.0, 2.0],
            "boxes": floats(boxes[0]), "scores": floats(scores[0]), "labels": labels[0].tolist(),
            "boxes_in_original": floats(mapped)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="test/fixtures/torchvision", help="output directory")
    parser.add_argument("--photo", required=True, help="a real photo (JPEG/PNG) to crop the resize patches from")
    args = parser.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    meta = {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "script": "scripts/make_torchvision_unit_fixtures.py"}
    fixtures = {"float32.json": float32_fixture(), "anchors.json": anchors_fixture(), "box-coder.json": box_decode_fixture(),
                "transform.json": transform_fixture(args.photo), "nms.json": nms_fixture(),
                "level-mapper.json": level_mapper_fixture(), "rpn.json": rpn_fixture(),
                "roi-heads.json": roi_heads_fixture()}
    for name, content in fixtures.items():
        with open(os.path.join(args.out, name), "w") as f:
            json.dump({**meta, **content}, f, separators=(",", ":"))
            f.write("\n")
        print(f"wrote {os.path.join(args.out, name)}")


if __name__ == "__main__":
    main()
