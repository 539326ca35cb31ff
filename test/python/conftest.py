"""Shared setup for the model-side tests: threads, seeds, and a built dist/ for decode-image.mjs.

The tests import the installed packages `cpwc` and `cpwc_references` (`pip install -e scripts`, which
tools/setup-venv.sh does); they do not touch sys.path."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[2]

# CI has two cores.
torch.set_num_threads(int(os.environ.get("CPWC_TORCH_THREADS", "2")))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def built_dist() -> Path:
    """dist/detection/image.js, which tools/node/decode-image.mjs requires (`npm test` builds it first)."""
    image_js = REPO_ROOT / "dist" / "detection" / "image.js"
    if not image_js.exists():
        subprocess.run(["npx", "tsc", "-p", "tsconfig.build.json"], cwd=REPO_ROOT, check=True)
    return image_js


@pytest.fixture
def seed_export_cli(tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`python -m cpwc.export --seed 0 --out TMP/x ARGS…`, run from the repository root, output captured."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cpwc.export", "--seed", "0", "--out", str(tmp_path / "x"), *args]
        return subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)

    return run
