/**
 * Draws detections onto an image and encodes it (PNG or JPEG). Labels use an embedded bitmap
 * font (label-font.ts), so the output is the same on every machine and needs no system fonts.
 */
import sharp from 'sharp';
import { checkNumber, invalidParameterMessage, is } from '../common/validate';
import { DetectError } from './errors';
import { decodeImage, type RgbImage } from './image';
import { LABEL_FONT } from './label-font';
import { checkPacked } from './packed';
import type { Detection } from './types';

export interface RenderOptions {
  /** Output format (default 'png'). */
  format?: 'png' | 'jpeg';
  /** JPEG quality 1..100 (default 90). */
  quality?: number;
  /** Box outline width in pixels (default: 2, more on large images). */
  lineWidth?: number;
  /** Draw "label score" tags (default true). */
  labels?: boolean;
}

const RENDER_FORMATS: ReadonlyArray<NonNullable<RenderOptions['format']>> = ['png', 'jpeg'];

/** Distinct, colour-blind-friendly outline colours (Tableau 10), indexed by class id. */
const PALETTE: ReadonlyArray<readonly [number, number, number]> = [
  [31, 119, 180],
  [255, 127, 14],
  [44, 160, 44],
  [214, 39, 40],
  [148, 103, 189],
  [140, 86, 75],
  [227, 119, 194],
  [127, 127, 127],
  [188, 189, 34],
  [23, 190, 207],
];

export function classColour(classId: number): readonly [number, number, number] {
  return PALETTE[((classId % PALETTE.length) + PALETTE.length) % PALETTE.length]!; // the index is reduced modulo the length
}

const glyphCoverage = Buffer.from(LABEL_FONT.coverageBase64, 'base64');
const glyphCount = LABEL_FONT.lastCode - LABEL_FONT.firstCode + 1;
if (glyphCoverage.length !== glyphCount * LABEL_FONT.cellWidth * LABEL_FONT.cellHeight) {
  // an invariant: label-font.ts is generated with one cellWidth x cellHeight coverage plane per code
  throw new Error(`label-font.ts holds ${glyphCoverage.length} coverage bytes, not ${glyphCount} glyphs`);
}

/**
 * Renders detections onto an image. `image` is either encoded bytes (decoded like `detect` decodes
 * them, so boxes line up) or an already decoded RGB image (which is not modified).
 *
 * @example
 * const result = await detector.detect(bytes);
 * await fs.promises.writeFile('out.png', await renderDetections(bytes, result.detections));
 */
export async function renderDetections(
  image: Uint8Array | RgbImage,
  detections: readonly Detection[],
  options: RenderOptions = {},
): Promise<Buffer> {
  const format = options.format ?? 'png';
  if (!is.inArray(format, RENDER_FORMATS))
    throw new DetectError('INVALID_OPTION', invalidParameterMessage('format', "'png' or 'jpeg'", format));
  const quality = options.quality ?? 90;
  const problem = checkNumber('quality', quality, { integer: true, min: 1, max: 100 });
  if (problem !== undefined) throw new DetectError('INVALID_OPTION', problem);
  const decoded = image instanceof Uint8Array ? await decodeImage(image) : image;
  const canvas: RgbImage = { data: Uint8Array.from(decoded.data), width: decoded.width, height: decoded.height };
  drawDetections(canvas, detections, options);
  const raw = sharp(Buffer.from(canvas.data.buffer, canvas.data.byteOffset, canvas.data.byteLength), {
    raw: { width: canvas.width, height: canvas.height, channels: 3 },
  });
  return format === 'png' ? raw.png().toBuffer() : raw.jpeg({ quality }).toBuffer();
}

