"""onnxruntime and image decoding through the project's own Node code (tools/node), as the server runs them."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from .errors import ExportError

REPO_ROOT = Path(__file__).resolve().parents[3]
DECODE_IMAGE = REPO_ROOT / "tools" / "node" / "decode-image.mjs"
ORT_RUN = REPO_ROOT / "tools" / "node" / "ort-run.mjs"


def run_ort(model_path: Path, inputs: dict[str, np.ndarray], threads: int = 2) -> dict[str, np.ndarray]:
    """Runs one graph in onnxruntime-node (tools/node/ort-run.mjs) and returns its outputs by name."""
    with tempfile.TemporaryDirectory(prefix="cpwc-ort-") as tmp:
        in_dir, out_dir = Path(tmp) / "in", Path(tmp) / "out"
        in_dir.mkdir()
        manifest = []
        for i, (name, array) in enumerate(inputs.items()):
            array = np.ascontiguousarray(array, dtype="<f4")
            file = f"{i}.f32"
            array.tofile(in_dir / file)
            manifest.append({"name": name, "shape": list(array.shape), "file": file})
        (in_dir / "manifest.json").write_text(json.dumps({"inputs": manifest}))
        env = dict(os.environ, ORT_THREADS=str(threads))
        result = subprocess.run(
            ["node", str(ORT_RUN), str(model_path), str(in_dir), str(out_dir)], capture_output=True, text=True, env=env
        )
        if result.returncode != 0:
            raise ExportError(f"onnxruntime failed on {model_path.name}: {result.stderr.strip()}")
        out_manifest = json.loads((out_dir / "manifest.json").read_text())
        return {
            o["name"]: np.fromfile(out_dir / o["file"], dtype="<f4").reshape(o["shape"])
            for o in out_manifest["outputs"]
        }


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """max|got - expected| / max|expected| (0 for two empty tensors)."""
    if got.shape != expected.shape:
        raise ExportError(f"shape mismatch: onnxruntime {got.shape} vs PyTorch {expected.shape}")
    if expected.size == 0:
        return 0.0
    scale = float(np.abs(expected).max())
    return float(np.abs(got.astype(np.float64) - expected).max() / (scale if scale > 0 else 1.0))


@dataclass
class DecodedImage:
    path: Path
    width: int
    height: int
    rgb: np.ndarray  # uint8 [H, W, 3]

    def tensor(self) -> Tensor:
        """RGB/255, CHW: what torchvision's detection models take."""
        return torch.from_numpy(self.rgb.astype(np.float32) / 255.0).permute(2, 0, 1).contiguous()


def decode_image(path: Path) -> DecodedImage:
    """Decodes through tools/node/decode-image.mjs (sharp, exactly as the TypeScript pipeline does)."""
    with tempfile.TemporaryDirectory(prefix="cpwc-decode-") as tmp:
        raw = Path(tmp) / "image.rgb"
        result = subprocess.run(["node", str(DECODE_IMAGE), str(path), str(raw)], capture_output=True, text=True)
        if result.returncode != 0:
            raise ExportError(f"could not decode {path}: {result.stderr.strip()}")
        info = json.loads(result.stdout)
        rgb = np.fromfile(raw, dtype=np.uint8).reshape(info["height"], info["width"], 3)
    return DecodedImage(path, info["width"], info["height"], rgb)
