/**
 * Batch evaluation: run a detector over every image of a COCO annotation file, write COCO
 * results as it goes (resumable, see run-dir.ts), then score them with the evaluator.
 */
import { createHash } from 'node:crypto';
import { promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { DetectError } from '../../detection/errors';
import type { Detector } from '../../detection/detector';
import { loadDetectionsFile } from '../detections';
import { EvalError } from '../errors';
import { evaluateLoaded, type EvaluationRun } from '../evaluate';
import { loadGroundTruthFile, withoutImages, type GroundTruth, type ImageInfo } from '../ground-truth';
import { writeReport, type ReportFiles } from '../report/report';
import type { ExecutionProvider } from '../../detection/execution-provider';
import { mapClassesToCategories, type CategoryMapping } from './class-map';
import { Progress, type ProgressStream } from './progress';
import { RUN_FORMAT, RunDirectory, type ImageRecord, type RunManifest } from './run-dir';

export interface BatchOptions {
  annotations: string;
  imagesDir: string;
  modelDir: string;
  outDir: string;
  /** Keep detections with score >= this (default: the model's roi_heads.score_thresh). */
  scoreThreshold?: number;
  /** ONNX Runtime intra-op threads (default: the detector's). */
  intraOpThreads?: number;
  /** ONNX Runtime execution provider (default: cpu). */
  executionProvider?: ExecutionProvider;
  /** Progress and notes go here (default: process.stderr). */
  log?: ProgressStream;
  /** When aborted, the run stops after the image in progress is recorded (throws INTERRUPTED). */
  signal?: AbortSignal;
}

export interface SkippedImage {
  image_id: number;
  file_name: string | null;
  reason: string;
}

/** What the batch run did, for the --json output and the report. */
export interface BatchSummary {
  out_dir: string;
  detections_file: string;
  model_dir: string;
  model_name: string;
  category_mapping: CategoryMapping['method'];
  unmatched_model_classes: string[];
  categories_without_model_class: string[];
  images_total: number;
  images_scored: number;
  images_skipped: number;
  skipped: SkippedImage[];
  /** Images processed by this invocation (the rest were done by earlier, interrupted ones). */
  images_this_session: number;
  resumed: boolean;
  seconds_this_session: number;
}

export interface BatchResult {
  evaluation: EvaluationRun;
  batch: BatchSummary;
  report: ReportFiles;
}

/** Image failures that skip the image; anything else (model, runtime) stops the run. */
const SKIPPABLE_DETECT_ERRORS = new Set(['IMAGE_EMPTY', 'IMAGE_UNSUPPORTED_FORMAT', 'IMAGE_DECODE_FAILED', 'IMAGE_TOO_LARGE']);

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readFileOrThrow(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new EvalError('FILE_UNREADABLE', `${file}: cannot read ${what}: ${(err as Error).message}`, { file }, { cause: err });
  }
}

type ImageBytes = { ok: true; bytes: Buffer } | { ok: false; reason: string };

async function readImage(imagesDir: string, image: ImageInfo): Promise<ImageBytes> {
  if (image.file_name === undefined) return { ok: false, reason: 'the image has no file_name' };
  try {
    return { ok: true, bytes: await fs.readFile(path.join(imagesDir, image.file_name)) };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { ok: false, reason: code === 'ENOENT' ? 'file not found' : `unreadable: ${(err as Error).message}` };
  }
}

/** COCO result lines for one image's detections: bbox [x, y, w, h] in original pixels. */
function resultLines(imageId: number, detections: { class_id: number; score: number; box: { xmin: number; ymin: number; xmax: number; ymax: number } }[], mapping: CategoryMapping, categoryIds: number[]): { lines: string; count: number } {
  let lines = '';
  let count = 0;
  for (const d of detections) {
    const categoryIndex = mapping.categoryIndexByClass[d.class_id] ?? -1;
    if (categoryIndex < 0) continue;
    const { xmin, ymin, xmax, ymax } = d.box;
    lines += `${JSON.stringify({ image_id: imageId, category_id: categoryIds[categoryIndex], bbox: [xmin, ymin, xmax - xmin, ymax - ymin], score: d.score })}\n`;
    count++;
  }
  return { lines, count };
}

