/**
 * `cpwc-detect eval --shard K/N` as real processes sharing one OUT, then the merge (the same
 * command without --shard): the merged results must equal a single-process run's, whatever
 * happened to the shards (run in parallel, one killed and rerun, one never run), and shards of
 * another run must be refused.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ensureDistBuilt, tempDir } from '../../helpers/eval';
import {
  MODEL,
  TOTAL_IMAGES,
  imagesWithHeldFile,
  parseJson,
  recordedIds,
  results,
  runEval,
  sortedDetections,
  startEval,
  until,
  type BatchJson,
  type ShardJson,
} from './batch-helpers';

const LOCAL = ['--model', MODEL, '--allow-missing'];
/** The fixture set's split into 3 (shard.test.ts): image ids per shard. */
const PARTS = [
  [7, 10],
  [1, 2, 4, 8],
  [3, 5, 6, 9],
];

let reference: BatchJson;
let referenceOut: string;

beforeAll(async () => {
  ensureDistBuilt();
  referenceOut = join(tempDir(), 'single');
  reference = parseJson<BatchJson>(await runEval(referenceOut, LOCAL));
  expect(reference.run.images_skipped).toBe(2);
});

describe('three shards in parallel on one OUT, then the merge', () => {
  let out: string;
  let shards: ShardJson[];
  let merged: BatchJson;
  let mergeStderr: string;

  beforeAll(async () => {
    out = join(tempDir(), 'sharded');
    const runs = await Promise.all([0, 1, 2].map((k) => runEval(out, [...LOCAL, '--shard', `${k}/3`])));
    shards = runs.map((r) => parseJson<ShardJson>(r));
    runs.forEach((r, k) => {
      expect(r.stderr).toContain(`eval[shard ${k}/3]: ${PARTS[k]!.length} of 10 images are this shard's`);
      expect(r.stderr).toContain(`eval[shard ${k}/3]: ${PARTS[k]!.length}/${PARTS[k]!.length} images (100%)`);
    });
    const merge = await runEval(out, LOCAL);
    mergeStderr = merge.stderr;
    merged = parseJson<BatchJson>(merge);
  });

  it('each shard does exactly its part, in its own directory', () => {
    expect(shards.map((s) => [s.shard.shard, s.shard.images_in_shard, s.shard.images_done, s.shard.images_failed])).toEqual([
      ['0-of-3', 2, 1, 1],
      ['1-of-3', 4, 4, 0],
      ['2-of-3', 4, 3, 1],
    ]);
    PARTS.forEach((ids, k) => {
      expect(recordedIds(join(out, 'shards', `${k}-of-3`))).toEqual(ids);
    });
  });

  it('merges to the stats, per-category AP and detections of a single-process run', () => {
    expect(results(merged)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
    // each image recorded once: the merge copies what shards detected, and tries the two failed ones once more
    expect([...recordedIds(out)].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL_IMAGES }, (_, i) => i + 1));
    expect(JSON.parse(readFileSync(join(out, 'report/summary.json'), 'utf8')).stats).toEqual(reference.stats);
    expect(readFileSync(join(out, 'report/summary.md'), 'utf8')).toContain(
      'Merged from 3 shard(s): 0-of-3 1 done, 1 failed; 1-of-3 4 done, 0 failed; 2-of-3 3 done, 1 failed; 2 image(s) detected by ' +
        'the merge itself',
    );
  });

  it('reports the totals: images done and failed per shard, and what the merge did itself', () => {
    expect(merged.run.shards.map((s) => [s.shard, s.images_done, s.images_failed, s.imported, s.running_pid])).toEqual([
      ['0-of-3', 1, 1, 1, null],
      ['1-of-3', 4, 0, 4, null],
      ['2-of-3', 3, 1, 3, null],
    ]);
    expect(mergeStderr).toContain('eval: merged 3 shard(s) into');
    expect(mergeStderr).toContain(
      '0-of-3 1 done, 1 failed; 1-of-3 4 done; 2-of-3 3 done, 1 failed; 2 of 10 images left to detect here (0 no shard recorded, 2 ' +
        'failed in a shard)',
    );
    expect([merged.run.images_missing_from_shards, merged.run.images_failed_in_shards]).toEqual([0, 2]);
    // The two images no shard could read are tried once more by the merge, and fail again.
    expect(merged.run.images_not_from_shards).toBe(2);
    expect(merged.run.images_skipped).toBe(2);
  });

  it('merges nothing twice when run again', async () => {
    const again = parseJson<BatchJson>(await runEval(out, LOCAL));
    expect(again.run.shards.map((s) => s.imported)).toEqual([0, 0, 0]);
    expect(results(again)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
  });
});

