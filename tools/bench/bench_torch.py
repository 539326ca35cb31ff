"""PyTorch eager baseline for `npm run bench`: torchvision's FasterRCNN with the same weights as a model directory.

The weights are rebuilt from the model directory's model.json provenance: its checkpoint (when it has one,
next to model.json or given with --checkpoint) or its seed (random initialisation through the same
`load_model` the export used). Images are decoded by tools/node/decode-image.mjs, i.e. exactly the pixels the
TypeScript pipeline sees, once per image; timings start from those pixels.

Serve mode (used by tools/bench/bench-pipeline.mjs, which interleaves it with the TypeScript runs): reads one JSON
request per line on stdin, {"image": PATH}, runs it once and answers one JSON line:
{"total_ms", "stages": {"transform", "backbone", "rpn", "roi_heads", "postprocess"}, "detections"}.

    .venv/bin/python tools/bench/bench_torch.py --model /tmp/cpwc-bench-models/cpwc_r50_fpn-800 --threads 2 \\
        --image test/fixtures/images/landscape.jpg --runs 5
    .venv/bin/python tools/bench/bench_torch.py --model /tmp/cpwc-bench-models/cpwc_r50_fpn-800 --threads 2 --serve
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch  # noqa: E402
from torch import Tensor  # noqa: E402
from torchvision.models.detection import FasterRCNN  # noqa: E402

from cpwc.export import decode_image, load_model


def rebuild_model(model_dir: Path, checkpoint: Path | None) -> FasterRCNN:
    """The PyTorch model behind a model directory, from its checkpoint or its seed."""
    manifest = json.loads((model_dir / "model.json").read_text())
    provenance = manifest.get("provenance") or {}
    transform = manifest["transform"]
    if checkpoint is None and provenance.get("checkpoint"):
        candidate = model_dir / provenance["checkpoint"]
        checkpoint = candidate if candidate.is_file() else None
        if checkpoint is None:
            raise SystemExit(
                f"{model_dir}: exported from checkpoint {provenance['checkpoint']}; pass --checkpoint PATH"
            )
    if checkpoint is not None:
        model, _, _ = load_model(
            checkpoint,
            None,
            manifest["architecture"],
            manifest.get("width", 1.0),
            None,
            transform["min_size"],
            transform["max_size"],
        )
    else:
        seed = provenance.get("seed")
        if seed is None:
            raise SystemExit(f"{model_dir}: model.json provenance has neither a checkpoint nor a seed")
        model, _, _ = load_model(
            None,
            int(seed),
            manifest["architecture"],
            manifest.get("width", 1.0),
            len(manifest["classes"]),
            transform["min_size"],
            transform["max_size"],
        )
    return model.eval()


@torch.no_grad()
def timed_forward(model: FasterRCNN, image: Tensor) -> tuple[float, dict[str, float], int]:
    """GeneralizedRCNN.forward (eval) with a clock around each stage; returns (total ms, stage ms, detections)."""
    marks = [time.perf_counter()]
    original_size = [(image.shape[-2], image.shape[-1])]
    images, _ = model.transform([image])
    marks.append(time.perf_counter())
    features = model.backbone(images.tensors)
    marks.append(time.perf_counter())
    proposals, _ = model.rpn(images, features)
    marks.append(time.perf_counter())
    detections, _ = model.roi_heads(features, proposals, images.image_sizes)
    marks.append(time.perf_counter())
    detections = model.transform.postprocess(detections, images.image_sizes, original_size)
    marks.append(time.perf_counter())
    names = ("transform", "backbone", "rpn", "roi_heads", "postprocess")
    stages = {name: (marks[i + 1] - marks[i]) * 1000 for i, name in enumerate(names)}
    return (marks[-1] - marks[0]) * 1000, stages, len(detections[0]["boxes"])


def serve(model: FasterRCNN) -> None:
    cache: dict[str, Tensor] = {}
    print(json.dumps({"ready": True, "threads": torch.get_num_threads()}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        request: dict[str, Any] = json.loads(line)
        path = request["image"]
        if path not in cache:
            cache[path] = decode_image(Path(path)).tensor()
        total, stages, count = timed_forward(model, cache[path])
        print(json.dumps({"total_ms": total, "stages": stages, "detections": count}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model directory (model.json with provenance)")
    parser.add_argument("--checkpoint", type=Path, help="checkpoint the model directory was exported from")
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    parser.add_argument("--serve", action="store_true", help="answer JSON requests on stdin (see above)")
    parser.add_argument("--image", type=Path, help="image to time (without --serve)")
    parser.add_argument("--runs", type=int, default=5, help="timed runs after one warm-up (default 5)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = rebuild_model(args.model, args.checkpoint)
    if args.serve:
        serve(model)
        return 0
    if args.image is None:
        parser.error("--image is required without --serve")
    image = decode_image(args.image).tensor()
    timed_forward(model, image)
    totals = [timed_forward(model, image)[0] for _ in range(args.runs)]
    print(json.dumps({"threads": torch.get_num_threads(), "median_ms": statistics.median(totals), "runs_ms": totals}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
