#!/usr/bin/env python3
"""Does quantizing graph B (the box head's Gemms) pay? Quantizes a model directory's box_head.onnx with
ONNX Runtime's static QDQ quantizer (per-channel int8 weights, uint8 activations, Gemm only; RoIAlign stays
float), calibrated on graph B's real inputs for the given images (torchvision's own features and RPN
proposals, split by its level mapper), and times graph B fp32 against int8 on a check image, interleaved.
With --out it writes a copy of --model (or of --into) with the int8 box head, for `cpwc-detect eval`.
(`npm run quantize -- … --box-head` makes such a twin, checked.) Not a test; docs/performance.md has the
results.

    .venv/bin/python tools/bench/box_head_int8.py --model models/shapes-cpwc-r50-fpn \\
        --calibration-images data/shapes-calib/images --calibration-count 32 \\
        --into models/shapes-cpwc-r50-fpn-int8 --out /tmp/shapes-int8-boxhead-int8
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from cpwc.quantize import METHODS, calibration_files, quantize_graph
from cpwc.quantize.box_head import BOX_HEAD_OPS, graph_b_feeds, rebuild_model


def session(graph: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"])


def time_interleaved(graphs: dict[str, Path], feeds: dict[str, np.ndarray], runs: int, threads: int) -> dict:
    sessions = {name: session(path, threads) for name, path in graphs.items()}
    wall: dict[str, list[float]] = {name: [] for name in graphs}
    cpu: dict[str, list[float]] = {name: [] for name in graphs}
    for round_ in range(runs + 1):
        for name, s in sessions.items():
            w0, c0 = time.perf_counter(), time.process_time()
            s.run(None, feeds)
            if round_ > 0:  # round 0 is the warm-up
                wall[name].append(1e3 * (time.perf_counter() - w0))
                cpu[name].append(1e3 * (time.process_time() - c0))
    return {name: {"wall_ms": statistics.median(wall[name]), "cpu_ms": statistics.median(cpu[name])} for name in graphs}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_copy(base: Path, int8_graph: Path, out: Path, method: str, count: int) -> None:
    """`base` with its box head replaced by the int8 one (model.json's sha256 and calibration updated)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(base, out, ignore=shutil.ignore_patterns("checkpoint.pt", "reference.json", "README.md"))
    manifest = json.loads((out / "model.json").read_text())
    graph_b = manifest["graphs"]["box_head"]["file"]
    shutil.copyfile(int8_graph, out / graph_b)
    manifest["graphs"]["box_head"]["sha256"] = sha256(out / graph_b)
    manifest["name"] = out.name
    manifest.setdefault("calibration", {})["box_head"] = {"method": method, "count": count, "quantized_ops": ["Gemm"]}
    (out / "model.json").write_text(json.dumps(manifest, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="fp32 model directory (checkpoint or seed)")
    parser.add_argument("--calibration-images", type=Path, required=True, metavar="DIR")
    parser.add_argument("--calibration-count", type=int, metavar="N", help="first N images (default: all)")
    parser.add_argument(
        "--method", choices=METHODS, default="Percentile", help="calibration method (default Percentile)"
    )
    parser.add_argument("--check-image", type=Path, help="timing image (default: --model's self-check image)")
    parser.add_argument("--runs", type=int, default=20, help="timed runs per graph, interleaved (default 20)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads (default 2)")
    parser.add_argument("--into", type=Path, help="model directory to copy for --out (default: --model)")
    parser.add_argument("--out", type=Path, help="write --into's copy with the int8 box head here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    manifest = json.loads((args.model / "model.json").read_text())
    check = args.check_image or Path(__file__).resolve().parents[2] / manifest["provenance"]["self_check"]["image"]
    model = rebuild_model(args.model)
    images = calibration_files(args.calibration_images, args.calibration_count)
    feeds = [graph_b_feeds(model, image) for image in images]
    fp32 = args.model / manifest["graphs"]["box_head"]["file"]
    int8 = (args.out.parent if args.out else Path("/tmp")) / f"box_head-int8-{args.model.resolve().name}.onnx"
    quantize_graph(fp32, int8, feeds, args.method, BOX_HEAD_OPS)
    timed = time_interleaved({"fp32": fp32, "int8": int8}, graph_b_feeds(model, check), args.runs, args.threads)
    rois = sum(len(v) for k, v in graph_b_feeds(model, check).items() if k.startswith("rois_"))
    print(json.dumps({"model": str(args.model), "check_image": str(check), "rois": rois, "runs": args.runs, **timed}))
    if args.out:
        write_copy(args.into or args.model, int8, args.out, args.method, len(images))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
