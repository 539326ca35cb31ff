/**
 * The merge of a sharded run: the run without --shard reads what every OUT/shards/K-of-N/
 * recorded and copies each image's record and detections into OUT's own run directory, once;
 * images no shard finished are then detected by the merge run itself. Shards written for another
 * annotation file, model or settings are refused before anything is copied.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CocoEvalError } from '../errors';
import type { GroundTruth } from '../ground-truth';
import {
  IDENTITY_FIELDS,
  identityDifference,
  lockHolder,
  readManifest,
  readRecordedImages,
  type RunDirectory,
  type RunManifest,
} from './run-dir';
import { shardsRoot } from './shard';

/** What the merge took from one shard directory. */
export interface ShardImport {
  shard: string;
  /** Images the shard recorded (done or skipped). */
  images_recorded: number;
  images_done: number;
  /** Images the shard could not read or decode. */
  images_failed: number;
  /** Records copied into OUT by this merge (0 for those an earlier merge already copied). */
  imported: number;
  /** The pid of the shard's process when it was still writing during the merge. */
  running_pid: number | null;
}

interface ShardDirectory {
  name: string;
  dir: string;
  manifest: RunManifest;
}

/** Shard directories in OUT/shards, checked against the run's manifest (refused if of another run). */
export function findShards(outDir: string, manifest: RunManifest): ShardDirectory[] {
  const root = shardsRoot(outDir);
  if (!existsSync(root)) return [];
  const shards: ShardDirectory[] = [];
  for (const name of readdirSync(root).sort(byShardName)) {
    const dir = join(root, name);
    const manifestPath = join(dir, 'run.json');
    if (!existsSync(manifestPath)) continue; // a shard that crashed before creating its run
    const shardManifest = readManifest(manifestPath);
    const difference = identityDifference(shardManifest, manifest, IDENTITY_FIELDS);
    if (difference !== undefined) {
      throw new CocoEvalError(
        'RUN_MISMATCH',
        `shard ${dir} was written for a different ${difference.field.replace(/_/g, ' ')} ` +
          `(${difference.was}, this run: ${difference.now}); ` +
          'it is not part of this run: delete it, or run the merge with the options the shards used',
        { file: manifestPath, field: difference.field },
      );
    }
    shards.push({ name, dir, manifest: shardManifest });
  }
  return shards;
}

function byShardName(a: string, b: string): number {
  const parse = (name: string): number[] => name.split('-of-').map(Number);
  const [ai, an] = parse(a);
  const [bi, bn] = parse(b);
  return (an ?? 0) - (bn ?? 0) || (ai ?? 0) - (bi ?? 0) || a.localeCompare(b);
}

/**
 * Copies into `run` every image a shard detected that `run` has not, in shard order; returns
 * what each shard held, and the ids any shard recorded (detected or failed). Images a shard could not
 * read are not copied: the merge run tries them again itself, like every image no shard finished.
 */
export function importShards(
  run: RunDirectory,
  shards: ShardDirectory[],
  gt: GroundTruth,
): { shards: ShardImport[]; recordedIds: Set<number> } {
  const known = new Set(gt.images.map((image) => image.id));
  const recordedIds = new Set<number>();
  const imports = shards.map((shard) => {
    const recorded = readRecordedImages(shard.dir);
    for (const { record } of recorded) recordedIds.add(record.image_id);
    let imported = 0;
    let done = 0;
    for (const { record, lines } of recorded) {
      if (record.status !== 'done') continue;
      done++;
      if (!known.has(record.image_id) || run.images.get(record.image_id)?.status === 'done') continue;
      const { detections_end: _end, ...rest } = record;
      run.commitImage(rest, lines);
      imported++;
    }
    return {
      shard: shard.name,
      images_recorded: recorded.length,
      images_done: done,
      images_failed: recorded.length - done,
      imported,
      running_pid: lockHolder(join(shard.dir, '.lock')) ?? null,
    };
  });
  return { shards: imports, recordedIds };
}
