/**
 * A tiny built-in stroke font, so charts carry their text as SVG paths: the SVG and the PNG
 * rendered from it (librsvg via sharp) look the same on machines without any system fonts.
 *
 * Glyphs are polylines on a grid 4 units wide, baseline y = 0, x-height 4, cap height 6,
 * descenders to -2 (y up). Polylines are separated by '|', points by ',', coordinates by ' '.
 * Characters without a glyph are drawn as a box.
 */
const GLYPHS: Record<string, string> = {
  ' ': '',
  '0': '1 0,3 0,4 1,4 5,3 6,1 6,0 5,0 1,1 0|1 1,3 5',
  '1': '1 5,2 6,2 0|1 0,3 0',
  '2': '0 5,1 6,3 6,4 5,4 4,0 0,4 0',
  '3': '0 5,1 6,3 6,4 5,4 4,3 3,1 3|3 3,4 2,4 1,3 0,1 0,0 1',
  '4': '3 0,3 6,0 2,4 2',
  '5': '4 6,0 6,0 3,3 3,4 2,4 1,3 0,0 0',
  '6': '4 5,3 6,1 6,0 5,0 1,1 0,3 0,4 1,4 2,3 3,0 3',
  '7': '0 6,4 6,1 0',
  '8': '1 3,0 4,0 5,1 6,3 6,4 5,4 4,3 3,1 3,0 2,0 1,1 0,3 0,4 1,4 2,3 3',
  '9': '0 1,1 0,3 0,4 1,4 5,3 6,1 6,0 5,0 4,1 3,4 3',
  A: '0 0,0 4,2 6,4 4,4 0|0 3,4 3',
  B: '0 0,0 6,3 6,4 5,4 4,3 3,0 3|3 3,4 2,4 1,3 0,0 0',
  C: '4 5,3 6,1 6,0 5,0 1,1 0,3 0,4 1',
  D: '0 0,0 6,3 6,4 5,4 1,3 0,0 0',
  E: '4 6,0 6,0 0,4 0|0 3,3 3',
  F: '4 6,0 6,0 0|0 3,3 3',
  G: '4 5,3 6,1 6,0 5,0 1,1 0,3 0,4 1,4 3,2 3',
  H: '0 0,0 6|4 0,4 6|0 3,4 3',
  I: '1 6,3 6|2 6,2 0|1 0,3 0',
  J: '4 6,4 1,3 0,1 0,0 1',
  K: '0 0,0 6|4 6,0 2|1 3,4 0',
  L: '0 6,0 0,4 0',
  M: '0 0,0 6,2 3,4 6,4 0',
  N: '0 0,0 6,4 0,4 6',
  O: '1 0,3 0,4 1,4 5,3 6,1 6,0 5,0 1,1 0',
  P: '0 0,0 6,3 6,4 5,4 4,3 3,0 3',
  Q: '1 0,3 0,4 1,4 5,3 6,1 6,0 5,0 1,1 0|2 2,4 0',
  R: '0 0,0 6,3 6,4 5,4 4,3 3,0 3|2 3,4 0',
  S: '4 5,3 6,1 6,0 5,0 4,1 3,3 3,4 2,4 1,3 0,1 0,0 1',
  T: '0 6,4 6|2 6,2 0',
  U: '0 6,0 1,1 0,3 0,4 1,4 6',
  V: '0 6,2 0,4 6',
  W: '0 6,1 0,2 3,3 0,4 6',
  X: '0 0,4 6|0 6,4 0',
  Y: '0 6,2 3,4 6|2 3,2 0',
  Z: '0 6,4 6,0 0,4 0',
  a: '1 4,3 4,4 3,4 0|4 2,1 2,0 1,1 0,4 0',
  b: '0 6,0 0,3 0,4 1,4 3,3 4,0 4',
  c: '4 4,1 4,0 3,0 1,1 0,4 0',
  d: '4 6,4 0,1 0,0 1,0 3,1 4,4 4',
  e: '0 2,4 2,4 3,3 4,1 4,0 3,0 1,1 0,4 0',
  f: '4 6,3 6,2 5,2 0|1 4,3 4',
  g: '1 -2,3 -2,4 -1,4 4,1 4,0 3,0 1,1 0,4 0',
  h: '0 6,0 0|0 4,3 4,4 3,4 0',
  i: '2 4,2 0|2 5.4,2 6',
  j: '3 4,3 -1,2 -2,1 -2|3 5.4,3 6',
  k: '0 6,0 0|4 4,0 1|1 2,4 0',
  l: '1 6,2 6,2 0|1 0,3 0',
  m: '0 0,0 4|0 3,1 4,2 3,2 0|2 3,3 4,4 3,4 0',
  n: '0 0,0 4|0 3,1 4,3 4,4 3,4 0',
  o: '1 0,3 0,4 1,4 3,3 4,1 4,0 3,0 1,1 0',
  p: '0 -2,0 4,3 4,4 3,4 1,3 0,0 0',
  q: '4 -2,4 4,1 4,0 3,0 1,1 0,4 0',
  r: '0 0,0 4|0 3,1 4,3 4,4 3',
  s: '4 4,1 4,0 3,1 2,3 2,4 1,3 0,0 0',
  t: '2 6,2 1,3 0,4 0|1 4,3 4',
  u: '0 4,0 1,1 0,3 0,4 1|4 4,4 0',
  v: '0 4,2 0,4 4',
  w: '0 4,1 0,2 2,3 0,4 4',
  x: '0 0,4 4|0 4,4 0',
  y: '0 4,2 0|4 4,1 -2',
  z: '0 4,4 4,0 0,4 0',
  '.': '2 0,2 0.6',
  ',': '2 0.6,2 0,1 -1',
  ':': '2 0,2 0.6|2 3.4,2 4',
  ';': '2 3.4,2 4|2 0.6,2 0,1 -1',
  '-': '1 3,3 3',
  _: '0 -1,4 -1',
  '+': '0 3,4 3|2 1,2 5',
  '=': '0 2,4 2|0 4,4 4',
  '/': '0 0,4 6',
  '\\': '0 6,4 0',
  '(': '3 7,1.5 5,1.5 1,3 -1',
  ')': '1 7,2.5 5,2.5 1,1 -1',
  '[': '3 7,1 7,1 -1,3 -1',
  ']': '1 7,3 7,3 -1,1 -1',
  '@': '3 2,3 4,1 4,1 2,4 2,4 5,3 6,1 6,0 5,0 1,1 0,4 0',
  '%': '0 0,4 6|0.5 5,0.5 6|3.5 0,3.5 1',
  '#': '1 0,2 6|3 0,4 6|0 2,4 2|0 4,4 4',
  "'": '2 6,2 4.5',
  '"': '1 6,1 4.5|3 6,3 4.5',
  '<': '4 5,0 3,4 1',
  '>': '0 5,4 3,0 1',
  '?': '0 5,1 6,3 6,4 5,4 4,2 3,2 2|2 0,2 0.6',
  '!': '2 6,2 2|2 0,2 0.6',
  '*': '2 1,2 5|0 2,4 4|0 4,4 2',
  '|': '2 -1,2 7',
  '~': '0 3,1 4,3 2,4 3',
  '^': '0 4,2 6,4 4',
};

