/** Shared by the sharded and --server batch tests: the CLI as a real child process over the batch fixture set. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ShardImport } from '../../../src/eval/batch/merge';
import { ROOT, tempDir } from '../../helpers/eval';

export const CLI = join(ROOT, 'dist/cli/index.js');
export const ANNOTATIONS = join(ROOT, 'test/eval/fixtures/batch-dataset/annotations.json');
export const IMAGES = join(ROOT, 'test/fixtures/images');
export const MODEL = join(ROOT, 'test/fixtures/models/tiny-fpn');
export const OTHER_MODEL = join(ROOT, 'test/fixtures/models/tiny-c4');
export const TOTAL_IMAGES = 10;

export interface BatchJson {
  stats: number[];
  per_category: Record<string, number>;
  categories: unknown[];
  counts: unknown;
  run: {
    images_total: number;
    images_scored: number;
    images_skipped: number;
    images_this_session: number;
    images_not_from_shards: number;
    images_missing_from_shards: number;
    images_failed_in_shards: number;
    detector: string;
    shards: ShardImport[];
    detector_stats: { servers?: { url: string; requests: number; ok: number; busy_503: number; failures: number }[]; retries?: number };
  };
}

export interface ShardJson {
  shard: {
    shard: string;
    images_in_shard: number;
    images_done: number;
    images_failed: number;
    images_this_session: number;
    resumed: boolean;
  };
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function evalArgs(out: string, extra: string[], images = IMAGES): string[] {
  return [CLI, 'eval', '--annotations', ANNOTATIONS, '--images', images, '--out', out, '--json', ...extra];
}

/** Starts `cpwc-detect eval` without blocking this process's event loop (servers in it must answer). */
export function startEval(
  out: string,
  extra: string[],
  env: NodeJS.ProcessEnv = process.env,
  images = IMAGES,
): { child: ChildProcess; done: Promise<CliRun>; stderr: () => string } {
  const child = spawn(process.execPath, evalArgs(out, extra, images), { cwd: ROOT, env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
  });
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const done = new Promise<CliRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

export function runEval(out: string, extra: string[], env?: NodeJS.ProcessEnv, images = IMAGES): Promise<CliRun> {
  return startEval(out, extra, env, images).done;
}

/** The second image of the set: a run reads the images one at a time, in the annotation file's order. */
export const HELD_IMAGE = 'portrait.jpg';

/**
 * The fixture images as symlinks in a fresh directory, except `held` (default HELD_IMAGE), a FIFO:
 * a run blocks reading it (with a local model: exactly the images before it recorded), so
 * "interrupted mid-run" is exact rather than a race with the model's speed. `feed()` writes the
 * real bytes into the FIFO (the blocked read completes); `restore()` puts the real file in its place.
 */
export function imagesWithHeldFile(held = HELD_IMAGE): { dir: string; feed: () => void; restore: () => void } {
  const dir = join(tempDir(), 'images');
  mkdirSync(dir);
  for (const name of readdirSync(IMAGES)) if (name !== held) symlinkSync(join(IMAGES, name), join(dir, name));
  const fifo = join(dir, held);
  const made = spawnSync('mkfifo', [fifo]);
  if (made.status !== 0) throw new Error(`mkfifo ${fifo} failed: ${made.stderr?.toString() ?? made.error?.message}`);
  return {
    dir,
    feed: () => writeFileSync(fifo, readFileSync(join(IMAGES, held))),
    restore: () => {
      unlinkSync(fifo);
      symlinkSync(join(IMAGES, held), fifo);
    },
  };
}

export function parseJson<T>(run: CliRun): T {
  if (run.code !== 0) throw new Error(`eval exited ${run.code ?? run.signal}: ${run.stderr}`);
  return JSON.parse(run.stdout) as T;
}

/** The stable part of a scored result (timings and session counters differ between runs). */
export function results(json: BatchJson): unknown {
  return { stats: json.stats, per_category: json.per_category, categories: json.categories, counts: json.counts };
}

/** image_id of every complete images.jsonl line of a run directory, in file order. */
export function recordedIds(dir: string): number[] {
  const file = join(dir, 'images.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.endsWith('}'))
    .map((l) => (JSON.parse(l) as { image_id: number }).image_id);
}

/** The detections.jsonl lines of a run directory, sorted (shards and parallel requests commit in another order). */
export function sortedDetections(dir: string): string[] {
  return readFileSync(join(dir, 'detections.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .sort();
}

/** Polls until `condition` holds (a precondition of the test, not a timing guess), failing after `timeoutMs`. */
export async function until(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
