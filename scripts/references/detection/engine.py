"""Training helpers: learning-rate schedules (iteration- or wall-clock-based), atomic resumable
checkpoints, RNG capture, JSON-lines logs, a progress bar, distributed setup, and evaluation of a
detector with cpwc-detect's own COCO evaluator (`node dist/cli/index.js eval`)."""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

from cpwc.export.runtime import REPO_ROOT

from .data import CocoDetectionDataset

EVAL_CLI = os.path.join(REPO_ROOT, "dist", "cli", "index.js")


# ---------------------------------------------------------------- learning rate


@dataclass(frozen=True)
class Schedule:
    """lr(t) = base_lr · warmup(iteration) · decay(progress), progress in [0, 1] being the fraction
    of the run done: iterations / max_iterations, or elapsed seconds / time budget.

    warmup: linear from warmup_factor to 1 over warmup_iterations (torchvision's detection recipe).
    decay "cosine": min_factor + (1 - min_factor) · (1 + cos(π·progress)) / 2.
    decay "step": gamma ** (number of milestones, as fractions of the run, already passed)."""

    base_lr: float
    kind: str = "cosine"
    warmup_iterations: int = 500
    warmup_factor: float = 1e-3
    min_factor: float = 0.0
    milestones: tuple = (0.67, 0.89)
    gamma: float = 0.1

    def factor(self, iteration: int, progress: float) -> float:
        progress = min(max(progress, 0.0), 1.0)
        warmup = 1.0
        if iteration < self.warmup_iterations:
            alpha = iteration / self.warmup_iterations
            warmup = self.warmup_factor * (1 - alpha) + alpha
        if self.kind == "cosine":
            decay = self.min_factor + (1 - self.min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
        elif self.kind == "step":
            decay = self.gamma ** sum(progress >= milestone for milestone in self.milestones)
        else:
            raise ValueError(f"schedule must be 'cosine' or 'step', got {self.kind!r}")
        return warmup * decay

    def apply(self, optimizer: torch.optim.Optimizer, iteration: int, progress: float) -> float:
        lr = self.base_lr * self.factor(iteration, progress)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr


def parameter_groups(model: nn.Module, weight_decay: float, norm_weight_decay: float) -> list[dict[str, Any]]:
    """Trainable parameters, with 1-D tensors (norm scales/shifts, biases) in their own decay group."""
    decayed, undecayed = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            (undecayed if parameter.ndim <= 1 else decayed).append(parameter)
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": undecayed, "weight_decay": norm_weight_decay}]


def build_optimizer(name: str, groups: list[dict[str, Any]], lr: float, momentum: float) -> torch.optim.Optimizer:
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    raise ValueError(f"optimizer must be 'sgd' or 'adamw', got {name!r}")


# ---------------------------------------------------------------- RNG and checkpoints


def capture_rng() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(payload: dict[str, Any], path: str) -> None:
    """torch.save to a temporary file beside `path`, then rename: a crash never leaves half a checkpoint."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = f"{path}.tmp{os.getpid()}"
    torch.save(payload, temporary)
    os.replace(temporary, path)


def strip_for_inference(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The parts the export needs: weights, builder config, class names, provenance; no optimizer/RNG."""
    return {
        key: checkpoint[key]
        for key in (
            "model",
            "config",
            "classes",
            "category_ids",
            "iteration",
            "elapsed_s",
            "seed",
            "training_data",
            "args",
            "metrics",
            "parameters",
        )
        if key in checkpoint
    }


# ---------------------------------------------------------------- logging


class JsonLinesLog:
    """Appends one JSON object per line (rank 0 only); `None` path means stdout is not used either."""

    def __init__(self, path: str | None) -> None:
        self.handle: TextIO | None = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.handle = open(path, "a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        if self.handle is None:
            return
        record = {"event": event, "time": round(time.time(), 3), **fields}
        self.handle.write(json.dumps(record, default=_json_default) + "\n")
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not None:
            self.handle.close()


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"


class ProgressBar:
    """One self-overwriting stderr line: bar, iteration, loss, lr, elapsed and ETA."""

    def __init__(self, stream: TextIO = sys.stderr, width: int = 24, enabled: bool = True) -> None:
        self.stream, self.width, self.enabled = stream, width, enabled
        self.interactive = stream.isatty()

    def update(self, progress: float, iteration: int, loss: float, lr: float, elapsed: float, eta: float) -> None:
        if not self.enabled:
            return
        filled = int(round(self.width * min(max(progress, 0.0), 1.0)))
        line = (
            f"[{'#' * filled}{'.' * (self.width - filled)}] {100 * progress:5.1f}% it {iteration} "
            f"loss {loss:.3f} lr {lr:.2e} elapsed {format_duration(elapsed)} ETA {format_duration(eta)}"
        )
        self.stream.write(("\r" + line) if self.interactive else (line + "\n"))
        self.stream.flush()

    def close(self) -> None:
        if self.enabled and self.interactive:
            self.stream.write("\n")
            self.stream.flush()


# ---------------------------------------------------------------- distributed


@dataclass(frozen=True)
class DistributedContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(prefer_cuda: bool = True) -> DistributedContext:
    """Reads torchrun's RANK/WORLD_SIZE/LOCAL_RANK; nccl on CUDA, gloo on CPU; single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    cuda = prefer_cuda and torch.cuda.is_available()
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    if world_size <= 1:
        return DistributedContext(device=device)
    torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    return DistributedContext(int(os.environ["RANK"]), world_size, local_rank, device)


def broadcast_float(value: float, context: DistributedContext) -> float:
    """Rank 0's value everywhere, so that every rank takes the same time-based decisions."""
    if not context.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=context.device)
    torch.distributed.broadcast(tensor, src=0)
    return float(tensor.item())


def average_losses(losses: dict[str, torch.Tensor], context: DistributedContext) -> dict[str, float]:
    names = sorted(losses)
    stacked = torch.stack([losses[name].detach().float() for name in names])
    if context.enabled:
        torch.distributed.all_reduce(stacked)
        stacked /= context.world_size
    return {name: float(value) for name, value in zip(names, stacked.tolist())}


def replicas_identical(model: nn.Module, context: DistributedContext) -> bool:
    """Whether every rank holds bit-identical parameters (what DDP's gradient all-reduce guarantees)."""
    flat = torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])
    fingerprint = torch.stack(
        [
            flat.sum(),
            (flat * flat).sum(),
            (flat * torch.arange(flat.numel(), dtype=flat.dtype, device=flat.device)).sum(),
        ]
    )
    gathered = [torch.empty_like(fingerprint) for _ in range(context.world_size)]
    torch.distributed.all_gather(gathered, fingerprint)
    return all(torch.equal(gathered[0], other) for other in gathered[1:])


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def predict_coco_results(
    model: nn.Module, dataset: CocoDetectionDataset, device: torch.device, batch_size: int = 4
) -> list[dict[str, Any]]:
    """Detections on every image of `dataset` (no flips) as COCO results: image_id, category_id,
    bbox [x,y,w,h], score."""
    was_training = model.training
    model.eval()
    results: list[dict[str, Any]] = []
    for start in range(0, len(dataset), batch_size):
        indices = list(range(start, min(start + batch_size, len(dataset))))
        images = [dataset.load_image(index).to(device) for index in indices]
        for index, output in zip(indices, model(images)):
            image_id = int(dataset.images[index]["id"])
            for box, label, score in zip(
                output["boxes"].tolist(), output["labels"].tolist(), output["scores"].tolist()
            ):
                x1, y1, x2, y2 = box
                results.append(
                    {
                        "image_id": image_id,
                        "category_id": dataset.category_ids[label],
                        "bbox": [round(x1, 3), round(y1, 3), round(x2 - x1, 3), round(y2 - y1, 3)],
                        "score": round(score, 5),
                    }
                )
    model.train(was_training)
    return results


