"""COCO-format detection data for training: dataset, flips, and a resumable, shardable batch order.

dataset = CocoDetectionDataset("data/shapes-train/annotations.json", "data/shapes-train/images",
                               flips=Flips(horizontal=0.5))
order = BatchOrder(len(dataset), batch_size=4, seed=1, rank=0, world_size=1)
for batch_indices in order.batches(epoch=0, start=0): ...
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

Target = dict[str, Tensor]


class DatasetError(ValueError):
    """The annotations file or an image does not form a usable COCO detection dataset."""


@dataclass(frozen=True)
class Flips:
    """Probabilities of a horizontal and a vertical flip of each training image (and its boxes)."""

    horizontal: float = 0.5
    vertical: float = 0.0


def load_coco(annotations_path: str) -> dict[str, Any]:
    try:
        with open(annotations_path, encoding="utf-8") as handle:
            coco = json.load(handle)
    except (OSError, json.JSONDecodeError) as error:
        raise DatasetError(f"cannot read COCO annotations {annotations_path!r}: {error}") from error
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{annotations_path!r} is not COCO instances JSON: '{key}' must be a list")
    if not coco["categories"]:
        raise DatasetError(f"{annotations_path!r} has no categories")
    return coco


class CocoDetectionDataset(torch.utils.data.Dataset):
    """Images as float RGB tensors in [0, 1] ([3, H, W]) with torchvision detection targets.

    Labels are contiguous: label k (1..K) is the k-th category in ascending COCO id order, and
    `category_ids[k]` maps it back. Crowd annotations and boxes without area are skipped.
    Boxes are converted from COCO [x, y, w, h] to (x1, y1, x2, y2) in continuous pixel coordinates.
    """

    def __init__(self, annotations_path: str, images_dir: str, flips: Flips = Flips(0.0, 0.0), seed: int = 0) -> None:
        coco = load_coco(annotations_path)
        categories = sorted(coco["categories"], key=lambda c: c["id"])
        self.category_ids: list[int] = [0] + [int(c["id"]) for c in categories]
        self.classes: list[str] = ["__background__"] + [str(c["name"]) for c in categories]
        label_of = {category_id: label for label, category_id in enumerate(self.category_ids) if label > 0}
        self.images: list[dict[str, Any]] = sorted(coco["images"], key=lambda image: image["id"])
        self.images_dir = images_dir
        self.flips = flips
        self.seed = seed
        self.epoch = 0
        boxes: dict[int, list[list[float]]] = {image["id"]: [] for image in self.images}
        labels: dict[int, list[int]] = {image["id"]: [] for image in self.images}
        for annotation in coco["annotations"]:
            if annotation.get("iscrowd", 0):
                continue
            if annotation["image_id"] not in boxes:
                raise DatasetError(
                    f"annotation {annotation.get('id')} refers to unknown image {annotation['image_id']}"
                )
            if annotation["category_id"] not in label_of:
                raise DatasetError(
                    f"annotation {annotation.get('id')} has unknown category {annotation['category_id']}"
                )
            x, y, w, h = (float(v) for v in annotation["bbox"])
            if w <= 0 or h <= 0:
                continue
            boxes[annotation["image_id"]].append([x, y, x + w, y + h])
            labels[annotation["image_id"]].append(label_of[annotation["category_id"]])
        self.targets: list[Target] = [
            {
                "boxes": torch.tensor(boxes[image["id"]], dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor(labels[image["id"]], dtype=torch.int64),
                "image_id": torch.tensor(image["id"], dtype=torch.int64),
            }
            for image in self.images
        ]

    def __len__(self) -> int:
        return len(self.images)

    def set_epoch(self, epoch: int) -> None:
        """Flips are drawn from (seed, epoch, index), so a resumed run flips the same images."""
        self.epoch = epoch

    def load_image(self, index: int) -> Tensor:
        path = os.path.join(self.images_dir, self.images[index]["file_name"])
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
        except OSError as error:
            raise DatasetError(f"cannot read image {path!r}: {error}") from error
        return torch.from_numpy(rgb.copy()).permute(2, 0, 1).float().div_(255.0)

    def __getitem__(self, index: int) -> tuple[Tensor, Target]:
        image = self.load_image(index)
        target = {key: value.clone() for key, value in self.targets[index].items()}
        draws = np.random.default_rng([self.seed, self.epoch, index]).random(2)
        width, height = image.shape[2], image.shape[1]
        if draws[0] < self.flips.horizontal:
            image = image.flip(-1)
            target["boxes"][:, [0, 2]] = width - target["boxes"][:, [2, 0]]
        if draws[1] < self.flips.vertical:
            image = image.flip(-2)
            target["boxes"][:, [1, 3]] = height - target["boxes"][:, [3, 1]]
        return image, target


def collate(batch: Sequence[tuple[Tensor, Target]]) -> tuple[list[Tensor], list[Target]]:
    return [image for image, _ in batch], [target for _, target in batch]


@dataclass(frozen=True)
class BatchOrder:
    """Which images each rank trains on, batch by batch: a seeded permutation per epoch, padded to a
    multiple of world_size and dealt out like DistributedSampler (rank r takes positions r, r+W, ...).
    Pure function of (seed, epoch), so resuming at (epoch, batch) replays the exact remaining order."""

    dataset_size: int
    batch_size: int
    seed: int
    rank: int = 0
    world_size: int = 1

    def rank_indices(self, epoch: int) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.dataset_size, generator=generator).tolist()
        padded_size = -(-self.dataset_size // self.world_size) * self.world_size
        order += order[: padded_size - len(order)]
        return order[self.rank :: self.world_size]

    def batches_per_epoch(self) -> int:
        per_rank = -(-self.dataset_size // self.world_size)
        return per_rank // self.batch_size  # the incomplete last batch is dropped

    def batches(self, epoch: int, start: int = 0) -> Iterator[list[int]]:
        indices = self.rank_indices(epoch)
        for batch in range(start, self.batches_per_epoch()):
            yield indices[batch * self.batch_size : (batch + 1) * self.batch_size]


__all__ = ["BatchOrder", "CocoDetectionDataset", "DatasetError", "Flips", "collate", "load_coco"]
