/**
 * `cpwc-detect detect IMAGE… [options]`: runs a model over image files and prints the detections
 * (a table, or one JSON array), optionally writing each image with its boxes drawn.
 */
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { commaList } from '../common/validate';
import { Detector } from '../detection/detector';
import { DetectError } from '../detection/errors';
import { EXECUTION_PROVIDERS, type ExecutionProvider } from '../detection/execution-provider';
import { MAX_DETECTIONS_LIMIT } from '../detection/limits';
import { DEFAULT_MODEL_DIR } from '../detection/model';
import { renderDetections } from '../detection/render';
import type { Detection, DetectOptions } from '../detection/types';
import { choiceFlag, numberFlag, reportUsageError, USAGE_EXIT_CODE, UsageError } from './usage';

const USAGE = `Usage: cpwc-detect detect IMAGE... [options]

Detects objects in each image and prints them, highest score first.

Options:
  --model DIR             model directory (default: ${path.relative(process.cwd(), DEFAULT_MODEL_DIR) || DEFAULT_MODEL_DIR})
  --json                  print one JSON array, one object per image in argument order:
                          {"file","width","height","detections":[{"label","class_id","score","box":{"xmin","ymin","xmax","ymax"}}]}
                          (an image that fails is {"file","error":{"code","message"}})
  --render OUTDIR         also write each image with its boxes drawn to OUTDIR/<name>.png
  --score-threshold X     keep detections with score >= X, 0..1 (default: the model's)
  --max-detections N      at most N detections per image, 1..${MAX_DETECTIONS_LIMIT} (default: the model's)
  --classes A,B           only these classes (labels or class ids)
  --threads N             ONNX Runtime threads (default: the cores available, at most 4)
  --execution-provider P  ${EXECUTION_PROVIDERS.join('|')}: where ONNX Runtime runs (default: cpu; see README, "GPU")
  --fast-resize           resize while decoding (JPEG shrink-on-load): faster on large photos, not
                          bit-exact with torchvision (AP effect: docs/performance.md)
  -h, --help              show this help

Exit status: 0 when every image was processed, 1 when some image or the model failed, ${USAGE_EXIT_CODE} for bad usage.
`;

interface ImageOutcome {
  file: string;
  width?: number;
  height?: number;
  detections?: Detection[];
  error?: { code: string; message: string };
}

/** `detect`'s flags and image paths; throws parseArgs' TypeError on an unknown or malformed flag. */
function parseDetectArgs(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      json: { type: 'boolean', default: false },
      render: { type: 'string' },
      'score-threshold': { type: 'string' },
      'max-detections': { type: 'string' },
      classes: { type: 'string' },
      threads: { type: 'string' },
      'execution-provider': { type: 'string' },
      'fast-resize': { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseDetectArgs>;
  try {
    parsed = parseDetectArgs(argv);
  } catch (error) {
    return reportUsageError('detect', (error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let options: Omit<DetectOptions, 'signal'>;
  let threads: number | undefined;
  let executionProvider: ExecutionProvider | undefined;
  try {
    if (positionals.length === 0) throw new UsageError('no images given');
    options = {
      scoreThreshold: numberFlag('--score-threshold', values['score-threshold'], { min: 0, max: 1 }),
      maxDetections: numberFlag('--max-detections', values['max-detections'], { integer: true, min: 1, max: MAX_DETECTIONS_LIMIT }),
      // labels or ids ('2'): the library resolves both (src/detection/classes.ts)
      classes: values.classes === undefined ? undefined : commaList(values.classes),
    };
    threads = numberFlag('--threads', values.threads, { integer: true, min: 1 });
    executionProvider = choiceFlag('--execution-provider', values['execution-provider'], EXECUTION_PROVIDERS);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    return reportUsageError('detect', error.message);
  }

  let detector: Detector;
  try {
    detector = await Detector.load(values.model ?? DEFAULT_MODEL_DIR, {
      intraOpThreads: threads,
      executionProvider,
      fastResize: values['fast-resize'],
    });
  } catch (error) {
    const code = error instanceof DetectError ? `${error.code}: ` : '';
    process.stderr.write(`cpwc-detect detect: cannot load the model: ${code}${(error as Error).message}\n`);
    return 1;
  }
  const outcomes: ImageOutcome[] = [];
  const renderedNames = new Set<string>();
  try {
    if (values.render !== undefined) await fs.mkdir(values.render, { recursive: true });
    for (const file of positionals) {
      const outcome = await detectFile(detector, file, options);
      outcomes.push(outcome);
      if (outcome.error !== undefined) {
        process.stderr.write(`cpwc-detect detect: ${file}: ${outcome.error.code}: ${outcome.error.message}\n`);
      } else {
        if (!values.json) process.stdout.write(formatTable(outcome));
        if (values.render !== undefined) {
          const out = uniqueOutputPath(values.render, file, renderedNames);
          await fs.writeFile(out, await renderDetections(await fs.readFile(file), outcome.detections ?? []));
          if (!values.json) process.stdout.write(`  rendered: ${out}\n`);
        }
      }
    }
  } finally {
    await detector.close();
  }
  if (values.json) process.stdout.write(`${JSON.stringify(outcomes, null, 2)}\n`);
  return outcomes.some((o) => o.error !== undefined) ? 1 : 0;
}

async function detectFile(detector: Detector, file: string, options: Omit<DetectOptions, 'signal'>): Promise<ImageOutcome> {
  let bytes: Buffer;
  try {
    bytes = await fs.readFile(file);
  } catch (error) {
    return { file, error: { code: 'FILE_UNREADABLE', message: (error as Error).message } };
  }
  try {
    const result = await detector.detect(bytes, options);
    return { file, width: result.width, height: result.height, detections: result.detections };
  } catch (error) {
    if (error instanceof DetectError) return { file, error: { code: error.code, message: error.message } };
    throw error;
  }
}

function uniqueOutputPath(dir: string, file: string, taken: Set<string>): string {
  const stem = path.basename(file, path.extname(file)) || 'image';
  let name = `${stem}.png`;
  for (let n = 1; taken.has(name); n++) name = `${stem}-${n}.png`;
  taken.add(name);
  return path.join(dir, name);
}

function formatTable(outcome: ImageOutcome): string {
  const detections = outcome.detections ?? [];
  const lines = [
    `${outcome.file}  ${outcome.width}x${outcome.height}  ${detections.length} detection${detections.length === 1 ? '' : 's'}`,
  ];
  if (detections.length > 0) {
    const labelWidth = Math.max(5, ...detections.map((d) => d.label.length));
    const num = (v: number): string => v.toFixed(1).padStart(8);
    lines.push(`  ${'label'.padEnd(labelWidth)}  score      xmin    ymin    xmax    ymax`);
    for (const d of detections) {
      lines.push(
        `  ${d.label.padEnd(labelWidth)}  ${d.score.toFixed(3)}${num(d.box.xmin)}${num(d.box.ymin)}${num(d.box.xmax)}${num(d.box.ymax)}`,
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