class EvaluatorUnavailable(RuntimeError):
    """cpwc-detect's evaluator (dist/cli/index.js eval) is not built or does not run."""


def run_coco_eval(
    annotations_path: str, detections_path: str, cli: str = EVAL_CLI, timeout_s: float = 600
) -> dict[str, Any]:
    """Runs `node dist/cli/index.js eval --annotations A --detections D --json` and returns its JSON."""
    if not os.path.isfile(cli):
        raise EvaluatorUnavailable(f"{cli} does not exist; build it with `npx tsc -p tsconfig.build.json`")
    command = ["node", cli, "eval", "--annotations", annotations_path, "--detections", detections_path, "--json"]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise EvaluatorUnavailable(f"{' '.join(command)} failed: {error}") from error
    if completed.returncode != 0:
        raise EvaluatorUnavailable(
            f"{' '.join(command)} exited {completed.returncode}: {completed.stderr.strip()[-500:]}"
        )
    try:
        return json.loads(completed.stdout)
    except json.JSONDecodeError as error:
        raise EvaluatorUnavailable(f"{' '.join(command)} printed no JSON: {completed.stdout[:200]!r}") from error


def write_json(payload: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(payload, handle)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def clip_gradients(parameters: Iterable[torch.nn.Parameter], max_norm: float) -> float | None:
    if max_norm <= 0:
        return None
    return float(torch.nn.utils.clip_grad_norm_(list(parameters), max_norm))