describe('a shard killed mid-run', () => {
  it('resumes when rerun, and the merge equals a single-process run', async () => {
    const out = join(tempDir(), 'sharded');
    const dir = join(out, 'shards', '1-of-3');
    // shard 1/3 is images 1, 2, 4, 8: it blocks reading image 2 (a FIFO) with exactly image 1 recorded
    const images = imagesWithHeldFile();
    const victim = startEval(out, [...LOCAL, '--shard', '1/3'], process.env, images.dir);
    await until(() => recordedIds(dir).length >= 1 || victim.child.exitCode !== null, 'shard 1/3 to record an image');
    victim.child.kill('SIGKILL');
    const killed = await victim.done;
    expect(killed.signal).toBe('SIGKILL');
    const before = recordedIds(dir).length;
    expect(before).toBe(1);
    images.restore();
    // as if the kill had landed while the next image was being written
    appendFileSync(join(dir, 'detections.jsonl'), '{"image_id":4,"category_id":1,"bbox":[1,');
    appendFileSync(join(dir, 'images.jsonl'), '{"image_id":4,"fil');

    const rerun = parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', '1/3'], undefined, images.dir));
    expect(rerun.shard.resumed).toBe(true);
    expect(rerun.shard.images_this_session).toBe(4 - before);
    expect(recordedIds(dir)).toEqual(PARTS[1]);
    for (const k of [0, 2]) parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', `${k}/3`], undefined, images.dir));
    const merged = parseJson<BatchJson>(await runEval(out, LOCAL, undefined, images.dir));
    expect(results(merged)).toEqual(results(reference));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
  });
});

describe('a shard that never ran', () => {
  it('is computed by the merge', async () => {
    const out = join(tempDir(), 'sharded');
    for (const k of [0, 1]) parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', `${k}/3`]));
    const merge = await runEval(out, LOCAL);
    const merged = parseJson<BatchJson>(merge);
    expect(merged.run.shards.map((s) => s.shard)).toEqual(['0-of-3', '1-of-3']);
    // shard 2's four images, and image 10 that shard 0 could not decode
    expect(merged.run.images_not_from_shards).toBe(5);
    expect(merge.stderr).toContain('5 of 10 images left to detect here (4 no shard recorded, 1 failed in a shard)');
    expect([merged.run.images_missing_from_shards, merged.run.images_failed_in_shards]).toEqual([4, 1]);
    expect(results(merged)).toEqual(results(reference));
  });
});

describe('shards of different N in one OUT', () => {
  it('merge each image once', async () => {
    const out = join(tempDir(), 'sharded');
    parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', '0/2'])); // ids 1, 3, 5, 7, 9, 10
    parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', '1/3'])); // ids 1, 2, 4, 8
    const merged = parseJson<BatchJson>(await runEval(out, LOCAL));
    expect(merged.run.shards.map((s) => [s.shard, s.imported])).toEqual([
      ['0-of-2', 4],
      ['1-of-3', 3],
    ]);
    expect(merged.run.images_not_from_shards).toBe(3); // image 6, and 9, 10 that cannot be read
    expect(results(merged)).toEqual(results(reference));
    expect([...recordedIds(out)].sort((a, b) => a - b)).toEqual(Array.from({ length: TOTAL_IMAGES }, (_, i) => i + 1));
    expect(sortedDetections(out)).toEqual(sortedDetections(referenceOut));
  });
});

describe('usage', () => {
  it.each([
    [['--shard', '3/3'], "--shard must be K/N with N in [1, 10000] and K in [0, N-1] (K is 0-based, like JOB_COMPLETION_INDEX), got '3/3'"],
    [
      ['--server', 'http://127.0.0.1:9', '--model', MODEL],
      "--server detects with the servers' model; --model is for detection in this process",
    ],
    [['--server', 'ftp://host'], "--server: 'ftp://host' is not an http(s) URL"],
    [['--server', ','], '--server needs one or more URLs, comma-separated'],
    [['--server-concurrency', '2'], '--server-concurrency, --server-timeout and --server-attempts need --server'],
    [['--server', 'http://127.0.0.1:9', '--server-concurrency', '0'], "--server-concurrency must be an integer >= 1, got '0'"],
    [['--threads', 'two'], "--threads must be an integer >= 1, got 'two'"],
  ])('%j is a usage error (exit 2) naming the flag', async (extra, message) => {
    const out = join(tempDir(), 'usage');
    const run = await runEval(out, extra);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(existsSync(join(out, 'run.json'))).toBe(false);
  });
});

describe('shards of another run', () => {
  it('are refused by the merge, naming the shard and the setting, and nothing is merged', async () => {
    const out = join(tempDir(), 'sharded');
    parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', '0/3']));
    parseJson<ShardJson>(await runEval(out, [...LOCAL, '--shard', '1/3', '--score-threshold', '0.5']));
    const merge = await runEval(out, LOCAL);
    expect(merge.code).toBe(1);
    expect(merge.stderr).toContain(
      `shard ${join(out, 'shards', '1-of-3')} was written for a different score threshold (0.5, this run: null)`,
    );
    expect(existsSync(join(out, 'run.json'))).toBe(false);
  });

  it('are refused by the merge when written with another model', async () => {
    const out = join(tempDir(), 'sharded');
    parseJson<ShardJson>(await runEval(out, ['--model', join(MODEL, '..', 'tiny-c4'), '--allow-missing', '--shard', '2/3']));
    const merge = await runEval(out, LOCAL);
    expect(merge.code).toBe(1);
    expect(merge.stderr).toContain(`shard ${join(out, 'shards', '2-of-3')} was written for a different model identity ({"name":"tiny-c4"`);
  });

  it('cannot start in an OUT that holds a run of other settings', async () => {
    const shard = await runEval(referenceOut, [...LOCAL, '--shard', '0/2', '--score-threshold', '0.5']);
    expect(shard.code).toBe(1);
    expect(shard.stderr).toContain(`${referenceOut} holds a run with a different score threshold (null, this shard: 0.5)`);
    expect(existsSync(join(referenceOut, 'shards'))).toBe(false);
  });
});
