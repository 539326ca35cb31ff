"""Score COCO case directories with the Python references: pycocotools and faster-coco-eval.

Each CASE directory holds gt.json (COCO instances) and dt.json (COCO results). For every case and
library this prints, as one JSON object on stdout, the 12 ``COCOeval.stats``, the mean precision
per IoU threshold and per-category metrics defined as in cpwc-detect's ``summarize``: the mean of
the entries > -1 of ``precision[:, :, k, area, maxDets]`` (AP) or ``recall[:, k, area, maxDets]``
(AR), -1 when there are none. With --arrays it also writes ``<library>.precision.f64`` and
``<library>.recall.f64`` (float64, little-endian, numpy C order) into the case directory, for a
bit-by-bit comparison of the whole accumulate() output. A case a library cannot score (it raises)
gives ``{"case", "library", "error"}`` with the exception's type and message.

CPU time (``time.process_time``) is measured around evaluate() + accumulate() + summarize() only,
and around loading (COCO() + loadRes()) separately; --repeat N gives the median of N evaluations.

Usage: coco_reference.py [--library pycocotools] [--library faster-coco-eval] [--arrays] CASE...
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import sys
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np

LIBRARIES = ("pycocotools", "faster-coco-eval")
STAT_AREAS = ("all", "small", "medium", "large")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "cases",
        nargs="+",
        type=Path,
        metavar="CASE",
        help="directory with gt.json and dt.json",
    )
    parser.add_argument(
        "--library",
        action="append",
        choices=LIBRARIES,
        help="reference to run (repeatable; default: pycocotools)",
    )
    parser.add_argument(
        "--arrays",
        action="store_true",
        help="write the precision and recall arrays as .f64 files",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="evaluations per case; CPU time is their median",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    for case in args.cases:
        for name in ("gt.json", "dt.json"):
            if not (case / name).is_file():
                parser.error(f"CASE {case}: {name} is missing")
    return args


def load(library: str, case: Path) -> tuple[Any, Any]:
    """COCO(gt.json) and loadRes(dt.json), with the library's own loaders."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        if library == "pycocotools":
            from pycocotools.coco import COCO
        else:
            from faster_coco_eval import COCO
        gt = COCO(str(case / "gt.json"))
        dt = gt.loadRes(str(case / "dt.json"))
    return gt, dt


def evaluate(library: str, gt: Any, dt: Any) -> Any:
    """evaluate() + accumulate() + summarize() with default bbox parameters; prints nothing."""
    quiet = io.StringIO()
    with contextlib.redirect_stdout(quiet):
        if library == "pycocotools":
            from pycocotools.cocoeval import COCOeval

            ev = COCOeval(gt, dt, iouType="bbox")
        else:
            from faster_coco_eval import COCOeval_faster

            ev = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *_: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def slice_mean(values: np.ndarray) -> float:
    """numpy's mean of the entries > -1 (as summarize() takes it), -1 when there are none."""
    kept = values[values > -1]
    return float(np.mean(kept)) if kept.size else -1.0


def category_metrics(ev: Any, k: int) -> dict[str, float]:
    """cpwc-detect's per-category numbers for category index k."""
    precision = ev.eval["precision"]
    recall = ev.eval["recall"]
    params = ev.params
    area = {label: i for i, label in enumerate(params.areaRngLbl)}
    m100 = list(params.maxDets).index(100)
    t50 = np.where(params.iouThrs == 0.5)[0]
    t75 = np.where(params.iouThrs == 0.75)[0]
    out = {
        "ap": slice_mean(precision[:, :, k, area["all"], m100]),
        "ap50": slice_mean(precision[t50, :, k, area["all"], m100]),
        "ap75": slice_mean(precision[t75, :, k, area["all"], m100]),
    }
    for label in STAT_AREAS[1:]:
        out[f"ap_{label}"] = slice_mean(precision[:, :, k, area[label], m100])
    for max_det in (1, 10, 100):
        out[f"ar{max_det}"] = slice_mean(recall[:, k, area["all"], list(params.maxDets).index(max_det)])
    for label in STAT_AREAS[1:]:
        out[f"ar_{label}"] = slice_mean(recall[:, k, area[label], m100])
    return out


def results(ev: Any) -> dict[str, Any]:
    precision = ev.eval["precision"]
    m100 = list(ev.params.maxDets).index(100)
    all_area = list(ev.params.areaRngLbl).index("all")
    cat_ids = [int(c) for c in ev.params.catIds]
    return {
        "stats": [float(s) for s in ev.stats[:12]],
        "ap_per_iou_threshold": [slice_mean(precision[t, :, :, all_area, m100]) for t in range(precision.shape[0])],
        "per_category": [{"category_id": c, **category_metrics(ev, k)} for k, c in enumerate(cat_ids)],
        "shape": list(precision.shape),
        "params": {
            "iouThrs": [float(t) for t in ev.params.iouThrs],
            "recThrs": [float(r) for r in ev.params.recThrs],
            "maxDets": [int(m) for m in ev.params.maxDets],
            "areaRng": [[float(a) for a in rng] for rng in ev.params.areaRng],
            "areaRngLbl": list(ev.params.areaRngLbl),
        },
    }


def write_arrays(ev: Any, case: Path, library: str) -> None:
    for name in ("precision", "recall"):
        array = np.ascontiguousarray(ev.eval[name], dtype="<f8")
        (case / f"{library}.{name}.f64").write_bytes(array.tobytes())


def run_case(library: str, case: Path, repeat: int, arrays: bool) -> dict[str, Any]:
    """One library on one case; an input the library cannot score gives {"error": ...} instead."""
    try:
        return score_case(library, case, repeat, arrays)
    except Exception as err:  # noqa: BLE001 - the error is the result: which inputs a library refuses
        return {
            "case": str(case),
            "library": library,
            "error": f"{type(err).__name__}: {err}",
        }


def score_case(library: str, case: Path, repeat: int, arrays: bool) -> dict[str, Any]:
    start = time.process_time()
    gt, dt = load(library, case)
    load_seconds = time.process_time() - start
    seconds = []
    ev = None
    for _ in range(repeat):
        start = time.process_time()
        ev = evaluate(library, gt, dt)
        seconds.append(time.process_time() - start)
    if arrays:
        write_arrays(ev, case, library)
    return {
        "case": str(case),
        "library": library,
        **results(ev),
        "load_cpu_seconds": load_seconds,
        "cpu_seconds": statistics.median(seconds),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    libraries = args.library or ["pycocotools"]
    report = {
        "versions": {name: version(name) for name in (*libraries, "numpy")},
        "results": [run_case(lib, case, args.repeat, args.arrays) for case in args.cases for lib in libraries],
    }
    json.dump(report, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
