/**
 * Batch evaluation: run a detector over every image of a COCO annotation file, write COCO
 * results as it goes (resumable, see run-dir.ts), then score them with the evaluator. The work
 * may be split: `--shard K/N` runs one part into OUT/shards/K-of-N (shard.ts) and the run
 * without --shard merges the parts (merge.ts); detection may run in this process
 * (local-source.ts) or through cpwc-detect servers (server-pool.ts).
 */
import { createHash } from 'node:crypto';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Detection } from '../../detection/types';
import { loadDetectionsFile } from '../detections';
import { CocoEvalError } from '../errors';
import { evaluateLoaded, type EvaluationRun } from '../evaluate';
import { loadGroundTruthFile, withoutImages, type GroundTruth, type ImageInfo } from '../ground-truth';
import { writeReport, type ReportFiles } from '../report/report';
import type { ExecutionProvider } from '../../detection/execution-provider';
import { mapClassesToCategories, type CategoryMapping } from './class-map';
import { Progress, type ProgressStream } from './progress';
import type { DetectionSource } from './detection-source';
import { openLocalSource } from './local-source';
import { findShards, importShards, type ShardImport } from './merge';
import { IDENTITY_FIELDS, identityDifference, readManifest, RUN_FORMAT, RunDirectory, type ImageRecord, type RunManifest } from './run-dir';
import { ServerPool, type ServerPoolOptions } from './server-pool';
import { shardDir, shardName, shardOf, type Shard } from './shard';

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
  /** Detect through these cpwc-detect servers instead of `modelDir` (--server). */
  servers?: string[];
  /** Pool settings for `servers`: concurrency per server, timeout, retries, API key. */
  serverOptions?: Omit<ServerPoolOptions, 'urls' | 'log'>;
  /** Score even when some images could not be read or decoded (else IMAGES_UNREADABLE). */
  allowMissing?: boolean;
}

/** `runShard`'s options: a batch run's, plus which part. */
export interface ShardOptions extends BatchOptions {
  shard: Shard;
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
  model_dir: string | null;
  model_name: string;
  /** 'local' or the server URLs. */
  detector: string;
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
  /** What the merge took from each OUT/shards/K-of-N ([] when the run was not sharded). */
  shards: ShardImport[];
  /** Images of the dataset no shard had recorded when the merge started (0 when not sharded). */
  images_missing_from_shards: number;
  /** Images a shard recorded as unreadable only (the merge tries them again; 0 when not sharded). */
  images_failed_in_shards: number;
  /** Images this run detected itself (all images when not sharded). */
  images_not_from_shards: number;
  /** --server: requests, 503s and failures per server. */
  detector_stats: Record<string, unknown>;
}

/** What `runShard` did. */
export interface ShardSummary {
  shard: string;
  out_dir: string;
  shard_dir: string;
  detector: string;
  images_in_shard: number;
  images_done: number;
  images_failed: number;
  images_this_session: number;
  resumed: boolean;
  seconds_this_session: number;
  detector_stats: Record<string, unknown>;
}

export interface BatchResult {
  evaluation: EvaluationRun;
  batch: BatchSummary;
  report: ReportFiles;
}

function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

