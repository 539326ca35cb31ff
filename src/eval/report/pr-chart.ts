/**
 * Precision–recall curves, one per IoU threshold, as a self-contained SVG (text drawn with the
 * built-in stroke font, so no font is needed to view or rasterize it).
 */
import type { CocoEvaluation } from '../cocoeval';
import { formatFixed, numpyMean } from '../numeric';
import { svgText } from './stroke-font';

export interface PrCurve {
  iouThreshold: number;
  /** Precision at each recall threshold, averaged over categories with ground truth. */
  precision: Float64Array;
  /** AP at this threshold (the mean of `precision`); -1 without ground truth. */
  ap: number;
}

/** Mean precision over categories at each (IoU threshold, recall threshold), area and maxDets given. */
export function prCurves(ev: CocoEvaluation, areaIndex: number, maxDetsIndex: number): PrCurve[] {
  const { T, R, K, A, M } = ev.dims;
  const values = new Float64Array(Math.max(1, K));
  const curves: PrCurve[] = [];
  for (let t = 0; t < T; t++) {
    const precision = new Float64Array(R);
    let defined = false;
    for (let r = 0; r < R; r++) {
      let n = 0;
      for (let k = 0; k < K; k++) {
        const v = ev.precision[(((t * R + r) * K + k) * A + areaIndex) * M + maxDetsIndex]!;
        if (v > -1) values[n++] = v;
      }
      precision[r] = n === 0 ? 0 : numpyMean(values, n);
      defined ||= n > 0;
    }
    curves.push({ iouThreshold: ev.params.iouThrs[t]!, precision, ap: defined ? numpyMean(precision) : -1 });
  }
  return curves;
}

/** Ten distinguishable colours, dark (IoU .50) to light (IoU .95). */
const PALETTE = ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#e0c000'];

export interface ChartOptions {
  title: string;
  subtitle?: string;
  width?: number;
  height?: number;
}

export function prChartSvg(curves: readonly PrCurve[], recThrs: Float64Array, options: ChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 500;
  const left = 70;
  const right = 190;
  const top = 50;
  const bottom = 60;
  const plotW = width - left - right;
  const plotH = height - top - bottom;
  const px = (recall: number): number => left + recall * plotW;
  const py = (precision: number): number => top + (1 - precision) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `role="img" aria-label="${options.title.replace(/"/g, "'")}">`,
  );
  out.push(`<rect width="${width}" height="${height}" fill="#ffffff"/>`);
  // Grid and ticks.
  for (let i = 0; i <= 10; i++) {
    const v = i / 10;
    const major = i % 2 === 0;
    const stroke = major ? '#d0d0d0' : '#ececec';
    out.push(`<line x1="${px(v)}" y1="${top}" x2="${px(v)}" y2="${top + plotH}" stroke="${stroke}" stroke-width="1"/>`);
    out.push(`<line x1="${left}" y1="${py(v)}" x2="${left + plotW}" y2="${py(v)}" stroke="${stroke}" stroke-width="1"/>`);
    if (major) {
      const label = formatFixed(v, 1);
      out.push(svgText(label, px(v), top + plotH + 18, { size: 9, anchor: 'middle' }));
      out.push(svgText(label, left - 8, py(v) + 4.5, { size: 9, anchor: 'end' }));
    }
  }
  out.push(`<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444" stroke-width="1"/>`);
  out.push(svgText('Recall', left + plotW / 2, height - 16, { size: 11, anchor: 'middle' }));
  out.push(svgText('Precision', 24, top + plotH / 2, { size: 11, anchor: 'middle', rotate: -90 }));
  out.push(svgText(options.title, left, 22, { size: 11 }));
  if (options.subtitle !== undefined) out.push(svgText(options.subtitle, left, 40, { size: 8, color: '#555' }));
  // Curves, high IoU first so the IoU=.50 curve is drawn on top.
  for (let t = curves.length - 1; t >= 0; t--) {
    const curve = curves[t]!;
    if (curve.ap === -1) continue;
    const points = Array.from(recThrs, (r, i) => `${px(r).toFixed(1)},${py(curve.precision[i]!).toFixed(1)}`).join(' ');
    out.push(`<polyline points="${points}" fill="none" stroke="${PALETTE[t % PALETTE.length]}" stroke-width="2" stroke-linejoin="round"/>`);
  }
  // Legend.
  const legendX = left + plotW + 20;
  out.push(svgText('IoU     AP', legendX + 26, top + 4, { size: 9 }));
  curves.forEach((curve, t) => {
    const y = top + 24 + t * 20;
    out.push(
      `<line x1="${legendX}" y1="${y - 4}" x2="${legendX + 20}" y2="${y - 4}" stroke="${PALETTE[t % PALETTE.length]}" stroke-width="3"/>`,
    );
    const ap = curve.ap === -1 ? '-' : formatFixed(curve.ap, 3);
    out.push(svgText(`${formatFixed(curve.iouThreshold, 2)}   ${ap}`, legendX + 26, y, { size: 9 }));
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
