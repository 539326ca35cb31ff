"""cpwc_references.detection.train and its helpers (data, engine): schedules, batch order, flips,
checkpoint/resume, the JSON-lines log, and a real (tiny) training run end to end."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cpwc.models import build_detector
from cpwc_references.detection import engine, shapes_dataset, train
from cpwc_references.detection.data import BatchOrder, CocoDetectionDataset, DatasetError, Flips

REPO = Path(__file__).resolve().parents[2]

TINY_MODEL = [
    "--arch",
    "cpwc_r50_fpn",
    "--width",
    "0.125",
    "--norm",
    "bn",
    "--fpn-channels",
    "16",
    "--representation-size",
    "32",
    "--min-size",
    "96",
    "--max-size",
    "96",
    "--rpn-post-nms-top-n-train",
    "100",
    "--box-batch-size-per-image",
    "32",
]


@pytest.fixture(scope="module")
def tiny_split(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tiny")
    shapes_dataset.generate(shapes_dataset.DatasetOptions("train", 5, 8, size=96), str(out))
    return out


def split_args(split: Path, output_dir: Path, *extra: str) -> list[str]:
    """The dataset and output directory arguments of a training run, then `extra`."""
    return [
        "--train-annotations",
        str(split / "annotations.json"),
        "--train-images",
        str(split / "images"),
        "--output-dir",
        str(output_dir),
        *extra,
    ]


def tiny_args(split: Path, output_dir: Path, *extra: str) -> list[str]:
    return split_args(
        split,
        output_dir,
        *TINY_MODEL,
        "--batch-size",
        "2",
        "--optimizer",
        "adamw",
        "--lr",
        "1e-3",
        "--warmup-iterations",
        "2",
        "--threads",
        "1",
        "--no-progress",
        *extra,
    )


def read_log(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------- schedule


def test_warmup_is_linear_from_warmup_factor_to_one() -> None:
    schedule = engine.Schedule(base_lr=0.1, kind="cosine", warmup_iterations=10, warmup_factor=0.01)
    assert schedule.factor(0, 0.0) == pytest.approx(0.01)
    assert schedule.factor(5, 0.0) == pytest.approx(0.505)
    assert schedule.factor(10, 0.0) == pytest.approx(1.0)


def test_cosine_decays_to_the_floor_over_progress() -> None:
    schedule = engine.Schedule(base_lr=0.1, kind="cosine", warmup_iterations=0, min_factor=0.1)
    assert schedule.factor(100, 0.0) == pytest.approx(1.0)
    assert schedule.factor(100, 0.5) == pytest.approx(0.55)
    assert schedule.factor(100, 1.0) == pytest.approx(0.1)
    assert schedule.factor(100, 2.0) == pytest.approx(0.1)  # past the end of a time budget


def test_step_multiplies_by_gamma_at_each_milestone() -> None:
    schedule = engine.Schedule(base_lr=0.1, kind="step", warmup_iterations=0, milestones=(0.5, 0.75), gamma=0.1)
    assert [schedule.factor(1, p) for p in (0.0, 0.49, 0.5, 0.8)] == pytest.approx([1.0, 1.0, 0.1, 0.01])


def test_apply_sets_every_parameter_group() -> None:
    model = torch.nn.Linear(2, 2)
    optimizer = engine.build_optimizer("sgd", engine.parameter_groups(model, 1e-4, 0.0), 0.1, 0.9)
    lr = engine.Schedule(0.1, "cosine", warmup_iterations=0).apply(optimizer, 3, 0.5)
    assert lr == pytest.approx(0.05)
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.05, 0.05])
    assert [group["weight_decay"] for group in optimizer.param_groups] == [1e-4, 0.0]
    assert [len(group["params"]) for group in optimizer.param_groups] == [1, 1]  # weight, bias


# ---------------------------------------------------------------- batch order


def test_batch_order_shards_are_disjoint_and_cover_an_epoch() -> None:
    shards = [BatchOrder(10, 2, seed=3, rank=rank, world_size=2) for rank in (0, 1)]
    assert shards[0].batches_per_epoch() == 2  # 5 images per rank, the incomplete batch is dropped
    indices = [shard.rank_indices(epoch=0) for shard in shards]
    assert sorted(indices[0] + indices[1]) == list(range(10))
    assert shards[0].rank_indices(0) != shards[0].rank_indices(1)  # a new permutation every epoch


def test_batch_order_resumes_mid_epoch_with_the_remaining_batches() -> None:
    order = BatchOrder(12, 3, seed=1)
    full = list(order.batches(epoch=2))
    assert list(order.batches(epoch=2, start=2)) == full[2:]
    assert BatchOrder(12, 3, seed=1).rank_indices(2) == order.rank_indices(2)


def test_uneven_dataset_is_padded_for_every_rank() -> None:
    shards = [BatchOrder(5, 1, seed=0, rank=rank, world_size=2) for rank in (0, 1)]
    assert [len(shard.rank_indices(0)) for shard in shards] == [3, 3]


# ---------------------------------------------------------------- dataset


def test_dataset_maps_categories_and_boxes(tiny_split: Path) -> None:
    dataset = CocoDetectionDataset(str(tiny_split / "annotations.json"), str(tiny_split / "images"))
    coco = json.loads((tiny_split / "annotations.json").read_text())
    assert dataset.classes == ["__background__", "circle", "square", "triangle", "star", "ring"]
    assert dataset.category_ids == [0, 1, 2, 3, 4, 5]
    image, target = dataset[0]
    assert image.shape == (3, 96, 96) and image.dtype == torch.float32
    assert 0.0 <= float(image.min()) and float(image.max()) <= 1.0
    first = [a for a in coco["annotations"] if a["image_id"] == coco["images"][0]["id"]]
    x, y, w, h = first[0]["bbox"]
    assert target["boxes"][0].tolist() == [x, y, x + w, y + h]
    assert target["labels"].tolist() == [a["category_id"] for a in first]


def test_flips_move_boxes_with_the_pixels(tiny_split: Path) -> None:
    plain = CocoDetectionDataset(str(tiny_split / "annotations.json"), str(tiny_split / "images"))
    flipped = CocoDetectionDataset(
        str(tiny_split / "annotations.json"), str(tiny_split / "images"), Flips(horizontal=1.0, vertical=1.0)
    )
    image, target = plain[1]
    flipped_image, flipped_target = flipped[1]
    assert torch.equal(flipped_image, image.flip(-1).flip(-2))
    x1, y1, x2, y2 = target["boxes"][0].tolist()
    assert flipped_target["boxes"][0].tolist() == [96 - x2, 96 - y2, 96 - x1, 96 - y1]
    assert torch.equal(plain[1][1]["boxes"], target["boxes"])  # the stored targets are not modified


def test_flip_draws_are_reproducible_per_epoch(tiny_split: Path) -> None:
    dataset = CocoDetectionDataset(str(tiny_split / "annotations.json"), str(tiny_split / "images"), Flips(0.5), seed=4)
    first = [dataset[i][1]["boxes"] for i in range(8)]
    again = [dataset[i][1]["boxes"] for i in range(8)]
    assert all(torch.equal(a, b) for a, b in zip(first, again))


def test_dataset_errors_are_typed(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"images": []}')
    with pytest.raises(DatasetError, match="'annotations' must be a list"):
        CocoDetectionDataset(str(tmp_path / "bad.json"), str(tmp_path))
    with pytest.raises(DatasetError, match="cannot read COCO annotations"):
        CocoDetectionDataset(str(tmp_path / "missing.json"), str(tmp_path))


# ---------------------------------------------------------------- checkpoints


def test_save_atomic_leaves_no_temporary_file(tmp_path: Path) -> None:
    engine.save_atomic({"x": torch.arange(3)}, str(tmp_path / "ckpt.pt"))
    engine.save_atomic({"x": torch.arange(4)}, str(tmp_path / "ckpt.pt"))
    assert os.listdir(tmp_path) == ["ckpt.pt"]
    assert torch.load(tmp_path / "ckpt.pt")["x"].tolist() == [0, 1, 2, 3]


def test_rng_capture_and_restore_replays_draws() -> None:
    state = engine.capture_rng()
    first = (torch.rand(3), np.random.rand(2), __import__("random").random())
    engine.restore_rng(state)
    second = (torch.rand(3), np.random.rand(2), __import__("random").random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]


# ---------------------------------------------------------------- training runs


def test_cli_requires_a_stopping_rule(tiny_split: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        train.parse_args(tiny_args(tiny_split, tmp_path))
    assert "--iterations N and/or --time-budget MINUTES" in capsys.readouterr().err


def test_tiny_run_writes_log_and_checkpoints_that_rebuild_the_model(tiny_split: Path, tmp_path: Path) -> None:
    assert (
        train.main(
            tiny_args(
                tiny_split, tmp_path, "--iterations", "6", "--log-every", "2", "--checkpoint-every", "4", "--seed", "2"
            )
        )
        == 0
    )
    events = read_log(tmp_path)
    assert [e["event"] for e in events] == ["start", "train", "train", "train", "end"]
    assert [e["iteration"] for e in events if e["event"] == "train"] == [2, 4, 6]
    start = events[0]
    assert start["train_images"] == 8 and start["batches_per_epoch"] == 4 and start["world_size"] == 1
    for record in events[1:4]:
        assert {"loss", "loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg", "lr"} <= set(record)
        assert math.isfinite(record["loss"])
    assert events[-1]["iterations"] == 6
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    assert last["iteration"] == 6 and last["epoch"] == 1 and last["batch_in_epoch"] == 2
    assert set(last) >= {"model", "optimizer", "rng", "config", "classes", "elapsed_s"}
    final = torch.load(tmp_path / "model-final.pt")
    assert "optimizer" not in final and "rng" not in final
    assert final["seed"] == 2
    assert final["training_data"] == (
        f"{tiny_split / 'annotations.json'} (8 images); generated by "
        "scripts/references/detection/shapes_dataset.py --split train --seed 5 --count 8 --size 96"
    )
    assert final["classes"] == ["__background__", "circle", "square", "triangle", "star", "ring"]
    rebuilt = build_detector(**final["config"])
    rebuilt.load_state_dict(final["model"])
    assert final["config"]["fpn_channels"] == 16 and final["config"]["box_batch_size_per_image"] == 32


def test_resume_continues_exactly_where_an_interrupted_run_stopped(tiny_split: Path, tmp_path: Path) -> None:
    common = (
        "--iterations",
        "6",
        "--log-every",
        "1",
        "--checkpoint-every",
        "3",
        "--seed",
        "7",
        "--hflip",
        "0.5",
        "--vflip",
        "0.5",
    )
    assert train.main(tiny_args(tiny_split, tmp_path / "straight", "--keep-checkpoints", *common)) == 0
    assert sorted(os.listdir(tmp_path / "straight")) == [
        "iter-0000003.pt",
        "iter-0000006.pt",
        "last.pt",
        "log.jsonl",
        "model-final.pt",
    ]
    interrupted = str(tmp_path / "straight" / "iter-0000003.pt")  # as if the run had died after iteration 3
    assert train.main(tiny_args(tiny_split, tmp_path / "resumed", "--resume", interrupted, *common)) == 0
    straight = torch.load(tmp_path / "straight" / "model-final.pt")["model"]
    resumed = torch.load(tmp_path / "resumed" / "model-final.pt")["model"]
    assert straight.keys() == resumed.keys()
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key
    straight_losses = [e["loss"] for e in read_log(tmp_path / "straight") if e["event"] == "train"]
    resumed_log = read_log(tmp_path / "resumed")
    assert [e["event"] for e in resumed_log] == ["resume", "start", "train", "train", "train", "end"]
    assert [e["iteration"] for e in resumed_log if e["event"] == "train"] == [4, 5, 6]
    assert [e["loss"] for e in resumed_log if e["event"] == "train"] == straight_losses[3:]


def test_time_budget_stops_the_run(tiny_split: Path, tmp_path: Path) -> None:
    assert train.main(tiny_args(tiny_split, tmp_path, "--time-budget", "0.05", "--iterations", "100000")) == 0
    end = read_log(tmp_path)[-1]
    assert end["event"] == "end"
    assert 3.0 <= end["elapsed_s"] < 3.0 + 10.0  # stops at the first iteration past the 3 s budget
    assert 0 < end["iterations"] < 100000


def test_missing_dataset_fails_with_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = train.main(
        [
            "--train-annotations",
            str(tmp_path / "nope.json"),
            "--train-images",
            str(tmp_path),
            *TINY_MODEL,
            "--iterations",
            "1",
            "--output-dir",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "cannot read COCO annotations" in capsys.readouterr().err


DDP_TIMEOUT_S = 300  # a 4-iteration run takes ~20 s; far past that it is a hang, not a slow machine


def run_bounded(command: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, str, str]:
    """Runs `command` in its own process group and returns (exit code, stdout, stderr). Past `timeout_s`
    the whole group (torchrun and its workers, which hold the output pipe) is killed and the test fails
    with the output so far, instead of waiting forever on a pipe that a surviving worker keeps open."""
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(
            f"2-process DDP run did not finish within {timeout_s} s (killed); output:\n{(stdout + stderr)[-3000:]}"
        )
    return process.returncode, stdout, stderr


def test_ddp_with_two_cpu_processes(tiny_split: Path, tmp_path: Path) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE"}
    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    out = tmp_path / "out"
    # --redirects/--tee with nonzero values: torch 1.13's elastic launcher cannot parse its own default
    # ("0") under Python 3.11 (enum.Flag iteration skips 0). See docs/training.md.
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        port,
        "--redirects",
        "2",
        "--tee",
        "2",
        "--log_dir",
        str(tmp_path / "torchrun"),
        "-m",
        "cpwc_references.detection.train",
        *tiny_args(tiny_split, out, "--iterations", "4", "--log-every", "2", "--batch-size", "1", "--cpu"),
    ]
    returncode, stdout, stderr = run_bounded(command, env, DDP_TIMEOUT_S)
    assert returncode == 0, (stdout + stderr)[-3000:]
    assert json.loads(stdout.strip().splitlines()[-1])["iterations"] == 4  # rank 0's summary only
    events = read_log(out)  # one log, written by rank 0 only
    assert [e["event"] for e in events] == ["start", "train", "train", "end"]
    assert events[-1]["ranks_in_sync"] is True  # gradients were all-reduced: both replicas stayed identical
    assert events[0]["world_size"] == 2 and events[0]["batches_per_epoch"] == 4  # 8 images / 2 ranks / batch 1
    final = torch.load(out / "model-final.pt")
    assert final["iteration"] == 4
    build_detector(**final["config"]).load_state_dict(final["model"])
    assert sorted(os.listdir(out)) == ["last.pt", "log.jsonl", "model-final.pt"]


# ---------------------------------------------------------------- evaluation with cpwc-detect's evaluator


def test_ground_truth_scored_as_detections_gets_ap_one(tiny_split: Path, tmp_path: Path) -> None:
    coco = json.loads((tiny_split / "annotations.json").read_text())
    detections = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "bbox": a["bbox"], "score": 1.0}
        for a in coco["annotations"]
    ]
    engine.write_json(detections, str(tmp_path / "detections.json"))
    metrics = engine.run_coco_eval(str(tiny_split / "annotations.json"), str(tmp_path / "detections.json"))
    assert metrics["stats"][:3] == [1, 1, 1]


def test_missing_evaluator_is_reported_not_crashed(tiny_split: Path, tmp_path: Path) -> None:
    with pytest.raises(engine.EvaluatorUnavailable, match="does not exist"):
        engine.run_coco_eval(
            str(tiny_split / "annotations.json"), str(tmp_path / "d.json"), cli=str(tmp_path / "no.js")
        )


def test_run_with_val_split_logs_our_evaluators_metrics(tiny_split: Path, tmp_path: Path) -> None:
    assert (
        train.main(
            tiny_args(
                tiny_split,
                tmp_path,
                "--iterations",
                "4",
                "--eval-every",
                "2",
                "--val-annotations",
                str(tiny_split / "annotations.json"),
                "--val-images",
                str(tiny_split / "images"),
                "--max-val-images",
                "3",
            )
        )
        == 0
    )
    evals = [e for e in read_log(tmp_path) if e["event"] == "eval"]
    assert [(e["tag"], e["iteration"]) for e in evals] == [("iter0000002", 2), ("final", 4)]
    for record in evals:
        assert len(record["metrics"]["stats"]) == 12
        detections = json.loads(Path(record["detections"]).read_text())
        assert all(set(d) == {"image_id", "category_id", "bbox", "score"} for d in detections)
        assert {d["image_id"] for d in detections} <= {1, 2, 3}
    subset = json.loads((tmp_path / "eval" / "val-annotations-subset.json").read_text())
    assert [image["id"] for image in subset["images"]] == [1, 2, 3]
    assert torch.load(tmp_path / "model-final.pt")["metrics"] == evals[-1]["metrics"]


# ---------------------------------------------------------------- inference checkpoints


def test_strip_checkpoint_keeps_what_the_export_needs_and_halves_weights(tiny_split: Path, tmp_path: Path) -> None:
    from cpwc_references.detection import strip_checkpoint

    assert train.main(tiny_args(tiny_split, tmp_path, "--iterations", "2")) == 0
    assert strip_checkpoint.main([str(tmp_path / "last.pt"), str(tmp_path / "checkpoint.pt"), "--half-weights"]) == 0
    full = torch.load(tmp_path / "last.pt", weights_only=False)
    stripped = torch.load(tmp_path / "checkpoint.pt")
    assert set(stripped) == {
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
        "weights_dtype",
    }
    for key, value in stripped["model"].items():
        original = full["model"][key]
        if original.is_floating_point() and original.ndim >= 2:
            assert value.dtype == torch.float16 and torch.equal(value, original.half()), key
        else:
            assert torch.equal(value, original), key
    model = build_detector(**stripped["config"])
    model.load_state_dict(stripped["model"])  # float16 values load into the float32 parameters exactly
    assert torch.equal(model.backbone.body.conv1.weight, full["model"]["backbone.body.conv1.weight"].half().float())
    assert os.path.getsize(tmp_path / "checkpoint.pt") < 0.6 * os.path.getsize(tmp_path / "model-final.pt")


def test_strip_checkpoint_rejects_something_else(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from cpwc_references.detection import strip_checkpoint

    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    assert strip_checkpoint.main([str(tmp_path / "other.pt"), str(tmp_path / "out.pt")]) == 2
    assert "expected a training checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "out.pt").exists()


# ---------------------------------------------------------------- fine-tuning from plain weights


def test_init_from_plain_copies_torchvision_weights_with_stage1_at_zero(tiny_split: Path, tmp_path: Path) -> None:
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    plain = fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None, num_classes=91).state_dict()
    torch.save(plain, tmp_path / "plain.pth")
    args = train.parse_args(
        split_args(
            tiny_split,
            tmp_path / "out",
            "--iterations",
            "1",
            "--arch",
            "cpwc_r50_fpn",
            "--width",
            "1",
            "--norm",
            "frozen_bn",
            "--init-from-plain",
            str(tmp_path / "plain.pth"),
        )
    )
    model = train.build_model(args, num_classes=6)
    state = model.state_dict()
    assert torch.equal(state["backbone.body.layer1.0.conv1.pwc.weight"], plain["backbone.body.layer1.0.conv1.weight"])
    assert torch.equal(state["rpn.head.conv.0.0.weight"], plain["rpn.head.conv.0.0.weight"])
    assert torch.equal(state["roi_heads.box_head.fc6.weight"], plain["roi_heads.box_head.fc6.weight"])
    stage1 = [key for key in state if ".stage1." in key]
    assert stage1 and all(not state[key].any() for key in stage1)
    assert state["roi_heads.box_predictor.cls_score.weight"].shape == (6, 1024)  # fresh 6-way predictor


def test_init_from_missing_file_fails_clearly(tiny_split: Path, tmp_path: Path) -> None:
    args = train.parse_args(
        split_args(
            tiny_split,
            tmp_path / "out",
            "--iterations",
            "1",
            *TINY_MODEL,
            "--init-from-plain",
            str(tmp_path / "missing.pth"),
        )
    )
    with pytest.raises(FileNotFoundError, match="--init-from-plain"):
        train.build_model(args, num_classes=6)