function readFileOrThrow(file: string, what: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CocoEvalError('FILE_UNREADABLE', `${file}: cannot read ${what}: ${(err as Error).message}`, { file }, { cause: err });
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
function resultLines(
  imageId: number,
  detections: readonly Detection[],
  mapping: CategoryMapping,
  categoryIds: number[],
): { lines: string; count: number } {
  let lines = '';
  let count = 0;
  for (const d of detections) {
    const categoryIndex = mapping.categoryIndexByClass[d.class_id] ?? -1;
    if (categoryIndex < 0) continue;
    const { xmin, ymin, xmax, ymax } = d.box;
    const bbox = [xmin, ymin, xmax - xmin, ymax - ymin];
    lines += `${JSON.stringify({ image_id: imageId, category_id: categoryIds[categoryIndex], bbox, score: d.score })}\n`;
    count++;
  }
  return { lines, count };
}

interface DetectAllOptions {
  imagesDir: string;
  scoreThreshold: number | undefined;
  signal: AbortSignal | undefined;
  log: ProgressStream;
  /** Progress prefix: 'eval', 'eval[shard 1/3]'. */
  label: string;
}

/**
 * Detects every image of `images` that `run` has not finished (a skipped image is tried again),
 * `source.concurrency` at a time, recording each as it completes; returns how many were
 * processed. Stops taking images when the signal fires; the first error stops the run once the
 * images in flight are recorded.
 */
async function detectAll(
  run: RunDirectory,
  images: readonly ImageInfo[],
  source: DetectionSource,
  mapping: CategoryMapping,
  categoryIds: number[],
  options: DetectAllOptions,
): Promise<number> {
  const { log } = options;
  const pending = images.filter((image) => run.images.get(image.id)?.status !== 'done');
  const progress = new Progress(images.length, images.length - pending.length, log, undefined, options.label);
  let done = images.length - pending.length;
  let skipped = 0;
  let processed = 0;
  let next = 0;
  let failure: { error: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (next < pending.length && failure === undefined && options.signal?.aborted !== true) {
      const image = pending[next++]!;
      const read = await readImage(options.imagesDir, image);
      const base = { image_id: image.id, file_name: image.file_name ?? null };
      let record: Omit<ImageRecord, 'detections_end'>;
      let lines = '';
      if (!read.ok) {
        record = { ...base, status: 'skipped', detections: 0, reason: read.reason };
      } else {
        const result = await source.detect(read.bytes, options.scoreThreshold);
        if (result.ok) {
          const mapped = resultLines(image.id, result.detections, mapping, categoryIds);
          lines = mapped.lines;
          record = { ...base, status: 'done', detections: mapped.count };
        } else {
          record = { ...base, status: 'skipped', detections: 0, reason: result.reason };
        }
      }
      run.commitImage(record, lines);
      processed++;
      done++;
      if (record.status === 'skipped') {
        skipped++;
        log.write(
          `${log.isTTY === true ? '\r\x1b[K' : ''}${options.label}: ` +
            `skipped image ${image.id} (${image.file_name ?? 'no file_name'}): ${record.reason}\n`,
        );
      }
      progress.update(done, skipped);
    }
  };
  const workers = Array.from({ length: Math.max(1, Math.min(source.concurrency, pending.length)) }, () =>
    worker().catch((error: unknown) => {
      failure ??= { error };
    }),
  );
  await Promise.all(workers);
  progress.finish(done, skipped);
  if (failure !== undefined) throw failure.error;
  return processed;
}

interface PreparedRun {
  gt: GroundTruth;
  source: DetectionSource;
  mapping: CategoryMapping;
  manifest: RunManifest;
}

async function openSource(options: BatchOptions, log: ProgressStream): Promise<DetectionSource> {
  if (options.servers !== undefined && options.servers.length > 0)
    return ServerPool.connect({ ...options.serverOptions, urls: options.servers, log });
  return openLocalSource(options.modelDir, { intraOpThreads: options.intraOpThreads, executionProvider: options.executionProvider });
}

/** Reads the dataset, opens the detection source and builds the run's manifest. */
async function prepare(options: BatchOptions, shard: Shard | null, log: ProgressStream): Promise<PreparedRun> {
  const annotationsPath = path.resolve(options.annotations);
  const annotationsSha = sha256(readFileOrThrow(annotationsPath, 'annotation file'));
  const gt = loadGroundTruthFile(options.annotations);
  const source = await openSource(options, log);
  try {
    const mapping = mapClassesToCategories(source.classes, gt, source.modelDir ?? source.description);
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
      model_dir: source.modelDir ?? '',
      model_json_sha256: source.modelJsonSha256,
      model_name: source.identity.name,
      model_identity: source.identity,
      score_threshold: options.scoreThreshold ?? null,
      category_map: categoryMap,
      shard,
      detector: source.description,
      created_at: new Date().toISOString(),
    };
    return { gt, source, mapping, manifest };
  } catch (err) {
    await source.close();
    throw err;
  }
}

function logMapping(mapping: CategoryMapping, log: ProgressStream): void {
  if (mapping.unmatchedClasses.length > 0)
    log.write(`eval: model classes with no dataset category (dropped): ${mapping.unmatchedClasses.join(', ')}\n`);
  if (mapping.categoriesWithoutClass.length > 0) {
    log.write(`eval: dataset categories the model cannot detect (scored as missed): ${mapping.categoriesWithoutClass.join(', ')}\n`);
  }
}