const MISSING_GLYPH = '0 0,4 0,4 6,0 6,0 0';
/** Horizontal advance per character, in grid units (monospaced). */
const ADVANCE = 5.5;
/** Cap height in grid units. */
const CAP_HEIGHT = 6;

export type TextAnchor = 'start' | 'middle' | 'end';

export interface TextStyle {
  /** Cap height in pixels. */
  size: number;
  anchor?: TextAnchor;
  color?: string;
  /** Stroke width in pixels (default: size / 7). */
  weight?: number;
  /** Degrees, clockwise, about (x, y). */
  rotate?: number;
}

function round(v: number): string {
  return String(Math.round(v * 100) / 100);
}

/** Width in pixels of `text` drawn at cap height `size`. */
export function textWidth(text: string, size: number): number {
  const scale = size / CAP_HEIGHT;
  return text.length === 0 ? 0 : (text.length * ADVANCE - (ADVANCE - 4)) * scale;
}

/** SVG path data for `text` with its baseline starting at (x, y). */
export function textPathData(text: string, x: number, y: number, size: number): string {
  const scale = size / CAP_HEIGHT;
  const parts: string[] = [];
  let cursor = x;
  for (const ch of text) {
    const glyph = GLYPHS[ch] ?? MISSING_GLYPH;
    for (const line of glyph.split('|')) {
      if (line === '') continue;
      const points = line.split(',').map((pt) => {
        const [gx, gy] = pt.split(' ').map(Number) as [number, number];
        return `${round(cursor + gx * scale)} ${round(y - gy * scale)}`;
      });
      parts.push(`M${points.join('L')}`);
    }
    cursor += ADVANCE * scale;
  }
  return parts.join('');
}

function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** An SVG `<path>` element drawing `text`, with the text itself as its accessible label. */
export function svgText(text: string, x: number, y: number, style: TextStyle): string {
  const width = textWidth(text, style.size);
  const anchor = style.anchor ?? 'start';
  const startX = anchor === 'start' ? x : anchor === 'middle' ? x - width / 2 : x - width;
  const d = textPathData(text, startX, y, style.size);
  const weight = style.weight ?? style.size / 7;
  const transform = style.rotate === undefined ? '' : ` transform="rotate(${style.rotate} ${round(x)} ${round(y)})"`;
  return (
    `<path d="${d}" fill="none" stroke="${style.color ?? '#222'}" stroke-width="${round(weight)}" ` +
    `stroke-linecap="round" stroke-linejoin="round"${transform}><title>${escapeXml(text)}</title></path>`
  );
}
