"""Pillow's side of the BMP decoder tests (test/detection/bmp.test.ts).

`source` writes, from a real photograph, the pixels the TypeScript test encodes into hand-built
BMPs (RGB, a 16-color and a 256-color palette with indices, a 1-bit image) and the BMPs Pillow
itself writes (modes 1, L, P, RGB, RGBA). `decode` reads every *.bmp of a directory with Pillow,
converts it to RGB and writes NAME.rgb (raw, row-major) beside it, printing {name: [w, h] or
Pillow's error} as JSON.
"""

import argparse
import json
from pathlib import Path

from PIL import Image


def write_indexed(image: Image.Image, colors: int, out: Path, name: str) -> None:
    """Quantizes to `colors` colors and writes NAME.pal (RGB triples) and NAME.idx (one byte a pixel)."""
    quantized = image.quantize(colors=colors, dither=Image.Dither.NONE)
    palette = quantized.getpalette() or []
    (out / f"{name}.pal").write_bytes(bytes(palette[: colors * 3]))
    (out / f"{name}.idx").write_bytes(quantized.tobytes())


def source(image_path: Path, out: Path, width: int, height: int) -> None:
    """The pixels and the Pillow-written BMPs of one photograph, resized to width x height."""
    out.mkdir(parents=True, exist_ok=True)
    rgb = Image.open(image_path).convert("RGB").resize((width, height), Image.Resampling.BILINEAR)
    (out / "rgb.raw").write_bytes(rgb.tobytes())
    write_indexed(rgb, 16, out, "p16")
    write_indexed(rgb, 256, out, "p256")
    bilevel = rgb.convert("1", dither=Image.Dither.NONE)
    (out / "bw.idx").write_bytes(bytes(1 if v else 0 for v in bilevel.convert("L").tobytes()))
    rgba = rgb.copy()
    rgba.putalpha(Image.linear_gradient("L").resize((width, height)))
    for mode, image in [
        ("1", bilevel),
        ("L", rgb.convert("L")),
        ("P", rgb.quantize(256)),
        ("RGB", rgb),
        ("RGBA", rgba),
    ]:
        image.save(out / f"pillow-{mode}.bmp")


def decode(directory: Path) -> dict[str, list[int] | str]:
    """Pillow's RGB of every BMP in the directory, written as NAME.rgb; the sizes, or Pillow's error."""
    sizes: dict[str, list[int] | str] = {}
    for path in sorted(directory.glob("*.bmp")):
        try:
            with Image.open(path) as image:
                rgb = image.convert("RGB")
        except (OSError, ValueError) as error:
            sizes[path.name] = f"{type(error).__name__}: {error}"
            continue
        path.with_suffix(".rgb").write_bytes(rgb.tobytes())
        sizes[path.name] = [rgb.width, rgb.height]
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("source", help="write the source pixels and Pillow-written BMPs")
    make.add_argument("image", type=Path, help="a photograph to take the pixels from")
    make.add_argument("out", type=Path, help="output directory")
    make.add_argument(
        "--size", default="61x37", help="WIDTHxHEIGHT of the pixels (default 61x37: odd, so rows are padded)"
    )
    read = commands.add_parser("decode", help="decode every *.bmp of a directory with Pillow")
    read.add_argument("directory", type=Path)
    args = parser.parse_args()
    if args.command == "source":
        width, height = (int(v) for v in args.size.split("x"))
        source(args.image, args.out, width, height)
    else:
        print(json.dumps(decode(args.directory)))


if __name__ == "__main__":
    main()