/**
 * Runs one part of a sharded run (`--shard K/N`) into OUT/shards/K-of-N, resumably; scoring is
 * left to the merge (the same command without --shard). Refuses when OUT already holds a
 * run of another dataset, model or settings.
 *
 * @example
 *   await runShard({
 *     annotations: 'val.json', imagesDir: 'val/', modelDir: 'models/m', outDir: 'runs/val', shard: { index: 0, count: 4 },
 *   });
 */
export async function runShard(options: ShardOptions): Promise<ShardSummary> {
  const log = options.log ?? process.stderr;
  const started = performance.now();
  const label = `eval[shard ${options.shard.index}/${options.shard.count}]`;
  const { gt, source, mapping, manifest } = await prepare(options, options.shard, log);
  const dir = shardDir(options.outDir, options.shard);
  let run: RunDirectory | undefined;
  let processed = 0;
  const images = gt.images.filter((image) => shardOf(image.id, options.shard.count) === options.shard.index);
  try {
    const mainManifest = path.join(options.outDir, 'run.json');
    if (existsSync(mainManifest)) {
      const difference = identityDifference(readManifest(mainManifest), manifest, IDENTITY_FIELDS);
      if (difference !== undefined) {
        throw new CocoEvalError(
          'RUN_MISMATCH',
          `${options.outDir} holds a run with a different ${difference.field.replace(/_/g, ' ')} ` +
            `(${difference.was}, this shard: ${difference.now}); use the run's options or another --out`,
          { file: mainManifest, field: difference.field },
        );
      }
    }
    run = RunDirectory.open(dir, manifest);
    const already = images.filter((image) => run!.images.get(image.id)?.status === 'done').length;
    log.write(
      `${label}: ${images.length} of ${gt.images.length} images are this shard's` +
        `${already > 0 ? `, ${already} already done` : ''}; writing ${dir}\n`,
    );
    logMapping(mapping, log);
    processed = await detectAll(run, images, source, mapping, gt.categoryIds, {
      imagesDir: options.imagesDir,
      scoreThreshold: options.scoreThreshold,
      signal: options.signal,
      log,
      label,
    });
  } finally {
    run?.close();
    await source.close();
  }
  const records = images.map((image) => run.images.get(image.id)).filter((r) => r !== undefined);
  if (records.length < images.length) {
    throw new CocoEvalError(
      'INTERRUPTED',
      `interrupted: ${records.length} of this shard's ${images.length} images are done and recorded in ${dir}; ` +
        'run the same command again to resume',
      { file: dir },
    );
  }
  const done = records.filter((r) => r.status === 'done').length;
  return {
    shard: shardName(options.shard),
    out_dir: path.resolve(options.outDir),
    shard_dir: path.resolve(dir),
    detector: source.description,
    images_in_shard: images.length,
    images_done: done,
    images_failed: images.length - done,
    images_this_session: processed,
    resumed: run.resumed,
    seconds_this_session: (performance.now() - started) / 1000,
    detector_stats: source.stats(),
  };
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
  const { gt, source, mapping, manifest } = await prepare(options, null, log);
  let run: RunDirectory | undefined;
  let processed = 0;
  let shards: ShardImport[] = [];
  let missingFromShards = 0;
  let failedInShards = 0;
  try {
    const shardDirs = findShards(options.outDir, manifest);
    run = RunDirectory.open(options.outDir, manifest);
    const merged = importShards(run, shardDirs, gt);
    shards = merged.shards;
    const left = gt.images.filter((image) => run!.images.get(image.id)?.status !== 'done');
    const finished = gt.images.length - left.length;
    if (shards.length > 0) {
      failedInShards = left.filter((image) => merged.recordedIds.has(image.id)).length;
      missingFromShards = left.length - failedInShards;
      const parts = shards.map(
        (s) =>
          `${s.shard} ${s.images_done} done${s.images_failed > 0 ? `, ${s.images_failed} failed` : ''}` +
          `${s.running_pid === null ? '' : ` (still running, pid ${s.running_pid})`}`,
      );
      log.write(
        `eval: merged ${shards.length} shard(s) into ${options.outDir}: ${parts.join('; ')}; ` +
          `${left.length} of ${gt.images.length} images left to detect here ` +
          `(${missingFromShards} no shard recorded, ${failedInShards} failed in a shard)\n`,
      );
    } else if (run.images.size > 0) {
      log.write(`eval: resuming ${options.outDir}: ${finished}/${gt.images.length} images already done\n`);
    }
    logMapping(mapping, log);
    processed = await detectAll(run, gt.images, source, mapping, gt.categoryIds, {
      imagesDir: options.imagesDir,
      scoreThreshold: options.scoreThreshold,
      signal: options.signal,
      log,
      label: 'eval',
    });
  } finally {
    run?.close();
    await source.close();
  }
  const done = run.images;
  if (done.size < gt.images.length) {
    throw new CocoEvalError(
      'INTERRUPTED',
      `interrupted: ${done.size} of ${gt.images.length} images are done and recorded in ${options.outDir}; ` +
        'run the same command again to resume',
      { file: options.outDir },
    );
  }

  const skipped: SkippedImage[] = [...done.values()]
    .filter((r) => r.status === 'skipped')
    .map((r) => ({ image_id: r.image_id, file_name: r.file_name, reason: r.reason ?? '' }))
    .sort((a, b) => a.image_id - b.image_id);
  if (skipped.length > 0 && options.allowMissing !== true) {
    throw new CocoEvalError(
      'IMAGES_UNREADABLE',
      `${skipped.length} of ${gt.images.length} images could not be read or decoded, so their ground truth cannot be scored: ` +
        `${skipped
          .slice(0, 5)
          .map((s) => `${s.image_id} (${s.file_name ?? '?'}: ${s.reason})`)
          .join('; ')}${skipped.length > 5 ? '; …' : ''}. ` +
        `Fix them and run the same command again (only they are retried; the list is in ${run.imagesPath}), ` +
        `or add --allow-missing to score the other ${gt.images.length - skipped.length} without them`,
      { file: run.imagesPath },
    );
  }
  const scoredGt = withoutImages(gt, new Set(skipped.map((s) => s.image_id)));
  const evaluation = evaluateLoaded(scoredGt, loadDetectionsFile(run.detectionsPath, scoredGt));
  const batch: BatchSummary = {
    out_dir: path.resolve(options.outDir),
    detections_file: run.detectionsPath,
    model_dir: source.modelDir,
    model_name: source.identity.name,
    detector: source.description,
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
    shards,
    images_missing_from_shards: missingFromShards,
    images_failed_in_shards: failedInShards,
    images_not_from_shards: processed,
    detector_stats: source.stats(),
  };
  const notes = [
    `Model: \`${source.modelDir ?? source.description}\` (${source.identity.name}); ` +
      `classes mapped to categories by ${mapping.method === 'coco-id' ? 'COCO id' : 'name'}`,
    skipped.length > 0
      ? `${skipped.length} of ${gt.images.length} images unreadable or not decodable, left out of scoring (--allow-missing): ${skipped
          .slice(0, 20)
          .map((s) => `${s.image_id} (${s.file_name ?? '?'}: ${s.reason})`)
          .join('; ')}${skipped.length > 20 ? '; …' : ''}`
      : `All ${gt.images.length} images processed`,
  ];
  if (shards.length > 0) {
    notes.push(
      `Merged from ${shards.length} shard(s): ` +
        `${shards.map((s) => `${s.shard} ${s.images_done} done, ${s.images_failed} failed`).join('; ')}; ` +
        `${processed} image(s) detected by the merge itself`,
    );
  }
  if (mapping.categoriesWithoutClass.length > 0)
    notes.push(`Categories the model cannot detect: ${mapping.categoriesWithoutClass.join(', ')}`);
  const report = await writeReport(path.join(options.outDir, 'report'), evaluation.evaluation, evaluation.summary, {
    annotations: options.annotations,
    detections: `\`${run.detectionsPath}\` (model run)`,
    counts: evaluation.counts,
    notes,
    extra: { run: batch },
  });
  return { evaluation, batch, report };
}