/** Draws outlines and labels into `canvas` in place; lowest scores first so the best end up on top. */
export function drawDetections(
  canvas: RgbImage,
  detections: readonly Detection[],
  options: Pick<RenderOptions, 'lineWidth' | 'labels'> = {},
): void {
  checkCanvas(canvas);
  const shortSide = Math.min(canvas.width, canvas.height);
  const lineWidth = options.lineWidth ?? Math.max(2, Math.round(shortSide / 300));
  const textScale = Math.max(1, Math.round(shortSide / 700));
  const ordered = [...detections].sort((a, b) => a.score - b.score);
  for (const detection of ordered) {
    const colour = classColour(detection.class_id);
    const x0 = Math.floor(detection.box.xmin);
    const y0 = Math.floor(detection.box.ymin);
    const x1 = Math.ceil(detection.box.xmax);
    const y1 = Math.ceil(detection.box.ymax);
    fillRect(canvas, x0, y0, x1, y0 + lineWidth, colour);
    fillRect(canvas, x0, y1 - lineWidth, x1, y1, colour);
    fillRect(canvas, x0, y0, x0 + lineWidth, y1, colour);
    fillRect(canvas, x1 - lineWidth, y0, x1, y1, colour);
    if (options.labels ?? true) {
      const text = `${detection.label} ${detection.score.toFixed(2)}`;
      const tagWidth = (text.length * LABEL_FONT.cellWidth + 4) * textScale;
      const tagHeight = LABEL_FONT.cellHeight * textScale;
      // Above the box when there is room, else just inside its top edge.
      const tagY = y0 - tagHeight >= 0 ? y0 - tagHeight : Math.max(0, y0);
      const tagX = Math.min(Math.max(0, x0), Math.max(0, canvas.width - tagWidth));
      fillRect(canvas, tagX, tagY, tagX + tagWidth, tagY + tagHeight, colour);
      drawText(canvas, text, tagX + 2 * textScale, tagY, textScale, textColourOn(colour));
    }
  }
}

/** Black or white, whichever reads better on `background`. */
function textColourOn(background: readonly [number, number, number]): readonly [number, number, number] {
  const luma = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2];
  return luma > 150 ? [0, 0, 0] : [255, 255, 255];
}

function fillRect(canvas: RgbImage, x0: number, y0: number, x1: number, y1: number, colour: readonly [number, number, number]): void {
  const left = Math.max(0, x0);
  const top = Math.max(0, y0);
  const right = Math.min(canvas.width, x1);
  const bottom = Math.min(canvas.height, y1);
  for (let y = top; y < bottom; y++) {
    for (let x = left; x < right; x++) {
      const p = (y * canvas.width + x) * 3;
      canvas.data[p] = colour[0];
      canvas.data[p + 1] = colour[1];
      canvas.data[p + 2] = colour[2];
    }
  }
}

/** Draws printable ASCII (anything else as '?') with the glyphs' coverage as alpha, each glyph pixel `scale` x `scale`. */
export function drawText(
  canvas: RgbImage,
  text: string,
  x: number,
  y: number,
  scale: number,
  colour: readonly [number, number, number],
): void {
  checkCanvas(canvas);
  const { cellWidth, cellHeight, firstCode, lastCode } = LABEL_FONT;
  for (let i = 0; i < text.length; i++) {
    let code = text.charCodeAt(i);
    if (code < firstCode || code > lastCode) code = '?'.charCodeAt(0);
    const glyph = (code - firstCode) * cellWidth * cellHeight;
    const originX = x + i * cellWidth * scale;
    for (let gy = 0; gy < cellHeight * scale; gy++) {
      const py = y + gy;
      if (py < 0 || py >= canvas.height) continue;
      for (let gx = 0; gx < cellWidth * scale; gx++) {
        const px = originX + gx;
        if (px < 0 || px >= canvas.width) continue;
        // code is in [firstCode, lastCode] and the cell offsets in [0, cellWidth x cellHeight): checked at load above
        const alpha = glyphCoverage[glyph + Math.floor(gy / scale) * cellWidth + Math.floor(gx / scale)]! / 255;
        if (alpha === 0) continue;
        const p = (py * canvas.width + px) * 3; // px, py are on the canvas, whose data checkCanvas verified
        for (let c = 0; c < 3; c++) canvas.data[p + c] = Math.round(canvas.data[p + c]! * (1 - alpha) + colour[c]! * alpha);
      }
    }
  }
}

/** Throws INVALID_OPTION unless `canvas.data` holds width x height RGB pixels. */
function checkCanvas(canvas: RgbImage): void {
  checkPacked('canvas.data', canvas.data, canvas.width * canvas.height, 3);
}
