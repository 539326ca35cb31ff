/** Builders for small hand-made COCO datasets used by the evaluator tests. */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { DetectionTable, type Detections } from '../../src/eval/detections';
import { CocoEvalError } from '../../src/eval/errors';
import { evaluateLoaded, type EvaluationRun } from '../../src/eval/evaluate';
import { parseGroundTruth, type GroundTruth } from '../../src/eval/ground-truth';
import { syntheticCoco, type SyntheticCase, type SyntheticOptions } from '../eval/synthetic-coco';

export type Box = [number, number, number, number];

export interface GtAnnotation {
  id?: number;
  image_id: number;
  category_id: number;
  bbox: Box;
  /** Defaults to w*h. */
  area?: number;
  iscrowd?: number;
}

export interface ResultRecord {
  image_id: number;
  category_id: number;
  bbox: Box;
  score: number;
}

export interface DatasetSpec {
  images?: number[];
  categories?: number[];
  annotations: GtAnnotation[];
}

/** A COCO instances object; images default to [1], categories to [1]; annotation ids to index+1. */
export function cocoDataset(spec: DatasetSpec): Record<string, unknown> {
  const images = spec.images ?? [1];
  const categories = spec.categories ?? [1];
  return {
    images: images.map((id) => ({ id, width: 640, height: 480, file_name: `${id}.jpg` })),
    categories: categories.map((id) => ({ id, name: `category-${id}` })),
    annotations: spec.annotations.map((a, i) => ({
      id: a.id ?? i + 1,
      image_id: a.image_id,
      category_id: a.category_id,
      bbox: a.bbox,
      area: a.area ?? a.bbox[2] * a.bbox[3],
      iscrowd: a.iscrowd ?? 0,
    })),
  };
}

export function groundTruth(spec: DatasetSpec): GroundTruth {
  return parseGroundTruth(cocoDataset(spec), 'test-gt.json');
}

/** Detections in the given order (the order breaks score ties). Unknown categories are counted, like the file loader. */
export function detections(gt: GroundTruth, records: readonly ResultRecord[]): Detections {
  const table = new DetectionTable();
  for (const r of records) {
    const imageIndex = gt.imageIndexById.get(r.image_id);
    if (imageIndex === undefined) throw new Error(`test setup: unknown image ${r.image_id}`);
    const categoryIndex = gt.categoryIndexById.get(r.category_id);
    if (categoryIndex === undefined) {
      table.unknownCategory++;
      continue;
    }
    table.add(imageIndex, categoryIndex, r.bbox[0], r.bbox[1], r.bbox[2], r.bbox[3], r.score);
  }
  return table.finish();
}

export function evaluate(spec: DatasetSpec, records: readonly ResultRecord[]): EvaluationRun {
  const gt = groundTruth(spec);
  return evaluateLoaded(gt, detections(gt, records));
}

export function tempDir(prefix = 'cpwc-eval-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** The CocoEvalError `fn` throws; any other error is rethrown, and returning is a failure. */
export function cocoEvalError(fn: () => unknown): CocoEvalError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CocoEvalError) return err;
    throw err;
  }
  throw new Error('expected a CocoEvalError');
}

export function writeTemp(dir: string, name: string, content: string | Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, content);
  return file;
}

/**
 * The golden pycocotools cases of ../shared/fixtures/coco-eval, beside the repository in the
 * project's own checkouts but not in a user's clone: tests that use them are an extra check and
 * run only where they are present (see SHARED_FIXTURES_PRESENT). Everything else uses
 * writeSyntheticCase.
 */
export const SHARED_FIXTURES = join(__dirname, '../../../shared/fixtures/coco-eval');
export const SHARED_FIXTURES_PRESENT = existsSync(join(SHARED_FIXTURES, 'README.md'));

export interface SyntheticFiles {
  gt: string;
  dt: string;
  data: SyntheticCase;
}

/** Writes a synthetic case (see synthetic-coco.ts) as `dir`/gt.json and `dir`/dt.json. */
export function writeSyntheticCase(dir: string, options: SyntheticOptions): SyntheticFiles {
  mkdirSync(dir, { recursive: true });
  const data = syntheticCoco(options);
  return { gt: writeTemp(dir, 'gt.json', JSON.stringify(data.gt)), dt: writeTemp(dir, 'dt.json', JSON.stringify(data.dt)), data };
}

export const ROOT = join(__dirname, '../..');

function distIsFresh(): boolean {
  const stale = (dir: string): boolean =>
    readdirSync(dir, { withFileTypes: true }).some((entry) => {
      const file = join(dir, entry.name);
      if (entry.isDirectory()) return stale(file);
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) return false;
      const built = join(ROOT, 'dist', relative(join(ROOT, 'src'), file)).replace(/\.ts$/, '.js');
      return !existsSync(built) || statSync(built).mtimeMs < statSync(file).mtimeMs;
    });
  return !stale(join(ROOT, 'src'));
}

/**
 * Builds dist/ (npx tsc -p tsconfig.build.json) unless it is newer than every source file, which is
 * the case under `npm test`. A lock directory keeps two jest workers from building at once, and
 * the freshness check keeps a build from rewriting files another worker's CLI is reading.
 */
export function ensureDistBuilt(): void {
  const lock = join(tmpdir(), `cpwc-detect-build-${Buffer.from(ROOT).toString('hex').slice(-32)}.lock`);
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${lock}`);
      const held = statSync(lock, { throwIfNoEntry: false });
      if (held !== undefined && Date.now() - held.mtimeMs > 300_000) rmdirSync(lock); // left by a killed run
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    }
  }
  try {
    // tsc emits even when another part of the tree has type errors; we only need our files.
    if (!distIsFresh())
      spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
  } finally {
    rmdirSync(lock);
  }
}
