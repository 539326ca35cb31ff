"""Writes the committed test photographs (test/fixtures/images/) from scikit-image's sample data.

The source photographs ship in Debian's python3-skimage package (public domain / CC0, see
test/fixtures/images/README.md). They need not be installed:

    apt-get download python3-skimage && dpkg-deb -x python3-skimage_*.deb /tmp/sk
    /usr/bin/python3 scripts/cpwc/fixture_images.py --skimage-data /tmp/sk/usr/lib/python3/dist-packages/skimage/data
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

ORIENTATION_TAG = 0x0112
ROTATE_90_CW_TO_DISPLAY = 6  # EXIF orientation 6: the stored pixels are the upright image turned 90° counter-clockwise


def write_all(data: Path, out: Path) -> List[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(image: Image.Image, name: str, **options) -> None:
        path = out / name
        image.save(path, **options)
        written.append(path)

    astronaut = Image.open(data / "astronaut.png").convert("RGB")
    save(astronaut.crop((64, 0, 448, 512)), "portrait.jpg", quality=85)  # 384 x 512
    save(Image.open(data / "coffee.png").convert("RGB"), "landscape.jpg", quality=85)  # 600 x 400
    chelsea = Image.open(data / "chelsea.png").convert("RGB")
    save(chelsea.resize((40, 30), Image.BILINEAR), "tiny.png")
    save(Image.open(data / "camera.png").convert("L").resize((384, 384), Image.BILINEAR), "grayscale.png")

    # RGBA: a radial alpha falloff over the cat; decoders drop alpha without compositing.
    cat = np.asarray(chelsea.resize((300, 200), Image.BILINEAR))
    yy, xx = np.mgrid[0:200, 0:300]
    radius = np.sqrt(((xx - 150) / 150.0) ** 2 + ((yy - 100) / 100.0) ** 2)
    alpha = np.clip(255 * (1.2 - radius), 0, 255).astype(np.uint8)
    save(Image.fromarray(np.dstack([cat, alpha]), "RGBA"), "alpha.png")

    # EXIF-rotated: displayed upright as a 360 x 240 landscape, stored as 240 x 360 with orientation 6.
    stored = chelsea.resize((360, 240), Image.BILINEAR).transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[ORIENTATION_TAG] = ROTATE_90_CW_TO_DISPLAY
    save(stored, "exif-rotated.jpg", quality=85, exif=exif.tobytes())

    save(Image.open(data / "rocket.jpg").convert("RGB"), "rocket.webp", quality=80)  # 640 x 427
    hubble = Image.open(data / "hubble_deep_field.jpg").convert("RGB").resize((320, 279), Image.BILINEAR)
    save(hubble.quantize(colors=256), "hubble.gif")
    return written


def main(argv: List[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--skimage-data", required=True, type=Path, help="scikit-image's data directory")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[2] / "test" / "fixtures" / "images")
    args = parser.parse_args(argv)
    for path in write_all(args.skimage_data, args.out):
        print(f"{path}  {path.stat().st_size:,d} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
