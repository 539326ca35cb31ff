/**
 * `cpwc-detect eval`: COCO bbox mAP with pycocotools' numbers.
 *
 *   results-file mode: --annotations GT.json --detections RESULTS.json [--json] [--report DIR]
 *   batch mode:        --annotations GT.json --images DIR --out runs/NAME [--model DIR | --server URL[,URL…]]
 *                      [--shard K/N] [--allow-missing] [--json]
 */
import { parseArgs } from 'node:util';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../detection/execution-provider';
import { CocoEvalError } from '../eval/errors';
import type { EvaluationRun } from '../eval/evaluate';
import { categoryTableText } from '../eval/format';
import { choiceFlag, numberFlag, reportUsageError, UsageError } from './usage';

const HELP = `Usage:
  cpwc-detect eval --annotations GT.json --detections RESULTS.json [--json] [--report DIR]
  cpwc-detect eval --annotations GT.json --images DIR --out runs/NAME [--model DIR | --server URL[,URL...]]
                   [--shard K/N] [--allow-missing] [--json]

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
      --allow-missing     batch mode: score even if some images are missing or cannot be decoded
                          (they are left out and counted in the report); without it such a run
                          exits 1 and a rerun retries only those images
      --threads N         batch mode: ONNX Runtime threads for --model (default: up to 4, the CPUs)
      --shard K/N         batch mode: do only part K (0-based) of N disjoint parts of the images
                          (split by image id), into OUT/shards/K-of-N; N processes or pods may share
                          one OUT. The same command without --shard merges the parts, detects any
                          image no shard finished, and scores (docs/batch-eval.md)
      --server URL[,URL]  batch mode: detect through running cpwc-detect servers (POST /v1/detect)
                          instead of --model; every server must serve the same model. An API key
                          is read from the CPWC_API_KEY environment variable
      --server-concurrency N  requests in flight per server (default 2)
      --server-timeout S  seconds one request may take before it is retried (default 120)
      --server-attempts N tries of one image after network errors, timeouts and 5xx other than
                          503 before the run stops (default 8; 503 + Retry-After is waited out)
      --execution-provider P
                          batch mode: cpu|cuda|webgpu, where ONNX Runtime runs (default: cpu)
      --report DIR        write summary.json, summary.md, per_category.csv, pr_curves.svg/.png
      --json              print one JSON object:
                          {"stats": [12 numbers], "per_category": {"<category_id>": AP or -1}, ...}
  -h, --help              show this help

Exit status: 0 scored (or, with --shard, the shard is done), 1 invalid input (the message
names the file, the record and the field), unreadable images without --allow-missing, a run
of other options in OUT, or a server failure, 2 usage error, 130 interrupted (batch mode:
rerun the same command to resume).
`;

const OPTIONS = {
  annotations: { type: 'string', short: 'a' },
  detections: { type: 'string', short: 'd' },
  images: { type: 'string' },
  model: { type: 'string' },
  out: { type: 'string' },
  'score-threshold': { type: 'string' },
  'allow-missing': { type: 'boolean', default: false },
  shard: { type: 'string' },
  server: { type: 'string' },
  'server-concurrency': { type: 'string' },
  'server-timeout': { type: 'string' },
  'server-attempts': { type: 'string' },
  threads: { type: 'string' },
  'execution-provider': { type: 'string' },
  report: { type: 'string' },
  json: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const;

/** The options of `cpwc-detect eval`, for parseArgs (the Kubernetes manifests' checks parse with them too). */
export const EVAL_OPTIONS = OPTIONS;

export type EvalCliOptions = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; strict: true; allowPositionals: false }>>['values'];

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
    process.stderr.write(
      `note: ${c.detections_unknown_category} detection(s) with a category_id that is not in the annotation file were ignored\n`,
    );
  }
  if (c.gt_annotations_skipped > 0) {
    process.stderr.write(
      `note: ${c.gt_annotations_skipped} annotation(s) of images or categories not listed in the annotation file were ignored\n`,
    );
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
    if (report.pngError !== undefined)
      process.stderr.write(`warning: pr_curves.png not rendered (${report.pngError}); pr_curves.svg is there\n`);
    process.stderr.write(`report written to ${report.dir}/ (${report.files.join(', ')})\n`);
  }
  return 0;
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

function parseProvider(text: string | undefined): ExecutionProvider | undefined {
  return choiceFlag('--execution-provider', text, EXECUTION_PROVIDERS);
}

function parseScoreThreshold(text: string | undefined): number | undefined {
  return numberFlag('--score-threshold', text, { min: 0, max: 1 });
}

function parsePositive(text: string | undefined, flag: string, integer: boolean): number | undefined {
  return numberFlag(flag, text, integer ? { integer: true, min: 1 } : { greaterThan: 0 });
}

