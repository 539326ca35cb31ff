"""Train a Faster R-CNN with a CPWC (or plain) ResNet-50 body on a COCO-format dataset.

Single process:
  npm run train -- --arch cpwc_r50_fpn --width 0.25 --norm bn \\
      --train-annotations data/shapes-train/annotations.json --train-images data/shapes-train/images \\
      --val-annotations data/shapes-val/annotations.json --val-images data/shapes-val/images \\
      --optimizer adamw --lr 1.5e-3 --time-budget 60 --output-dir checkpoints/shapes
Distributed data parallel (same script; gloo on CPU, nccl + AMP on CUDA):
  torchrun --nproc_per_node 2 -m cpwc_references.detection.train ...   (--batch-size is per process)
Resume after an interruption:
  ... --resume checkpoints/shapes/last.pt   (or --resume auto)

Outputs in --output-dir: last.pt (resumable: model, optimizer, schedule position, RNG states),
model-final.pt (weights + builder config + class names, for `npm run export`), log.jsonl, eval/.
Evaluation uses cpwc-detect's own COCO evaluator (node dist/cli/index.js eval).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

import torch

from cpwc.models import ARCHITECTURES, build_detector, count_parameters, detector_config
from cpwc_references.detection import engine
from cpwc_references.detection.data import BatchOrder, CocoDetectionDataset, DatasetError, Flips, collate

MAX_NON_FINITE_STEPS = 5


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--train-annotations", required=True, help="COCO instances JSON of the training split")
    data.add_argument("--train-images", required=True, help="directory the training file_names are relative to")
    data.add_argument("--val-annotations", help="COCO instances JSON of the validation split (optional)")
    data.add_argument("--val-images", help="directory of the validation images")
    data.add_argument("--max-train-images", type=int, default=0, help="use only the first N training images (0 = all)")
    data.add_argument(
        "--max-val-images", type=int, default=0, help="evaluate on the first N validation images (0 = all)"
    )
    data.add_argument("--hflip", type=float, default=0.5, help="probability of a horizontal flip (default 0.5)")
    data.add_argument("--vflip", type=float, default=0.0, help="probability of a vertical flip (default 0)")
    data.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")

    model = parser.add_argument_group("model")
    model.add_argument("--arch", choices=ARCHITECTURES, default="cpwc_r50_fpn")
    model.add_argument("--width", type=float, default=1.0, help="ResNet width multiplier (default 1)")
    model.add_argument(
        "--norm",
        choices=("bn", "gn", "frozen_bn"),
        default="bn",
        help="ResNet norm layers: trainable BN or GN (from scratch), frozen BN (fine-tuning)",
    )
    model.add_argument(
        "--context", choices=("cpwc", "cpwc_no_stage2", "pwc"), help="override the arch's 1x1 convolution"
    )
    model.add_argument("--fpn-channels", type=int, help="FPN width (FPN archs; builder default if omitted)")
    model.add_argument("--representation-size", type=int, help="TwoMLPHead width (FPN archs)")
    model.add_argument("--trainable-layers", type=int, help="ResNet stages that train, 0..5 (builder default)")
    model.add_argument(
        "--bn-eps",
        type=float,
        default=1e-5,
        help="batch-norm epsilon (torchvision's COCO detection weights use 0.0 with frozen BN)",
    )
    model.add_argument("--min-size", type=int, default=800, help="resize: shorter side (default 800)")
    model.add_argument("--max-size", type=int, default=1333, help="resize: longer side cap (default 1333)")
    model.add_argument("--rpn-pre-nms-top-n-train", type=int, help="torchvision default 2000")
    model.add_argument("--rpn-post-nms-top-n-train", type=int, help="torchvision default 2000")
    model.add_argument("--rpn-batch-size-per-image", type=int, help="torchvision default 256")
    model.add_argument(
        "--box-batch-size-per-image", type=int, help="RoIs sampled per image for the box head (default 512)"
    )
    model.add_argument(
        "--init-from-plain",
        metavar="FILE",
        help="initialise from a plain (non-CPWC) torchvision Faster R-CNN state dict, e.g. "
        "fasterrcnn_resnet50_fpn COCO weights; CPWC's S1 starts at zero (cpwc.init_plain)",
    )

    optim = parser.add_argument_group("optimisation")
    optim.add_argument("--batch-size", type=int, default=4, help="images per iteration per process (default 4)")
    optim.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    optim.add_argument("--lr", type=float, default=0.02, help="base learning rate (default 0.02)")
    optim.add_argument("--momentum", type=float, default=0.9, help="SGD momentum")
    optim.add_argument("--weight-decay", type=float, default=1e-4)
    optim.add_argument(
        "--norm-weight-decay", type=float, default=0.0, help="weight decay of 1-D params (norms, biases)"
    )
    optim.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    optim.add_argument(
        "--milestones",
        type=float,
        nargs="+",
        default=[0.67, 0.89],
        help="step schedule: fractions of the run where lr is multiplied by --gamma",
    )
    optim.add_argument("--gamma", type=float, default=0.1)
    optim.add_argument("--min-lr-factor", type=float, default=0.0, help="cosine floor as a fraction of --lr")
    optim.add_argument("--warmup-iterations", type=int, default=500)
    optim.add_argument("--warmup-factor", type=float, default=1e-3)
    optim.add_argument("--grad-clip", type=float, default=10.0, help="max gradient norm (0 = off)")
    optim.add_argument("--iterations", type=int, default=0, help="stop after N iterations (0 = no limit)")
    optim.add_argument(
        "--time-budget",
        type=float,
        default=0.0,
        metavar="MINUTES",
        help="stop after MINUTES of wall-clock time; the schedule runs over time instead of iterations",
    )
    optim.add_argument("--amp", choices=("auto", "on", "off"), default="auto", help="mixed precision (auto = on CUDA)")
    optim.add_argument("--cpu", action="store_true", help="train on CPU even if CUDA is available")

    run = parser.add_argument_group("run")
    run.add_argument("--output-dir", required=True, help="checkpoints, log.jsonl and eval/ go here")
    run.add_argument("--checkpoint-every", type=int, default=200, help="write last.pt every N iterations")
    run.add_argument("--keep-checkpoints", action="store_true", help="also keep iter-NNNNNNN.pt at every checkpoint")
    run.add_argument(
        "--eval-every", type=int, default=0, help="evaluate on the val split every N iterations (0 = at the end only)"
    )
    run.add_argument("--log-every", type=int, default=20, help="log averaged losses every N iterations")
    run.add_argument(
        "--resume", help="checkpoint to resume from (last.pt), or 'auto' for OUTPUT_DIR/last.pt if present"
    )
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--threads", type=int, default=2, help="torch intra-op threads per process (default 2)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    args = parser.parse_args(argv)
    check_args(parser, args)
    return args


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.iterations <= 0 and args.time_budget <= 0:
        parser.error("give --iterations N and/or --time-budget MINUTES")
    if bool(args.val_annotations) != bool(args.val_images):
        parser.error("--val-annotations and --val-images go together")
    for name in ("batch_size", "threads", "checkpoint_every", "log_every"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1")
    if not 0 <= args.hflip <= 1 or not 0 <= args.vflip <= 1:
        parser.error("--hflip and --vflip are probabilities in [0, 1]")
    if args.lr <= 0:
        parser.error("--lr must be positive")


def faster_rcnn_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "rpn_pre_nms_top_n_train",
        "rpn_post_nms_top_n_train",
        "rpn_batch_size_per_image",
        "box_batch_size_per_image",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def build_model(args: argparse.Namespace, num_classes: int) -> torch.nn.Module:
    model = build_detector(
        arch=args.arch,
        num_classes=num_classes,
        width=args.width,
        norm=args.norm,
        min_size=args.min_size,
        max_size=args.max_size,
        context=args.context,
        fpn_channels=args.fpn_channels,
        representation_size=args.representation_size,
        trainable_layers=args.trainable_layers,
        bn_eps=args.bn_eps,
        **faster_rcnn_kwargs(args),
    )
    if args.init_from_plain:
        initialise_from_plain(model, args.init_from_plain)
    return model


def initialise_from_plain(model: torch.nn.Module, path: str) -> None:
    """Loads a plain torchvision Faster R-CNN state dict (or {"model": state_dict}) into the CPWC model
    with every S1 at zero (cpwc.init_plain). The class-specific predictor keeps its fresh initialisation
    when the plain one was trained for another number of classes (e.g. COCO's 91)."""
    from cpwc.init_plain import load_plain_into_cpwc

    if not os.path.isfile(path):
        raise FileNotFoundError(f"--init-from-plain {path!r}: no such file")
    plain = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(plain, dict) and isinstance(plain.get("model"), dict):
        plain = plain["model"]
    own = model.state_dict()
    replaced = []
    for key in [k for k in own if k.startswith("roi_heads.box_predictor.")]:
        if key in plain and tuple(plain[key].shape) != tuple(own[key].shape):
            plain[key] = own[key]
            replaced.append(key)
    load_plain_into_cpwc(model, plain)
    note = f"; fresh predictor for {model.roi_heads.box_predictor.cls_score.out_features} classes" if replaced else ""
    print(f"initialised from plain weights {path}{note}", file=sys.stderr)


def describe_training_data(annotations_path: str, image_count: int) -> str:
    """For provenance (model.json): the annotations file, the images used, and the generator's info if any."""
    with open(annotations_path, encoding="utf-8") as handle:
        info = json.load(handle).get("info") or {}
    described = f"{annotations_path} ({image_count} images)"
    if "generator" in info:
        described += (
            f"; generated by {info['generator']} --split {info.get('split')} --seed {info.get('seed')} "
            f"--count {info.get('count')} --size {info.get('size')}"
        )
    return described


class Trainer:
    def __init__(self, args: argparse.Namespace, context: engine.DistributedContext) -> None:
        self.args, self.context = args, context
        flips = Flips(args.hflip, args.vflip)
        self.train_set = CocoDetectionDataset(args.train_annotations, args.train_images, flips, seed=args.seed)
        if args.max_train_images:
            self.train_set.images = self.train_set.images[: args.max_train_images]
            self.train_set.targets = self.train_set.targets[: args.max_train_images]
        self.val_set: CocoDetectionDataset | None = None
        if args.val_annotations:
            self.val_set = CocoDetectionDataset(args.val_annotations, args.val_images)
            if self.val_set.category_ids != self.train_set.category_ids:
                raise DatasetError("the val split's categories differ from the train split's")
            if args.max_val_images:
                self.val_set.images = self.val_set.images[: args.max_val_images]
                self.val_set.targets = self.val_set.targets[: args.max_val_images]
        self.training_data = describe_training_data(args.train_annotations, len(self.train_set))
        self.order = BatchOrder(len(self.train_set), args.batch_size, args.seed, context.rank, context.world_size)
        if self.order.batches_per_epoch() < 1:
            raise DatasetError(
                f"{len(self.train_set)} training images are too few for batch size "
                f"{args.batch_size} x {context.world_size} processes"
            )
        self.model = build_model(args, len(self.train_set.classes)).to(context.device)
        self.parameters = count_parameters(self.model)
        self.optimizer = engine.build_optimizer(
            args.optimizer,
            engine.parameter_groups(self.model, args.weight_decay, args.norm_weight_decay),
            args.lr,
            args.momentum,
        )
        self.schedule = engine.Schedule(
            args.lr,
            args.schedule,
            args.warmup_iterations,
            args.warmup_factor,
            args.min_lr_factor,
            tuple(args.milestones),
            args.gamma,
        )
        self.use_amp = context.device.type == "cuda" and args.amp != "off"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.iteration, self.epoch, self.batch_in_epoch, self.elapsed_before = 0, 0, 0, 0.0
        self.log = engine.JsonLinesLog(os.path.join(args.output_dir, "log.jsonl") if context.is_main else None)
        self.evaluator_warned = False
        self.non_finite_steps = 0
        self.last_metrics: dict[str, Any] | None = None
        resume = self.resume_path()
        if resume:
            self.load(resume)
        if context.enabled:
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[context.local_rank] if context.device.type == "cuda" else None
            )
        else:
            self.ddp = self.model

    # ------------------------------------------------------------ checkpoints

    def resume_path(self) -> str | None:
        if not self.args.resume:
            return None
        if self.args.resume == "auto":
            path = os.path.join(self.args.output_dir, "last.pt")
            return path if os.path.isfile(path) else None
        if not os.path.isfile(self.args.resume):
            raise FileNotFoundError(f"--resume {self.args.resume!r}: no such checkpoint")
        return self.args.resume

    def checkpoint(self, elapsed: float) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "config": detector_config(self.model),
            "classes": self.train_set.classes,
            "category_ids": self.train_set.category_ids,
            "iteration": self.iteration,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "elapsed_s": elapsed,
            "rng": engine.capture_rng(),
            "args": vars(self.args),
            "metrics": self.last_metrics,
            "parameters": self.parameters,
            "seed": self.args.seed,
            "training_data": self.training_data,
        }

    def save(self, elapsed: float, name: str = "last.pt") -> None:
        if self.context.is_main:
            engine.save_atomic(self.checkpoint(elapsed), os.path.join(self.args.output_dir, name))

    def load(self, path: str) -> None:
        # A resumable checkpoint this script wrote: its RNG states hold numpy arrays, which torch >= 2.6's
        # default weights_only=True refuses.
        state = torch.load(path, map_location="cpu", weights_only=False)
        if state.get("config") != detector_config(self.model):
            raise ValueError(f"{path} was trained with a different model config: {state.get('config')}")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.iteration, self.epoch = state["iteration"], state["epoch"]
        self.batch_in_epoch, self.elapsed_before = state["batch_in_epoch"], state["elapsed_s"]
        self.last_metrics = state.get("metrics")
        engine.restore_rng(state["rng"])
        self.log.write(
            "resume", checkpoint=path, iteration=self.iteration, epoch=self.epoch, elapsed_s=self.elapsed_before
        )

    # ------------------------------------------------------------ loop

    def progress(self, elapsed: float) -> float:
        fractions = []
        if self.args.time_budget > 0:
            fractions.append(elapsed / (60 * self.args.time_budget))
        if self.args.iterations > 0:
            fractions.append(self.iteration / self.args.iterations)
        return max(fractions)

    def loader(self) -> torch.utils.data.DataLoader:
        self.train_set.set_epoch(self.epoch)
        return torch.utils.data.DataLoader(
            self.train_set,
            batch_sampler=list(self.order.batches(self.epoch, self.batch_in_epoch)),
            collate_fn=collate,
            num_workers=self.args.workers,
            # Its own generator: creating an iterator would otherwise draw from the global RNG, which a
            # resumed run restores at a different point than where the interrupted run created its loader.
            generator=torch.Generator().manual_seed(self.args.seed * 1_000_003 + self.epoch),
        )

    def step(self, images: list[torch.Tensor], targets: list[dict[str, torch.Tensor]]) -> dict[str, float]:
        device = self.context.device
        images = [image.to(device, non_blocking=True) for image in images]
        targets = [{key: value.to(device) for key, value in target.items()} for target in targets]
        with torch.autocast(device_type=device.type, enabled=self.use_amp):
            losses = self.ddp(images, targets)
        loss = sum(losses.values())
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.unscale_(self.optimizer)
        grad_norm = engine.clip_gradients(self.model.parameters(), self.args.grad_clip)
        averaged = engine.average_losses(losses, self.context)  # the same on every rank
        averaged["loss"] = sum(averaged.values())
        if not math.isfinite(averaged["loss"]):
            # Skip the update (every rank agrees, the average is all-reduced); give up if it persists.
            self.non_finite_steps += 1
            self.log.write("non_finite_loss", iteration=self.iteration, losses=averaged)
            if self.non_finite_steps >= MAX_NON_FINITE_STEPS:
                raise FloatingPointError(
                    f"{self.non_finite_steps} consecutive non-finite losses at iteration "
                    f"{self.iteration}: {averaged}; lower --lr or raise --warmup-iterations"
                )
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.update()
            return averaged
        self.non_finite_steps = 0
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if grad_norm is not None:
            averaged["grad_norm"] = grad_norm
        return averaged

    def run(self) -> dict[str, Any]:
        args = self.args
        self.log.write(
            "start",
            args=vars(args),
            parameters=self.parameters,
            world_size=self.context.world_size,
            train_images=len(self.train_set),
            classes=self.train_set.classes,
            batches_per_epoch=self.order.batches_per_epoch(),
            torch=torch.__version__,
            threads=torch.get_num_threads(),
        )
        bar = engine.ProgressBar(enabled=self.context.is_main and not args.no_progress)
        started = time.monotonic()
        window: dict[str, float] = {}
        window_count, window_started = 0, time.monotonic()
        elapsed = self.elapsed_before
        done = self.progress(elapsed) >= 1.0
        while not done:
            for images, targets in self.loader():
                lr = self.schedule.apply(self.optimizer, self.iteration, self.progress(elapsed))
                losses = self.step(images, targets)
                self.iteration += 1
                self.batch_in_epoch += 1
                elapsed = engine.broadcast_float(self.elapsed_before + time.monotonic() - started, self.context)
                for name, value in losses.items():
                    window[name] = window.get(name, 0.0) + value
                window_count += 1
                progress = self.progress(elapsed)
                done = progress >= 1.0
                if self.context.is_main and (bar.interactive or self.iteration % args.log_every == 0):
                    eta = self.eta(elapsed, progress, time.monotonic() - window_started, window_count)
                    bar.update(min(progress, 1.0), self.iteration, losses["loss"], lr, elapsed, eta)
                if self.iteration % args.log_every == 0 or done:
                    seconds = time.monotonic() - window_started
                    self.log.write(
                        "train",
                        iteration=self.iteration,
                        epoch=self.epoch,
                        lr=lr,
                        elapsed_s=round(elapsed, 2),
                        progress=round(progress, 4),
                        s_per_iteration=round(seconds / window_count, 4),
                        **{name: round(total / window_count, 5) for name, total in window.items()},
                    )
                    window, window_count, window_started = {}, 0, time.monotonic()
                if args.eval_every and self.iteration % args.eval_every == 0 and not done:
                    self.evaluate(f"iter{self.iteration:07d}")
                if self.iteration % args.checkpoint_every == 0 or done:
                    self.save(elapsed)
                    if args.keep_checkpoints:
                        self.save(elapsed, f"iter-{self.iteration:07d}.pt")
                if done:
                    break
            else:
                self.epoch += 1
                self.batch_in_epoch = 0
        bar.close()
        self.evaluate("final")
        self.save(elapsed)
        if self.context.is_main:
            final = engine.strip_for_inference(self.checkpoint(elapsed))
            engine.save_atomic(final, os.path.join(args.output_dir, "model-final.pt"))
        summary = {
            "iterations": self.iteration,
            "epochs": self.epoch + self.batch_in_epoch / self.order.batches_per_epoch(),
            "elapsed_s": round(elapsed, 1),
            "metrics": self.last_metrics,
        }
        if self.context.enabled:
            summary["ranks_in_sync"] = engine.replicas_identical(self.model, self.context)
        self.log.write("end", **summary)
        self.log.close()
        return summary

    def eta(self, elapsed: float, progress: float, window_seconds: float, window_count: int) -> float:
        if self.args.time_budget > 0 and (
            self.args.iterations <= 0 or elapsed / (60 * self.args.time_budget) >= progress
        ):
            return max(0.0, 60 * self.args.time_budget - elapsed)
        per_iteration = window_seconds / max(window_count, 1)
        return max(0, self.args.iterations - self.iteration) * per_iteration

    def evaluate(self, tag: str) -> None:
        """Rank 0 predicts on the val split and scores with cpwc-detect's evaluator; the others wait."""
        if self.val_set is None:
            return
        if self.context.is_main:
            detections_path = os.path.join(self.args.output_dir, "eval", f"detections-{tag}.json")
            started = time.monotonic()
            results = engine.predict_coco_results(self.model, self.val_set, self.context.device)
            engine.write_json(results, detections_path)
            annotations = self.val_annotations_for_eval()
            try:
                metrics = engine.run_coco_eval(annotations, detections_path)
            except engine.EvaluatorUnavailable as error:
                if not self.evaluator_warned:
                    print(f"warning: skipping evaluation: {error}", file=sys.stderr)
                self.evaluator_warned = True
                self.log.write(
                    "eval_skipped",
                    tag=tag,
                    iteration=self.iteration,
                    reason=str(error),
                    detections=detections_path,
                    annotations=annotations,
                )
            else:
                self.last_metrics = metrics
                self.log.write(
                    "eval",
                    tag=tag,
                    iteration=self.iteration,
                    detections=detections_path,
                    annotations=annotations,
                    seconds=round(time.monotonic() - started, 1),
                    metrics=metrics,
                )
        if self.context.enabled:
            torch.distributed.barrier()

    def val_annotations_for_eval(self) -> str:
        """The val annotations, cut to the evaluated images when --max-val-images is set."""
        assert self.val_set is not None
        if not self.args.max_val_images:
            return self.args.val_annotations
        with open(self.args.val_annotations, encoding="utf-8") as handle:
            coco = json.load(handle)
        kept = {image["id"] for image in self.val_set.images}
        coco["images"] = [image for image in coco["images"] if image["id"] in kept]
        coco["annotations"] = [a for a in coco["annotations"] if a["image_id"] in kept]
        path = os.path.join(self.args.output_dir, "eval", "val-annotations-subset.json")
        engine.write_json(coco, path)
        return path


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    context = engine.init_distributed(prefer_cuda=not args.cpu)
    torch.manual_seed(args.seed + context.rank)
    try:
        trainer = Trainer(args, context)
        summary = trainer.run()
        if context.enabled:
            # every rank finishes before any tears gloo down: destroying the group while a peer is
            # still in a collective can leave that peer waiting forever
            torch.distributed.barrier()
    except (DatasetError, FileNotFoundError) as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    finally:
        if context.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if context.is_main:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
