#!/usr/bin/env python3
"""Per-layer micro-benchmark of the CPWC unit's graph forms in ONNX Runtime, beside its plain 1x1 conv.

    npm run bench:layers -- [--arch cpwc_r50_fpn] [--size 1216x800] [--runs 7] [--threads 2] [--json]

Every distinct CPWC unit of the full-size ResNet-50 body (by in/out channels, stride, input size and
place in the bottleneck) becomes a micro-graph: x -> unit [+ residual] [-> ReLU], exactly as in the
folded, graph-formed export. Each form, and the plain unit (1x1 conv [+ residual] [-> ReLU]), is exported
to ONNX and run in onnxruntime with its profiler; the time of a run is the sum of its kernel times (no
input/output copies); forms run in interleaved rounds and the fastest run of each is reported (the least
disturbed by other load; medians are in --json). The memory floor is the bytes the unit must move (read x
and the residual, write y, read its weights) divided by the bandwidth of a depthwise 3x3 NCHWc
convolution measured on the same machine at the start."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn

from cpwc.export import fold_norms
from cpwc.graph_forms import FastCPWC, channel_case, forms_for_case
from cpwc.layers import FoldedCPWC
from cpwc.models import ARCHITECTURES, build_detector


@dataclass(frozen=True)
class UnitShape:
    kind: str  # "conv1" (then ReLU), "conv3" (+ residual, then ReLU) or "downsample"
    in_channels: int
    out_channels: int
    stride: int
    height: int
    width: int

    def label(self) -> str:
        return f"{self.kind} {self.in_channels}->{self.out_channels} s{self.stride} {self.width}x{self.height}"


class Micro(nn.Module):
    def __init__(self, unit: nn.Module, kind: str, plain: bool) -> None:
        super().__init__()
        self.unit, self.kind, self.plain = unit, kind, plain

    def forward(self, x: Tensor, residual: Tensor | None = None) -> Tensor:
        if self.plain:
            y = self.unit.pwc(x)
            y = y if residual is None else y + residual
        else:
            y = self.unit(x, residual)
        return y if self.kind == "downsample" else torch.relu(y)


def unit_shapes(arch: str, size: tuple[int, int]) -> dict[UnitShape, FoldedCPWC]:
    """One folded unit per distinct shape of the body, from a forward pass at `size` (w, h)."""
    torch.manual_seed(0)
    model = build_detector(arch, num_classes=91).eval()
    fold_norms(model)
    found: dict[UnitShape, FoldedCPWC] = {}
    hooks = []
    for name, module in model.backbone.body.named_modules():
        if isinstance(module, FoldedCPWC) and module.stage1 is not None:
            kind = "downsample" if "downsample" in name else name.rsplit(".", 1)[-1]

            def hook(mod: nn.Module, inputs: tuple[Tensor, ...], _out: Tensor, kind: str = kind) -> None:
                x = inputs[0]
                shape = UnitShape(kind, x.shape[1], mod.pwc.out_channels, mod.pwc.stride[0], x.shape[2], x.shape[3])
                found.setdefault(shape, mod)

            hooks.append(module.register_forward_hook(hook))
    with torch.no_grad():
        model.backbone.body(torch.zeros(1, 3, size[1], size[0]))
    for h in hooks:
        h.remove()
    return found


def export(module: nn.Module, inputs: tuple[Tensor, ...], path: Path) -> None:
    names = ["x", "residual"][: len(inputs)]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.15 deprecates the TorchScript exporter; it is fast for tiny graphs
        torch.onnx.export(
            module, inputs, str(path), input_names=names, output_names=["y"], opset_version=17, dynamo=False
        )


def open_session(path: Path, threads: int, prefix: str) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_profiling = True
    options.profile_file_prefix = prefix
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_kernel_ms(session: ort.InferenceSession) -> list[float]:
    """Summed kernel time of every run of `session` but the first (warm-up), in ms; ends its profiling."""
    events = json.loads(Path(session.end_profiling()).read_text())
    model_runs = [e for e in events if e.get("name") == "model_run"][1:]
    kernels = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    totals = []
    for run in model_runs:
        start, end = run["ts"], run["ts"] + run["dur"]
        totals.append(sum(e["dur"] for e in kernels if start <= e["ts"] <= end) / 1000.0)
    return totals


def interleaved_kernel_ms(
    paths: dict[str, Path], feeds: dict[str, np.ndarray], runs: int, threads: int, prefix: str
) -> dict[str, list[float]]:
    """Kernel-time samples of every graph, run in interleaved rounds (one run of each per round) so that
    the load of a shared machine hits all alike."""
    sessions = {name: open_session(path, threads, f"{prefix}-{name}") for name, path in paths.items()}
    for _ in range(runs + 1):
        for session in sessions.values():
            session.run(None, feeds)
    return {name: run_kernel_ms(session) for name, session in sessions.items()}


def interleaved_cpu_ms(paths: dict[str, Path], feeds: dict[str, np.ndarray], runs: int) -> dict[str, list[float]]:
    """CPU time (thread_time) of every run on one intra-op thread, in interleaved rounds: on a machine
    shared with other work this counts only the cycles the graph itself used."""
    sessions = {}
    for name, path in paths.items():
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    samples: dict[str, list[float]] = {name: [] for name in paths}
    for round_ in range(runs + 1):
        for name, session in sessions.items():
            start = time.thread_time()
            session.run(None, feeds)
            if round_:
                samples[name].append((time.thread_time() - start) * 1e3)
    return samples


def measure_samples(
    paths: dict[str, Path], feeds: dict[str, np.ndarray], args: argparse.Namespace, prefix: str
) -> dict[str, list[float]]:
    if args.clock == "cpu":
        return interleaved_cpu_ms(paths, feeds, args.runs)
    return interleaved_kernel_ms(paths, feeds, args.runs, args.threads, prefix)


def measure_bandwidth(tmp: Path, args: argparse.Namespace) -> float:
    """GB/s of a depthwise 3x3 convolution, 256 channels at 200x304 (reads and writes every element once)."""
    conv = nn.Conv2d(256, 256, 3, 1, 1, groups=256, bias=False)
    x = torch.randn(1, 256, 200, 304)
    export(conv, (x,), tmp / "bandwidth.onnx")
    ms = min(measure_samples({"dw": tmp / "bandwidth.onnx"}, {"x": x.numpy()}, args, str(tmp / "prof"))["dw"])
    return 2 * x.numel() * 4 / (ms * 1e-3) / 1e9


def floor_ms(shape: UnitShape, unit: FoldedCPWC, gbps: float) -> float:
    out_h, out_w = -(-shape.height // shape.stride), -(-shape.width // shape.stride)
    elements = shape.in_channels * shape.height * shape.width + shape.out_channels * out_h * out_w
    if shape.kind == "conv3":
        elements += shape.out_channels * out_h * out_w
    elements += sum(p.numel() for p in unit.parameters())
    return elements * 4 / (gbps * 1e9) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="npm run bench:layers --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--arch", choices=[a for a in ARCHITECTURES if a.startswith("cpwc")], default="cpwc_r50_fpn")
    parser.add_argument("--size", default="1216x800", help="graph A input WxH (default 1216x800)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs per micro-graph (default 7)")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    parser.add_argument(
        "--clock",
        choices=("kernel", "cpu"),
        default="kernel",
        help="kernel: ORT profiler kernel times with --threads; cpu: CPU time of each run on one "
        "thread (robust on a loaded machine)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    try:
        w, h = (int(v) for v in args.size.lower().split("x"))
    except ValueError:
        parser.error(f"--size {args.size!r}: expected WxH, e.g. 1216x800")
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    results = []
    with tempfile.TemporaryDirectory(prefix="cpwc-bench-layers-") as name:
        tmp = Path(name)
        gbps = measure_bandwidth(tmp, args)
        for shape, unit in unit_shapes(args.arch, (w, h)).items():
            x = torch.randn(1, shape.in_channels, shape.height, shape.width)
            out_shape = unit(x).shape
            inputs = (x, torch.randn(out_shape)) if shape.kind == "conv3" else (x,)
            feeds = {n: t.numpy() for n, t in zip(["x", "residual"], inputs)}
            candidates = [("pwc", Micro(FastCPWC(unit, "grouped"), shape.kind, plain=True))]
            case = channel_case(shape.in_channels, shape.out_channels)
            candidates += [(f, Micro(FastCPWC(unit, f), shape.kind, plain=False)) for f in forms_for_case(case)]
            paths = {}
            for form, micro in candidates:
                paths[form] = tmp / f"{form}.onnx"
                export(micro.eval(), inputs, paths[form])
            samples = measure_samples(paths, feeds, args, str(tmp / "prof"))
            times = {form: min(values) for form, values in samples.items()}
            medians = {form: statistics.median(values) for form, values in samples.items()}
            best = min((f for f in times if f != "pwc"), key=lambda f: times[f])
            results.append(
                {
                    "unit": shape.label(),
                    "case": case,
                    "min_ms": times,
                    "median_ms": medians,
                    "best": best,
                    "floor_ms": floor_ms(shape, unit, gbps),
                }
            )
            if not args.json:
                row = "  ".join(f"{f} {t:6.2f}" for f, t in times.items())
                print(f"{shape.label():34s} {row}  best {best}  floor {results[-1]['floor_ms']:.2f} ms", flush=True)
    load = tuple(round(v, 2) for v in os.getloadavg())
    if args.json:
        print(
            json.dumps(
                {
                    "size": [w, h],
                    "clock": args.clock,
                    "threads": 1 if args.clock == "cpu" else args.threads,
                    "bandwidth_gbps": gbps,
                    "loadavg": load,
                    "ort": ort.__version__,
                    "units": results,
                }
            )
        )
    else:
        print(f"depthwise bandwidth {gbps:.1f} GB/s; onnxruntime {ort.__version__}; load average {load}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
