/**
 * `--report DIR`: what pycocotools does not give you. Writes
 *   summary.json        every number (stats, per IoU threshold, per area, per category, counts)
 *   summary.md          the same as tables, with the pycocotools summary block
 *   per_category.csv    one row per category
 *   pr_curves.svg/.png  precision–recall curves per IoU threshold (area all, maxDets 100)
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CocoEvaluation } from '../cocoeval';
import { CocoEvalError } from '../errors';
import { areaTableMarkdown, categoryTableMarkdown, iouTableMarkdown, type AreaRow } from '../format';
import { STAT_LABELS, type EvalSummary } from '../summarize';
import { prChartSvg, prCurves } from './pr-chart';

export interface ReportInputs {
  annotations: string;
  /** Results file, or a description of where detections came from (batch mode). */
  detections: string;
  counts: ReportCounts;
  /** Extra lines for the top of summary.md (e.g. batch mode: model, skipped images). */
  notes?: string[];
  /** Extra top-level keys for summary.json. */
  extra?: Record<string, unknown>;
}

export interface ReportCounts {
  images: number;
  gt_annotations: number;
  gt_crowd: number;
  categories: number;
  categories_with_gt: number;
  /** Detections read in ground-truth categories, before the per (image, category) maxDets cut. */
  detections_read: number;
  /** Detections that took part in matching (at most maxDets per image and category). */
  detections_scored: number;
  detections_unknown_category: number;
  gt_annotations_skipped: number;
}

export interface ReportFiles {
  dir: string;
  files: string[];
  /** Set when the PNG could not be rendered (the SVG is still written). */
  pngError?: string;
}

export function areaRows(ev: CocoEvaluation, summary: EvalSummary): AreaRow[] {
  const { K, A } = ev.dims;
  const statIndex: Record<string, [number, number]> = { all: [0, 8], small: [3, 9], medium: [4, 10], large: [5, 11] };
  return ev.params.areaLabels.map((area, a) => {
    let gt = 0;
    for (let k = 0; k < K; k++) gt += ev.gtCount[k * A + a]!;
    const [apIndex, arIndex] = statIndex[area] ?? [-1, -1];
    return {
      area,
      range: ev.params.areaRanges[a]!,
      ap: apIndex >= 0 ? summary.stats[apIndex]! : -1,
      ar100: arIndex >= 0 ? summary.stats[arIndex]! : -1,
      num_gt_non_crowd: gt,
    };
  });
}

function csvField(value: string | number): string {
  const text = String(value);
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export async function writeReport(dir: string, ev: CocoEvaluation, summary: EvalSummary, inputs: ReportInputs): Promise<ReportFiles> {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw new CocoEvalError(
      'FILE_UNREADABLE',
      `${dir}: cannot create report directory: ${(err as Error).message}`,
      { file: dir },
      { cause: err },
    );
  }
  const files: string[] = [];
  const write = (name: string, content: string | Buffer): void => {
    writeFileSync(join(dir, name), content);
    files.push(name);
  };
  const areas = areaRows(ev, summary);

  write(
    'summary.json',
    `${JSON.stringify(
      {
        stats: summary.stats,
        stats_labels: STAT_LABELS,
        ap_per_iou_threshold: summary.ap_per_iou_threshold,
        by_area: areas,
        per_category: summary.per_category,
        counts: inputs.counts,
        inputs: { annotations: inputs.annotations, detections: inputs.detections },
        params: {
          iouThrs: Array.from(ev.params.iouThrs),
          recThrs: Array.from(ev.params.recThrs),
          maxDets: ev.params.maxDets,
          areaRng: ev.params.areaRanges,
          areaRngLbl: ev.params.areaLabels,
        },
        summary_text: summary.summary_text,
        ...inputs.extra,
      },
      null,
      2,
    )}\n`,
  );

  const csvColumns = Object.keys(summary.per_category[0] ?? {}) as (keyof EvalSummary['per_category'][number])[];
  write(
    'per_category.csv',
    `${[csvColumns.join(','), ...summary.per_category.map((c) => csvColumns.map((key) => csvField(c[key])).join(','))].join('\n')}\n`,
  );

  const allIndex = ev.params.areaLabels.indexOf('all');
  const m100 = ev.params.maxDets.indexOf(100);
  const curves = prCurves(ev, allIndex, m100).map((curve, t) => ({ ...curve, ap: summary.ap_per_iou_threshold[t]! }));
  const svg = prChartSvg(curves, ev.params.recThrs, {
    title: 'Precision-recall curves per IoU threshold',
    subtitle: `area all, maxDets 100, precision averaged over ${inputs.counts.categories_with_gt} categories with ground truth`,
  });
  write('pr_curves.svg', svg);
  let pngError: string | undefined;
  try {
    const { default: sharp } = await import('sharp');
    write('pr_curves.png', await sharp(Buffer.from(svg), { density: 144 }).png().toBuffer());
  } catch (err) {
    pngError = (err as Error).message;
  }

  const c = inputs.counts;
  const md = [
    '# COCO bbox evaluation',
    '',
    `- Annotations: \`${inputs.annotations}\` — ${c.images} images, ${c.gt_annotations} annotations (${c.gt_crowd} crowd), ` +
      `${c.categories} categories (${c.categories_with_gt} with non-crowd ground truth)`,
    `- Detections: ${inputs.detections} — ${c.detections_read} read, ${c.detections_scored} scored (at most 100 per image and category)` +
      (c.detections_unknown_category > 0 ? `, ${c.detections_unknown_category} ignored (category not in the annotation file)` : ''),
    ...(c.gt_annotations_skipped > 0
      ? [`- ${c.gt_annotations_skipped} annotations skipped (image or category not listed in the file)`]
      : []),
    ...(inputs.notes ?? []).map((note) => `- ${note}`),
    '',
    '## Summary (pycocotools `COCOeval.summarize()`)',
    '',
    '```',
    ...summary.summary_text,
    '```',
    '',
    '## AP by object size',
    '',
    ...areaTableMarkdown(areas),
    '',
    '## AP per IoU threshold',
    '',
    ...iouTableMarkdown(ev.params.iouThrs, summary.ap_per_iou_threshold),
    '',
    '## Precision–recall curves',
    '',
    pngError === undefined ? '![Precision-recall curves](pr_curves.png)' : '![Precision-recall curves](pr_curves.svg)',
    '',
    '## Per category (area all, maxDets 100; "-" = no non-crowd ground truth)',
    '',
    ...categoryTableMarkdown(summary),
    '',
  ];
  write('summary.md', md.join('\n'));
  return pngError === undefined ? { dir, files } : { dir, files, pngError };
}
