/** Human-readable tables of evaluation results (CLI output and summary.md share them). */
import { formatFixed } from './numeric';
import type { CategoryMetrics, EvalSummary } from './summarize';

/** A metric with 3 decimals, or "-" where pycocotools would report -1 (no ground truth). */
export function metric(value: number): string {
  return value === -1 ? '-' : formatFixed(value, 3);
}

interface Column<Row> {
  title: string;
  align: 'left' | 'right';
  cell(row: Row): string;
}

function categoryColumns(): Column<CategoryMetrics>[] {
  return [
    { title: 'id', align: 'right', cell: (c) => String(c.category_id) },
    { title: 'category', align: 'left', cell: (c) => c.name },
    { title: 'AP', align: 'right', cell: (c) => metric(c.ap) },
    { title: 'AP50', align: 'right', cell: (c) => metric(c.ap50) },
    { title: 'AP75', align: 'right', cell: (c) => metric(c.ap75) },
    { title: 'APs', align: 'right', cell: (c) => metric(c.ap_small) },
    { title: 'APm', align: 'right', cell: (c) => metric(c.ap_medium) },
    { title: 'APl', align: 'right', cell: (c) => metric(c.ap_large) },
    { title: 'AR100', align: 'right', cell: (c) => metric(c.ar100) },
    { title: 'GT', align: 'right', cell: (c) => String(c.num_gt_non_crowd) },
    { title: 'dets', align: 'right', cell: (c) => String(c.num_detections) },
  ];
}

function plainTable<Row>(columns: Column<Row>[], rows: readonly Row[]): string[] {
  const cells = rows.map((row) => columns.map((c) => c.cell(row)));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => r[i]!.length)));
  const line = (values: string[]): string =>
    values
      .map((v, i) => (columns[i]!.align === 'left' ? v.padEnd(widths[i]!) : v.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(columns.map((c) => c.title)), ...cells.map(line)];
}

function markdownTable<Row>(columns: Column<Row>[], rows: readonly Row[]): string[] {
  const escapePipes = (v: string): string => v.replace(/\|/g, '\\|');
  return [
    `| ${columns.map((c) => c.title).join(' | ')} |`,
    `| ${columns.map((c) => (c.align === 'left' ? ':--' : '--:')).join(' | ')} |`,
    ...rows.map((row) => `| ${columns.map((c) => escapePipes(c.cell(row))).join(' | ')} |`),
  ];
}

/** Per-category table for the terminal: AP@[.50:.95], AP50, AP75, AP by size, AR100, counts. */
export function categoryTableText(summary: EvalSummary): string[] {
  return plainTable(categoryColumns(), summary.per_category);
}

export function categoryTableMarkdown(summary: EvalSummary): string[] {
  return markdownTable(categoryColumns(), summary.per_category);
}

export interface AreaRow {
  area: string;
  range: readonly [number, number];
  ap: number;
  ar100: number;
  num_gt_non_crowd: number;
}

export function areaTableMarkdown(rows: readonly AreaRow[]): string[] {
  return markdownTable(
    [
      { title: 'area', align: 'left', cell: (r: AreaRow) => r.area },
      {
        title: 'GT area range (px²)',
        align: 'left',
        cell: (r: AreaRow) => `[${r.range[0]}, ${r.range[1] === 1e10 ? '∞' : r.range[1]}]`,
      },
      { title: 'AP@[.50:.95]', align: 'right', cell: (r: AreaRow) => metric(r.ap) },
      { title: 'AR@100', align: 'right', cell: (r: AreaRow) => metric(r.ar100) },
      { title: 'GT (non-crowd)', align: 'right', cell: (r: AreaRow) => String(r.num_gt_non_crowd) },
    ],
    rows,
  );
}

export function iouTableMarkdown(iouThrs: Float64Array, apPerIou: readonly number[]): string[] {
  const rows = apPerIou.map((ap, t) => ({ iou: formatFixed(iouThrs[t]!, 2), ap }));
  return markdownTable(
    [
      { title: 'IoU threshold', align: 'left', cell: (r: { iou: string; ap: number }) => r.iou },
      { title: 'AP (area all, maxDets 100)', align: 'right', cell: (r: { iou: string; ap: number }) => metric(r.ap) },
    ],
    rows,
  );
}