async function loadDetector(options: BatchOptions): Promise<Detector> {
  const { Detector } = await import('../../detection/detector');
  return Detector.load(options.modelDir, {
    ...(options.intraOpThreads === undefined ? {} : { intraOpThreads: options.intraOpThreads }),
    ...(options.executionProvider === undefined ? {} : { executionProvider: options.executionProvider }),
  });
}

/** Runs the model over the images not yet done, recording each; returns when all are done or the signal fires. */
async function detectAll(run: RunDirectory, gt: GroundTruth, detector: Detector, mapping: CategoryMapping, options: BatchOptions, log: ProgressStream): Promise<number> {
  const pending = gt.images.filter((image) => !run.images.has(image.id));
  const progress = new Progress(gt.images.length, gt.images.length - pending.length, log);
  let skipped = [...run.images.values()].filter((r) => r.status === 'skipped').length;
  let processed = 0;
  const detectOptions = options.scoreThreshold === undefined ? {} : { scoreThreshold: options.scoreThreshold };
  let nextRead = pending.length > 0 ? readImage(options.imagesDir, pending[0]!) : undefined;
  for (let i = 0; i < pending.length; i++) {
    if (options.signal?.aborted === true) break;
    const image = pending[i]!;
    const read = await nextRead!;
    nextRead = i + 1 < pending.length ? readImage(options.imagesDir, pending[i + 1]!) : undefined;
    const base = { image_id: image.id, file_name: image.file_name ?? null };
    let record: Omit<ImageRecord, 'detections_end'>;
    let lines = '';
    if (!read.ok) {
      record = { ...base, status: 'skipped', detections: 0, reason: read.reason };
    } else {
      try {
        const result = await detector.detect(read.bytes, detectOptions);
        const mapped = resultLines(image.id, result.detections, mapping, gt.categoryIds);
        lines = mapped.lines;
        record = { ...base, status: 'done', detections: mapped.count };
      } catch (err) {
        if (!(err instanceof DetectError) || !SKIPPABLE_DETECT_ERRORS.has(err.code)) throw err;
        record = { ...base, status: 'skipped', detections: 0, reason: `${err.code}: ${err.message}` };
      }
    }
    run.commitImage(record, lines);
    processed++;
    if (record.status === 'skipped') {
      skipped++;
      log.write(`${log.isTTY === true ? '\r\x1b[K' : ''}eval: skipped image ${image.id} (${image.file_name ?? 'no file_name'}): ${record.reason}\n`);
    }
    progress.update(run.images.size, skipped);
  }
  progress.finish(run.images.size, skipped);
  await nextRead;
  return processed;
}

/**
 * Runs the model over the dataset (resuming an earlier run in `outDir`), scores it and writes
 * `outDir/report/`.
 *
 * @example
 *   const { evaluation } = await runBatch({ annotations: 'val.json', imagesDir: 'val/', modelDir: 'models/m', outDir: 'runs/val' });
 *   console.log(evaluation.summary.stats[0]);
 */
