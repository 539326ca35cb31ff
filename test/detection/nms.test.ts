import { boxIou } from '../../src/detection/boxes';
import { batchedNms, nms } from '../../src/detection/nms';
import { hash24, hashArray, hashBoxes, readTorchvisionFixture } from './hash-values';

interface NmsCase {
  name: string;
  iou_threshold: number;
  keep: number[];
  boxes?: number[];
  scores?: number[];
  groups?: number[];
  generated?: {
    count: number;
    boxes_salt: number;
    scores_salt: number;
    extent: number;
    max_side: number;
    score_levels?: number;
    groups_salt?: number;
    groups?: number;
  };
}

const fixture = readTorchvisionFixture<{ cases: NmsCase[] }>('nms.json');

function inputs(c: NmsCase): { boxes: Float32Array; scores: Float32Array; groups?: Int32Array } {
  const g = c.generated;
  if (g === undefined) {
    return {
      boxes: Float32Array.from(c.boxes ?? []),
      scores: Float32Array.from(c.scores ?? []),
      groups: c.groups ? Int32Array.from(c.groups) : undefined,
    };
  }
  const boxes = hashBoxes(g.count, g.boxes_salt, g.extent, g.max_side);
  let scores = hashArray(g.count, g.scores_salt, 0, 1);
  if (g.score_levels !== undefined) scores = scores.map((s) => Math.floor(s * g.score_levels!) / g.score_levels!);
  const groupsSalt = g.groups_salt;
  const groupCount = g.groups;
  const groups =
    groupsSalt !== undefined && groupCount !== undefined
      ? Int32Array.from({ length: g.count }, (_, i) => hash24(i, groupsSalt) % groupCount)
      : undefined;
  return { boxes, scores, groups };
}

describe('nms and batchedNms equal torchvision.ops', () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))('%s', (_, c) => {
    const { boxes, scores, groups } = inputs(c);
    const keep = groups ? batchedNms(boxes, scores, groups, c.iou_threshold) : nms(boxes, scores, c.iou_threshold);
    expect(Array.from(keep)).toEqual(c.keep);
  });
});

describe('nms', () => {
  it('refuses boxes that are not [N, 4] for N scores, naming the argument (INVALID_OPTION)', () => {
    const scores = new Float32Array([0.9, 0.8]);
    expect(() => nms(new Float32Array(6), scores, 0.5)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: 'boxes must hold 2 x 4 = 8 values, got 6' }),
    );
    expect(() => batchedNms(new Float32Array(8), scores, new Int32Array(3), 0.5)).toThrow(
      expect.objectContaining({ code: 'INVALID_OPTION', message: 'groups must hold 2 x 1 = 2 values, got 3' }),
    );
  });

  it('restricts itself to the candidate indices it is given', () => {
    const boxes = new Float32Array([0, 0, 10, 10, 0, 0, 10, 10, 50, 50, 60, 60]);
    const scores = new Float32Array([0.9, 0.8, 0.7]);
    expect(Array.from(nms(boxes, scores, 0.5, Int32Array.from([1, 2])))).toEqual([1, 2]);
  });

  it('10000 boxes: the result is a greedy NMS (kept boxes separated, every other box covered)', () => {
    const boxes = hashBoxes(10000, 900, 1024, 64);
    const scores = hashArray(10000, 907, 0, 1);
    const keep = nms(boxes, scores, 0.5);
    const kept = new Set(keep);
    for (let k = 1; k < keep.length; k++) expect(scores[keep[k - 1]!]).toBeGreaterThanOrEqual(scores[keep[k]!]!);
    let violations = 0;
    for (let a = 0; a < keep.length; a++)
      for (let b = a + 1; b < keep.length; b++) if (boxIou(boxes, keep[a]!, boxes, keep[b]!) > 0.5) violations++;
    for (let i = 0; i < scores.length; i++) {
      if (kept.has(i)) continue;
      if (!keep.some((k) => scores[k]! >= scores[i]! && boxIou(boxes, k, boxes, i) > 0.5)) violations++;
    }
    expect(violations).toBe(0);
  });
});
