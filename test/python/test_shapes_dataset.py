"""The synthetic shapes generator: determinism, exact boxes and areas, COCO schema, split separation."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cpwc_references.detection import shapes_dataset
from cpwc_references.detection.shapes_dataset import DatasetOptions

REPO = Path(__file__).resolve().parents[2]


def digest_tree(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def small_split(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("shapes")
    coco = shapes_dataset.generate(DatasetOptions("test", 7, 30, image_format="mixed"), str(out))
    return out, coco


def test_same_split_and_seed_give_identical_bytes(tmp_path: Path) -> None:
    options = DatasetOptions("train", 11, 6, image_format="mixed")
    shapes_dataset.generate(options, str(tmp_path / "a"))
    shapes_dataset.generate(options, str(tmp_path / "b"))
    assert digest_tree(tmp_path / "a") == digest_tree(tmp_path / "b")


def test_image_content_does_not_depend_on_count(tmp_path: Path) -> None:
    shapes_dataset.generate(DatasetOptions("val", 3, 2), str(tmp_path / "two"))
    shapes_dataset.generate(DatasetOptions("val", 3, 5), str(tmp_path / "five"))
    for name in ("val_000000.jpg", "val_000001.jpg"):
        assert (tmp_path / "two" / "images" / name).read_bytes() == (tmp_path / "five" / "images" / name).read_bytes()


def test_different_splits_with_the_same_seed_differ() -> None:
    train_image, _ = shapes_dataset.render_image(DatasetOptions("train", 5, 1), 0)
    val_image, _ = shapes_dataset.render_image(DatasetOptions("val", 5, 1), 0)
    assert not np.array_equal(np.asarray(train_image), np.asarray(val_image))


def test_different_seeds_differ() -> None:
    first, _ = shapes_dataset.render_image(DatasetOptions("train", 1, 1), 0)
    second, _ = shapes_dataset.render_image(DatasetOptions("train", 2, 1), 0)
    assert not np.array_equal(np.asarray(first), np.asarray(second))


def test_coco_schema(small_split: tuple[Path, dict]) -> None:
    out, coco = small_split
    on_disk = json.loads((out / "annotations.json").read_text())
    assert on_disk == coco
    assert [c["id"] for c in coco["categories"]] == [1, 2, 3, 4, 5]
    assert [c["name"] for c in coco["categories"]] == ["circle", "square", "triangle", "star", "ring"]
    image_ids = [image["id"] for image in coco["images"]]
    assert image_ids == list(range(1, 31))
    for image in coco["images"]:
        assert set(image) == {"id", "file_name", "width", "height"}
        assert (out / "images" / image["file_name"]).is_file()
        with Image.open(out / "images" / image["file_name"]) as decoded:
            assert decoded.size == (image["width"], image["height"]) == (320, 320)
            assert decoded.mode == "RGB"
    annotation_ids = [a["id"] for a in coco["annotations"]]
    assert annotation_ids == list(range(1, len(annotation_ids) + 1))
    for annotation in coco["annotations"]:
        assert set(annotation) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd"}
        assert annotation["image_id"] in image_ids
        assert annotation["category_id"] in {1, 2, 3, 4, 5}
        assert annotation["iscrowd"] == 0
        assert all(isinstance(v, int) for v in annotation["bbox"])


def test_mixed_format_writes_png_and_jpeg(small_split: tuple[Path, dict]) -> None:
    _, coco = small_split
    names = [image["file_name"] for image in coco["images"]]
    assert names[24] == "test_000024.png"
    assert sum(name.endswith(".png") for name in names) == 1
    assert sum(name.endswith(".jpg") for name in names) == 29


def test_boxes_are_exact_tight_boxes_inside_the_image_and_areas_are_visible_pixels() -> None:
    options = DatasetOptions("test", 7, 12)
    for index in range(options.count):
        _, placed = shapes_dataset.render_image(options, index)
        assert 1 <= len(placed) <= 8
        union = np.zeros((320, 320), dtype=np.int32)
        for order, obj in enumerate(placed):
            x0, y0, x1, y1 = obj.box
            ys, xs = np.nonzero(obj.full_mask)
            assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x0, y0, x1, y1)
            assert 0 <= x0 <= x1 < 320 and 0 <= y0 <= y1 < 320
            # Later objects only hide pixels, never move the box, and leave most of the shape.
            later = np.zeros_like(obj.full_mask)
            for other in placed[order + 1 :]:
                later |= other.full_mask
            assert np.array_equal(obj.visible, obj.full_mask & ~later)
            assert shapes_dataset.tight_box(obj.visible) == obj.box
            assert obj.visible.sum() >= shapes_dataset.MIN_VISIBLE_FRACTION * obj.full_mask.sum()
            union += obj.visible
            annotation = shapes_dataset.coco_annotation(obj, 1, 1)
            assert annotation["bbox"] == [x0, y0, x1 + 1 - x0, y1 + 1 - y0]
            assert annotation["area"] == int(obj.visible.sum())
            assert annotation["area"] <= annotation["bbox"][2] * annotation["bbox"][3]
        assert union.max() <= 1  # visible masks partition the painted pixels


def test_objects_are_painted_in_their_colour_where_visible() -> None:
    image, placed = shapes_dataset.render_image(DatasetOptions("val", 4, 1), 0)
    pixels = np.asarray(image).astype(np.int32)
    for obj in placed:
        colours = pixels[obj.visible]
        # A flat colour with a mild horizontal shading: the spread stays well under the
        # distance the generator keeps between a shape and the background under it.
        assert np.abs(colours - colours.mean(axis=0)).max() <= 2 * 20 + 1


def test_sizes_span_coco_small_medium_and_large(small_split: tuple[Path, dict]) -> None:
    _, coco = small_split
    areas = np.array([a["area"] for a in coco["annotations"]])
    assert (areas < 32**2).any()
    assert ((areas >= 32**2) & (areas <= 96**2)).any()
    assert (areas > 96**2).any()
    assert len({a["category_id"] for a in coco["annotations"]}) == 5


@pytest.mark.parametrize(
    "field,value,message",
    [
        ("split", "a/b", "--split"),
        ("count", 0, "--count"),
        ("size", 32, "--size"),
        ("image_format", "gif", "--format"),
        ("jpeg_quality", 0, "--jpeg-quality"),
    ],
)
def test_bad_options_are_rejected_before_writing_anything(
    tmp_path: Path, field: str, value: object, message: str
) -> None:
    fields = {"split": "train", "seed": 1, "count": 2, "size": 320, "image_format": "jpeg", "jpeg_quality": 85}
    fields[field] = value
    with pytest.raises(ValueError, match=message):
        shapes_dataset.generate(DatasetOptions(**fields), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_cli_writes_a_split_and_reports_counts(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpwc_references.detection.shapes_dataset",
            "--split",
            "val",
            "--seed",
            "2",
            "--count",
            "3",
            "--out",
            str(tmp_path / "val"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    coco = json.loads((tmp_path / "val" / "annotations.json").read_text())
    assert result.stdout.strip() == f"wrote 3 images, {len(coco['annotations'])} objects to {tmp_path / 'val'}"
    assert sorted(os.listdir(tmp_path / "val" / "images")) == ["val_000000.jpg", "val_000001.jpg", "val_000002.jpg"]


def test_cli_rejects_bad_input_with_exit_code_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cpwc_references.detection.shapes_dataset",
            "--split",
            "val",
            "--seed",
            "2",
            "--count",
            "0",
            "--out",
            str(tmp_path / "val"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "--count must be >= 1" in result.stderr
    assert not (tmp_path / "val").exists()