export async function runBatch(options: BatchOptions): Promise<BatchResult> {
  const log = options.log ?? process.stderr;
  const started = performance.now();
  const annotationsPath = path.resolve(options.annotations);
  const annotationsSha = sha256(readFileOrThrow(annotationsPath, 'annotation file'));
  const gt = loadGroundTruthFile(options.annotations);
  const modelJsonSha = sha256(readFileOrThrow(path.join(options.modelDir, 'model.json'), 'model.json'));
  const detector = await loadDetector(options);
  let run: RunDirectory | undefined;
  let processed = 0;
  let mapping: CategoryMapping;
  try {
    mapping = mapClassesToCategories(detector.model.classes, gt, options.modelDir);
    const categoryMap: Record<string, number> = {};
    mapping.categoryIndexByClass.forEach((index, classId) => {
      if (index >= 0) categoryMap[String(classId)] = gt.categoryIds[index]!;
    });
    const manifest: RunManifest = {
      format: RUN_FORMAT,
      version: 1,
      annotations: annotationsPath,
      annotations_sha256: annotationsSha,
      images_dir: path.resolve(options.imagesDir),
      model_dir: detector.modelDir,
      model_json_sha256: modelJsonSha,
      model_name: detector.model.name,
      score_threshold: options.scoreThreshold ?? null,
      category_map: categoryMap,
      created_at: new Date().toISOString(),
    };
    run = RunDirectory.open(options.outDir, manifest);
    if (run.images.size > 0) log.write(`eval: resuming ${options.outDir}: ${run.images.size}/${gt.images.length} images already done\n`);
    if (mapping.unmatchedClasses.length > 0) log.write(`eval: model classes with no dataset category (dropped): ${mapping.unmatchedClasses.join(', ')}\n`);
    if (mapping.categoriesWithoutClass.length > 0) {
      log.write(`eval: dataset categories the model cannot detect (scored as missed): ${mapping.categoriesWithoutClass.join(', ')}\n`);
    }
    processed = await detectAll(run, gt, detector, mapping, options, log);
  } finally {
    run?.close();
    await detector.close();
  }
  const done = run.images;
  if (done.size < gt.images.length) {
    throw new EvalError(
      'INTERRUPTED',
      `interrupted: ${done.size} of ${gt.images.length} images are done and recorded in ${options.outDir}; run the same command again to resume`,
      { file: options.outDir },
    );
  }

  const skipped: SkippedImage[] = [...done.values()]
    .filter((r) => r.status === 'skipped')
    .map((r) => ({ image_id: r.image_id, file_name: r.file_name, reason: r.reason ?? '' }))
    .sort((a, b) => a.image_id - b.image_id);
  const scoredGt = withoutImages(gt, new Set(skipped.map((s) => s.image_id)));
  const evaluation = evaluateLoaded(scoredGt, loadDetectionsFile(run.detectionsPath, scoredGt));
  const batch: BatchSummary = {
    out_dir: path.resolve(options.outDir),
    detections_file: run.detectionsPath,
    model_dir: detector.modelDir,
    model_name: detector.model.name,
    category_mapping: mapping.method,
    unmatched_model_classes: mapping.unmatchedClasses,
    categories_without_model_class: mapping.categoriesWithoutClass,
    images_total: gt.images.length,
    images_scored: scoredGt.images.length,
    images_skipped: skipped.length,
    skipped,
    images_this_session: processed,
    resumed: run.resumed,
    seconds_this_session: (performance.now() - started) / 1000,
  };
  const notes = [
    `Model: \`${detector.modelDir}\` (${detector.model.name}); classes mapped to categories by ${mapping.method === 'coco-id' ? 'COCO id' : 'name'}`,
    skipped.length > 0
      ? `${skipped.length} of ${gt.images.length} images skipped (missing or unreadable) and left out of scoring: ${skipped
          .slice(0, 20)
          .map((s) => `${s.image_id} (${s.file_name ?? '?'}: ${s.reason})`)
          .join('; ')}${skipped.length > 20 ? '; …' : ''}`
      : `All ${gt.images.length} images processed`,
  ];
  if (mapping.categoriesWithoutClass.length > 0) notes.push(`Categories the model cannot detect: ${mapping.categoriesWithoutClass.join(', ')}`);
  const report = await writeReport(path.join(options.outDir, 'report'), evaluation.evaluation, evaluation.summary, {
    annotations: options.annotations,
    detections: `\`${run.detectionsPath}\` (model run)`,
    counts: evaluation.counts,
    notes,
    extra: { run: batch },
  });
  return { evaluation, batch, report };
}