/** Batch mode: run the model over the dataset (resumable), score, report; Ctrl-C stops after the current image. */
async function runBatchMode(values: EvalCliOptions, annotations: string, imagesDir: string, outDir: string): Promise<number> {
  const scoreThreshold = parseScoreThreshold(values['score-threshold']);
  const executionProvider = parseProvider(values['execution-provider']);
  const [{ runBatch, runShard }, { DEFAULT_MODEL_DIR }, { parseShard }, { normalizeServerUrl }] = await Promise.all([
    import('../eval/batch/runner'),
    import('../detection/model'),
    import('../eval/batch/shard'),
    import('../eval/batch/server-pool'),
  ]);
  const shard = values.shard === undefined ? undefined : parseShard(values.shard);
  const servers = values.server
    ?.split(',')
    .filter((u) => u.trim() !== '')
    .map(normalizeServerUrl);
  if (values.server !== undefined && (servers === undefined || servers.length === 0))
    throw new UsageError('--server needs one or more URLs, comma-separated');
  if (servers !== undefined && values.model !== undefined)
    throw new UsageError("--server detects with the servers' model; --model is for detection in this process, use one or the other");
  const concurrency = parsePositive(values['server-concurrency'], '--server-concurrency', true);
  const timeout = parsePositive(values['server-timeout'], '--server-timeout', false);
  const attempts = parsePositive(values['server-attempts'], '--server-attempts', true);
  if (servers === undefined && (concurrency !== undefined || timeout !== undefined || attempts !== undefined)) {
    throw new UsageError('--server-concurrency, --server-timeout and --server-attempts need --server');
  }
  const threads = parsePositive(values.threads, '--threads', true);
  if (servers !== undefined && threads !== undefined)
    throw new UsageError('--threads sets the threads of a model run in this process; with --server the servers run the model');
  if (servers !== undefined && executionProvider !== undefined)
    throw new UsageError('--execution-provider chooses where a model runs in this process; with --server the servers run the model');
  const controller = new AbortController();
  const onSignal = (): void => {
    if (controller.signal.aborted) {
      process.stderr.write('\neval: stopping now; the run directory is consistent, rerun the same command to resume\n');
      process.exit(130);
    }
    controller.abort();
    process.stderr.write('\neval: finishing the current image, then stopping (press Ctrl-C again to stop at once)\n');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const options = {
      annotations,
      imagesDir,
      modelDir: values.model ?? DEFAULT_MODEL_DIR,
      outDir,
      ...(scoreThreshold === undefined ? {} : { scoreThreshold }),
      ...(servers === undefined ? {} : { servers }),
      ...(threads === undefined ? {} : { intraOpThreads: threads }),
      serverOptions: {
        ...(concurrency === undefined ? {} : { concurrencyPerServer: concurrency }),
        ...(timeout === undefined ? {} : { timeoutMs: timeout * 1000 }),
        ...(attempts === undefined ? {} : { maxAttempts: attempts }),
      },
      allowMissing: values['allow-missing'],
      ...(executionProvider === undefined ? {} : { executionProvider }),
      signal: controller.signal,
    };
    if (shard !== undefined) {
      const summary = await runShard({ ...options, shard });
      if (values.json) process.stdout.write(`${JSON.stringify({ shard: summary })}\n`);
      else {
        process.stdout.write(
          `shard ${shard.index}/${shard.count}: ${summary.images_done} of ${summary.images_in_shard} images done` +
            `${summary.images_failed > 0 ? `, ${summary.images_failed} unreadable` : ''}` +
            ` (${summary.images_this_session} this session), in ${summary.shard_dir}\n`,
        );
      }
      process.stderr.write(
        `eval: shard ${shard.index}/${shard.count} finished; ` +
          'when every shard has, run the same command without --shard to merge and score\n',
      );
      return 0;
    }
    const result = await runBatch(options);
    printResult(result.evaluation, values.json, { run: result.batch });
    printNotes(result.evaluation);
    if (result.batch.images_skipped > 0) {
      process.stderr.write(
        `note: ${result.batch.images_skipped} image(s) could not be read or decoded and were left out of scoring (--allow-missing); ` +
          `see ${outDir}/images.jsonl\n`,
      );
    }
    if (result.report.pngError !== undefined) process.stderr.write(`warning: pr_curves.png not rendered (${result.report.pngError})\n`);
    process.stderr.write(`report written to ${result.report.dir}/ (${result.report.files.join(', ')})\n`);
    return 0;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

export async function run(argv: string[]): Promise<number> {
  let values: EvalCliOptions;
  try {
    values = parseArgs({ args: argv, options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (err) {
    return reportUsageError('eval', (err as Error).message);
  }
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    const annotations = values.annotations;
    if (annotations === undefined) throw new UsageError('--annotations is required');
    if (values.detections !== undefined) {
      if (
        values.images !== undefined ||
        values.out !== undefined ||
        values.model !== undefined ||
        values.shard !== undefined ||
        values.server !== undefined
      ) {
        throw new UsageError(
          '--detections scores an existing results file; --images/--out/--model/--shard/--server are for batch mode, use one or the other',
        );
      }
      return await runResultsFile(values, annotations, values.detections);
    }
    if (values.images !== undefined) {
      if (values.out === undefined)
        throw new UsageError('--images needs --out DIR: the run directory (rerunning the same command resumes)');
      if (values.report !== undefined) throw new UsageError('batch mode writes its report to OUT/report; --report is for --detections');
      return await runBatchMode(values, annotations, values.images, values.out);
    }
    throw new UsageError('give --detections RESULTS.json, or --images DIR --out DIR to run a model first');
  } catch (err) {
    // a bad argument found by the evaluator (e.g. --shard, --server) is bad usage too
    if (err instanceof UsageError || (err instanceof CocoEvalError && err.code === 'INVALID_ARGUMENT'))
      return reportUsageError('eval', err.message);
    if (err instanceof CocoEvalError) {
      process.stderr.write(`cpwc-detect eval: ${err.message}\n`);
      if (err.code === 'INTERRUPTED') {
        process.stderr.write(`to resume: cpwc-detect eval ${argv.map(shellQuote).join(' ')}\n`);
        return 130;
      }
      return 1;
    }
    throw err;
  }
}
