/**
 * `cpwc-detect eval`: COCO bbox mAP with pycocotools' numbers.
 *
 *   results-file mode: --annotations GT.json --detections RESULTS.json [--json] [--report DIR]
 *   batch mode:        --annotations GT.json --images DIR --out runs/NAME [--model DIR] [--json]
 */
import { parseArgs } from 'node:util';
import { EvalError } from '../eval/errors';
import type { EvaluationRun } from '../eval/evaluate';
import { categoryTableText } from '../eval/format';

const HELP = `Usage:
  cpwc-detect eval --annotations GT.json --detections RESULTS.json [--json] [--report DIR]
  cpwc-detect eval --annotations GT.json --images DIR --out runs/NAME [--model DIR] [--json]

Scores detections with COCO bbox mAP. The numbers are pycocotools' COCOeval(iouType='bbox')
numbers, bit for bit; the text output is its summarize() block plus a per-category table.

Options:
  -a, --annotations FILE  COCO instances file (images, annotations, categories)
  -d, --detections FILE   COCO results: a JSON array, or JSON Lines (one object per line), of
                          {image_id, category_id, bbox: [x, y, width, height], score}
      --images DIR        batch mode: run a model over every image of the annotation file
                          (images[].file_name, relative to DIR), then score it
      --model DIR         batch mode: model directory (default: models/shapes-cpwc-r50-fpn)
      --out DIR           batch mode: run directory; detections.jsonl is written as it goes and
                          a rerun of the same command resumes where it stopped; report in DIR/report
      --score-threshold X batch mode: keep detections with score >= X (default: the model's)
      --report DIR        write summary.json, summary.md, per_category.csv, pr_curves.svg/.png
      --json              print one JSON object:
                          {"stats": [12 numbers], "per_category": {"<category_id>": AP or -1}, ...}
  -h, --help              show this help

Exit status: 0 scored, 1 invalid input (the message names the file, the record and the field),
2 usage error, 130 interrupted (batch mode: rerun the same command to resume).
`;

const OPTIONS = {
  annotations: { type: 'string', short: 'a' },
  detections: { type: 'string', short: 'd' },
  images: { type: 'string' },
  model: { type: 'string' },
  out: { type: 'string' },
  'score-threshold': { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

export type EvalCliOptions = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>>['values'];

function usageError(message: string): EvalError {
  return new EvalError('INVALID_ARGUMENT', `${message}\nRun 'cpwc-detect eval --help' for usage.`);
}

/** The --json object: the stable contract first, then details. */
export function resultJson(run: EvaluationRun, extra: Record<string, unknown> = {}): Record<string, unknown> {
  const perCategory: Record<string, number> = {};
  for (const c of run.summary.per_category) perCategory[String(c.category_id)] = c.ap;
  return {
    stats: run.summary.stats,
    per_category: perCategory,
    ap_per_iou_threshold: run.summary.ap_per_iou_threshold,
    categories: run.summary.per_category,
    counts: run.counts,
    ...extra,
  };
}

/** Writes the result to stdout, as text or as one JSON object. */
export function printResult(run: EvaluationRun, json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(resultJson(run, extra))}\n`);
    return;
  }
  const lines = [
    ...run.summary.summary_text,
    '',
    "Per category (area all, maxDets 100; '-' = no non-crowd ground truth):",
    ...categoryTableText(run.summary),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

/** Notes that do not change the numbers but that a user should know; stderr, so stdout stays parseable. */
export function printNotes(run: EvaluationRun): void {
  const c = run.counts;
  if (c.detections_unknown_category > 0) {
    process.stderr.write(`note: ${c.detections_unknown_category} detection(s) with a category_id that is not in the annotation file were ignored\n`);
  }
  if (c.gt_annotations_skipped > 0) {
    process.stderr.write(`note: ${c.gt_annotations_skipped} annotation(s) of images or categories not listed in the annotation file were ignored\n`);
  }
}

async function runResultsFile(values: EvalCliOptions, annotations: string, detections: string): Promise<number> {
  const { evaluateFiles } = await import('../eval/evaluate');
  const run = evaluateFiles(annotations, detections);
  printResult(run, values.json);
  printNotes(run);
  if (values.report !== undefined) {
    const { writeReport } = await import('../eval/report/report');
    const report = await writeReport(values.report, run.evaluation, run.summary, {
      annotations,
      detections: `\`${detections}\``,
      counts: run.counts,
    });
    if (report.pngError !== undefined) process.stderr.write(`warning: pr_curves.png not rendered (${report.pngError}); pr_curves.svg is there\n`);
    process.stderr.write(`report written to ${report.dir}/ (${report.files.join(', ')})\n`);
  }
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  let values: EvalCliOptions;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`cpwc-detect eval: ${(err as Error).message}\nRun 'cpwc-detect eval --help' for usage.\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    const annotations = values.annotations;
    if (annotations === undefined) throw usageError('--annotations is required');
    if (values.detections !== undefined) {
      if (values.images !== undefined || values.out !== undefined || values.model !== undefined) {
        throw usageError('--detections scores an existing results file; --images/--out/--model are for batch mode, use one or the other');
      }
      return await runResultsFile(values, annotations, values.detections);
    }
    throw usageError('give --detections RESULTS.json, or --images DIR --out DIR to run a model first');
  } catch (err) {
    if (err instanceof EvalError) {
      process.stderr.write(`cpwc-detect eval: ${err.message}\n`);
      if (err.code === 'INVALID_ARGUMENT') return 2;
      if (err.code === 'INTERRUPTED') return 130;
      return 1;
    }
    throw err;
  }
}
