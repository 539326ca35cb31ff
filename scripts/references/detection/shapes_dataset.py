"""Generate a synthetic COCO-format detection dataset of coloured shapes on cluttered backgrounds.

Every image is drawn from its own random stream, seeded by (seed, split, image index), so a
split is reproducible byte for byte, image i does not depend on --count, and the same seed
gives different images in different splits.

Annotation semantics (COCO "instances", bbox only):
  * Objects are painted in order; a later object hides what it covers of an earlier one.
  * A placement is accepted only if every earlier object keeps >= MIN_VISIBLE_FRACTION of its
    pixels AND keeps its tight box unchanged. So `bbox` is at once the exact tight box of the
    drawn shape and of its visible pixels (no amodal/modal ambiguity), in continuous pixel
    coordinates: [x_min, y_min, x_max + 1 - x_min, y_max + 1 - y_min] over the mask's pixels.
  * `area` is the number of visible pixels of the object's mask (after occlusion), which is
    what COCO's small/medium/large ranges are applied to.

Example:
  npm run dataset:shapes -- --split train --seed 1 --count 5000 --out data/shapes-train
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "ring")
MIN_VISIBLE_FRACTION = 0.7
MIN_OBJECTS, MAX_OBJECTS = 1, 8
# Radius of the shape's circumscribed circle, as a fraction of the image size (log-uniform).
# At 320 px this is 12..128 px, which spans COCO small (< 32^2), medium and large (> 96^2).
MIN_RADIUS_FRACTION, MAX_RADIUS_FRACTION = 12 / 320, 128 / 320
MIN_COLOUR_DISTANCE = 90.0  # Euclidean RGB distance between a shape and the background under it
PLACEMENT_TRIES = 30
FORMATS = ("jpeg", "png", "mixed")
MIXED_PNG_EVERY = 25  # in "mixed" format, every 25th image is PNG, the rest JPEG


@dataclass(frozen=True)
class DatasetOptions:
    split: str
    seed: int
    count: int
    size: int = 320
    image_format: str = "jpeg"
    jpeg_quality: int = 85


@dataclass
class PlacedObject:
    category_id: int
    full_mask: np.ndarray  # bool [H, W]: the shape as drawn
    visible: np.ndarray  # bool [H, W]: what is still visible after later objects
    box: tuple[int, int, int, int]  # inclusive pixel box (x0, y0, x1, y1) of full_mask


def split_code(split: str) -> int:
    """A stable integer for the split name (Python's hash() is salted per process)."""
    return zlib.crc32(split.encode("utf-8"))


def image_rng(options: DatasetOptions, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([options.seed, split_code(options.split), index]))


# ---------------------------------------------------------------- backgrounds


def gradient_background(rng: np.random.Generator, size: int) -> np.ndarray:
    start, end = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return start[None, None, :] * (1 - t[..., None]) + end[None, None, :] * t[..., None]


def add_stripes(rng: np.random.Generator, canvas: np.ndarray) -> None:
    size = canvas.shape[0]
    period = rng.uniform(6, 40)
    angle = rng.uniform(0, math.pi)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    wave = np.sin(2 * math.pi * (xs * math.cos(angle) + ys * math.sin(angle)) / period)
    canvas += wave[..., None] * rng.uniform(-40, 40, 3)[None, None, :]


def add_blotches(rng: np.random.Generator, canvas: np.ndarray) -> None:
    """Low-frequency coloured noise: a coarse random grid upsampled smoothly."""
    size = canvas.shape[0]
    cells = int(rng.integers(3, 12))
    coarse = rng.uniform(-50, 50, (cells, cells, 3)).astype(np.float32)
    for channel in range(3):
        layer = Image.fromarray(coarse[..., channel]).resize((size, size), Image.BICUBIC)
        canvas[..., channel] += np.asarray(layer)


def add_checker(rng: np.random.Generator, canvas: np.ndarray) -> None:
    size = canvas.shape[0]
    cell = int(rng.integers(8, 48))
    ys, xs = np.mgrid[0:size, 0:size]
    checker = ((xs // cell + ys // cell) % 2).astype(np.float32) * 2 - 1
    canvas += checker[..., None] * rng.uniform(-25, 25, 3)[None, None, :]


def background(rng: np.random.Generator, size: int) -> Image.Image:
    canvas = gradient_background(rng, size).astype(np.float32)
    textures: list[Callable[[np.random.Generator, np.ndarray], None]] = [add_stripes, add_blotches, add_checker]
    for texture in textures:
        if rng.random() < 0.45:
            texture(rng, canvas)
    canvas += rng.normal(0, rng.uniform(0, 10), canvas.shape)
    image = Image.fromarray(np.clip(canvas, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(0, 12))):  # clutter: straight lines and arcs
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        width = int(rng.integers(1, 4))
        x0, y0, x1, y1 = (int(v) for v in rng.integers(-size // 4, size + size // 4, 4))
        if rng.random() < 0.7:
            draw.line((x0, y0, x1, y1), fill=colour, width=width)
        else:
            box = (min(x0, x1), min(y0, y1), max(x0, x1) + 1, max(y0, y1) + 1)
            draw.arc(box, float(rng.uniform(0, 360)), float(rng.uniform(0, 360)), fill=colour, width=width)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 1.5))))
    return image


# ---------------------------------------------------------------- shapes


def regular_polygon(cx: float, cy: float, radius: float, sides: int, rotation: float) -> list[tuple[float, float]]:
    return [
        (
            cx + radius * math.cos(rotation + 2 * math.pi * k / sides),
            cy + radius * math.sin(rotation + 2 * math.pi * k / sides),
        )
        for k in range(sides)
    ]


def star_polygon(cx: float, cy: float, radius: float, inner_ratio: float, rotation: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        r = radius if k % 2 == 0 else radius * inner_ratio
        angle = rotation + math.pi * k / 5
        points.append((cx + r * math.cos(angle), cy + r * math.sin(angle)))
    return points


def shape_mask(rng: np.random.Generator, name: str, size: int, cx: float, cy: float, radius: float) -> np.ndarray:
    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    rotation = float(rng.uniform(0, 2 * math.pi))
    if name == "circle":
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
    elif name == "square":
        draw.polygon(regular_polygon(cx, cy, radius, 4, rotation), fill=255)
    elif name == "triangle":
        draw.polygon(regular_polygon(cx, cy, radius, 3, rotation), fill=255)
    elif name == "star":
        draw.polygon(star_polygon(cx, cy, radius, float(rng.uniform(0.38, 0.5)), rotation), fill=255)
    elif name == "ring":
        inner = radius * float(rng.uniform(0.45, 0.65))
        draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=255)
        draw.ellipse((cx - inner, cy - inner, cx + inner, cy + inner), fill=0)
    else:
        raise ValueError(f"unknown shape {name!r}; expected one of {CLASSES}")
    return np.asarray(mask) > 0


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Inclusive pixel box (x0, y0, x1, y1) of a boolean mask, or None when it is empty."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    y0, y1 = np.flatnonzero(rows)[[0, -1]]
    x0, x1 = np.flatnonzero(cols)[[0, -1]]
    return int(x0), int(y0), int(x1), int(y1)


def occlusion_acceptable(placed: list[PlacedObject], new_mask: np.ndarray) -> bool:
    for obj in placed:
        remaining = obj.visible & ~new_mask
        if remaining.sum() < MIN_VISIBLE_FRACTION * obj.full_mask.sum():
            return False
        if tight_box(remaining) != obj.box:
            return False
    return True


def distinct_colour(rng: np.random.Generator, pixels_under: np.ndarray) -> tuple[int, int, int]:
    reference = pixels_under.reshape(-1, 3).mean(axis=0)
    colour = rng.integers(0, 256, 3)
    for _ in range(20):
        if np.linalg.norm(colour - reference) >= MIN_COLOUR_DISTANCE:
            break
        colour = rng.integers(0, 256, 3)
    return int(colour[0]), int(colour[1]), int(colour[2])


def place_object(rng: np.random.Generator, size: int, placed: list[PlacedObject]) -> tuple[int, np.ndarray] | None:
    for _ in range(PLACEMENT_TRIES):
        category_index = int(rng.integers(len(CLASSES)))
        radius = size * math.exp(rng.uniform(math.log(MIN_RADIUS_FRACTION), math.log(MAX_RADIUS_FRACTION)))
        cx = float(rng.uniform(radius + 1, size - radius - 1))
        cy = float(rng.uniform(radius + 1, size - radius - 1))
        mask = shape_mask(rng, CLASSES[category_index], size, cx, cy, radius)
        if mask.sum() < 16 or tight_box(mask) is None:
            continue
        if occlusion_acceptable(placed, mask):
            return category_index + 1, mask
    return None


def render_image(options: DatasetOptions, index: int) -> tuple[Image.Image, list[PlacedObject]]:
    rng = image_rng(options, index)
    image = background(rng, options.size)
    pixels = np.asarray(image).copy()
    placed: list[PlacedObject] = []
    for _ in range(int(rng.integers(MIN_OBJECTS, MAX_OBJECTS + 1))):
        placement = place_object(rng, options.size, placed)
        if placement is None:
            continue
        category_id, mask = placement
        colour = np.array(distinct_colour(rng, pixels[mask]), dtype=np.float32)
        shading = rng.uniform(-20, 20) * np.linspace(-1, 1, options.size, dtype=np.float32)
        tinted = np.clip(colour[None, None, :] + shading[None, :, None], 0, 255).astype(np.uint8)
        pixels[mask] = np.broadcast_to(tinted, pixels.shape)[mask]
        for obj in placed:
            obj.visible &= ~mask
        box = tight_box(mask)
        assert box is not None
        placed.append(PlacedObject(category_id, mask, mask.copy(), box))
    return Image.fromarray(pixels, "RGB"), placed


# ---------------------------------------------------------------- COCO output


def image_extension(options: DatasetOptions, index: int) -> str:
    if options.image_format == "png" or (
        options.image_format == "mixed" and index % MIXED_PNG_EVERY == MIXED_PNG_EVERY - 1
    ):
        return "png"
    return "jpg"


def encode(image: Image.Image, extension: str, jpeg_quality: int) -> bytes:
    buffer = io.BytesIO()
    if extension == "png":
        image.save(buffer, format="PNG", optimize=False)
    else:
        image.save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue()


def coco_annotation(obj: PlacedObject, annotation_id: int, image_id: int) -> dict:
    x0, y0, x1, y1 = obj.box
    return {
        "id": annotation_id,
        "image_id": image_id,
        "category_id": obj.category_id,
        "bbox": [x0, y0, x1 + 1 - x0, y1 + 1 - y0],
        "area": int(obj.visible.sum()),
        "iscrowd": 0,
    }


def generate(options: DatasetOptions, out_dir: str, progress: bool = False) -> dict:
    """Write out_dir/images/* and out_dir/annotations.json; return the COCO dictionary."""
    validate(options)
    images_dir = os.path.join(out_dir, "images")
    os.makedirs(images_dir, exist_ok=True)
    images, annotations = [], []
    for index in range(options.count):
        image, placed = render_image(options, index)
        extension = image_extension(options, index)
        file_name = f"{options.split}_{index:06d}.{extension}"
        with open(os.path.join(images_dir, file_name), "wb") as handle:
            handle.write(encode(image, extension, options.jpeg_quality))
        image_id = index + 1
        images.append({"id": image_id, "file_name": file_name, "width": options.size, "height": options.size})
        for obj in placed:
            annotations.append(coco_annotation(obj, len(annotations) + 1, image_id))
        if progress and (index + 1) % 100 == 0:
            print(f"\r{options.split}: {index + 1}/{options.count}", end="", file=sys.stderr, flush=True)
    if progress:
        print(file=sys.stderr)
    coco = {
        "info": {
            "description": "cpwc-detect synthetic shapes",
            "generator": "scripts/references/detection/shapes_dataset.py",
            "split": options.split,
            "seed": options.seed,
            "count": options.count,
            "size": options.size,
            "image_format": options.image_format,
            "jpeg_quality": options.jpeg_quality,
            "bbox_semantics": "exact tight box of the drawn shape, which occlusion never changes",
            "area_semantics": "visible mask pixels after occlusion by later objects",
        },
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": "shape"} for i, name in enumerate(CLASSES)],
    }
    with open(os.path.join(out_dir, "annotations.json"), "w", encoding="utf-8") as handle:
        json.dump(coco, handle, separators=(",", ":"))
    return coco


def validate(options: DatasetOptions) -> None:
    if not options.split or any(ch in options.split for ch in "/\\ "):
        raise ValueError(f"--split must be a plain name like train, val or test, got {options.split!r}")
    if options.count < 1:
        raise ValueError(f"--count must be >= 1, got {options.count}")
    if options.size < 64:
        raise ValueError(f"--size must be >= 64 pixels, got {options.size}")
    if options.image_format not in FORMATS:
        raise ValueError(f"--format must be one of {FORMATS}, got {options.image_format!r}")
    if not 1 <= options.jpeg_quality <= 100:
        raise ValueError(f"--jpeg-quality must be in 1..100, got {options.jpeg_quality}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--split", required=True, help="split name (train, val, test, ...); mixed into the RNG")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--count", type=int, required=True, help="number of images")
    parser.add_argument("--out", required=True, help="output directory (annotations.json and images/)")
    parser.add_argument("--size", type=int, default=320, help="square image side in pixels (default 320)")
    parser.add_argument(
        "--format",
        dest="image_format",
        choices=FORMATS,
        default="jpeg",
        help=f"image encoding; mixed = every {MIXED_PNG_EVERY}th image PNG (default jpeg)",
    )
    parser.add_argument("--jpeg-quality", type=int, default=85, help="JPEG quality (default 85)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    options = DatasetOptions(args.split, args.seed, args.count, args.size, args.image_format, args.jpeg_quality)
    try:
        coco = generate(options, args.out, progress=sys.stderr.isatty())
    except ValueError as error:
        print(f"shapes_dataset: {error}", file=sys.stderr)
        return 2
    print(f"wrote {len(coco['images'])} images, {len(coco['annotations'])} objects to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
