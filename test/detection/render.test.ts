import sharp from 'sharp';
import { decodeImage } from '../../src/detection/image';
import { LABEL_FONT } from '../../src/detection/label-font';
import { classColour, drawDetections, drawText, renderDetections } from '../../src/detection/render';
import type { Detection } from '../../src/detection/types';
import { readImage } from './images';

const circle: Detection = { label: 'circle', class_id: 1, score: 0.97, box: { xmin: 100.3, ymin: 80.6, xmax: 260.2, ymax: 200.9 } };

function pixel(data: Uint8Array, width: number, x: number, y: number): number[] {
  return Array.from(data.subarray((y * width + x) * 3, (y * width + x) * 3 + 3));
}

describe('renderDetections', () => {
  it('draws the outline in the class colour on the pixels the box covers and leaves the rest alone', async () => {
    const bytes = readImage('landscape.jpg');
    const original = await decodeImage(bytes);
    const png = await renderDetections(bytes, [circle], { labels: false, lineWidth: 2 });
    const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([600, 400, 3]);
    const colour = Array.from(classColour(1));
    // Box [100.3, 80.6, 260.2, 200.9] covers pixel columns 100..260 and rows 80..200.
    expect(pixel(data, 600, 150, 80)).toEqual(colour);
    expect(pixel(data, 600, 150, 81)).toEqual(colour);
    expect(pixel(data, 600, 100, 150)).toEqual(colour);
    expect(pixel(data, 600, 260, 150)).toEqual(colour);
    expect(pixel(data, 600, 150, 200)).toEqual(colour);
    for (const [x, y] of [
      [150, 82],
      [150, 79],
      [99, 150],
      [261, 150],
      [180, 140],
      [10, 10],
    ] as const) {
      expect(pixel(data, 600, x, y)).toEqual(pixel(original.data, 600, x, y));
    }
  });

  it('draws the label tag above the box with glyph pixels in it', async () => {
    const bytes = readImage('landscape.jpg');
    const png = await renderDetections(bytes, [circle]);
    const { data } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
    const colour = Array.from(classColour(1));
    const tagTop = 80 - LABEL_FONT.cellHeight;
    let background = 0;
    let ink = 0;
    for (let y = tagTop; y < 80; y++) {
      for (let x = 100; x < 100 + 'circle 0.97'.length * LABEL_FONT.cellWidth; x++) {
        const p = pixel(data, 600, x, y);
        if (p.every((v, c) => v === colour[c])) background++;
        else ink++;
      }
    }
    expect(background).toBeGreaterThan(ink);
    expect(ink).toBeGreaterThan(50);
  });

  it('encodes JPEG when asked and accepts an already decoded image without modifying it', async () => {
    const decoded = await decodeImage(readImage('tiny.png'));
    const before = Uint8Array.from(decoded.data);
    const jpeg = await renderDetections(decoded, [{ ...circle, box: { xmin: 2, ymin: 2, xmax: 30, ymax: 20 } }], {
      format: 'jpeg',
      quality: 80,
    });
    expect((await sharp(jpeg).metadata()).format).toBe('jpeg');
    expect(decoded.data).toEqual(before);
  });

  it('rejects an unknown format or quality with INVALID_OPTION', async () => {
    const decoded = await decodeImage(readImage('tiny.png'));
    await expect(renderDetections(decoded, [], { format: 'gif' as 'png' })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
    await expect(renderDetections(decoded, [], { quality: 0 })).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });

  it('clips boxes at the image border instead of wrapping into other rows', () => {
    const canvas = { data: new Uint8Array(20 * 10 * 3), width: 20, height: 10 };
    drawDetections(canvas, [{ ...circle, box: { xmin: 15, ymin: 2, xmax: 50, ymax: 8 } }], { lineWidth: 1, labels: false });
    const painted = (x: number, y: number): boolean => pixel(canvas.data, 20, x, y).some((v) => v !== 0);
    expect(painted(15, 2) && painted(19, 2) && painted(15, 5) && painted(19, 7)).toBe(true);
    // An unclipped right edge at x = 49 would land on column 9 of the rows below.
    for (let y = 0; y < 10; y++) expect(painted(9, y)).toBe(false);
    drawDetections(canvas, [{ ...circle, label: 'a label far wider than the image', box: { xmin: -5, ymin: -5, xmax: 50, ymax: 50 } }]);
    expect(painted(0, 0)).toBe(true);
  });

  it('rejects a canvas whose data is not width x height RGB pixels with INVALID_OPTION, drawing nothing', async () => {
    const canvas = { data: new Uint8Array(20 * 10 * 3 - 1), width: 20, height: 10 };
    expect(() => drawDetections(canvas, [circle])).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: 'canvas.data must hold 200 x 3 = 600 values, got 599' }) as Error,
    );
    expect(canvas.data.every((v) => v === 0)).toBe(true);
    expect(() => drawText(canvas, 'a', 0, 0, 1, [255, 255, 255])).toThrow(expect.objectContaining({ code: 'INVALID_OPTION' }) as Error);
    await expect(renderDetections(canvas, [circle])).rejects.toMatchObject({ code: 'INVALID_OPTION' });
  });
});

describe('drawText', () => {
  it('renders every printable ASCII character with some ink, and the space with none', () => {
    for (let code = 32; code <= 126; code++) {
      const canvas = {
        data: new Uint8Array(LABEL_FONT.cellWidth * LABEL_FONT.cellHeight * 3),
        width: LABEL_FONT.cellWidth,
        height: LABEL_FONT.cellHeight,
      };
      drawText(canvas, String.fromCharCode(code), 0, 0, 1, [255, 255, 255]);
      const ink = canvas.data.reduce((sum, v) => sum + v, 0);
      if (code === 32) expect(ink).toBe(0);
      else expect(ink).toBeGreaterThan(0);
    }
  });

  it('draws non-ASCII characters as "?"', () => {
    const size = LABEL_FONT.cellWidth * LABEL_FONT.cellHeight * 3;
    const a = { data: new Uint8Array(size), width: LABEL_FONT.cellWidth, height: LABEL_FONT.cellHeight };
    const b = { data: new Uint8Array(size), width: LABEL_FONT.cellWidth, height: LABEL_FONT.cellHeight };
    drawText(a, 'é', 0, 0, 1, [255, 255, 255]);
    drawText(b, '?', 0, 0, 1, [255, 255, 255]);
    expect(a.data).toEqual(b.data);
  });
});
