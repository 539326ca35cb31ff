import { CocoEvalError } from '../../../src/eval/errors';
import { parseShard, shardDir, shardOf } from '../../../src/eval/batch/shard';

describe('parseShard', () => {
  it('reads K/N with K 0-based, like JOB_COMPLETION_INDEX', () => {
    expect(parseShard('0/3')).toEqual({ index: 0, count: 3 });
    expect(parseShard(' 2 / 3 ')).toEqual({ index: 2, count: 3 });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
  });

  it.each(['3/3', '-1/3', '1/0', '1', 'a/b', '1.5/3', '0/10001', ''])('refuses %j naming the flag', (text) => {
    let error: unknown;
    try {
      parseShard(text);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(CocoEvalError);
    expect((error as CocoEvalError).code).toBe('INVALID_ARGUMENT');
    expect((error as CocoEvalError).message).toContain(`--shard must be K/N with N in [1, 10000] and K in [0, N-1]`);
    expect((error as CocoEvalError).message).toContain(`got '${text}'`);
  });
});

describe('shardOf', () => {
  it('puts every image in exactly one shard, the same one every time, and spreads them evenly', () => {
    const counts = [0, 0, 0, 0];
    for (let id = 1; id <= 40_000; id++) {
      const shard = shardOf(id, 4);
      expect(shard).toBe(shardOf(id, 4));
      counts[shard]!++;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(200);
  });

  it('splits the batch fixture set (ids 1-10) into 3 non-empty parts (the split is part of the run format)', () => {
    const parts = [0, 1, 2].map((k) => Array.from({ length: 10 }, (_, i) => i + 1).filter((id) => shardOf(id, 3) === k));
    expect(parts).toEqual([
      [7, 10],
      [1, 2, 4, 8],
      [3, 5, 6, 9],
    ]);
  });

  it('names shard directories OUT/shards/K-of-N', () => {
    expect(shardDir('runs/val', { index: 1, count: 3 })).toBe('runs/val/shards/1-of-3');
  });
});
