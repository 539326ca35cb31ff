/**
 * `--shard K/N`: the K-th (0-based, as Kubernetes' JOB_COMPLETION_INDEX) of N disjoint parts of
 * a dataset, split by image id with a stable hash, so that the parts do not depend on the order
 * of the annotation file's images and a rerun (or another pod) picks the same images. Each
 * shard is a run directory of its own under OUT/shards/K-of-N/; the run without --shard merges
 * them (merge.ts).
 */
import { join } from 'node:path';
import { CocoEvalError } from '../errors';

export interface Shard {
  index: number;
  count: number;
}

/** Most shards one run may have: more parts than this are more files than work. */
export const MAX_SHARDS = 10_000;

export function parseShard(text: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  const index = match === null ? NaN : Number(match[1]);
  const count = match === null ? NaN : Number(match[2]);
  if (!(count >= 1 && count <= MAX_SHARDS && index >= 0 && index < count)) {
    throw new CocoEvalError(
      'INVALID_ARGUMENT',
      `--shard must be K/N with N in [1, ${MAX_SHARDS}] and K in [0, N-1] (K is 0-based, like JOB_COMPLETION_INDEX), got '${text}'`,
      { field: 'shard' },
    );
  }
  return { index, count };
}

/** FNV-1a (32 bit) of the image id's decimal text. */
function hashId(imageId: number): number {
  let hash = 0x811c9dc5;
  for (const ch of String(imageId)) {
    hash ^= ch.charCodeAt(0);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** The shard (0..count-1) an image belongs to. */
export function shardOf(imageId: number, count: number): number {
  return hashId(imageId) % count;
}

export function shardName(shard: Shard): string {
  return `${shard.index}-of-${shard.count}`;
}

export function shardsRoot(outDir: string): string {
  return join(outDir, 'shards');
}

export function shardDir(outDir: string, shard: Shard): string {
  return join(shardsRoot(outDir), shardName(shard));
}
