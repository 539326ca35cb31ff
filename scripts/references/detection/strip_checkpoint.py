"""Turn a training checkpoint (last.pt / model-final.pt) into the inference checkpoint a model
directory ships as checkpoint.pt: weights, builder config, class names and provenance; no optimizer,
scaler or RNG state.

With --half-weights the convolution and linear weights (every floating tensor with 2+ dimensions) are
stored as float16, halving the file. Export from the *stripped* file: the model then loads those
float16 values into float32 parameters, so the ONNX graphs and checkpoint.pt hold the same numbers.
Norm parameters and running statistics stay float32 (running variances can be far below float16's
normal range).

  python -m cpwc_references.detection.strip_checkpoint checkpoints/shapes/model-final.pt \\
      models/shapes/checkpoint.pt --half-weights
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import torch  # noqa: E402

from cpwc_references.detection.engine import save_atomic, strip_for_inference


def halve_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {
        key: value.half() if value.is_floating_point() and value.ndim >= 2 else value
        for key, value in state_dict.items()
    }


def strip(checkpoint: dict[str, Any], half_weights: bool) -> dict[str, Any]:
    if not isinstance(checkpoint, dict) or "model" not in checkpoint or "config" not in checkpoint:
        raise ValueError("expected a training checkpoint: a dict with 'model' and 'config'")
    stripped = strip_for_inference(checkpoint)
    if half_weights:
        stripped["model"] = halve_weights(stripped["model"])
        stripped["weights_dtype"] = "float16 for 2+-D weights, float32 otherwise"
    return stripped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", help="training checkpoint (last.pt or model-final.pt)")
    parser.add_argument("out", help="inference checkpoint to write (e.g. models/NAME/checkpoint.pt)")
    parser.add_argument("--half-weights", action="store_true", help="store 2+-D floating weights as float16")
    args = parser.parse_args(argv)
    try:
        # last.pt or model-final.pt written by train.py (last.pt's RNG states hold numpy arrays).
        checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=False)
        stripped = strip(checkpoint, args.half_weights)
    except (OSError, RuntimeError, ValueError) as error:
        print(f"strip_checkpoint: {args.checkpoint}: {error}", file=sys.stderr)
        return 2
    save_atomic(stripped, args.out)
    print(f"wrote {args.out} ({os.path.getsize(args.out):,} bytes; iteration {stripped.get('iteration')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
